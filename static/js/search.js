/**
 * The chat page's search box (CONTRACT §5 `GET search/`): messages of every room the user may
 * read, newest first, 20 a page ("More results" pages on with `before`), optionally only this
 * room. A result opens its room at that message (the page decides how: in place when it is this
 * room, else by opening the room's page with `?message=`).
 */

import { ApiError, describeError, search } from "./api.js";
import { formatTime, plainText } from "./render.js";

export const MAX_QUERY = 200;

export class SearchPanel {
  /**
   * @param {object} parts {form, input, onlyRoom, panel, list, more, status, close}
   * @param {object} options {room (the current slug), onOpen(message)}
   */
  constructor(parts, { room, onOpen }) {
    Object.assign(this, { parts, room, onOpen });
    this.query = "";
    this.results = [];
    this.hasMore = false;
    this.generation = 0;
    parts.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.run(parts.input.value.trim());
    });
    parts.more.addEventListener("click", () => this.loadMore());
    parts.close.addEventListener("click", () => this.close());
    parts.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
    parts.list.addEventListener("click", (event) => {
      const link = event.target.closest("a[data-id]");
      if (!link) return;
      const message = this.results.find((item) => item.id === Number(link.dataset.id));
      if (message && this.onOpen(message) !== false) event.preventDefault();
    });
  }

  close() {
    this.parts.panel.hidden = true;
    this.parts.input.focus();
  }

  async run(query) {
    const { status } = this.parts;
    if (!query) {
      status.textContent = "Type what to look for.";
      return;
    }
    if (query.length > MAX_QUERY) {
      status.textContent = `A search has at most ${MAX_QUERY} characters.`;
      return;
    }
    this.query = query;
    this.results = [];
    this.generation += 1;
    this.parts.panel.hidden = false;
    await this._fetch(null);
    this.parts.list.querySelector("a")?.focus();
  }

  loadMore() {
    const oldest = this.results.at(-1)?.id;
    if (oldest !== undefined) this._fetch(oldest);
  }

  async _fetch(before) {
    const { status } = this.parts;
    const generation = this.generation;
    status.textContent = "Searching…";
    try {
      const room = this.parts.onlyRoom?.checked ? this.room : null;
      const page = await search(this.query, { room, before });
      if (generation !== this.generation) return;
      this.results.push(...(page.results ?? []));
      this.hasMore = Boolean(page.has_more);
      const count = this.results.length;
      status.textContent = count
        ? `${count}${this.hasMore ? "+" : ""} message${count === 1 ? "" : "s"} found for “${this.query}”.`
        : `Nothing found for “${this.query}”.`;
    } catch (error) {
      if (generation !== this.generation) return;
      status.textContent =
        error instanceof ApiError && error.status === 400
          ? `That search cannot be run: ${describeError(error)}.`
          : `Could not search: ${describeError(error)}.`;
    }
    this.render();
  }

  render() {
    this.parts.list.replaceChildren(
      ...this.results.map((message) => {
        const item = document.createElement("li");
        item.className = "search-result";
        const link = document.createElement("a");
        link.href = `/rooms/${encodeURIComponent(message.room)}/?message=${message.id}`;
        link.dataset.id = String(message.id);
        const head = document.createElement("span");
        head.className = "search-result-head";
        const when = formatTime(message.created).short;
        head.textContent = `${message.author.username} in #${message.room} · ${when}`;
        const body = document.createElement("span");
        body.className = "search-result-body";
        body.textContent = plainText(message.body, 200);
        link.append(head, body);
        item.append(link);
        return item;
      }),
    );
    this.parts.more.hidden = !this.hasMore;
  }
}
