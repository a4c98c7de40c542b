/**
 * The REST API (CONTRACT §2) as the pages use it: same-origin fetch with the session cookie and
 * Django's CSRF token for writes. Errors become ApiError carrying the JSON `{code, detail}`.
 */

export class ApiError extends Error {
  constructor(status, data) {
    super(data?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.code = data?.code ?? null;
    this.data = data;
  }
}

/** An error as a phrase for "Could not …: <phrase>." (no trailing full stop). */
export function describeError(error) {
  const text = error instanceof ApiError ? error.message : String(error?.message ?? error);
  return text.replace(/[.\s]+$/, "");
}

export function csrfToken() {
  const cookie = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
  if (cookie) return decodeURIComponent(cookie.slice("csrftoken=".length));
  return document.querySelector("input[name=csrfmiddlewaretoken]")?.value ?? "";
}

/** `{status, data}` of a JSON API call; non-2xx answers throw ApiError. */
export async function send(method, path, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch(`/api/v1/${path}`, init);
  } catch (error) {
    throw new ApiError(0, { code: "network", detail: "the server could not be reached" });
  }
  if (response.status === 204) return { status: 204, data: null };
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    error.retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw error;
  }
  return { status: response.status, data };
}

export async function request(method, path, body) {
  return (await send(method, path, body)).data;
}

/** A page of a room's history: `{results, has_more}`, results ascending by id. */
export function fetchMessages(slug, { before, after, limit } = {}) {
  const query = new URLSearchParams();
  if (before != null) query.set("before", before);
  if (after != null) query.set("after", after);
  if (limit != null) query.set("limit", limit);
  const suffix = query.size ? `?${query}` : "";
  return request("GET", `rooms/${encodeURIComponent(slug)}/messages/${suffix}`);
}

export const editMessage = (id, body) => request("PATCH", `messages/${id}/`, { body });
export const deleteMessage = (id) => request("DELETE", `messages/${id}/`);
export const fetchMe = () => request("GET", "me/");

/** Report a message: `{created, report}`; `created` is false when the user's earlier report is still open. */
export async function reportMessage(id, reason) {
  const { status, data } = await send("POST", `messages/${id}/report/`, { reason });
  return { created: status === 201, report: data };
}

// ----- conversations (CONTRACT §5) and catching up (§6) ----------------------------------

const roomPath = (slug) => `rooms/${encodeURIComponent(slug)}/`;

/** Every page of `GET rooms/?joined=1`: the user's rooms and DMs, most recent first. */
export async function fetchJoinedRooms({ maxPages = 10 } = {}) {
  const rooms = [];
  let path = "rooms/?joined=1";
  for (let page = 0; path && page < maxPages; page += 1) {
    const data = await request("GET", path);
    rooms.push(...(Array.isArray(data?.results) ? data.results : []));
    // `next` is an absolute URL of the same API: keep only the part after /api/v1/.
    path = typeof data?.next === "string" ? data.next.split("/api/v1/")[1] ?? null : null;
  }
  return rooms;
}

export const fetchRoom = (slug) => request("GET", roomPath(slug));

/** Advance the read marker over REST (the socket's `read` frame does the same). */
export const markRead = (slug, lastReadId) => request("POST", `${roomPath(slug)}read/`, { last_read_id: lastReadId });

/** The DM room with `username`: created (201) or the existing one (200). */
export const startDm = (username) => request("POST", "dms/", { username });

export function fetchNotifications({ unread = false, before = null } = {}) {
  const query = new URLSearchParams();
  if (unread) query.set("unread", "1");
  if (before != null) query.set("before", before);
  return request("GET", `notifications/${query.size ? `?${query}` : ""}`);
}

/** Mark notifications read: `ids` or every one (`all`); answers `{unread}`. */
export const markNotificationsRead = ({ ids = null, all = false }) =>
  request("POST", "notifications/read/", all ? { all: true } : { ids });

export const addReaction = (messageId, emoji) => request("POST", `messages/${messageId}/reactions/`, { emoji });
export const removeReaction = (messageId, emoji) =>
  request("DELETE", `messages/${messageId}/reactions/${encodeURIComponent(emoji)}/`);

/** Full-text search: `{results, has_more}`, newest first, 20 a page. */
export function search(q, { room = null, before = null } = {}) {
  const query = new URLSearchParams({ q });
  if (room) query.set("room", room);
  if (before != null) query.set("before", before);
  return request("GET", `search/?${query}`);
}

/** One page of a room's changes since version `since`: `{updated, deleted, version, has_more}`. */
export const fetchChanges = (slug, since) => request("GET", `${roomPath(slug)}changes/?since=${since}`);

/** Post over REST (the fallback transport): answers the stored message, like its broadcast. */
export function postMessage(slug, { body, clientId, replyTo = null }) {
  const data = { body, client_id: clientId };
  if (replyTo != null) data.reply_to = replyTo;
  return request("POST", `${roomPath(slug)}messages/`, data);
}

export const postTyping = (slug) => request("POST", `${roomPath(slug)}typing/`);
