/**
 * Edit, delete and report on a message row, over REST (PATCH/DELETE /api/v1/messages/{id}/,
 * POST /api/v1/messages/{id}/report/).
 *
 * Editing opens an inline form prefilled with the markup the author would have typed; Enter
 * saves, Shift+Enter adds a line, Escape cancels. Deleting takes a second click ("Confirm
 * delete") instead of a confirm() dialog: keyboard friendly, and cancelled by waiting.
 * Reporting opens an inline form asking for the reason (required); the answer is confirmed in
 * the row itself, in a status region screen readers announce.
 */

import { ApiError, deleteMessage, describeError, editMessage, reportMessage } from "./api.js";
import { bodyToSource } from "./render.js";

const CONFIRM_DELETE_MS = 4000;
const REASON_MAX_CHARS = 500;
let editorCount = 0;

function element(tag, properties = {}) {
  return Object.assign(document.createElement(tag), properties);
}

/**
 * @param {object} entry {message, el} of the row
 * @param {object} hooks {maxBodyChars, onSaved(message), onProblem(text)}
 */
export function startEdit(entry, { maxBodyChars, onSaved, onProblem }) {
  const { el } = entry;
  if (el.querySelector(".edit-form")) return;
  const body = el.querySelector(".body");
  const id = `edit-${++editorCount}`;
  const form = element("form", { className: "edit-form" });
  const label = element("label", { className: "visually-hidden", htmlFor: id, textContent: "Edit message" });
  const textarea = element("textarea", { id, value: bodyToSource(body), maxLength: maxBodyChars });
  const actions = element("div", { className: "actions" });
  const save = element("button", { type: "submit", className: "primary", textContent: "Save" });
  const cancel = element("button", { type: "button", className: "link-button", textContent: "Cancel" });
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
    if (!textarea.value.trim()) {
      onProblem("A message cannot be empty; delete it instead.");
      return;
    }
    save.disabled = true;
    try {
      const message = await editMessage(entry.message.id, textarea.value);
      finish();
      onSaved(message);
    } catch (error) {
      onProblem(`Could not edit the message: ${describeError(error)}.`);
    } finally {
      save.disabled = false;
    }
  });
}

/**
 * First click arms the button, the second (within 4 s) deletes.
 * @param {object} hooks {onDeleted(id), onProblem(text)}
 */
export async function confirmDelete(entry, button, { onDeleted, onProblem }) {
  if (button.dataset.armed !== "1") {
    button.dataset.armed = "1";
    button.textContent = "Confirm delete";
    setTimeout(() => {
      button.dataset.armed = "";
      button.textContent = "Delete";
    }, CONFIRM_DELETE_MS);
    return;
  }
  button.disabled = true;
  const { id } = entry.message;
  try {
    await deleteMessage(id);
    onDeleted(id);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) onDeleted(id); // already gone
    else onProblem(`Could not delete the message: ${describeError(error)}.`);
  } finally {
    button.disabled = false;
  }
}

function reportAnswer(created) {
  return created
    ? "Reported. Thank you: a moderator will look at this message."
    : "You already reported this message; a moderator will look at it.";
}

/**
 * Report another user's message: a reason is required, Escape or Cancel closes the form.
 * @param {object} entry {message, el} of the row
 * @param {HTMLButtonElement} button the row's Report button (focus returns there)
 */
export function startReport(entry, button) {
  const { el } = entry;
  if (el.querySelector(".report-form")) {
    el.querySelector(".report-form textarea").focus();
    return;
  }
  el.querySelector(".report-done")?.remove();
  const id = `report-${++editorCount}`;
  const form = element("form", { className: "report-form", noValidate: true });
  const label = element("label", { htmlFor: id, textContent: `Why are you reporting this message by ${entry.message.author.username}?` });
  const textarea = element("textarea", { id, name: "reason", rows: 2, maxLength: REASON_MAX_CHARS, required: true });
  const problem = element("p", { className: "report-problem", id: `${id}-problem`, hidden: true });
  problem.setAttribute("role", "alert");
  textarea.setAttribute("aria-describedby", problem.id);
  const actions = element("div", { className: "actions" });
  const submit = element("button", { type: "submit", className: "primary", textContent: "Send report" });
  const cancel = element("button", { type: "button", className: "link-button", textContent: "Cancel" });
  actions.append(submit, cancel);
  form.append(label, textarea, problem, actions);
  el.querySelector(".body").after(form);
  textarea.focus();

  const close = () => {
    form.remove();
    button.focus();
  };
  const showProblem = (text) => {
    problem.textContent = text;
    problem.hidden = false;
    textarea.setAttribute("aria-invalid", "true");
  };
  cancel.addEventListener("click", close);
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const reason = textarea.value.trim();
    if (!reason) {
      showProblem("Say why: a reason is required.");
      textarea.focus();
      return;
    }
    submit.disabled = true;
    try {
      const { created } = await reportMessage(entry.message.id, reason);
      form.remove();
      const done = element("p", { className: "report-done", textContent: reportAnswer(created) });
      done.setAttribute("role", "status");
      el.querySelector(".body").after(done);
      button.textContent = "Reported";
      button.focus();
    } catch (error) {
      if (error instanceof ApiError && error.status === 429) {
        const minutes = Math.max(1, Math.ceil((error.retryAfter ?? 60) / 60));
        showProblem(`You have sent many reports in the last hour; try again in ${minutes} min.`);
      } else {
        showProblem(`Could not send the report: ${describeError(error)}.`);
      }
    } finally {
      submit.disabled = false;
    }
  });
}

// ----- reactions, replies and the user menu (CONTRACT §5) ---------------------------------

/** The picker's emoji: the ones chat users reach for most (Slack's and Zulip's defaults). */
export const COMMON_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"];

/** Close any open popup (picker, user menu) and return the focus to its button. */
export function closePopups({ restoreFocus = true } = {}) {
  for (const popup of document.querySelectorAll(".popup")) {
    const opener = popup.opener;
    popup.remove();
    opener?.setAttribute("aria-expanded", "false");
    if (restoreFocus && opener?.isConnected) opener.focus();
  }
}

/** A small popup after `button` with one button per choice; arrows move, Escape closes. */
function openPopup(button, { label, className, choices }) {
  const wasOpen = button.getAttribute("aria-expanded") === "true";
  closePopups({ restoreFocus: false });
  if (wasOpen) return null;
  const popup = element("div", { className: `popup ${className}` });
  popup.setAttribute("role", "group");
  popup.setAttribute("aria-label", label);
  popup.opener = button;
  const buttons = choices.map(({ text, ariaLabel, onChoose }) => {
    const choice = element("button", { type: "button", textContent: text });
    if (ariaLabel) choice.setAttribute("aria-label", ariaLabel);
    choice.addEventListener("click", () => {
      closePopups();
      onChoose();
    });
    return choice;
  });
  popup.append(...buttons);
  popup.addEventListener("keydown", (event) => {
    const index = buttons.indexOf(document.activeElement);
    if (event.key === "Escape") {
      event.preventDefault();
      closePopups();
    } else if (["ArrowRight", "ArrowDown", "ArrowLeft", "ArrowUp"].includes(event.key) && index >= 0) {
      event.preventDefault();
      const step = event.key === "ArrowRight" || event.key === "ArrowDown" ? 1 : -1;
      buttons[(index + step + buttons.length) % buttons.length].focus();
    }
  });
  button.setAttribute("aria-expanded", "true");
  button.after(popup);
  buttons[0]?.focus();
  return popup;
}

/**
 * The emoji picker of a row's "React" button.
 * @param {(emoji: string) => void} onPick called with the chosen emoji
 */
export function openReactionPicker(entry, button, { onPick, hasMine }) {
  return openPopup(button, {
    label: `Reactions for the message by ${entry.message.author.username}`,
    className: "emoji-picker",
    choices: COMMON_EMOJI.map((emoji) => ({
      text: emoji,
      ariaLabel: hasMine(emoji) ? `${emoji} (yours: take it back)` : `React with ${emoji}`,
      onChoose: () => onPick(emoji),
    })),
  });
}

/** What a click on another user's name offers: a direct message, a mention. */
export function openUserMenu(username, button, { onDirectMessage, onMention }) {
  return openPopup(button, {
    label: `Actions for ${username}`,
    className: "user-menu",
    choices: [
      { text: `Message ${username} directly`, onChoose: () => onDirectMessage(username) },
      { text: `Mention @${username}`, onChoose: () => onMention(username) },
    ],
  });
}
