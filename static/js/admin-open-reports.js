/**
 * The admin header's "Open reports: N" (templates/admin/base_site.html), kept live: every 15 s, and
 * at once when the tab becomes visible again, it asks the report queue's open-count endpoint.
 */

const POLL_MS = 15000;

function start() {
  const link = document.getElementById("open-reports");
  if (!link) return;
  const count = link.querySelector(".count");
  const url = link.dataset.countUrl;
  let timer = null;

  async function refresh() {
    clearTimeout(timer);
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (response.ok) {
        const data = await response.json();
        if (typeof data.open === "number") {
          count.textContent = String(data.open);
          link.classList.toggle("has-open", data.open > 0);
        }
      }
    } catch {
      /* offline for a moment: the next poll tries again */
    }
    if (!document.hidden) timer = setTimeout(refresh, POLL_MS);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  timer = setTimeout(refresh, POLL_MS);
}

start();
