/**
 * The one module that speaks the /ws/chat/ protocol (CONTRACT §3), reused by every page.
 *
 * It owns: the connection (session cookie, same origin), reconnecting with exponential backoff
 * and jitter, resuming each room with `join` + `after` = the last message id seen, dropping
 * frames of messages already delivered (replay/live overlap, resend answers), a queue of unsent
 * messages keyed by client_id that is replayed after every reconnect (the server answers a
 * repeated client_id with the stored message, never a second copy), and a `ping` heartbeat
 * that notices half-open connections.
 *
 * The fallback (CONTRACT §6): when the WebSocket fails to open three times in a row while plain
 * HTTP still reaches the server (a server that is down is waited for, not streamed from), or
 * with `transport: "sse"`, the same protocol is carried by chat-stream.js (Server-Sent Events in,
 * REST out) while a WebSocket is retried in the background with its own backoff; the first one
 * that opens takes over again (rooms rejoined with `after`, so nothing is missed or doubled).
 *
 * Pages listen with `socket.on(type, handler)`; handlers get one plain object:
 *   status        {state: "connecting"|"live"|"reconnecting"|"offline", transport: "ws"|"sse",
 *                  retryAt?, reason?}
 *   joined        the `joined` frame, plus `resumed` (true after a reconnect)
 *   message       {message}            new to this page (never the same id twice)
 *   sent          {clientId, message}  a queued message was accepted (its acknowledgement)
 *   send-error    {clientId, room, body, code, detail, retryAfter}
 *   join-error    {room, code, detail}
 *   message_edited, message_deleted, presence, typing, left, resync, error: the frame as sent
 */

import { ChatStream } from "./chat-stream.js";

const DEFAULTS = {
  backoffBaseMs: 500, // first retry after 0.25-0.5 s
  backoffMaxMs: 30_000, // never wait longer than 15-30 s
  heartbeatMs: 25_000, // a ping this often while connected
  pongTimeoutMs: 10_000, // no frame this long after a ping: the connection is dead
  stableAfterMs: 10_000, // a connection that lived this long resets the backoff
  seenPerRoom: 5_000, // message ids remembered per room for de-duplication
  authCheck: null, // async () => boolean: is the session still valid? (asked after refusals)
  transport: "auto", // "auto": WebSocket, the stream after `fallbackAfter` failed opens; "sse": the stream only
  fallbackAfter: 3, // WebSocket handshakes failing in a row before the stream takes over
  reachable: null, // async () => boolean: does plain HTTP reach the server? (asked before falling back)
  probeBaseMs: 2_000, // while streaming, a WebSocket is tried again after 1-2 s, then backing off
  probeMaxMs: 60_000,
  streamBase: "/api/v1/stream/",
};

/** Close codes after which reconnecting cannot help (CONTRACT §3). */
const FINAL_CLOSE_CODES = new Map([
  [4001, "unauthenticated"],
  [4003, "banned"],
]);
const SERVER_RESTART_CODE = 4012;

/** Backoff with "equal jitter": half the exponential delay fixed, half random. */
export function backoffDelay(attempt, { backoffBaseMs, backoffMaxMs }, random = Math.random) {
  const ceiling = Math.min(backoffMaxMs, backoffBaseMs * 2 ** attempt);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function socketUrl(loc = window.location) {
  return `${loc.protocol === "https:" ? "wss:" : "ws:"}//${loc.host}/ws/chat/`;
}

/** A random UUID; crypto.randomUUID only exists in secure contexts, getRandomValues everywhere. */
export function newClientId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

class RoomState {
  constructor(lastId) {
    this.lastId = lastId; // null: join without `after` (live only)
    this.state = "idle"; // idle | joining | joined
    this.seen = new Set();
  }

  remember(id, limit) {
    this.seen.add(id);
    if (this.seen.size > limit) {
      // Sets iterate in insertion order: forget the oldest ids first.
      const excess = this.seen.size - limit;
      let dropped = 0;
      for (const old of this.seen) {
        if (dropped++ >= excess) break;
        this.seen.delete(old);
      }
    }
    if (this.lastId === null || id > this.lastId) this.lastId = id;
  }
}

export class ChatSocket {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.url = options.url ?? socketUrl();
    this.rooms = new Map(); // slug -> RoomState
    this.joinQueue = []; // slugs whose join awaits its answer, in the order sent
    this.outbox = new Map(); // client_id -> {room, body, clientId, sent}
    this.listeners = new Map();
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.failuresWithoutOpen = 0;
    this.everJoined = new Set();
    this.retryTimer = null;
    this.retryAt = null;
    this.heartbeatTimer = null;
    this.pongTimer = null;
    this.openedAt = 0;
    this.stopped = true;
    this.transport = this.options.transport === "sse" ? "sse" : "ws";
    this.stream = null; // ChatStream while the fallback carries the protocol
    this.streamAttempt = 0;
    this.streamTimer = null;
    this.streamOpenedAt = 0;
    this.streamFailures = 0;
    this.probeAttempt = 0;
    this.reopenQueued = false;
    this.pendingReads = new Map(); // room -> last_read_id not sent yet (sent once joined)
    this.rest = null; // REST calls for read and react (either transport)
    this._onOnline = () => this.retryNow();
  }

  // ----- public API ---------------------------------------------------------------------

  on(type, handler) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(handler);
    return () => this.listeners.get(type)?.delete(handler);
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    globalThis.addEventListener?.("online", this._onOnline);
    if (this.transport === "sse") this._startStream();
    else this._connect();
  }

  stop() {
    this.stopped = true;
    globalThis.removeEventListener?.("online", this._onOnline);
    this._clearRetry();
    this._stopHeartbeat();
    this._stopStream();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      this._detach(ws);
      ws.close(1000, "bye");
    }
    this._setState("idle");
  }

  /** Subscribe to a room; `after` is the newest id already shown (resume point). */
  join(room, { after = null } = {}) {
    let state = this.rooms.get(room);
    if (!state) {
      state = new RoomState(after);
      this.rooms.set(room, state);
    } else if (after !== null && (state.lastId === null || after > state.lastId)) {
      state.lastId = after;
    }
    if (this._isOpen() && state.state === "idle") this._sendJoin(room);
    else if (this.stream && state.state === "idle") this._reopenStreamSoon();
  }

  leave(room) {
    this.rooms.delete(room);
    for (const [clientId, entry] of this.outbox) if (entry.room === room) this.outbox.delete(clientId);
    if (this._carrier() === "ws") this._send({ type: "leave", room });
    else if (this.stream) this._reopenStreamSoon();
  }

  /** Record that the page shows message `id` (e.g. loaded over REST), moving the resume point. */
  noteSeen(room, id) {
    this.rooms.get(room)?.remember(id, this.options.seenPerRoom);
  }

  lastId(room) {
    return this.rooms.get(room)?.lastId ?? null;
  }

  /**
   * Queue a message (a reply when `replyTo` is a message id); it is sent now if possible, else
   * after the next (re)join. Returns its client_id.
   */
  send(room, body, { replyTo = null } = {}) {
    const clientId = newClientId();
    this.outbox.set(clientId, { room, body, clientId, replyTo, sent: false });
    this._flush(room);
    return clientId;
  }

  /** Drop a queued message that was not acknowledged yet (the page gave up on it). */
  discard(clientId) {
    this.outbox.delete(clientId);
  }

  pending(room) {
    return [...this.outbox.values()].filter((entry) => entry.room === room);
  }

  typing(room) {
    if (this._carrier() && this.rooms.get(room)?.state === "joined") this._send({ type: "typing", room });
  }

  /**
   * Advance the read marker, once the room is joined. Sent as its REST call on either transport
   * (CONTRACT §5: the `read` frame and `POST read/` are the same action); the answer is handled
   * as the `read_state` frame it equals, and the server sends that to the user's other sockets.
   */
  read(room, lastReadId) {
    if (!(lastReadId > (this.pendingReads.get(room) ?? 0))) return;
    this.pendingReads.set(room, lastReadId);
    this._flushRead(room);
  }

  /**
   * Add (or with `remove`, take back) the user's reaction, as its REST call (the `react` frame's
   * equal): refusals arrive as `error` events naming the message; the change as `reaction` frames.
   */
  react(room, messageId, emoji, { remove = false } = {}) {
    const frame = { type: "react", room, message_id: messageId, emoji };
    if (remove) frame.remove = true;
    this._restCarrier().send(frame);
  }

  /** REST calls in the frames' shape, answered through the frame handler (see chat-stream.js). */
  _restCarrier() {
    this.rest ??= new ChatStream({
      onOpen: () => {},
      onClose: () => {},
      onUnsent: () => {},
      onFrame: (frame) => this._handle(frame),
    });
    return this.rest;
  }

  /** "ws" or "sse": what carries the protocol now (null while neither is connected). */
  _carrier() {
    if (this._isOpen()) return "ws";
    if (this.stream?.isOpen) return "sse";
    return null;
  }

  /** Skip the rest of the backoff wait (a "Retry now" button, the browser going online). */
  retryNow() {
    if (this.stopped || this.state === "offline") return;
    if (this.stream && !this.stream.isOpen && this.streamTimer !== null) {
      clearTimeout(this.streamTimer);
      this.streamTimer = null;
      this._openStream();
    }
    if (this.ws || this.options.transport === "sse") return;
    this._clearRetry();
    this._connect();
  }

  // ----- connection ---------------------------------------------------------------------

  _isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emit("status", { state, transport: this.transport, ...extra });
  }

  _connect() {
    this._clearRetry();
    // While the stream carries the protocol, a WebSocket attempt is a silent probe.
    if (this.transport === "ws") this._setState("connecting", { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this._closed(null, { code: 1006, reason: String(error) }, false);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      opened = true;
      this.openedAt = Date.now();
      this.failuresWithoutOpen = 0;
      this.probeAttempt = 0;
      if (this.transport === "sse" || this.stream) {
        // The WebSocket is back: it takes over from the stream.
        this._stopStream();
        this.transport = "ws";
      }
      this._startHeartbeat();
      this.joinQueue = [];
      for (const [room, state] of this.rooms) {
        state.state = "idle";
        this._sendJoin(room);
      }
      this._setState("live");
    };
    ws.onmessage = (event) => {
      if (ws !== this.ws) return;
      this._alive();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return; // the server only sends JSON; ignore anything else rather than die
      }
      if (frame && typeof frame.type === "string") this._handle(frame);
    };
    ws.onclose = (event) => this._closed(ws, event, opened);
    ws.onerror = () => {}; // a close event always follows
  }

  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
  }

  _closed(ws, { code, reason }, wasOpen) {
    if (ws !== null && ws !== this.ws) return;
    if (ws) this._detach(ws);
    this.ws = null;
    this._stopHeartbeat();
    this._emit("close", { code, reason, wasOpen });
    if (this.stopped) return;
    if (this.transport === "sse") {
      // A failed probe: the stream carries on; try again later, backing off.
      if (FINAL_CLOSE_CODES.has(code)) {
        this._final(code);
        return;
      }
      this._scheduleProbe();
      return;
    }
    this.joinQueue = [];
    for (const state of this.rooms.values()) state.state = "idle";
    for (const entry of this.outbox.values()) entry.sent = false;
    if (FINAL_CLOSE_CODES.has(code)) {
      this._final(code);
      return;
    }
    if (wasOpen && Date.now() - this.openedAt >= this.options.stableAfterMs) this.attempt = 0;
    if (!wasOpen) this.failuresWithoutOpen += 1;
    if (!wasOpen && this.failuresWithoutOpen >= this.options.fallbackAfter) {
      if (!this.options.reachable) {
        this._startStream();
        return;
      }
      // Only if HTTP gets through: then something on the way refuses WebSockets (a proxy, a
      // firewall). A server that is down or restarting refuses both; keep retrying the socket.
      this.options.reachable().then(
        (ok) => {
          if (ok && !this.stopped && !this._isOpen() && this.transport === "ws" && this.state !== "offline") {
            this._clearRetry();
            if (this.ws) {
              const pending = this.ws;
              this.ws = null;
              this._detach(pending);
              pending.close();
            }
            this._startStream();
          }
        },
        () => {},
      );
    }
    // A refused handshake looks like any network failure; from the second one in a row, ask
    // whether the session is gone, so a logged-out page stops retrying and says why. (One
    // request per attempt, and attempts are already spaced by the backoff.)
    if (!wasOpen && this.options.authCheck && this.failuresWithoutOpen >= 2) {
      this.options.authCheck().then(
        (ok) => {
          if (ok === false && !this.stopped && !this.ws) {
            this._clearRetry();
            this._setState("offline", { reason: "unauthenticated" });
          }
        },
        () => {},
      );
    }
    // A restarting server (4012) asks for a prompt reconnect; otherwise back off.
    const attempt = code === SERVER_RESTART_CODE && wasOpen ? 0 : this.attempt;
    this.attempt = Math.min(attempt + 1, 30);
    const delay = backoffDelay(attempt, this.options);
    this.retryAt = Date.now() + delay;
    this.retryTimer = setTimeout(() => this._connect(), delay);
    this._setState("reconnecting", { retryAt: this.retryAt, code });
  }

  _clearRetry() {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAt = null;
  }

  _final(code) {
    this._clearRetry();
    this._stopStream();
    this._setState("offline", { reason: FINAL_CLOSE_CODES.get(code), code });
  }

  // ----- the fallback stream ------------------------------------------------------------

  _startStream() {
    this.transport = "sse";
    this.stream = new ChatStream(
      {
        onOpen: () => this._streamOpened(),
        onFrame: (frame) => this._handle(frame),
        onClose: (event) => this._streamClosed(event),
        onUnsent: (clientId) => {
          const entry = this.outbox.get(clientId);
          if (entry) entry.sent = false; // sent again when the stream is back
        },
      },
      { base: this.options.streamBase },
    );
    this._openStream();
    if (this.options.transport !== "sse") this._scheduleProbe();
  }

  _openStream() {
    if (!this.stream || this.stopped) return;
    this.streamTimer = null;
    this.joinQueue = [];
    const rooms = [];
    const lastIds = new Map();
    for (const [room, state] of this.rooms) {
      state.state = "joining";
      rooms.push(room);
      this.joinQueue.push(room);
      lastIds.set(room, state.lastId);
    }
    for (const entry of this.outbox.values()) entry.sent = false;
    this._setState("connecting");
    this.stream.open(rooms, lastIds);
  }

  /** Rooms joined or left while streaming: the stream's room list changes, so reopen it once. */
  _reopenStreamSoon() {
    if (this.reopenQueued) return;
    this.reopenQueued = true;
    queueMicrotask(() => {
      this.reopenQueued = false;
      // Not while waiting to retry: that attempt will list every room anyway.
      if (this.stream && this.streamTimer === null && !this.stopped) this._openStream();
    });
  }

  _streamOpened() {
    this.streamOpenedAt = Date.now();
    this.streamFailures = 0;
    this._setState("live");
  }

  _streamClosed({ code, wasOpen }) {
    for (const state of this.rooms.values()) state.state = "idle";
    this.joinQueue = [];
    if (this.stopped || !this.stream) return;
    if (FINAL_CLOSE_CODES.has(code)) {
      this._final(code);
      return;
    }
    if (wasOpen && Date.now() - this.streamOpenedAt >= this.options.stableAfterMs) this.streamAttempt = 0;
    if (!wasOpen) this.streamFailures += 1;
    if (!wasOpen && this.options.authCheck && this.streamFailures >= 2) {
      this.options.authCheck().then(
        (ok) => {
          if (ok === false && !this.stopped && this.stream && !this.stream.isOpen) {
            this._clearRetry();
            this._stopStream();
            this._setState("offline", { reason: "unauthenticated" });
          }
        },
        () => {},
      );
    }
    const delay = backoffDelay(this.streamAttempt, this.options);
    this.streamAttempt = Math.min(this.streamAttempt + 1, 30);
    this.retryAt = Date.now() + delay;
    this.streamTimer = setTimeout(() => this._openStream(), delay);
    this._setState("reconnecting", { retryAt: this.retryAt, code });
  }

  _stopStream() {
    if (this.streamTimer !== null) clearTimeout(this.streamTimer);
    this.streamTimer = null;
    const stream = this.stream;
    this.stream = null;
    if (stream) stream.close();
    this.streamAttempt = 0;
    this.streamFailures = 0;
  }

  /** The next background WebSocket attempt while streaming, spaced by its own backoff. */
  _scheduleProbe() {
    if (this.options.transport === "sse" || this.stopped) return;
    this._clearRetry();
    const delay = backoffDelay(this.probeAttempt, {
      backoffBaseMs: this.options.probeBaseMs,
      backoffMaxMs: this.options.probeMaxMs,
    });
    this.probeAttempt = Math.min(this.probeAttempt + 1, 30);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped && !this.ws) this._connect();
    }, delay);
  }

  _startHeartbeat() {
    this._stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      if (!this._isOpen()) return;
      this._send({ type: "ping" });
      if (this.pongTimer === null) {
        this.pongTimer = setTimeout(() => this._heartbeatFailed(), this.options.pongTimeoutMs);
      }
    }, this.options.heartbeatMs);
  }

  _stopHeartbeat() {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.pongTimer !== null) clearTimeout(this.pongTimer);
    this.heartbeatTimer = this.pongTimer = null;
  }

  _alive() {
    if (this.pongTimer !== null) clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  _heartbeatFailed() {
    // A half-open connection may never deliver its close event: give up on it ourselves.
    const ws = this.ws;
    if (!ws) return;
    this._detach(ws);
    try {
      ws.close(4000, "heartbeat timeout");
    } catch {
      /* already closing */
    }
    this._closed(ws, { code: 4000, reason: "heartbeat timeout" }, true);
  }

  _send(frame) {
    if (this._isOpen()) this.ws.send(JSON.stringify(frame));
    else if (this.stream?.isOpen) this.stream.send(frame);
  }

  _sendJoin(room) {
    if (!this._isOpen()) return; // while streaming, the stream's room list is the join
    const state = this.rooms.get(room);
    const frame = { type: "join", room };
    if (state.lastId !== null) frame.after = state.lastId;
    state.state = "joining";
    this.joinQueue.push(room);
    this._send(frame);
  }

  _flush(room) {
    if (!this._carrier() || this.rooms.get(room)?.state !== "joined") return;
    for (const entry of this.outbox.values()) {
      if (entry.room !== room || entry.sent) continue;
      entry.sent = true;
      const frame = { type: "message", room, body: entry.body, client_id: entry.clientId };
      if (entry.replyTo == null) {
        this._send(frame);
        continue;
      }
      // A reply goes by REST on either transport: `POST messages/` with `reply_to` is the same
      // action, and a bad `reply_to` gets its own 400 (the socket's broadcast still arrives, and
      // the repeated client_id is never a second copy).
      frame.reply_to = entry.replyTo;
      this._restCarrier().send(frame);
    }
    this._flushRead(room);
  }

  _flushRead(room) {
    const lastReadId = this.pendingReads.get(room);
    if (lastReadId === undefined || !this._carrier() || this.rooms.get(room)?.state !== "joined") return;
    this.pendingReads.delete(room);
    this._restCarrier().send({ type: "read", room, last_read_id: lastReadId });
  }

  // ----- inbound frames -----------------------------------------------------------------

  _handle(frame) {
    switch (frame.type) {
      case "joined": {
        const state = this.rooms.get(frame.room);
        this.joinQueue = this.joinQueue.filter((room) => room !== frame.room);
        if (!state) return;
        state.state = "joined";
        const resumed = this.everJoined.has(frame.room);
        this.everJoined.add(frame.room);
        this._emit("joined", { ...frame, resumed });
        this._flush(frame.room);
        return;
      }
      case "message":
        this._onMessage(frame.message);
        return;
      case "error":
        this._onError(frame);
        return;
      case "left": {
        if (frame.reason) {
          // Banned or removed: do not rejoin on reconnect; queued messages cannot be sent.
          this.rooms.delete(frame.room);
          for (const [clientId, entry] of this.outbox) {
            if (entry.room !== frame.room) continue;
            this.outbox.delete(clientId);
            this._emit("send-error", { ...entry, code: "forbidden", detail: `You left #${frame.room}.` });
          }
        }
        this._emit("left", frame);
        return;
      }
      case "pong":
        return;
      default:
        this._emit(frame.type, frame);
    }
  }

  _onMessage(message) {
    if (!message || typeof message.id !== "number") return;
    const entry = message.client_id ? this.outbox.get(message.client_id) : undefined;
    if (entry && entry.room === message.room) {
      this.outbox.delete(message.client_id);
      this._emit("sent", { clientId: message.client_id, message });
    }
    const state = this.rooms.get(message.room);
    if (!state || state.seen.has(message.id)) return;
    state.remember(message.id, this.options.seenPerRoom);
    this._emit("message", { message });
  }

  _onError(frame) {
    const entry = frame.client_id ? this.outbox.get(frame.client_id) : undefined;
    if (entry) {
      this.outbox.delete(frame.client_id);
      this._emit("send-error", {
        ...entry,
        code: frame.code,
        detail: frame.detail,
        retryAfter: frame.retry_after ?? null,
      });
      return;
    }
    if (this.joinQueue.length && frame.message_id === undefined && (frame.code === "not_found" || frame.code === "forbidden")) {
      // Joins are answered in order: an error without client_id answers the oldest open join
      // (the stream names the room; a socket's answer is matched by order).
      const named = typeof frame.room === "string" && this.joinQueue.includes(frame.room);
      const room = named ? frame.room : this.joinQueue.shift();
      if (named) this.joinQueue = this.joinQueue.filter((slug) => slug !== room);
      this.rooms.delete(room);
      this._emit("join-error", { room, code: frame.code, detail: frame.detail });
      return;
    }
    this._emit("error", frame);
  }

  _emit(type, detail) {
    for (const handler of this.listeners.get(type) ?? []) {
      try {
        handler(detail);
      } catch (error) {
        console.error(`chat-socket: ${type} handler failed`, error);
      }
    }
  }
}
