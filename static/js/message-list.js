/**
 * The message list of the chat page: one row per message id, kept in id order, plus the rows of
 * the user's pending (sent, not yet acknowledged) messages at the bottom.
 *
 * REST history and socket frames meet here, so every insert is de-duplicated by id, and an edit
 * never goes back to older text. Bodies go through render.js; every other string is textContent.
 */

import { formatTime, renderBody } from "./render.js";

const NEAR_BOTTOM_PX = 80;

const editedAt = (message) => (message.edited ? Date.parse(message.edited) : 0);

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
    const isOwn = message.author.id === viewer.userId;
    el.classList.toggle("own", isOwn);
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

  /** Show a message in id order; false if that id is shown already (then only newer edits apply). */
  insert(message) {
    if (!message || typeof message.id !== "number" || message.room !== this.viewer.room) return false;
    const known = this.entries.get(message.id);
    if (known) {
      if (editedAt(message) > editedAt(known.message)) this.update(message);
      return false;
    }
    const el = this._newRow();
    this._fill(el, message);
    const index = upperBound(this.order, message.id);
    const before =
      index < this.order.length ? this.entries.get(this.order[index]).el : this._firstPendingRow();
    this.list.insertBefore(el, before);
    this.order.splice(index, 0, message.id);
    this.entries.set(message.id, { message, el });
    if (message.client_id) this.removePending(message.client_id);
    this.onInsert(message);
    return true;
  }

  update(message) {
    const entry = this.entries.get(message.id);
    // A REST page fetched before a live edit may arrive after it: never go back to older text.
    if (!entry || editedAt(message) < editedAt(entry.message)) return;
    entry.message = message;
    this._fill(entry.el, message);
  }

  /** Remove a row; returns whether the keyboard focus was inside it (the caller moves it). */
  remove(id) {
    const entry = this.entries.get(id);
    if (!entry) return false;
    const hadFocus = entry.el.contains(document.activeElement);
    entry.el.remove();
    this.entries.delete(id);
    this.order.splice(this.order.indexOf(id), 1);
    return hadFocus;
  }

  clear() {
    for (const id of [...this.order]) this.remove(id);
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
    el.querySelector(".author").textContent = this.viewer.username;
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
