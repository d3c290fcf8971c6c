// tunix-rt web view: a running run's page re-fetches its live part (#live, data-refresh:
// seconds) and swaps it in, keeping the focus and the scroll position; it stops when the
// run is over (the new part has no data-refresh). Without JavaScript, the page's
// <noscript> meta refresh reloads it instead. Nothing else runs on these pages.
(() => {
  "use strict";
  const region = () => document.getElementById("live");
  const first = region();
  if (!first || !first.dataset.refresh) return;
  const every = Math.max(1, Number(first.dataset.refresh)) * 1000;

  function focusKey() {
    const el = document.activeElement;
    const live = region();
    if (!el || !live || !live.contains(el)) return null;
    return el.id ? { id: el.id } : el.getAttribute("href") ? { href: el.getAttribute("href") } : null;
  }

  function restore(key) {
    if (!key) return;
    const live = region();
    const el = key.id
      ? document.getElementById(key.id)
      : [...live.querySelectorAll("[href]")].find((a) => a.getAttribute("href") === key.href);
    if (el) el.focus({ preventScroll: true });
  }

  async function tick() {
    const url = new URL(window.location.href);
    url.searchParams.set("fragment", "live");
    try {
      const resp = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!resp.ok) return schedule();
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const next = doc.getElementById("live");
      const live = region();
      if (!next || !live) return schedule();
      const key = focusKey();
      live.replaceWith(document.importNode(next, true));
      restore(key);
      if (next.dataset.refresh) schedule();
    } catch (err) {
      schedule();
    }
  }

  function schedule() {
    window.setTimeout(tick, every);
  }

  schedule();
})();
