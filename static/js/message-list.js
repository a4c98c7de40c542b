/**
 * The message list of the chat page: one row per message id, kept in id order, plus the rows of
 * the user's pending (sent, not yet acknowledged) messages at the bottom.
 *
 * REST history, socket frames and the changes feed meet here, so every insert is de-duplicated
 * by id, and a change never goes back to an older state: the message's `version` (CONTRACT §6)
 * orders changes when the server sends it, the edit time otherwise. Rows also show what a
 * message replies to (a quote that jumps to it), its reactions (toggle buttons) and whether it
 * mentions the viewer; a divider marks the first unread message. Bodies go through render.js;
 * every other string is textContent.
 */

import { formatTime, renderBody } from "./render.js";

const NEAR_BOTTOM_PX = 80;

const editedAt = (message) => (message.edited ? Date.parse(message.edited) : 0);

/** Is `incoming` a newer (or the same) state of `known`? Versions when both have one. */
export function isNotOlder(incoming, known) {
  if (typeof incoming.version === "number" && typeof known.version === "number") {
    return incoming.version >= known.version;
  }
  return editedAt(incoming) >= editedAt(known);
}

/**
 * The reactions of `message` after a `reaction` frame (CONTRACT §5): the emoji's count from the
 * frame, the user added or removed from its first 50 usernames, an emoji at 0 dropped.
 */
export function applyReaction(reactions, { emoji, user, added, count }) {
  const next = (reactions ?? []).map((reaction) => ({ ...reaction, users: [...(reaction.users ?? [])] }));
  let reaction = next.find((item) => item.emoji === emoji);
  if (!reaction) {
    if (!added || count <= 0) return next;
    reaction = { emoji, count: 0, users: [] };
    next.push(reaction);
  }
  reaction.count = typeof count === "number" ? count : reaction.count + (added ? 1 : -1);
  if (added && !reaction.users.includes(user) && reaction.users.length < 50) reaction.users.push(user);
  if (!added) reaction.users = reaction.users.filter((name) => name !== user);
  return next.filter((item) => item.count > 0);
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** Index of the first id greater than `id` in the ascending array `order`. */
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

export class MessageList {
  /**
   * @param {object} parts  {pane, list, template, jumpLatest}: the scrolling pane, the <ol>, the
   *   row <template> and the "New messages" button
   * @param {object} viewer {room, userId, username, canModerate}
   */
  constructor({ pane, list, template, jumpLatest }, viewer) {
    Object.assign(this, { pane, list, template, jumpLatest, viewer });
    this.entries = new Map(); // id -> {message, el}
    this.order = []; // ids shown, ascending
    this.pending = new Map(); // client_id -> {el, body}
    this.onInsert = () => {};
    this.divider = null; // the "New messages" separator, before the first unread row
    this.myReactions = new Map(); // message id -> Set of emoji the viewer reacted with (beyond the 50 listed)
  }

  get oldestId() {
    return this.order[0] ?? null;
  }

  get newestId() {
    return this.order.at(-1) ?? null;
  }

  get(id) {
    return this.entries.get(id);
  }

  // ----- scrolling --------------------------------------------------------------------------

  isNearBottom() {
    const { pane } = this;
    return pane.scrollHeight - pane.scrollTop - pane.clientHeight < NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.pane.scrollTop = this.pane.scrollHeight;
    this.jumpLatest.hidden = true;
  }

  /** Bulk changes to the live region: do not announce history rows one by one. */
  quietly(change) {
    this.list.setAttribute("aria-busy", "true");
    try {
      return change();
    } finally {
      this.list.removeAttribute("aria-busy");
    }
  }

  /** Insert older rows at the top without moving what the reader is looking at. */
  prependKeepingPlace(messages) {
    const { pane } = this;
    const previousHeight = pane.scrollHeight;
    const previousTop = pane.scrollTop;
    this.quietly(() => messages.forEach((message) => this.insert(message)));
    pane.scrollTop = previousTop + (pane.scrollHeight - previousHeight);
  }

  /** A live message: keep following the conversation if the reader was at the bottom. */
  showLive(message) {
    const follow = this.isNearBottom() || message.author.id === this.viewer.userId;
    if (!this.insert(message)) return;
    if (follow) this.scrollToBottom();
    else this.jumpLatest.hidden = false;
  }

  // ----- rows -------------------------------------------------------------------------------

  _newRow() {
    return this.template.content.firstElementChild.cloneNode(true);
  }

  _fill(el, message) {
    const { viewer } = this;
    el.dataset.id = String(message.id);
    el.id = `message-${message.id}`;
    const author = el.querySelector(".author");
    author.textContent = message.author.username;
    const time = el.querySelector(".time");
    const when = formatTime(message.created);
    time.dateTime = message.created;
    time.textContent = when.short;
    time.title = when.full;
    const edited = el.querySelector(".edited");
    edited.hidden = !message.edited;
    if (message.edited) edited.title = `Edited ${formatTime(message.edited).full}`;
    el.querySelector(".body").replaceChildren(renderBody(message.body));
    const isOwn = message.author.id === viewer.userId;
    el.classList.toggle("own", isOwn);
    // Other people's names open the user menu (direct message, mention); one's own does nothing.
    author.disabled = isOwn;
    if (!isOwn) author.setAttribute("aria-label", `${message.author.username}: direct message or mention`);
    else author.removeAttribute("aria-label");
    const mentionsMe = Array.isArray(message.mentions) && message.mentions.includes(viewer.username);
    el.classList.toggle("mentions-me", mentionsMe && !isOwn);
    this._fillReply(el, message);
    this._fillReactions(el, message);
    const reply = el.querySelector(".action-reply");
    const react = el.querySelector(".action-react");
    if (reply) reply.hidden = false;
    if (react) react.hidden = false;
    if (reply) reply.setAttribute("aria-label", `Reply to ${message.author.username} (${when.short})`);
    if (react) react.setAttribute("aria-label", `Add a reaction to the message by ${message.author.username} (${when.short})`);
    const edit = el.querySelector(".action-edit");
    const remove = el.querySelector(".action-delete");
    const report = el.querySelector(".action-report");
    edit.hidden = !isOwn;
    remove.hidden = !(isOwn || viewer.canModerate);
    edit.setAttribute("aria-label", `Edit your message from ${when.short}`);
    remove.setAttribute("aria-label", `Delete message by ${message.author.username} from ${when.short}`);
    if (report) {
      report.hidden = isOwn; // other users' messages only
      report.setAttribute("aria-label", `Report message by ${message.author.username} from ${when.short}`);
    }
  }

  _fillReply(el, message) {
    const quote = el.querySelector(".reply-quote");
    if (!quote) return;
    const target = message.reply_to;
    quote.hidden = !target;
    if (!target) return;
    quote.dataset.target = String(target.id);
    quote.querySelector(".reply-author").textContent = target.author?.username ?? "";
    const excerpt = target.excerpt;
    quote.querySelector(".reply-excerpt").textContent = excerpt ?? "(deleted message)";
    quote.classList.toggle("deleted", excerpt == null);
    quote.disabled = excerpt == null;
    quote.setAttribute(
      "aria-label",
      excerpt == null
        ? "In reply to a deleted message"
        : `In reply to ${target.author?.username ?? "a message"}: ${excerpt}. Show that message`,
    );
  }

  _fillReactions(el, message) {
    const box = el.querySelector(".reactions");
    if (!box) return;
    const mine = this.myReactions.get(message.id);
    const buttons = (message.reactions ?? []).map((reaction) => {
      const isMine = reaction.users?.includes(this.viewer.username) || Boolean(mine?.has(reaction.emoji));
      const button = document.createElement("button");
      button.type = "button";
      button.className = "reaction";
      button.dataset.emoji = reaction.emoji;
      button.setAttribute("aria-pressed", String(isMine));
      const emoji = document.createElement("span");
      emoji.className = "reaction-emoji";
      emoji.textContent = reaction.emoji;
      emoji.setAttribute("aria-hidden", "true");
      const count = document.createElement("span");
      count.className = "reaction-count";
      count.textContent = String(reaction.count);
      count.setAttribute("aria-hidden", "true");
      button.append(emoji, count);
      const who = (reaction.users ?? []).join(", ");
      button.title = who ? `${who}${reaction.count > (reaction.users ?? []).length ? " and others" : ""}` : "";
      button.setAttribute(
        "aria-label",
        `${reaction.emoji}: ${plural(reaction.count, "reaction")}${isMine ? ", including yours (press to take it back)" : " (press to add yours)"}`,
      );
      return button;
    });
    box.replaceChildren(...buttons);
    box.hidden = buttons.length === 0;
  }

  /** Apply a live `reaction` frame to the shown message (ignored when not shown or older). */
  applyReaction(frame) {
    const entry = this.entries.get(frame.message_id);
    if (!entry) return;
    const { message } = entry;
    if (typeof frame.version === "number" && typeof message.version === "number" && frame.version <= message.version) {
      return; // the row already shows this change (or a later one)
    }
    if (frame.user === this.viewer.username) {
      const mine = this.myReactions.get(message.id) ?? new Set();
      if (frame.added) mine.add(frame.emoji);
      else mine.delete(frame.emoji);
      this.myReactions.set(message.id, mine);
    }
    entry.message = { ...message, reactions: applyReaction(message.reactions, frame) };
    if (typeof frame.version === "number") entry.message.version = frame.version;
    this._fillReactions(entry.el, entry.message);
  }

  /** Did the viewer react to message `id` with `emoji`? */
  hasMyReaction(id, emoji) {
    const entry = this.entries.get(id);
    if (!entry) return false;
    const reaction = (entry.message.reactions ?? []).find((item) => item.emoji === emoji);
    return Boolean(reaction?.users?.includes(this.viewer.username) || this.myReactions.get(id)?.has(emoji));
  }

  /** Usernames this page has seen (authors and mentions), for @ completion. */
  knownUsernames() {
    const names = new Set();
    for (const { message } of this.entries.values()) {
      names.add(message.author.username);
      for (const name of message.mentions ?? []) names.add(name);
      if (message.reply_to?.author?.username) names.add(message.reply_to.author.username);
    }
    return names;
  }

  // ----- the unread divider and jumping -----------------------------------------------------

  /** Put the "New messages" divider before the first message after `lastReadId` not by the viewer. */
  markFirstUnread(lastReadId) {
    const id = this.order.find(
      (candidate) => candidate > lastReadId && this.entries.get(candidate).message.author.id !== this.viewer.userId,
    );
    if (id === undefined) return false;
    this.placeDivider(id);
    return true;
  }

  placeDivider(id) {
    const entry = this.entries.get(id);
    if (!entry) return;
    // The divider adds height: a reader at the bottom stays there (the newest row fully shown).
    const follow = this.isNearBottom();
    if (!this.divider) {
      this.divider = document.createElement("li");
      this.divider.className = "unread-divider";
      this.divider.setAttribute("role", "separator");
      const label = document.createElement("span");
      label.textContent = "New messages";
      this.divider.append(label);
    }
    entry.el.before(this.divider);
    this.divider.dataset.before = String(id);
    if (follow) this.pane.scrollTop = this.pane.scrollHeight;
  }

  removeDivider() {
    this.divider?.remove();
    this.divider = null;
  }

  /** Scroll message `id` into the middle of the pane, highlight it and move the focus there. */
  jumpTo(id) {
    const entry = this.entries.get(id);
    if (!entry) return false;
    entry.el.tabIndex = -1;
    entry.el.scrollIntoView({ block: "center" });
    entry.el.focus({ preventScroll: true });
    entry.el.classList.remove("flash");
    void entry.el.offsetWidth; // restart the highlight animation
    entry.el.classList.add("flash");
    return true;
  }

  /** The newest message id whose row is at least partly in view in the pane (null: none). */
  newestVisibleId() {
    const pane = this.pane.getBoundingClientRect();
    for (let index = this.order.length - 1; index >= 0; index -= 1) {
      const rect = this.entries.get(this.order[index]).el.getBoundingClientRect();
      if (rect.top >= pane.bottom) continue; // below the fold
      if (rect.bottom <= pane.top) return null; // everything older is above
      return this.order[index];
    }
    return null;
  }

  /** Show a message in id order; false if that id is shown already (then only newer states apply). */
  insert(message) {
    if (!message || typeof message.id !== "number" || message.room !== this.viewer.room) return false;
    const known = this.entries.get(message.id);
    if (known) {
      if (isNotOlder(message, known.message)) this.update(message);
      return false;
    }
    const el = this._newRow();
    this._fill(el, message);
    const index = upperBound(this.order, message.id);
    let before = index < this.order.length ? this.entries.get(this.order[index]).el : this._firstPendingRow();
    // An older row than the first unread one goes in front of the divider, not after it.
    if (this.divider && before && before.previousElementSibling === this.divider) before = this.divider;
    this.list.insertBefore(el, before);
    this.order.splice(index, 0, message.id);
    this.entries.set(message.id, { message, el });
    if (message.client_id) this.removePending(message.client_id);
    this.onInsert(message);
    return true;
  }

  update(message) {
    const entry = this.entries.get(message.id);
    // A REST page fetched before a live change may arrive after it: never go back to an older state.
    if (!entry || !isNotOlder(message, entry.message)) return;
    entry.message = message;
    this._fill(entry.el, message);
  }

  /** Remove a row; returns whether the keyboard focus was inside it (the caller moves it). */
  remove(id) {
    const entry = this.entries.get(id);
    if (!entry) return false;
    const hadFocus = entry.el.contains(document.activeElement);
    if (this.divider?.dataset.before === String(id)) {
      // Keep the divider in front of the next message, or drop it when none is left after it.
      const next = this.order[this.order.indexOf(id) + 1];
      if (next !== undefined) this.placeDivider(next);
      else this.removeDivider();
    }
    entry.el.remove();
    this.entries.delete(id);
    this.order.splice(this.order.indexOf(id), 1);
    return hadFocus;
  }

  /** Message `id` was deleted: the rows replying to it quote "(deleted message)", as the server's copies will. */
  forgetReplyTarget(id) {
    for (const entry of this.entries.values()) {
      const target = entry.message.reply_to;
      if (target?.id !== id || target.excerpt == null) continue;
      entry.message = { ...entry.message, reply_to: { ...target, excerpt: null } };
      this._fillReply(entry.el, entry.message);
    }
  }

  clear() {
    for (const id of [...this.order]) this.remove(id);
    this.removeDivider();
  }

  // ----- pending rows -----------------------------------------------------------------------

  _firstPendingRow() {
    for (const { el } of this.pending.values()) return el;
    return null;
  }

  addPending(clientId, body, note) {
    const el = this._newRow();
    el.classList.add("pending", "own");
    el.dataset.clientId = clientId;
    const author = el.querySelector(".author");
    author.textContent = this.viewer.username;
    author.disabled = true;
    const now = new Date().toISOString();
    const time = el.querySelector(".time");
    time.dateTime = now;
    time.textContent = formatTime(now).short;
    el.querySelector(".body").textContent = body; // the user's raw text: never parsed as HTML
    const noteEl = el.querySelector(".pending-note");
    noteEl.hidden = false;
    noteEl.textContent = note;
    this.list.append(el);
    this.pending.set(clientId, { el, body });
  }

  removePending(clientId) {
    const entry = this.pending.get(clientId);
    if (!entry) return;
    entry.el.remove();
    this.pending.delete(clientId);
  }

  setPendingNotes(note) {
    for (const { el } of this.pending.values()) el.querySelector(".pending-note").textContent = note;
  }
}
