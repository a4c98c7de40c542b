/**
 * The chat page (/rooms/{slug}/): renders one room and drives it through ChatSocket.
 *
 * Message list sorted by id and de-duplicated by id (REST history and socket frames meet here),
 * composer with a queue of pending messages, who is online, typing indicator, older history on
 * scroll, edit/delete over REST, and the connection banner. Every string from the server is
 * inserted with textContent, except message bodies, which go through render.js.
 */

import { ApiError, deleteMessage, editMessage, fetchMe, fetchMessages } from "./api.js";
import { ChatSocket } from "./chat-socket.js";
import { bodyToSource, formatTime, renderBody } from "./render.js";

const HISTORY_PAGE = 50;
const TYPING_SHOW_MS = 3500;
const TYPING_FADE_MS = 600;
const NEAR_BOTTOM_PX = 80;
const NEAR_TOP_PX = 150;
const CONFIRM_DELETE_MS = 4000;

const config = JSON.parse(document.getElementById("chat-config").textContent);
const room = config.room;
const byId = (id) => document.getElementById(id);

const ui = {
  pane: byId("messages-pane"),
  list: byId("messages"),
  loadOlder: byId("load-older"),
  historyStart: byId("history-start"),
  historyStatus: byId("history-status"),
  jumpLatest: byId("jump-latest"),
  onlineList: byId("online-list"),
  onlineCount: byId("online-count"),
  typing: byId("typing"),
  composer: byId("composer"),
  input: byId("composer-input"),
  send: byId("composer-send"),
  composerStatus: byId("composer-status"),
  connection: byId("connection"),
  connectionText: byId("connection-text"),
  connectionAnnounce: byId("connection-announce"),
  connectionRetry: byId("connection-retry"),
  connectionLogin: byId("connection-login"),
  template: byId("message-template"),
};

const state = {
  messages: new Map(), // id -> {message, el}
  order: [], // message ids shown, ascending
  pending: new Map(), // client_id -> {el, body}
  hasMoreOlder: false,
  loadingOlder: false,
  generation: 0, // bumped when the list restarts; answers to older requests are then dropped
  online: new Set(),
  typers: new Map(), // username -> timeout
  typingFadeTimer: null,
  lastTypingSent: 0,
  lock: null, // composer lock: {kind, permanent, timer}
  connection: "connecting",
  connectionTimer: null,
};

const socket = new ChatSocket({
  authCheck: async () => {
    try {
      await fetchMe();
      return true;
    } catch (error) {
      return !(error instanceof ApiError && (error.status === 401 || error.status === 403));
    }
  },
});

// ----- small helpers --------------------------------------------------------------------

function describe(error) {
  if (error instanceof ApiError) return error.status === 0 ? "the server could not be reached" : error.message;
  return String(error);
}

function isNearBottom() {
  const { pane } = ui;
  return pane.scrollHeight - pane.scrollTop - pane.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  ui.pane.scrollTop = ui.pane.scrollHeight;
  ui.jumpLatest.hidden = true;
}

/** Bulk changes to the live region: announce none of the history rows one by one. */
function quietly(change) {
  ui.list.setAttribute("aria-busy", "true");
  try {
    change();
  } finally {
    ui.list.removeAttribute("aria-busy");
  }
}

/** Index of the first id greater than `id` in the ascending `order`. */
function upperBound(order, id) {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (order[mid] <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function rememberSeen(id) {
  // The room list shows a "new" badge for rooms whose newest id is past what was seen here.
  try {
    const key = `chatsite:seen:${room}`;
    if (id > Number(localStorage.getItem(key) || 0)) localStorage.setItem(key, String(id));
  } catch {
    /* storage disabled: no badges */
  }
}

function showStatus(text, isProblem = false) {
  ui.composerStatus.textContent = text;
  ui.composerStatus.classList.toggle("problem", Boolean(text) && isProblem);
}

function showHistoryStatus(text) {
  ui.historyStatus.textContent = text;
}

// ----- messages -------------------------------------------------------------------------

function fillMessage(el, message) {
  el.dataset.id = String(message.id);
  el.querySelector(".author").textContent = message.author.username;
  const time = el.querySelector(".time");
  const when = formatTime(message.created);
  time.dateTime = message.created;
  time.textContent = when.short;
  time.title = when.full;
  const edited = el.querySelector(".edited");
  edited.hidden = !message.edited;
  if (message.edited) edited.title = `Edited ${formatTime(message.edited).full}`;
  el.querySelector(".body").replaceChildren(renderBody(message.body));
  const isOwn = message.author.id === config.userId;
  el.classList.toggle("own", isOwn);
  const edit = el.querySelector(".action-edit");
  const remove = el.querySelector(".action-delete");
  edit.hidden = !isOwn;
  remove.hidden = !(isOwn || config.canModerate);
  edit.setAttribute("aria-label", `Edit your message from ${when.short}`);
  remove.setAttribute("aria-label", `Delete message by ${message.author.username} from ${when.short}`);
}

function newMessageElement() {
  return ui.template.content.firstElementChild.cloneNode(true);
}

function firstPendingElement() {
  for (const { el } of state.pending.values()) return el;
  return null;
}

/** Show a message in id order; false if that id is already shown (then only refresh edits). */
function insertMessage(message) {
  if (!message || typeof message.id !== "number" || message.room !== room) return false;
  const known = state.messages.get(message.id);
  if (known) {
    if (editedAt(message) > editedAt(known.message)) updateMessage(message);
    return false;
  }
  const el = newMessageElement();
  fillMessage(el, message);
  const index = upperBound(state.order, message.id);
  const before = index < state.order.length ? state.messages.get(state.order[index]).el : firstPendingElement();
  ui.list.insertBefore(el, before);
  state.order.splice(index, 0, message.id);
  state.messages.set(message.id, { message, el });
  if (message.client_id) removePending(message.client_id);
  clearTyper(message.author.username);
  rememberSeen(message.id);
  return true;
}

const editedAt = (message) => (message.edited ? Date.parse(message.edited) : 0);

function updateMessage(message) {
  const entry = state.messages.get(message.id);
  // A REST page fetched before a live edit may arrive after it: never go back to older text.
  if (!entry || editedAt(message) < editedAt(entry.message)) return;
  entry.message = message;
  fillMessage(entry.el, message);
}

function removeMessage(id) {
  const entry = state.messages.get(id);
  if (!entry) return;
  const hadFocus = entry.el.contains(document.activeElement);
  entry.el.remove();
  state.messages.delete(id);
  state.order.splice(state.order.indexOf(id), 1);
  if (hadFocus) (ui.input.disabled ? ui.pane : ui.input).focus();
}

function clearMessages() {
  for (const id of [...state.order]) removeMessage(id);
}

/** A live message: keep following the conversation if the reader was at the bottom. */
function showLiveMessage(message) {
  const follow = isNearBottom() || message.author.id === config.userId;
  if (!insertMessage(message)) return;
  if (follow) scrollToBottom();
  else ui.jumpLatest.hidden = false;
}

// ----- pending (queued, not yet acknowledged) messages -----------------------------------

function pendingNote() {
  return state.connection === "live" ? "sending…" : "not sent yet: waiting for the connection";
}

function addPending(clientId, body) {
  const el = newMessageElement();
  el.classList.add("pending", "own");
  el.dataset.clientId = clientId;
  el.querySelector(".author").textContent = config.username;
  const now = new Date();
  const time = el.querySelector(".time");
  time.dateTime = now.toISOString();
  time.textContent = formatTime(now.toISOString()).short;
  el.querySelector(".body").textContent = body; // the raw text, never parsed
  const note = el.querySelector(".pending-note");
  note.hidden = false;
  note.textContent = pendingNote();
  ui.list.append(el);
  state.pending.set(clientId, { el, body });
}

function removePending(clientId) {
  const entry = state.pending.get(clientId);
  if (!entry) return;
  entry.el.remove();
  state.pending.delete(clientId);
}

function refreshPendingNotes() {
  for (const { el } of state.pending.values()) el.querySelector(".pending-note").textContent = pendingNote();
}

// ----- history over REST ----------------------------------------------------------------

function updateHistoryControls() {
  ui.loadOlder.hidden = !state.hasMoreOlder;
  ui.historyStart.hidden = state.hasMoreOlder || state.loadingOlder;
}

/**
 * Load the newest page. On first load (or after a restart) it fills the list and decides
 * whether older history exists. After a reconnect it also reconciles what the socket does not
 * replay: a message that was shown when we asked, is not in the answer, and is not older than
 * the answer reaches, was deleted meanwhile; edits are refreshed by insertMessage.
 */
async function loadLatest({ initial }) {
  const shownBefore = initial ? [] : [...state.order];
  const generation = state.generation;
  let page;
  try {
    page = await fetchMessages(room, { limit: HISTORY_PAGE });
  } catch (error) {
    showHistoryStatus(`Could not load the history: ${describe(error)}.`);
    return false;
  }
  if (generation !== state.generation) return false; // the list restarted meanwhile
  showHistoryStatus("");
  const results = Array.isArray(page.results) ? page.results : [];
  if (!initial) {
    const ids = new Set(results.map((message) => message.id));
    const low = page.has_more && results.length ? results[0].id : 0;
    for (const id of shownBefore) if (id >= low && !ids.has(id)) removeMessage(id);
  }
  const follow = initial || isNearBottom();
  quietly(() => results.forEach(insertMessage));
  for (const message of results) socket.noteSeen(room, message.id);
  if (initial) state.hasMoreOlder = Boolean(page.has_more);
  updateHistoryControls();
  if (follow) scrollToBottom();
  return true;
}

/** After `resync` (too much missed to replay) nothing will fill the gap: start from the newest page. */
function restartFromNewest() {
  state.generation += 1;
  clearMessages();
  state.hasMoreOlder = false;
  loadLatest({ initial: true });
}

async function loadOlder() {
  if (state.loadingOlder || !state.hasMoreOlder || state.order.length === 0) return;
  state.loadingOlder = true;
  showHistoryStatus("Loading older messages…");
  try {
    const generation = state.generation;
    const page = await fetchMessages(room, { before: state.order[0], limit: HISTORY_PAGE });
    if (generation !== state.generation) return; // the list restarted: this page no longer joins it
    const { pane } = ui;
    const previousHeight = pane.scrollHeight;
    const previousTop = pane.scrollTop;
    quietly(() => (page.results ?? []).forEach(insertMessage));
    pane.scrollTop = previousTop + (pane.scrollHeight - previousHeight); // keep the reader's place
    state.hasMoreOlder = Boolean(page.has_more);
    showHistoryStatus("");
  } catch (error) {
    showHistoryStatus(`Could not load older messages: ${describe(error)}.`);
  } finally {
    state.loadingOlder = false;
    updateHistoryControls();
  }
  fillViewport();
}

/** Keep loading older pages while the list does not even fill the screen. */
function fillViewport() {
  if (state.hasMoreOlder && ui.pane.scrollHeight <= ui.pane.clientHeight + NEAR_TOP_PX) loadOlder();
}

// ----- composer -------------------------------------------------------------------------

/** Disable the composer with a reason; `seconds` null means until something lifts it. */
function lockComposer(kind, text, seconds = null) {
  if (state.lock?.permanent && seconds !== null) return; // a lasting reason outranks a wait
  if (state.lock?.timer) clearInterval(state.lock.timer);
  const until = seconds === null ? null : Date.now() + seconds * 1000;
  state.lock = { kind, permanent: seconds === null, timer: null };
  ui.input.disabled = true;
  ui.send.disabled = true;
  const render = () => {
    if (until === null) {
      showStatus(text, true);
      return;
    }
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) unlockComposer(kind);
    else showStatus(`${text} You can send again in ${left} s.`, true);
  };
  render();
  if (until !== null && state.lock?.kind === kind) state.lock.timer = setInterval(render, 250);
}

function unlockComposer(kind) {
  if (!state.lock || state.lock.kind !== kind) return;
  if (state.lock.timer) clearInterval(state.lock.timer);
  state.lock = null;
  ui.input.disabled = false;
  ui.send.disabled = false;
  showStatus("");
  if (document.activeElement === document.body || document.activeElement === null) ui.input.focus();
}

function sendFromComposer() {
  if (state.lock) return;
  const body = ui.input.value;
  if (!body.trim()) return;
  if (body.length > config.maxBodyChars) {
    showStatus(`This message has ${body.length} characters; the limit is ${config.maxBodyChars}.`, true);
    return;
  }
  const clientId = socket.send(room, body);
  addPending(clientId, body);
  ui.input.value = "";
  showStatus("");
  scrollToBottom();
  if (config.slowModeSeconds > 0 && !config.canModerate) {
    lockComposer("slow_mode", `Slow mode: one message every ${config.slowModeSeconds} s.`, config.slowModeSeconds);
  }
}

function onSendError({ clientId, body, code, detail, retryAfter }) {
  removePending(clientId);
  // Nothing typed is lost: a refused message goes back into the composer.
  ui.input.value = ui.input.value ? `${body}\n${ui.input.value}` : body;
  switch (code) {
    case "forbidden":
      lockComposer("forbidden", detail || "You cannot post in this room.");
      break;
    case "rate_limited":
      lockComposer("rate_limited", "You are sending messages too fast.", retryAfter ?? 5);
      break;
    case "slow_mode":
      lockComposer("slow_mode", detail || "Slow mode is on.", retryAfter ?? (config.slowModeSeconds || 5));
      break;
    default:
      showStatus(detail || "The message was refused.", true);
  }
}

function maybeSendTyping() {
  const now = Date.now();
  if (now - state.lastTypingSent < config.typingIntervalSeconds * 1000) return;
  state.lastTypingSent = now;
  socket.typing(room);
}

ui.input.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.altKey || event.ctrlKey || event.metaKey) return;
  event.preventDefault();
  sendFromComposer();
});
ui.input.addEventListener("input", () => {
  if (ui.input.value.trim()) maybeSendTyping();
  if (ui.input.value.length > config.maxBodyChars * 0.9) {
    showStatus(`${ui.input.value.length} / ${config.maxBodyChars} characters`, ui.input.value.length > config.maxBodyChars);
  } else if (!state.lock && ui.composerStatus.textContent.includes(" characters")) {
    showStatus("");
  }
});
ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  sendFromComposer();
});

// ----- edit and delete ------------------------------------------------------------------

let editCounter = 0;

function startEdit(entry) {
  const { el } = entry;
  if (el.querySelector(".edit-form")) return;
  const body = el.querySelector(".body");
  const form = document.createElement("form");
  form.className = "edit-form";
  const id = `edit-${++editCounter}`;
  const label = document.createElement("label");
  label.className = "visually-hidden";
  label.htmlFor = id;
  label.textContent = "Edit message";
  const textarea = document.createElement("textarea");
  textarea.id = id;
  textarea.value = bodyToSource(body);
  textarea.maxLength = config.maxBodyChars;
  const actions = document.createElement("div");
  actions.className = "actions";
  const save = document.createElement("button");
  save.type = "submit";
  save.className = "primary";
  save.textContent = "Save";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "link-button";
  cancel.textContent = "Cancel";
  actions.append(save, cancel);
  form.append(label, textarea, actions);
  body.hidden = true;
  body.after(form);
  textarea.focus();

  const finish = () => {
    form.remove();
    body.hidden = false;
    el.querySelector(".action-edit").focus();
  };
  cancel.addEventListener("click", finish);
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Escape") finish();
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = textarea.value;
    if (!text.trim()) {
      showStatus("A message cannot be empty; delete it instead.", true);
      return;
    }
    save.disabled = true;
    try {
      const message = await editMessage(entry.message.id, text);
      finish();
      updateMessage(message);
      showStatus("");
    } catch (error) {
      showStatus(`Could not edit the message: ${describe(error)}.`, true);
    } finally {
      save.disabled = false;
    }
  });
}

async function confirmDelete(entry, button) {
  if (button.dataset.armed !== "1") {
    // Two clicks instead of a confirm() dialog: keyboard friendly and undoable by waiting.
    button.dataset.armed = "1";
    button.textContent = "Confirm delete";
    setTimeout(() => {
      button.dataset.armed = "";
      button.textContent = "Delete";
    }, CONFIRM_DELETE_MS);
    return;
  }
  button.disabled = true;
  try {
    await deleteMessage(entry.message.id);
    removeMessage(entry.message.id);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) removeMessage(entry.message.id);
    else showStatus(`Could not delete the message: ${describe(error)}.`, true);
  } finally {
    button.disabled = false;
  }
}

ui.list.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const el = event.target.closest(".message");
  if (!button || !el || !el.dataset.id) return;
  const entry = state.messages.get(Number(el.dataset.id));
  if (!entry) return;
  if (button.classList.contains("action-edit")) startEdit(entry);
  else if (button.classList.contains("action-delete")) confirmDelete(entry, button);
});

// ----- presence and typing --------------------------------------------------------------

function renderOnline() {
  const names = [...state.online].sort((a, b) => a.localeCompare(b));
  ui.onlineList.replaceChildren(
    ...names.map((name) => {
      const item = document.createElement("li");
      item.textContent = name === config.username ? `${name} (you)` : name;
      return item;
    }),
  );
  ui.onlineCount.textContent = String(names.length);
}

function renderTyping() {
  const names = [...state.typers.keys()];
  if (names.length === 0) {
    ui.typing.classList.add("fading");
    clearTimeout(state.typingFadeTimer);
    state.typingFadeTimer = setTimeout(() => {
      if (state.typers.size === 0) ui.typing.textContent = "";
    }, TYPING_FADE_MS);
    return;
  }
  clearTimeout(state.typingFadeTimer);
  ui.typing.classList.remove("fading");
  ui.typing.textContent =
    names.length === 1
      ? `${names[0]} is typing…`
      : names.length === 2
        ? `${names[0]} and ${names[1]} are typing…`
        : "Several people are typing…";
}

function showTyper(user) {
  clearTimeout(state.typers.get(user));
  state.typers.set(user, setTimeout(() => clearTyper(user), TYPING_SHOW_MS));
  renderTyping();
}

function clearTyper(user) {
  if (!state.typers.has(user)) return;
  clearTimeout(state.typers.get(user));
  state.typers.delete(user);
  renderTyping();
}

// ----- connection banner ----------------------------------------------------------------

function renderConnection({ state: connection, retryAt, reason }) {
  state.connection = connection;
  clearInterval(state.connectionTimer);
  ui.connection.dataset.state = connection;
  // Who is online is only known while connected; dim the list while it may be stale.
  ui.onlineList.classList.toggle("stale", connection !== "live");
  ui.connectionRetry.hidden = connection !== "reconnecting";
  ui.connectionLogin.hidden = !(connection === "offline" && reason === "unauthenticated");
  const say = (visible, announce = visible) => {
    ui.connectionText.textContent = visible;
    if (ui.connectionAnnounce.textContent !== announce) ui.connectionAnnounce.textContent = announce;
  };
  if (connection === "connecting") say("Connecting…", "Connecting");
  else if (connection === "live") say("Live", "Connected: live");
  else if (connection === "reconnecting") {
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      say(`Reconnecting in ${seconds} s`, "Connection lost: reconnecting");
    };
    tick();
    state.connectionTimer = setInterval(tick, 250);
  } else if (connection === "offline") {
    say(reason === "banned" ? "Disconnected: this account is banned" : "Signed out");
  }
  refreshPendingNotes();
}

ui.connectionRetry.addEventListener("click", () => socket.retryNow());

// ----- socket events --------------------------------------------------------------------

socket.on("status", renderConnection);
socket.on("joined", (frame) => {
  if (frame.room !== room) return;
  state.online = new Set(frame.online ?? []);
  renderOnline();
  // Deletions and edits made while we were away are not replayed: reconcile over REST.
  if (frame.resumed) loadLatest({ initial: false });
});
socket.on("message", ({ message }) => showLiveMessage(message));
socket.on("sent", ({ clientId, message }) => {
  removePending(clientId);
  showLiveMessage(message);
});
socket.on("send-error", onSendError);
socket.on("join-error", ({ room: slug, detail }) => {
  if (slug !== room) return;
  lockComposer("join", `You cannot join this room: ${detail}`);
});
socket.on("message_edited", ({ message }) => {
  if (message?.room === room) updateMessage(message);
});
socket.on("message_deleted", (frame) => {
  if (frame.room === room) removeMessage(frame.id);
});
socket.on("presence", (frame) => {
  if (frame.room !== room) return;
  if (frame.online) state.online.add(frame.user);
  else state.online.delete(frame.user);
  renderOnline();
});
socket.on("typing", (frame) => {
  if (frame.room === room && frame.user !== config.username) showTyper(frame.user);
});
socket.on("left", (frame) => {
  if (frame.room !== room || !frame.reason) return;
  state.online.clear();
  renderOnline();
  lockComposer("left", frame.reason === "banned" ? "You were banned from this room." : "You left this room.");
});
socket.on("resync", (frame) => {
  if (frame.room === room) restartFromNewest();
});
socket.on("error", (frame) => showStatus(frame.detail || "The server refused a request.", true));

// ----- scrolling ------------------------------------------------------------------------

ui.pane.addEventListener("scroll", () => {
  if (ui.pane.scrollTop < NEAR_TOP_PX) loadOlder();
  if (isNearBottom()) ui.jumpLatest.hidden = true;
});
ui.loadOlder.addEventListener("click", loadOlder);
ui.jumpLatest.addEventListener("click", () => {
  scrollToBottom();
  ui.input.focus();
});

// ----- start ----------------------------------------------------------------------------

async function start() {
  if (config.isMuted) lockComposer("forbidden", "You are muted in this room: you may read but not post.");
  const loaded = await loadLatest({ initial: true });
  // Resume point: the newest message shown; without history, live messages only.
  socket.join(room, { after: loaded ? (state.order.at(-1) ?? 0) : null });
  socket.start();
  fillViewport();
}

// For tests and debugging in the console; nothing reads it in production.
window.chatPage = { socket, state, config };

start();
