/**
 * The chat page's composer: Enter sends, Shift+Enter adds a line, typing notices are throttled,
 * and the composer can be locked with a reason that the user reads (muted, banned, rate limited,
 * slow mode), either until lifted or with a countdown after which it unlocks itself. A reply
 * target ("Replying to bob: …", cancelled with Escape or its button) goes with the next message.
 */

export class Composer {
  /**
   * @param {object} parts {form, input, send, status, reply: {banner, text, cancel}}
   * @param {object} options {maxBodyChars, typingIntervalSeconds, onSend(body, {replyTo}), onTyping()}
   */
  constructor({ form, input, send, status, reply }, options) {
    Object.assign(this, { form, input, sendButton: send, status, reply, options });
    this.lockState = null; // {kind, permanent, timer}
    this.lastTypingSent = 0;
    this.replyTo = null; // the message being replied to
    reply?.cancel.addEventListener("click", () => {
      this.clearReply();
      this.input.focus();
    });
    input.addEventListener("keydown", (event) => {
      if (event.defaultPrevented) return; // taken by the @ completion list
      if (event.key === "Escape" && this.replyTo) {
        this.clearReply();
        return;
      }
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      event.preventDefault();
      this.submit();
    });
    input.addEventListener("input", () => this._onInput());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  get isLocked() {
    return this.lockState !== null;
  }

  showStatus(text, isProblem = false) {
    this.status.textContent = text;
    this.status.classList.toggle("problem", Boolean(text) && isProblem);
  }

  submit() {
    if (this.lockState) return;
    const body = this.input.value;
    if (!body.trim()) return;
    const { maxBodyChars } = this.options;
    if (body.length > maxBodyChars) {
      this.showStatus(`This message has ${body.length} characters; the limit is ${maxBodyChars}.`, true);
      return;
    }
    this.input.value = "";
    this.showStatus("");
    const replyTo = this.replyTo?.id ?? null;
    this.clearReply();
    this.options.onSend(body, { replyTo });
  }

  /** Reply to `message` with the next message sent; the banner says to whom. */
  setReply(message) {
    this.replyTo = message;
    if (this.reply) {
      const excerpt = message.body_text ?? "";
      this.reply.text.textContent = `Replying to ${message.author.username}${excerpt ? `: ${excerpt}` : ""}`;
      this.reply.banner.hidden = false;
    }
    this.input.focus();
  }

  clearReply() {
    this.replyTo = null;
    if (this.reply) this.reply.banner.hidden = true;
  }

  /** Insert text at the caret (a mention from the user menu). */
  insertAtCaret(text) {
    const { input } = this;
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? start;
    const before = input.value.slice(0, start);
    const spacer = before && !/\s$/.test(before) ? " " : "";
    input.setRangeText(`${spacer}${text}`, start, end, "end");
    input.focus();
    input.dispatchEvent(new Event("input"));
  }

  /** Put refused text back so nothing typed is lost (before anything typed since). */
  restore(body) {
    this.input.value = this.input.value ? `${body}\n${this.input.value}` : body;
  }

  /** Disable with a reason; `seconds` null means until unlock(kind), else a countdown. */
  lock(kind, text, seconds = null) {
    if (this.lockState?.permanent && seconds !== null) return; // a lasting reason outranks a wait
    if (this.lockState?.timer) clearInterval(this.lockState.timer);
    const until = seconds === null ? null : Date.now() + seconds * 1000;
    this.lockState = { kind, permanent: seconds === null, timer: null };
    this.input.disabled = true;
    this.sendButton.disabled = true;
    const render = () => {
      if (until === null) {
        this.showStatus(text, true);
        return;
      }
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) this.unlock(kind);
      else this.showStatus(`${text} You can send again in ${left} s.`, true);
    };
    render();
    if (until !== null && this.lockState?.kind === kind) this.lockState.timer = setInterval(render, 250);
  }

  unlock(kind) {
    if (!this.lockState || this.lockState.kind !== kind) return;
    if (this.lockState.timer) clearInterval(this.lockState.timer);
    this.lockState = null;
    this.input.disabled = false;
    this.sendButton.disabled = false;
    this.showStatus("");
    // Disabling the focused box dropped the focus to <body>: give it back.
    if (document.activeElement === document.body || document.activeElement === null) this.input.focus();
  }

  focus() {
    this.input.focus();
  }

  _onInput() {
    const { value } = this.input;
    const { maxBodyChars, typingIntervalSeconds } = this.options;
    const now = Date.now();
    if (value.trim() && now - this.lastTypingSent >= typingIntervalSeconds * 1000) {
      this.lastTypingSent = now;
      this.options.onTyping();
    }
    if (value.length > maxBodyChars * 0.9) {
      this.showStatus(`${value.length} / ${maxBodyChars} characters`, value.length > maxBodyChars);
    } else if (!this.lockState && this.status.textContent.endsWith(" characters")) {
      this.showStatus("");
    }
  }
}
