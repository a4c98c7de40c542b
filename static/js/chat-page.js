/**
 * The chat page (/rooms/{slug}/): wires one room's DOM to ChatSocket and the REST API.
 *
 * Here: start-up order, history over REST (first page, older pages on scroll, catching up with
 * the changes feed after a reconnect, restarting after `resync`), the read marker (advanced only
 * for messages the user has seen: in view, page visible, window focused), the "New messages"
 * divider, opening a message (`?message=`, a reply's quote, a search result, a notification),
 * who is online, the typing line and the connection banner. The list, the composer, the row
 * actions, the room sidebar, notifications, search and @ completion live in their own modules.
 */

import { ApiError, describeError, fetchChanges, fetchMe, fetchMessages } from "./api.js";
import { ChatSocket } from "./chat-socket.js";
import { Composer } from "./composer.js";
import { MentionComplete } from "./mention-complete.js";
import {
  closePopups,
  confirmDelete,
  openReactionPicker,
  openUserMenu,
  startEdit,
  startReport,
} from "./message-actions.js";
import { MessageList } from "./message-list.js";
import { NotificationPanel } from "./notifications.js";
import { plainText } from "./render.js";
import { RoomSidebar, roomLabel, roomUrl } from "./room-sidebar.js";
import { SearchPanel } from "./search.js";

const HISTORY_PAGE = 50;
const NEAR_TOP_PX = 150;
const TYPING_SHOW_MS = 3500;
const TYPING_FADE_MS = 600;
const LIVE_ROOMS = 20; // rooms joined for the sidebar's live counts (the stream's limit, CONTRACT §6)
const JUMP_MAX_PAGES = 20; // older pages loaded at most to reach a message being opened
const READ_CHECK_MS = 250;
const CHANGES_MAX_PAGES = 50;

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
  version: null, // the highest room version this page has applied (CONTRACT §6)
  lastReadId: 0, // the server's read marker for this room, as far as the page knows
  isMember: false,
  readTimer: null,
  sidebarLoaded: null, // promise of the first sidebar load
};

const params = new URLSearchParams(window.location.search);

const socket = new ChatSocket({
  transport: params.get("transport") === "sse" ? "sse" : "auto",
  // The server answered (any status but a gateway's 5xx): HTTP gets through where WebSockets did not.
  reachable: async () => {
    try {
      await fetchMe();
      return true;
    } catch (error) {
      return error instanceof ApiError && error.status > 0 && error.status < 500;
    }
  },
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
  {
    form: byId("composer"),
    input: byId("composer-input"),
    send: byId("composer-send"),
    status: byId("composer-status"),
    reply: { banner: byId("reply-banner"), text: byId("reply-text"), cancel: byId("reply-cancel") },
  },
  {
    maxBodyChars: config.maxBodyChars,
    typingIntervalSeconds: config.typingIntervalSeconds,
    onTyping: () => socket.typing(room),
    onSend: (body, { replyTo }) => {
      const clientId = socket.send(room, body, { replyTo });
      messages.addPending(clientId, body, pendingNote());
      messages.scrollToBottom();
      if (config.slowModeSeconds > 0 && !config.canModerate) {
        composer.lock("slow_mode", `Slow mode: one message every ${config.slowModeSeconds} s.`, config.slowModeSeconds);
      }
    },
  },
);

const sidebar = new RoomSidebar(
  {
    rooms: byId("sidebar-rooms"),
    dms: byId("sidebar-dms"),
    status: byId("sidebar-status"),
    total: byId("rooms-total"),
    toggle: byId("rooms-toggle"),
    panel: byId("room-sidebar"),
    dmForm: byId("dm-form"),
    dmInput: byId("dm-input"),
    dmStatus: byId("dm-status"),
  },
  { room, username: config.username, userId: config.userId },
);

const notifications = new NotificationPanel(
  {
    button: byId("notifications-button"),
    count: byId("notifications-count"),
    panel: byId("notifications-panel"),
    list: byId("notifications-list"),
    markAll: byId("notifications-mark-all"),
    older: byId("notifications-older"),
    status: byId("notifications-status"),
    close: byId("notifications-close"),
  },
  {
    onOpen: (item) => openAt(item.room, item.message?.id),
    placeName: (slug) => {
      const known = sidebar.get(slug);
      return known?.kind === "dm" ? `your conversation with ${roomLabel(known, config.username)}` : `#${slug}`;
    },
  },
);

const searchPanel = new SearchPanel(
  {
    form: byId("search-form"),
    input: byId("search-input"),
    onlyRoom: byId("search-only-room"),
    panel: byId("search-panel"),
    list: byId("search-results"),
    more: byId("search-more"),
    status: byId("search-status"),
    close: byId("search-close"),
  },
  {
    room,
    onOpen: (message) => {
      if (message.room !== room) return false; // the link opens that room's page at the message
      byId("search-panel").hidden = true;
      openMessage(message.id);
      return true;
    },
  },
);

const mentions = new MentionComplete(
  byId("composer-input"),
  byId("mention-list"),
  () => [...state.online, ...messages.knownUsernames(), ...sidebarPeople()],
  config.username,
);

function sidebarPeople() {
  const names = [];
  for (const item of sidebar.rooms.values()) {
    if (item.kind === "dm") names.push(...String(item.name).split(", "));
  }
  return names;
}

messages.onInsert = (message) => {
  clearTyper(message.author.username);
  rememberSeen(message.id);
  noteVersion(message.version);
  scheduleReadCheck();
};

function noteVersion(version) {
  if (typeof version === "number" && (state.version === null || version > state.version)) state.version = version;
}

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
  messages.forgetReplyTarget(id);
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
  await loadOlderPage();
  fillViewport();
}

async function loadOlderPage() {
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
  if (!button || !row?.dataset.id || button.closest(".popup")) return;
  const entry = messages.get(Number(row.dataset.id));
  if (!entry) return;
  const onProblem = (text) => composer.showStatus(text, true);
  if (button.classList.contains("author")) {
    openUserMenu(entry.message.author.username, button, userMenuHooks);
  } else if (button.classList.contains("reply-quote")) {
    if (entry.message.reply_to) openMessage(entry.message.reply_to.id);
  } else if (button.classList.contains("reaction")) {
    toggleReaction(entry.message.id, button.dataset.emoji);
  } else if (button.classList.contains("action-react")) {
    openReactionPicker(entry, button, {
      onPick: (emoji) => toggleReaction(entry.message.id, emoji),
      hasMine: (emoji) => messages.hasMyReaction(entry.message.id, emoji),
    });
  } else if (button.classList.contains("action-reply")) {
    const excerpt = plainText(entry.message.body, 100);
    composer.setReply({ ...entry.message, body_text: excerpt });
  } else if (button.classList.contains("action-edit")) {
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

function toggleReaction(messageId, emoji) {
  socket.react(room, messageId, emoji, { remove: messages.hasMyReaction(messageId, emoji) });
}

const userMenuHooks = {
  onDirectMessage: (username) => sidebar.openDm(username),
  onMention: (username) => composer.insertAtCaret(`@${username} `),
};

// A click elsewhere closes an open picker or menu (Escape does too, from inside it).
document.addEventListener("click", (event) => {
  if (!event.target.closest(".popup, [aria-expanded=true]")) closePopups({ restoreFocus: false });
});

// ----- opening a message ------------------------------------------------------------------

/** Open message `id` of room `slug`: here when it is this room, else that room's page. */
function openAt(slug, id) {
  if (slug !== room) {
    window.location.assign(roomUrl(slug, id));
    return;
  }
  if (notifications.isOpen) notifications.close();
  if (id) openMessage(id);
}

/** Scroll to message `id` of this room, loading older pages until it is there. */
async function openMessage(id) {
  for (let page = 0; !messages.get(id) && page < JUMP_MAX_PAGES; page += 1) {
    if (!state.hasMoreOlder || messages.oldestId === null || messages.oldestId < id) break;
    await loadOlderPage();
  }
  if (messages.jumpTo(id)) return true;
  const far = state.hasMoreOlder && messages.oldestId !== null && messages.oldestId > id;
  showHistoryStatus(far ? "That message is too far back to open here; scroll up to reach it." : "That message no longer exists.");
  return false;
}

// ----- the read marker ----------------------------------------------------------------------

/** The user is looking at this page: it is visible and its window has the focus. */
function isAttending() {
  return document.visibilityState === "visible" && document.hasFocus();
}

function scheduleReadCheck() {
  if (state.readTimer !== null) return;
  state.readTimer = setTimeout(() => {
    state.readTimer = null;
    advanceReadMarker();
  }, READ_CHECK_MS);
}

/** Move the marker to the newest message in view, only while the user is attending. */
function advanceReadMarker() {
  if (!state.isMember || !isAttending()) return;
  const id = messages.newestVisibleId();
  if (id === null || id <= state.lastReadId) return;
  state.lastReadId = id;
  socket.read(room, id);
}

document.addEventListener("visibilitychange", scheduleReadCheck);
window.addEventListener("focus", scheduleReadCheck);

// ----- catching up (CONTRACT §6) -----------------------------------------------------------

/**
 * After every (re)join: the edits, deletes and reactions made since the newest version this page
 * applied, from `GET rooms/{slug}/changes/`, page after page. New messages come from the join's
 * replay; the feed's copy of one is only a duplicate by id. A server without the feed (404)
 * falls back to reconciling the newest page of history.
 */
async function catchUp({ resumed }) {
  const generation = state.generation;
  let since = state.version ?? 0;
  for (let page = 0; page < CHANGES_MAX_PAGES; page += 1) {
    let changes;
    try {
      changes = await fetchChanges(room, since);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && state.version === null) {
        if (resumed) loadLatest({ initial: false });
      } else showHistoryStatus(`Could not catch up on changes: ${describeError(error)}.`);
      return;
    }
    if (generation !== state.generation) return;
    for (const message of changes.updated ?? []) {
      if (messages.get(message.id)) messages.update(message);
      else if (messages.newestId === null || message.id > messages.newestId) messages.showLive(message);
    }
    for (const id of changes.deleted ?? []) removeMessage(id);
    if (typeof changes.version === "number") {
      noteVersion(changes.version);
      since = changes.version;
    }
    if (!changes.has_more) return;
  }
}

// ----- presence and typing --------------------------------------------------------------

function renderOnline() {
  const names = [...state.online].sort((a, b) => a.localeCompare(b));
  ui.onlineList.replaceChildren(
    ...names.map((name) => {
      const item = document.createElement("li");
      if (name === config.username) {
        item.textContent = `${name} (you)`;
        return item;
      }
      // Another user's name offers a direct message and a mention, as in the message list.
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link-button online-name";
      button.textContent = name;
      button.setAttribute("aria-label", `${name}: direct message or mention`);
      button.addEventListener("click", () => openUserMenu(name, button, userMenuHooks));
      item.append(button);
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

function renderConnection({ state: connection, transport, retryAt, reason }) {
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
  const streaming = transport === "sse";
  ui.connection.dataset.transport = transport ?? "ws";
  if (connection === "connecting") say(streaming ? "Connecting (streaming)…" : "Connecting…", "Connecting");
  else if (connection === "live" && streaming) {
    say("Live (fallback: HTTP streaming)", "Connected through the fallback: HTTP streaming, WebSocket unavailable");
  } else if (connection === "live") say("Live", "Connected: live");
  else if (connection === "reconnecting") {
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      say(`Reconnecting${streaming ? " (streaming)" : ""} in ${seconds} s`, "Connection lost: reconnecting");
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
  // Joining a public room makes the user a member: from now on the page keeps the read marker.
  const firstTime = !state.isMember;
  state.isMember = true;
  if (firstTime && state.sidebarLoaded) state.sidebarLoaded.then(() => sidebar.get(room) || sidebar.load());
  // Edits, deletes and reactions are not replayed by the join: the changes feed has them.
  catchUp({ resumed: frame.resumed });
  scheduleReadCheck();
});
socket.on("message", ({ message }) => {
  sidebar.onMessage(message);
  if (message.room !== room) return;
  const acknowledgesMine = message.client_id !== null && messages.pending.has(message.client_id);
  // A message arriving while nobody looks: the divider shows where the unread ones start.
  if (message.author.id !== config.userId && !messages.divider && !isAttending()) {
    messages.showLive(message);
    messages.placeDivider(message.id);
  } else {
    messages.showLive(message);
  }
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
  if (message?.room !== room) return;
  messages.update(message);
  noteVersion(message.version);
});
socket.on("message_deleted", (frame) => {
  if (frame.room !== room) return;
  removeMessage(frame.id);
  noteVersion(frame.version);
});
socket.on("reaction", (frame) => {
  if (frame.room !== room) return;
  messages.applyReaction(frame);
  noteVersion(frame.version);
});
socket.on("read_state", (frame) => {
  sidebar.onReadState(frame);
  notifications.onReadState(frame);
  if (frame.room === room && frame.last_read_id > state.lastReadId) state.lastReadId = frame.last_read_id;
});
socket.on("notification", ({ notification }) => {
  if (!notification) return;
  notifications.add(notification);
  sidebar.onNotification(notification);
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
socket.on("status", ({ state: connection }) => {
  // Counts may have moved while the page was away: after a reconnect the server's list is the truth.
  if (connection === "live" && state.wasLive && sidebar.loaded) sidebar.load();
  if (connection === "live") state.wasLive = true;
});
socket.on("error", (frame) => composer.showStatus(frame.detail || "The server refused a request.", true));

// ----- start ----------------------------------------------------------------------------

/** Keep the sidebar's rooms joined (live only) so their messages move the counts. */
function joinSidebarRooms() {
  const others = sidebar.slugs().filter((slug) => slug !== room);
  // From the loaded list's last message on: what arrived between the list's GET and the join
  // replays, so the counts miss nothing.
  for (const slug of others.slice(0, LIVE_ROOMS - 1)) {
    socket.join(slug, { after: sidebar.get(slug)?.last_message_id ?? null });
  }
}

/** The divider before the first unread message, and the view scrolled to show it. */
function showFirstUnread() {
  const current = sidebar.get(room);
  if (!current) return;
  state.isMember = true;
  state.lastReadId = Math.max(state.lastReadId, current.last_read_id ?? 0);
  if ((current.unread_count ?? 0) === 0 || !messages.markFirstUnread(state.lastReadId)) return;
  const pane = ui.pane.getBoundingClientRect();
  if (messages.divider.getBoundingClientRect().top < pane.top) messages.divider.scrollIntoView({ block: "start" });
}

async function start() {
  if (config.isMuted) composer.lock("forbidden", "You are muted in this room: you may read but not post.");
  state.sidebarLoaded = sidebar.load();
  notifications.refreshCount();
  const loaded = await loadLatest({ initial: true });
  await state.sidebarLoaded;
  showFirstUnread();
  const target = Number(params.get("message"));
  if (Number.isInteger(target) && target > 0) await openMessage(target);
  // Resume point: the newest message shown; without history, live messages only.
  socket.join(room, { after: loaded ? (messages.newestId ?? 0) : null });
  // The page's own room first: the fallback stream carries at most 20 rooms.
  joinSidebarRooms();
  sidebar.onChange = joinSidebarRooms;
  socket.start();
  fillViewport();
}

ui.pane.addEventListener("scroll", scheduleReadCheck, { passive: true });

// For tests and debugging in the console; nothing reads it in production.
window.chatPage = { socket, messages, composer, state, config, sidebar, notifications, search: searchPanel, mentions };

start();
