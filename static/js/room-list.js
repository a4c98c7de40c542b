/**
 * The room list (/): marks rooms with messages newer than the last one this browser showed.
 * chat-page.js records the newest id seen per room in localStorage; the page renders each
 * room's newest id in data-last-id. Nothing here talks to the server.
 */

for (const item of document.querySelectorAll(".room-item[data-slug]")) {
  const newest = Number(item.dataset.lastId || 0);
  let seen = null;
  try {
    seen = localStorage.getItem(`chatsite:seen:${item.dataset.slug}`);
  } catch {
    break; // storage disabled: no badges
  }
  if (seen === null || newest <= Number(seen)) continue;
  const badge = item.querySelector(".unread");
  badge.textContent = "new";
  badge.title = "New messages since you last opened this room";
  badge.hidden = false;
}
