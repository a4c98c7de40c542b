/**
 * The notifications panel of the chat page (CONTRACT §5): `GET notifications/` newest first,
 * 50 a page ("Older" for the next), live `notification` frames added on top, the unread count
 * on the header's button, marking one read when it is opened and all with "Mark all read".
 * Reading a room (its `read_state`) marks its notifications read on the server; the panel then
 * asks for the count again.
 */

import { describeError, fetchNotifications, markNotificationsRead } from "./api.js";
import { formatTime, plainText } from "./render.js";
import { roomUrl } from "./room-sidebar.js";

const KIND_TEXT = { mention: "mentioned you", reply: "replied to you" };
const PAGE = 50;

export class NotificationPanel {
  /**
   * @param {object} parts {button, count, panel, list, markAll, older, status, close}
   * @param {object} hooks {onOpen(notification): open its message (the page decides how),
   *   placeName(slug): how to name its room ("#garden", "your conversation with bob")}
   */
  constructor(parts, { onOpen, placeName = (slug) => `#${slug}` }) {
    Object.assign(this, { parts, onOpen, placeName });
    this.items = new Map(); // id -> notification
    this.unread = 0;
    this.unreadMore = false; // more than one page unread: the count shows "50+"
    this.loaded = false;
    this.hasMore = false;
    this.recountTimer = null;
    parts.button.addEventListener("click", () => (this.isOpen ? this.close() : this.open()));
    parts.close.addEventListener("click", () => this.close());
    parts.markAll.addEventListener("click", () => this.markAll());
    parts.older.addEventListener("click", () => this.loadPage());
    parts.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
    parts.list.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-id]");
      if (button) this.choose(Number(button.dataset.id));
    });
  }

  get isOpen() {
    return !this.parts.panel.hidden;
  }

  async refreshCount() {
    try {
      const page = await fetchNotifications({ unread: true });
      this.unread = (page.results ?? []).length;
      this.unreadMore = Boolean(page.has_more);
      this.renderCount();
    } catch {
      /* the count stays as it was; the next frame or reload fixes it */
    }
  }

  /** A read marker moved: the server marked that room's notifications read; recount (once per burst). */
  onReadState({ room, last_read_id: lastReadId }) {
    for (const item of this.items.values()) {
      if (item.room === room && item.message?.id <= lastReadId) item.read = true;
    }
    if (this.isOpen) this.render();
    clearTimeout(this.recountTimer);
    this.recountTimer = setTimeout(() => this.refreshCount(), 400);
  }

  add(notification) {
    if (!notification || typeof notification.id !== "number" || this.items.has(notification.id)) return;
    this.items.set(notification.id, notification);
    if (!notification.read) this.unread += 1;
    this.renderCount();
    if (this.isOpen) this.render();
  }

  renderCount() {
    const { count, button } = this.parts;
    const text = this.unreadMore ? `${PAGE}+` : String(this.unread);
    count.textContent = text;
    count.hidden = this.unread === 0;
    button.setAttribute("aria-label", this.unread ? `Notifications, ${text} unread` : "Notifications");
  }

  async open() {
    this.parts.panel.hidden = false;
    this.parts.button.setAttribute("aria-expanded", "true");
    if (!this.loaded) await this.loadPage();
    else this.render();
    (this.parts.list.querySelector("button") ?? this.parts.close).focus();
  }

  close() {
    this.parts.panel.hidden = true;
    this.parts.button.setAttribute("aria-expanded", "false");
    this.parts.button.focus();
  }

  async loadPage() {
    const oldest = Math.min(...[...this.items.keys()]);
    this.parts.status.textContent = "Loading…";
    try {
      const page = await fetchNotifications({ before: this.loaded && Number.isFinite(oldest) ? oldest : null });
      for (const item of page.results ?? []) this.items.set(item.id, item);
      this.hasMore = Boolean(page.has_more);
      this.loaded = true;
      this.parts.status.textContent = this.items.size ? "" : "No notifications yet.";
    } catch (error) {
      this.parts.status.textContent = `Could not load notifications: ${describeError(error)}.`;
    }
    this.render();
  }

  render() {
    const items = [...this.items.values()].sort((a, b) => b.id - a.id);
    this.parts.list.replaceChildren(
      ...items.map((item) => {
        const li = document.createElement("li");
        li.className = `notification${item.read ? "" : " unread"}`;
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.id = String(item.id);
        const who = document.createElement("span");
        who.className = "notification-what";
        const author = item.message?.author?.username ?? "Someone";
        // A DM notification's room is the conversation itself: naming it adds nothing.
        who.textContent =
          item.kind === "dm"
            ? `${author} sent you a direct message`
            : `${author} ${KIND_TEXT[item.kind] ?? "notified you"} in ${this.placeName(item.room)}`;
        const preview = document.createElement("span");
        preview.className = "notification-preview";
        preview.textContent = plainText(item.message?.body);
        const time = document.createElement("time");
        time.dateTime = item.created;
        time.textContent = formatTime(item.created).short;
        button.append(who, preview, time);
        if (!item.read) {
          const state = document.createElement("span");
          state.className = "visually-hidden";
          state.textContent = " (unread)";
          button.append(state);
        }
        li.append(button);
        return li;
      }),
    );
    this.parts.older.hidden = !this.hasMore;
    this.parts.markAll.disabled = this.unread === 0;
  }

  async choose(id) {
    const item = this.items.get(id);
    if (!item) return;
    if (!item.read) {
      item.read = true;
      this.unread = Math.max(0, this.unread - 1);
      this.renderCount();
      try {
        const { unread } = await markNotificationsRead({ ids: [id] });
        if (typeof unread === "number") this._setUnread(unread);
      } catch {
        /* it is still opened; the count corrects itself on the next recount */
      }
    }
    this.onOpen(item);
  }

  async markAll() {
    try {
      const { unread } = await markNotificationsRead({ all: true });
      for (const item of this.items.values()) item.read = true;
      this._setUnread(typeof unread === "number" ? unread : 0);
      this.parts.status.textContent = "All notifications marked read.";
    } catch (error) {
      this.parts.status.textContent = `Could not mark them read: ${describeError(error)}.`;
    }
    const hadFocus = document.activeElement === this.parts.markAll;
    this.render();
    // The button disables itself once nothing is unread: keep the focus (and Escape) in the panel.
    if (hadFocus && this.parts.markAll.disabled) this.parts.close.focus();
  }

  _setUnread(unread) {
    this.unread = unread;
    this.unreadMore = unread > PAGE;
    this.renderCount();
  }
}

export const notificationUrl = (item) => roomUrl(item.room, item.message?.id);
