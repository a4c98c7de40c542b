/**
 * Turning server data into DOM without ever executing markup.
 *
 * Message bodies arrive sanitised by the server (bleach: b, i, em, strong, code, pre, and a with
 * an http/https/mailto href). We still never insert them as HTML: the string is parsed into an
 * inert <template> (no scripts run, no images load there) and fresh nodes are built from it,
 * keeping only those tags and safe links; everything else becomes plain text. Usernames and all
 * other strings are set with textContent.
 */

const KEPT_TAGS = new Set(["B", "I", "EM", "STRONG", "CODE", "PRE", "A"]);
const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

/** The absolute URL of a link if its scheme is http, https or mailto; null otherwise. */
export function safeHref(href) {
  if (typeof href !== "string" || !href.trim()) return null;
  let url;
  try {
    url = new URL(href.trim());
  } catch {
    return null; // relative or malformed: the server only emits absolute links
  }
  return LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
}

function copySafe(from, to, doc) {
  for (const node of from.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      to.append(doc.createTextNode(node.data));
      continue;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) continue; // comments, processing instructions
    const tag = node.tagName;
    if (!KEPT_TAGS.has(tag)) {
      // Keep the words, drop the element (a nested <template> keeps its words in .content).
      copySafe(node.tagName === "TEMPLATE" ? node.content : node, to, doc);
      continue;
    }
    let element;
    if (tag === "A") {
      const href = safeHref(node.getAttribute("href"));
      if (href === null) {
        copySafe(node, to, doc);
        continue;
      }
      element = doc.createElement("a");
      element.href = href;
      element.rel = "nofollow noopener noreferrer";
      element.target = "_blank";
    } else {
      element = doc.createElement(tag.toLowerCase());
    }
    copySafe(node, element, doc);
    to.append(element);
  }
}

/** A DocumentFragment of a sanitised message body, rebuilt from safe nodes only. */
export function renderBody(html, doc = document) {
  const template = doc.createElement("template");
  // Inert parse of the server's sanitised HTML; none of these nodes is ever inserted.
  template.innerHTML = typeof html === "string" ? html : "";
  const fragment = doc.createDocumentFragment();
  copySafe(template.content, fragment, doc);
  return fragment;
}

/**
 * Markup close to what the author typed, from a rendered body, to prefill the edit box:
 * the kept tags are written back, links the server made from bare URLs become bare URLs again.
 */
export function bodyToSource(container) {
  let out = "";
  for (const node of container.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      out += node.data;
    } else if (node.nodeType === Node.ELEMENT_NODE) {
      const tag = node.tagName.toLowerCase();
      const inner = bodyToSource(node);
      if (tag === "a") {
        const href = node.getAttribute("href") ?? "";
        const bare = inner === href || inner === href.replace(/^mailto:/, "") || `${inner}/` === href;
        out += bare ? inner : `<a href="${href.replaceAll('"', "&quot;")}">${inner}</a>`;
      } else if (KEPT_TAGS.has(tag.toUpperCase())) {
        out += `<${tag}>${inner}</${tag}>`;
      } else {
        out += inner;
      }
    }
  }
  return out;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "short",
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });

/** "14:05" today, "Tue 3 Nov, 14:05" before; `full` for a tooltip. */
export function formatTime(iso, now = new Date()) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return { short: "", full: "" };
  const sameDay = date.toDateString() === now.toDateString();
  return { short: (sameDay ? timeFormat : dayTimeFormat).format(date), full: fullFormat.format(date) };
}

/** The words of a sanitised body on one line, for previews and quotes (set with textContent). */
export function plainText(html, max = 120, doc = document) {
  const template = doc.createElement("template");
  template.innerHTML = typeof html === "string" ? html : ""; // inert: nothing of it is inserted
  const text = template.content.textContent.replace(/\s+/g, " ").trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
