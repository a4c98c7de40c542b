/**
 * The chat page's room sidebar: the user's rooms and DMs (`GET rooms/?joined=1`, CONTRACT §5)
 * with unread counts and mention highlights kept live from `message`, `notification` and
 * `read_state` frames, and a form that starts a DM (`POST dms/`).
 *
 * Counts are the server's: every `read_state` and every reload of the list replaces them; in
 * between, a message from someone else past the marker adds one unread, a notification one
 * mention. The page joins the listed rooms (live only), so their `message` frames reach it.
 */

import { describeError, fetchJoinedRooms, startDm } from "./api.js";

/** How a room is named in the list: the other person for a DM, else the room's name. */
export function roomLabel(room, username) {
  if (room.kind !== "dm") return room.name;
  const others = String(room.name)
    .split(", ")
    .filter((name) => name !== username);
  return others[0] ?? room.name;
}

export const roomUrl = (slug, messageId = null) =>
  `/rooms/${encodeURIComponent(slug)}/${messageId ? `?message=${messageId}` : ""}`;

export class RoomSidebar {
  /**
   * @param {object} parts {rooms, dms, status, total, toggle, panel, dmForm, dmInput, dmStatus}
   * @param {object} viewer {room (the current slug), username, userId}
   */
  constructor(parts, viewer) {
    Object.assign(this, { parts, viewer });
    this.rooms = new Map(); // slug -> room object (the server's fields)
    this.loaded = false;
    this.onChange = () => {};
    parts.dmForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.openDm(parts.dmInput.value.trim());
    });
    parts.toggle?.addEventListener("click", () => {
      const open = parts.panel.classList.toggle("open");
      parts.toggle.setAttribute("aria-expanded", String(open));
      if (open) parts.panel.querySelector("a, input")?.focus();
    });
  }

  get(slug) {
    return this.rooms.get(slug);
  }

  /** The rooms to keep joined, most recent first (the current one is joined by the page). */
  slugs() {
    return this._sorted([...this.rooms.values()]).map((room) => room.slug);
  }

  async load() {
    try {
      const rooms = await fetchJoinedRooms();
      this.rooms = new Map(rooms.filter((room) => room && typeof room.slug === "string").map((room) => [room.slug, room]));
      this.loaded = true;
      this.parts.status.textContent = "";
    } catch (error) {
      this.parts.status.textContent = `Could not load your rooms: ${describeError(error)}.`;
      return false;
    }
    this.render();
    this.onChange();
    return true;
  }

  /** A new message in one of the rooms (any room the page joined). */
  onMessage(message) {
    const room = this.rooms.get(message.room);
    // Counted already: in the loaded list (its last_message_id) or as an earlier frame.
    if (!room || message.id <= (room.last_message_id ?? 0)) return;
    room.last_message_id = message.id;
    if (message.author.id !== this.viewer.userId && message.id > (room.last_read_id ?? 0)) {
      room.unread_count = (room.unread_count ?? 0) + 1;
    }
    this.render();
  }

  onReadState({ room: slug, last_read_id: lastReadId, unread_count: unread, mention_count: mentions }) {
    const room = this.rooms.get(slug);
    if (!room) return;
    Object.assign(room, { last_read_id: lastReadId, unread_count: unread, mention_count: mentions });
    this.render();
  }

  /** A notification: one more mention for its room; a room not listed yet (a new DM) reloads the list. */
  onNotification(notification) {
    const room = this.rooms.get(notification.room);
    if (!room) {
      this.load();
      return;
    }
    if (!notification.read) room.mention_count = (room.mention_count ?? 0) + 1;
    this.render();
  }

  async openDm(username) {
    const { dmStatus } = this.parts;
    if (!username) {
      dmStatus.textContent = "Type a username first.";
      return;
    }
    dmStatus.textContent = "Opening…";
    try {
      const room = await startDm(username.replace(/^@/, ""));
      window.location.assign(roomUrl(room.slug));
    } catch (error) {
      dmStatus.textContent = `Could not open a conversation with ${username}: ${describeError(error)}.`;
    }
  }

  _sorted(rooms) {
    return rooms.sort((a, b) => (b.last_message_id ?? 0) - (a.last_message_id ?? 0) || a.slug.localeCompare(b.slug));
  }

  _item(room) {
    const item = document.createElement("li");
    item.className = "sidebar-room";
    item.dataset.slug = room.slug;
    const link = document.createElement("a");
    link.href = roomUrl(room.slug);
    const isCurrent = room.slug === this.viewer.room;
    if (isCurrent) link.setAttribute("aria-current", "page");
    const name = document.createElement("span");
    name.className = "sidebar-room-name";
    name.textContent = room.kind === "dm" ? roomLabel(room, this.viewer.username) : `#${room.slug}`;
    if (room.kind !== "dm" && room.name && room.name !== room.slug) name.title = room.name;
    link.append(name);
    const unread = room.unread_count ?? 0;
    const mentions = room.mention_count ?? 0;
    const spoken = [];
    if (mentions > 0) {
      const badge = document.createElement("span");
      badge.className = "badge mention";
      badge.textContent = `@${mentions}`;
      badge.setAttribute("aria-hidden", "true");
      link.append(badge);
      spoken.push(`${mentions} mention${mentions === 1 ? "" : "s"}`);
      item.classList.add("has-mentions");
    }
    if (unread > 0) {
      const badge = document.createElement("span");
      badge.className = "badge unread";
      badge.textContent = unread > 99 ? "99+" : String(unread);
      badge.setAttribute("aria-hidden", "true");
      link.append(badge);
      spoken.push(`${unread} unread`);
      item.classList.add("has-unread");
    }
    if (spoken.length) {
      const hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = `, ${spoken.join(", ")}`;
      link.append(hidden);
    }
    item.append(link);
    return item;
  }

  render() {
    const all = this._sorted([...this.rooms.values()]);
    const rooms = all.filter((room) => room.kind !== "dm");
    const dms = all.filter((room) => room.kind === "dm");
    // The rows are rebuilt on every count change: a keyboard user's focus stays on the same room.
    const focused = document.activeElement?.closest?.(".sidebar-room")?.dataset.slug ?? null;
    this.parts.rooms.replaceChildren(...rooms.map((room) => this._item(room)));
    this.parts.dms.replaceChildren(...dms.map((room) => this._item(room)));
    if (focused !== null) {
      const again = [...this.parts.panel.querySelectorAll(".sidebar-room")].find((item) => item.dataset.slug === focused);
      again?.querySelector("a")?.focus();
    }
    // The phone layout's "Rooms" button carries the total of the other rooms.
    let unread = 0;
    let mentions = 0;
    for (const room of all) {
      if (room.slug === this.viewer.room) continue;
      unread += room.unread_count ?? 0;
      mentions += room.mention_count ?? 0;
    }
    const { total } = this.parts;
    if (total) {
      total.hidden = unread + mentions === 0;
      total.textContent = mentions ? `@${mentions}` : String(unread);
      total.classList.toggle("mention", mentions > 0);
    }
  }
}
