#!/usr/bin/env node
// The Socket.IO 4.8 peer of chatsite's benchmarks (docs/benchmarks.md): a chat server doing, per
// message, the work chatsite's /ws/chat/ does as far as Socket.IO allows, so that one process on
// one core of each can be compared in the same run.
//
//   node bench/socketio/server.js --port 18301 [--persist none|batch|each] [--database-url URL]
//
// Per connection: the HTTP upgrade carries `Authorization: Bearer <access JWT>`, verified as
// chatsite verifies it (HS256 with the same SECRET_KEY, `exp`, `token_type` "access", `user_id`),
// before the upgrade is accepted (engine-level `allowRequest`); websocket transport only (no
// long-polling), no compression.
// Events (each a Socket.IO event whose data is the chatsite frame without its "type"):
//   join {room}                 -> joined {room, last_id, online}; presence {room, user, online:true} to the room
//   leave {room}                -> left {room}; presence ... online:false
//   message {room, body, client_id?}
//                               -> message {id, room, author:{id, username}, body, created, edited, client_id}
//                                  to every socket of the room, the sender's included (its acknowledgement);
//                                  `id` assigned by the server, strictly increasing per room
//                               -> error {code, detail, client_id} for a room not joined (forbidden),
//                                  a bad body (bad_request) or, persisted, a full queue or a database
//                                  error (rate_limited with retry_after)
//   ping -> pong
// --persist none   ids from an in-memory counter, broadcast at once ("in memory")
// --persist batch  group commit: messages queue, one INSERT of every queued message (up to
//                  --batch-max) in one transaction, one batch in flight; ids assigned in queue
//                  order when the batch is written, broadcast in id order after COMMIT
// --persist each   the same with one message per batch (one INSERT and COMMIT per message)
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");
const { Server } = require("socket.io");

function parseArgs(argv) {
  const opts = {
    port: 0,
    host: "127.0.0.1",
    persist: "none",
    databaseUrl: process.env.BENCH_DATABASE_URL || process.env.DATABASE_URL || "",
    secret: process.env.SECRET_KEY || "",
    anyToken: false,
    batchMax: 2000,
    maxQueue: 20000,
    table: "sio_message",
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--port") opts.port = Number(next());
    else if (a === "--persist") opts.persist = next();
    else if (a === "--database-url") opts.databaseUrl = next();
    else if (a === "--secret") opts.secret = next();
    else if (a === "--any-token") opts.anyToken = true;
    else if (a === "--batch-max") opts.batchMax = Number(next());
    else if (a === "--max-queue") opts.maxQueue = Number(next());
    else if (a === "--table") opts.table = next();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.port) throw new Error("--port is required");
  if (!["none", "batch", "each"].includes(opts.persist)) throw new Error("--persist none|batch|each");
  if (opts.persist === "each") opts.batchMax = 1;
  if (opts.persist !== "none" && !opts.databaseUrl) throw new Error("--persist needs --database-url");
  if (!opts.secret && !opts.anyToken) throw new Error("SECRET_KEY (or --secret) to verify JWTs, or --any-token");
  if (!/^[a-z_][a-z0-9_]*$/.test(opts.table)) throw new Error("--table: a plain SQL name");
  return opts;
}

const opts = parseArgs(process.argv);
const MAX_BODY = 4000;

// ----- authentication: simplejwt's HS256 access tokens ---------------------------------------
function b64urlJson(part) {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

function verifyToken(token) {
  if (opts.anyToken) {
    // Test tokens of `loadtest.py fake-setup`: "fake<N>" is user N.
    const n = Number(String(token).replace(/^\D+/, ""));
    return Number.isFinite(n) ? { id: n, username: `benchuser${n}` } : null;
  }
  const parts = String(token).split(".");
  if (parts.length !== 3) return null;
  const expected = crypto.createHmac("sha256", opts.secret).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], "base64url");
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return null;
  let header, payload;
  try {
    header = b64urlJson(parts[0]);
    payload = b64urlJson(parts[1]);
  } catch {
    return null;
  }
  if (header.alg !== "HS256" || payload.token_type !== "access") return null;
  if (typeof payload.exp !== "number" || payload.exp * 1000 < Date.now()) return null;
  const id = Number(payload.user_id);
  if (!Number.isInteger(id) || id <= 0) return null;
  return { id, username: `user${id}` };
}

function allowRequest(req, callback) {
  const auth = req.headers.authorization || "";
  const user = auth.startsWith("Bearer ") ? verifyToken(auth.slice(7)) : null;
  if (!user) return callback("credentials needed", false);
  req.benchUser = user;
  callback(null, true);
}

// ----- rooms ----------------------------------------------------------------------------------
const lastId = new Map(); // room -> last message id
const online = new Map(); // room -> Map(username -> open sockets of that user in the room)

function markOnline(room, username, delta) {
  let users = online.get(room);
  if (!users) online.set(room, (users = new Map()));
  const n = (users.get(username) || 0) + delta;
  if (n > 0) users.set(username, n);
  else users.delete(username);
  if (users.size === 0) online.delete(room);
  return n; // sockets of the user still in the room
}

function errorFrame(code, detail, clientId, retryAfter) {
  const f = { code, detail, client_id: clientId === undefined ? null : clientId };
  if (retryAfter !== undefined) f.retry_after = retryAfter;
  return f;
}

function messageObject(m) {
  return {
    id: m.id,
    room: m.room,
    author: { id: m.user.id, username: m.user.username },
    body: m.body,
    created: m.created,
    edited: null,
    client_id: m.clientId,
  };
}

// ----- persistence: group commit --------------------------------------------------------------
let pool = null;
const queue = [];
let writing = false;

async function openDatabase() {
  const { Pool } = require("pg");
  pool = new Pool({ connectionString: opts.databaseUrl, max: 2 });
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${opts.table} (
       id bigserial PRIMARY KEY, room text NOT NULL, seq bigint NOT NULL, author_id bigint NOT NULL,
       body text NOT NULL, client_id text, created timestamptz NOT NULL, UNIQUE (room, seq))`,
  );
  const { rows } = await pool.query(`SELECT room, max(seq)::bigint AS seq FROM ${opts.table} GROUP BY room`);
  for (const r of rows) lastId.set(r.room, Number(r.seq));
}

function schedule() {
  if (!writing && queue.length) {
    writing = true;
    setImmediate(writeBatch);
  }
}

async function writeBatch() {
  const batch = queue.splice(0, opts.batchMax);
  // Ids in queue order, taken back if the transaction fails so the room's sequence has no hole.
  const before = new Map();
  const rooms = [], seqs = [], authors = [], bodies = [], cids = [], created = [];
  for (const m of batch) {
    if (!before.has(m.room)) before.set(m.room, lastId.get(m.room) || 0);
    m.id = (lastId.get(m.room) || 0) + 1;
    lastId.set(m.room, m.id);
    rooms.push(m.room);
    seqs.push(m.id);
    authors.push(m.user.id);
    bodies.push(m.body);
    cids.push(m.clientId);
    created.push(m.created);
  }
  try {
    await pool.query(
      `INSERT INTO ${opts.table} (room, seq, author_id, body, client_id, created)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[])`,
      [rooms, seqs, authors, bodies, cids, created],
    );
    for (const m of batch) io.to(m.room).emit("message", messageObject(m));
  } catch (err) {
    for (const [room, id] of before) lastId.set(room, id);
    console.error(`batch of ${batch.length} failed: ${err.message}`);
    for (const m of batch) {
      m.socket.emit("error", errorFrame("rate_limited", "database unavailable", m.clientId, 1));
    }
  }
  writing = false;
  schedule();
}

// ----- the server -----------------------------------------------------------------------------
const httpServer = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok\n");
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 64 * 1024,
  allowRequest,
});

io.on("connection", (socket) => {
  const user = socket.request.benchUser;
  socket.request.benchUser = undefined;
  const joined = new Set();

  socket.on("join", (data) => {
    const room = data && data.room;
    if (typeof room !== "string" || room.length === 0 || room.length > 100) {
      socket.emit("error", errorFrame("bad_request", "room must be a slug", undefined));
      return;
    }
    if (!joined.has(room)) {
      joined.add(room);
      socket.join(room);
      if (markOnline(room, user.username, 1) === 1) {
        socket.to(room).emit("presence", { room, user: user.username, online: true });
      }
    }
    const users = online.get(room);
    socket.emit("joined", { room, last_id: lastId.get(room) || 0, online: users ? [...users.keys()] : [] });
  });

  const leave = (room) => {
    joined.delete(room);
    socket.leave(room);
    if (markOnline(room, user.username, -1) === 0) {
      io.to(room).emit("presence", { room, user: user.username, online: false });
    }
  };

  socket.on("leave", (data) => {
    const room = data && data.room;
    if (typeof room === "string" && joined.has(room)) leave(room);
    socket.emit("left", { room });
  });

  socket.on("message", (data) => {
    if (data === null || typeof data !== "object") {
      socket.emit("error", errorFrame("bad_request", "an object is needed", undefined));
      return;
    }
    const clientId = data.client_id;
    if (clientId !== undefined && clientId !== null && (typeof clientId !== "string" || clientId.length > 100)) {
      socket.emit("error", errorFrame("bad_request", "client_id must be a string", undefined));
      return;
    }
    const room = data.room;
    if (typeof room !== "string" || !joined.has(room)) {
      socket.emit("error", errorFrame("forbidden", "join the room first", clientId));
      return;
    }
    const body = data.body;
    if (typeof body !== "string" || body.trim().length === 0 || body.length > MAX_BODY || body.includes("\0")) {
      socket.emit("error", errorFrame("bad_request", `body must be 1-${MAX_BODY} characters`, clientId));
      return;
    }
    const m = { id: 0, room, user, body, clientId: clientId ?? null, created: new Date().toISOString(), socket };
    if (!pool) {
      m.id = (lastId.get(room) || 0) + 1;
      lastId.set(room, m.id);
      io.to(room).emit("message", messageObject(m));
      return;
    }
    if (queue.length >= opts.maxQueue) {
      socket.emit("error", errorFrame("rate_limited", "too many messages waiting", clientId, 1));
      return;
    }
    queue.push(m);
    schedule();
  });

  socket.on("ping", () => socket.emit("pong", {}));

  socket.on("disconnect", () => {
    for (const room of joined) leave(room);
  });
});

async function main() {
  if (opts.persist !== "none") await openDatabase();
  httpServer.listen({ port: opts.port, host: opts.host, backlog: 1024 }, () => {
    console.log(`socket.io ${require("socket.io/package.json").version} peer on ${opts.host}:${opts.port}, persist=${opts.persist}`);
  });
}

function shutdown() {
  io.close();
  httpServer.close();
  Promise.resolve(pool && pool.end()).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
