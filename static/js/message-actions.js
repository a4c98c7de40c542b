/**
 * Edit and delete on a message row, over REST (PATCH/DELETE /api/v1/messages/{id}/).
 *
 * Editing opens an inline form prefilled with the markup the author would have typed; Enter
 * saves, Shift+Enter adds a line, Escape cancels. Deleting takes a second click ("Confirm
 * delete") instead of a confirm() dialog: keyboard friendly, and cancelled by waiting.
 */

import { ApiError, deleteMessage, describeError, editMessage } from "./api.js";
import { bodyToSource } from "./render.js";

const CONFIRM_DELETE_MS = 4000;
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
