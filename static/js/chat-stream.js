/**
 * The fallback transport (CONTRACT §6): frames of the /ws/chat/ protocol carried by a
 * Server-Sent Events stream (server to client) and REST calls (client to server).
 *
 * chat-socket.js owns the protocol and decides when to use this; here only the carriage:
 * `open(rooms, cursor)` starts `GET /api/v1/stream/?rooms=...&after=S1:N1,...` with the
 * browser's EventSource, every event becomes one frame for `onFrame`; `send(frame)` turns an
 * outbound frame into its REST call and the answer into the frame the socket would have sent
 * (a posted message is acknowledged by the stored message, a refusal by an `error` frame with
 * its client_id). EventSource's own reconnect is not used: the socket reopens the stream with
 * its own cursor (the newest id it delivered per room), so a room added later resumes too.
 */

import {
  ApiError,
  addReaction,
  markRead,
  postMessage,
  postTyping,
  removeReaction,
} from "./api.js";

/** Every frame type a stream can carry, each an SSE `event:` name (EventSource needs them listed). */
export const STREAM_EVENTS = [
  "joined",
  "message",
  "message_edited",
  "message_deleted",
  "reaction",
  "presence",
  "typing",
  "left",
  "resync",
  "error",
  "read_state",
  "notification",
  "close",
];

export const MAX_STREAM_ROOMS = 20;

/** `S1:N1,S2:N2` of the rooms whose newest delivered id is known. */
export function streamCursor(lastIds) {
  return [...lastIds]
    .filter(([, id]) => id !== null && id !== undefined)
    .map(([room, id]) => `${room}:${id}`)
    .join(",");
}

export function streamUrl(rooms, lastIds, base = "/api/v1/stream/") {
  const query = new URLSearchParams({ rooms: rooms.slice(0, MAX_STREAM_ROOMS).join(",") });
  const cursor = streamCursor(lastIds);
  if (cursor) query.set("after", cursor);
  return `${base}?${query}`;
}

/** The `error` frame of a refused REST call, as the socket would send it. */
function errorFrame(error, extra = {}) {
  const isApi = error instanceof ApiError;
  return {
    type: "error",
    code: (isApi && error.code) || (isApi && error.status === 404 ? "not_found" : "bad_request"),
    detail: isApi ? error.message : String(error),
    retry_after: isApi ? (error.data?.retry_after ?? error.retryAfter ?? undefined) : undefined,
    ...extra,
  };
}

export class ChatStream {
  /**
   * @param {object} hooks {onOpen(), onFrame(frame), onClose({code, reason, wasOpen}), onUnsent(clientId)}
   *   onUnsent: a message could not reach the server (network); it stays queued for the next try.
   */
  constructor({ onOpen, onFrame, onClose, onUnsent }, { base = "/api/v1/stream/" } = {}) {
    Object.assign(this, { onOpen, onFrame, onClose, onUnsent, base });
    this.source = null;
    this.opened = false;
  }

  get isOpen() {
    return this.source !== null && this.opened;
  }

  open(rooms, lastIds) {
    this.close();
    const source = new EventSource(streamUrl(rooms, lastIds, this.base), { withCredentials: true });
    this.source = source;
    this.opened = false;
    source.onopen = () => {
      if (source !== this.source) return;
      this.opened = true;
      this.onOpen();
    };
    // A failed or dropped connection is a plain Event named "error"; the server's `error`
    // frames are MessageEvents of the same name (handled below, they carry data).
    source.addEventListener("error", (event) => {
      if (source !== this.source || event instanceof MessageEvent) return;
      this._ended({ code: 1006, reason: "stream failed" });
    });
    for (const type of STREAM_EVENTS) {
      source.addEventListener(type, (event) => {
        if (source !== this.source || !(event instanceof MessageEvent)) return;
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch {
          return; // the server only sends JSON; ignore anything else rather than die
        }
        if (!frame || typeof frame !== "object") return;
        if (type === "close") {
          this._ended({ code: Number(frame.code) || 1006, reason: frame.reason ?? "closed by the server" });
          return;
        }
        this.onFrame({ ...frame, type: frame.type ?? type });
      });
    }
  }

  close() {
    const source = this.source;
    this.source = null;
    this.opened = false;
    if (source) source.close();
  }

  _ended({ code, reason }) {
    const wasOpen = this.opened;
    this.close();
    this.onClose({ code, reason, wasOpen });
  }

  /** One outbound frame as its REST call; answers come back through onFrame. */
  send(frame) {
    switch (frame.type) {
      case "message":
        postMessage(frame.room, { body: frame.body, clientId: frame.client_id, replyTo: frame.reply_to }).then(
          (message) => this.onFrame({ type: "message", message }),
          (error) => {
            if (error instanceof ApiError && error.status === 0) this.onUnsent(frame.client_id);
            else this.onFrame(errorFrame(error, { client_id: frame.client_id }));
          },
        );
        return;
      case "typing":
        postTyping(frame.room).catch(() => {}); // a lost typing notice matters to no one
        return;
      case "read":
        markRead(frame.room, frame.last_read_id).then(
          (state) => this.onFrame({ type: "read_state", ...state, room: state?.room ?? frame.room }),
          () => {}, // the marker is sent again when more is seen
        );
        return;
      case "react": {
        const call = frame.remove ? removeReaction : addReaction;
        call(frame.message_id, frame.emoji).catch((error) => {
          // Taking back a reaction that is already gone leaves the state the user asked for.
          if (frame.remove && error instanceof ApiError && error.status === 404) return;
          this.onFrame(errorFrame(error, { room: frame.room, message_id: frame.message_id }));
        });
        return;
      }
      default:
        // join, leave and ping have no REST form: the stream's room list is the join.
    }
  }
}
