/**
 * `@` completion of usernames in the composer, as an ARIA 1.2 combobox: typing `@al` after a
 * space (or at the start) lists the known usernames that start so; ArrowDown/ArrowUp move,
 * Enter or Tab insert `@alice `, Escape closes, a click picks. The textarea keeps the focus and
 * points at the highlighted option with aria-activedescendant.
 *
 * The names come from the page (who is online, authors and mentions it has shown, DM partners):
 * the API has no user directory, and a room's readers are who can be mentioned anyway.
 */

const MAX_OPTIONS = 8;
// The same rule as the server's (CONTRACT §5): `@` at the start or after whitespace or punctuation other than `@`.
const TRIGGER = /(?:^|[^\w@])@([\w.+-]{0,150})$/u;

/** The partial username being typed before `caret` in `text`, or null. */
export function mentionPrefix(text, caret) {
  const match = TRIGGER.exec(text.slice(0, caret));
  return match ? match[1] : null;
}

/** Up to 8 names starting with `prefix` (case-insensitive), shortest first, then alphabetical. */
export function matchingNames(names, prefix, exclude = null) {
  const lower = prefix.toLowerCase();
  return [...new Set(names)]
    .filter((name) => name !== exclude && name.toLowerCase().startsWith(lower))
    .sort((a, b) => a.length - b.length || a.localeCompare(b))
    .slice(0, MAX_OPTIONS);
}

export class MentionComplete {
  /**
   * @param {HTMLTextAreaElement} input the composer
   * @param {HTMLUListElement} list the (empty) listbox element
   * @param {() => Iterable<string>} names the usernames to offer
   * @param {string} self the viewer's username (never offered)
   */
  constructor(input, list, names, self) {
    Object.assign(this, { input, list, names, self });
    this.options = [];
    this.active = -1;
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("aria-expanded", "false");
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Usernames");
    list.hidden = true;
    input.addEventListener("input", () => this.update());
    input.addEventListener("click", () => this.update());
    input.addEventListener("blur", () => this.close());
    // Capture phase: this runs before the composer's own Enter handler, which then sees defaultPrevented.
    input.addEventListener("keydown", (event) => this._onKeydown(event), { capture: true });
    list.addEventListener("mousedown", (event) => event.preventDefault()); // keep the focus in the textarea
    list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.accept(Number(option.dataset.index));
    });
  }

  get isOpen() {
    return !this.list.hidden;
  }

  update() {
    const prefix = mentionPrefix(this.input.value, this.input.selectionStart ?? this.input.value.length);
    if (prefix === null) {
      this.close();
      return;
    }
    const options = matchingNames(this.names(), prefix, this.self);
    if (options.length === 0) {
      this.close();
      return;
    }
    this.options = options;
    this.active = 0;
    this.list.replaceChildren(
      ...options.map((name, index) => {
        const item = document.createElement("li");
        item.id = `${this.list.id}-${index}`;
        item.setAttribute("role", "option");
        item.dataset.index = String(index);
        item.textContent = `@${name}`;
        return item;
      }),
    );
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this._highlight();
  }

  close() {
    if (!this.isOpen) return;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.options = [];
    this.active = -1;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  /** Replace the partial `@name` before the caret with the chosen name and a space. */
  accept(index) {
    const name = this.options[index];
    if (name === undefined) return;
    const caret = this.input.selectionStart ?? this.input.value.length;
    const prefix = mentionPrefix(this.input.value, caret) ?? "";
    this.input.setRangeText(`${name} `, caret - prefix.length, caret, "end");
    this.close();
    this.input.focus();
    this.input.dispatchEvent(new Event("input"));
  }

  _highlight() {
    for (const [index, item] of [...this.list.children].entries()) {
      item.setAttribute("aria-selected", String(index === this.active));
    }
    this.input.setAttribute("aria-activedescendant", `${this.list.id}-${this.active}`);
  }

  _onKeydown(event) {
    if (!this.isOpen || event.isComposing) return;
    const count = this.options.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      this.active = (this.active + (event.key === "ArrowDown" ? 1 : -1) + count) % count;
      this._highlight();
    } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
      this.accept(this.active);
    } else if (event.key === "Escape") {
      this.close();
    } else {
      return;
    }
    event.preventDefault();
  }
}
