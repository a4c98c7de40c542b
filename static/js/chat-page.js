/**
 * The chat page (/rooms/{slug}/): wires one room's DOM to ChatSocket and the REST API.
 *
 * Here: start-up order, history over REST (first page, older pages on scroll, reconciling after
 * a reconnect, restarting after `resync`), who is online, the typing line and the connection
 * banner. The list, the composer and the row actions live in their own modules.
 */

import { ApiError, describeError, fetchMe, fetchMessages } from "./api.js";
import { ChatSocket } from "./chat-socket.js";
import { Composer } from "./composer.js";
import { confirmDelete, startEdit, startReport } from "./message-actions.js";
import { MessageList } from "./message-list.js";

const HISTORY_PAGE = 50;
const NEAR_TOP_PX = 150;
const TYPING_SHOW_MS = 3500;
const TYPING_FADE_MS = 600;

const config = JSON.parse(document.getElementById("chat-config").textContent);
const room = config.room;
const byId = (id) => document.getElementById(id);

const ui = {
  pane: byId("messages-pane"),
  loadOlder: byId("load-older"),
  historyStart: byId("history-start"),
  historyStatus: byId("history-status"),
  onlineList: byId("online-list"),
  onlineCount: byId("online-count"),
  typing: byId("typing"),
  connection: byId("connection"),
  connectionText: byId("connection-text"),
  connectionAnnounce: byId("connection-announce"),
  connectionRetry: byId("connection-retry"),
  connectionLogin: byId("connection-login"),
};

const state = {
  hasMoreOlder: false,
  loadingOlder: false,
  generation: 0, // bumped when the list restarts; answers to older requests are then dropped
  online: new Set(),
  typers: new Map(), // username -> timeout
  typingFadeTimer: null,
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

const messages = new MessageList(
  { pane: ui.pane, list: byId("messages"), template: byId("message-template"), jumpLatest: byId("jump-latest") },
  { room, userId: config.userId, username: config.username, canModerate: config.canModerate },
);

const composer = new Composer(
  { form: byId("composer"), input: byId("composer-input"), send: byId("composer-send"), status: byId("composer-status") },
  {
    maxBodyChars: config.maxBodyChars,
    typingIntervalSeconds: config.typingIntervalSeconds,
    onTyping: () => socket.typing(room),
    onSend: (body) => {
      const clientId = socket.send(room, body);
      messages.addPending(clientId, body, pendingNote());
      messages.scrollToBottom();
      if (config.slowModeSeconds > 0 && !config.canModerate) {
        composer.lock("slow_mode", `Slow mode: one message every ${config.slowModeSeconds} s.`, config.slowModeSeconds);
      }
    },
  },
);

messages.onInsert = (message) => {
  clearTyper(message.author.username);
  rememberSeen(message.id);
};

function rememberSeen(id) {
  // The room list marks rooms whose newest id is past what this browser showed.
  try {
    const key = `chatsite:seen:${room}`;
    if (id > Number(localStorage.getItem(key) || 0)) localStorage.setItem(key, String(id));
  } catch {
    /* storage disabled: no marks */
  }
}

function removeMessage(id) {
  if (messages.remove(id)) (composer.isLocked ? ui.pane : composer).focus();
}

function pendingNote() {
  return state.connection === "live" ? "sending…" : "not sent yet: waiting for the connection";
}

// ----- history over REST ----------------------------------------------------------------

function showHistoryStatus(text) {
  ui.historyStatus.textContent = text;
}

function updateHistoryControls() {
  ui.loadOlder.hidden = !state.hasMoreOlder;
  ui.historyStart.hidden = state.hasMoreOlder || state.loadingOlder;
}

/**
 * Load the newest page. On first load (or after a restart) it fills the list and decides
 * whether older history exists. After a reconnect it also reconciles what the socket does not
 * replay: a message that was shown when we asked, is not in the answer, and is not older than
 * the answer reaches, was deleted meanwhile; newer edits replace older text.
 */
async function loadLatest({ initial }) {
  const shownBefore = initial ? [] : [...messages.order];
  const generation = state.generation;
  let page;
  try {
    page = await fetchMessages(room, { limit: HISTORY_PAGE });
  } catch (error) {
    showHistoryStatus(`Could not load the history: ${describeError(error)}.`);
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
  const follow = initial || messages.isNearBottom();
  messages.quietly(() => results.forEach((message) => messages.insert(message)));
  for (const message of results) socket.noteSeen(room, message.id);
  if (initial) state.hasMoreOlder = Boolean(page.has_more);
  updateHistoryControls();
  if (follow) messages.scrollToBottom();
  return true;
}

/** After `resync` (too much missed to replay) nothing will fill the gap: start from the newest. */
function restartFromNewest() {
  state.generation += 1;
  messages.clear();
  state.hasMoreOlder = false;
  loadLatest({ initial: true });
}

async function loadOlder() {
  if (state.loadingOlder || !state.hasMoreOlder || messages.oldestId === null) return;
  state.loadingOlder = true;
  showHistoryStatus("Loading older messages…");
  try {
    const generation = state.generation;
    const page = await fetchMessages(room, { before: messages.oldestId, limit: HISTORY_PAGE });
    if (generation !== state.generation) return; // the list restarted: this page no longer joins it
    messages.prependKeepingPlace(page.results ?? []);
    state.hasMoreOlder = Boolean(page.has_more);
    showHistoryStatus("");
  } catch (error) {
    showHistoryStatus(`Could not load older messages: ${describeError(error)}.`);
  } finally {
    state.loadingOlder = false;
    updateHistoryControls();
  }
  fillViewport();
}

/** Keep loading older pages while the list does not even fill the window. */
function fillViewport() {
  if (state.hasMoreOlder && ui.pane.scrollHeight <= ui.pane.clientHeight + NEAR_TOP_PX) loadOlder();
}

ui.pane.addEventListener("scroll", () => {
  if (ui.pane.scrollTop < NEAR_TOP_PX) loadOlder();
  if (messages.isNearBottom()) messages.jumpLatest.hidden = true;
});
ui.loadOlder.addEventListener("click", loadOlder);
messages.jumpLatest.addEventListener("click", () => {
  messages.scrollToBottom();
  composer.focus();
});

// ----- row actions ----------------------------------------------------------------------

messages.list.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const row = event.target.closest(".message");
  if (!button || !row?.dataset.id) return;
  const entry = messages.get(Number(row.dataset.id));
  if (!entry) return;
  const onProblem = (text) => composer.showStatus(text, true);
  if (button.classList.contains("action-edit")) {
    startEdit(entry, {
      maxBodyChars: config.maxBodyChars,
      onSaved: (message) => {
        messages.update(message);
        composer.showStatus("");
      },
      onProblem,
    });
  } else if (button.classList.contains("action-delete")) {
    confirmDelete(entry, button, { onDeleted: removeMessage, onProblem });
  } else if (button.classList.contains("action-report")) {
    startReport(entry, button);
  }
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
  clearTimeout(state.typingFadeTimer);
  if (names.length === 0) {
    ui.typing.classList.add("fading");
    state.typingFadeTimer = setTimeout(() => {
      if (state.typers.size === 0) ui.typing.textContent = "";
    }, TYPING_FADE_MS);
    return;
  }
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
  // The visible text counts down; the status region only announces changes of state.
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
    const banned = reason === "banned";
    say(banned ? "Disconnected: this account is banned" : "Signed out");
    composer.lock("offline", banned ? "This account is banned." : "You are signed out: log in again to post.");
  }
  messages.setPendingNotes(pendingNote());
}

ui.connectionRetry.addEventListener("click", () => socket.retryNow());

// ----- socket events --------------------------------------------------------------------

function onSendError({ clientId, body, code, detail, retryAfter }) {
  messages.removePending(clientId);
  composer.restore(body); // nothing typed is lost
  switch (code) {
    case "forbidden":
      composer.lock("forbidden", detail || "You cannot post in this room.");
      break;
    case "rate_limited":
      composer.lock("rate_limited", "You are sending messages too fast.", retryAfter ?? 5);
      break;
    case "slow_mode":
      composer.lock("slow_mode", detail || "Slow mode is on.", retryAfter ?? (config.slowModeSeconds || 5));
      break;
    default:
      composer.showStatus(detail || "The message was refused.", true);
  }
}

socket.on("status", renderConnection);
socket.on("joined", (frame) => {
  if (frame.room !== room) return;
  state.online = new Set(frame.online ?? []);
  renderOnline();
  // Deletions and edits made while we were away are not replayed: reconcile over REST.
  if (frame.resumed) loadLatest({ initial: false });
});
socket.on("message", ({ message }) => {
  const acknowledgesMine = message.client_id !== null && messages.pending.has(message.client_id);
  messages.showLive(message);
  if (acknowledgesMine && config.slowModeSeconds > 0 && !config.canModerate) {
    // Restart the countdown from the acknowledgement: the server counts from when it stored the
    // message, which can be well after the click on a slow connection.
    composer.lock("slow_mode", `Slow mode: one message every ${config.slowModeSeconds} s.`, config.slowModeSeconds);
  }
});
socket.on("sent", ({ clientId, message }) => {
  messages.removePending(clientId);
  messages.showLive(message);
});
socket.on("send-error", onSendError);
socket.on("join-error", (frame) => {
  if (frame.room === room) composer.lock("join", `You cannot join this room: ${frame.detail}`);
});
socket.on("message_edited", ({ message }) => {
  if (message?.room === room) messages.update(message);
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
  composer.lock("left", frame.reason === "banned" ? "You were banned from this room." : "You left this room.");
});
socket.on("resync", (frame) => {
  if (frame.room === room) restartFromNewest();
});
socket.on("error", (frame) => composer.showStatus(frame.detail || "The server refused a request.", true));

// ----- start ----------------------------------------------------------------------------

async function start() {
  if (config.isMuted) composer.lock("forbidden", "You are muted in this room: you may read but not post.");
  const loaded = await loadLatest({ initial: true });
  // Resume point: the newest message shown; without history, live messages only.
  socket.join(room, { after: loaded ? (messages.newestId ?? 0) : null });
  socket.start();
  fillViewport();
}

// For tests and debugging in the console; nothing reads it in production.
window.chatPage = { socket, messages, composer, state, config };

start();
