// The wallet's offline shell: the page and its assets are kept so the app opens without
// a network and says so. API answers are never cached (balances and payments must be live).
const SHELL = "pocket-shell-v3";
const FILES = ["/", "/assets/app.css", "/assets/common.js", "/assets/i18n.js", "/assets/wallet.js",
  "/assets/wallet-state.js", "/assets/wallet-keys.js", "/assets/wallet-pinpad.js", "/assets/wallet-sheet.js", "/assets/wallet-history.js", "/assets/wallet-pay.js", "/assets/wallet-cards.js", "/assets/wallet-me.js",
  "/assets/paycode.js", "/assets/qrcode.mjs", "/assets/jsbarcode.code128.min.js",
  "/assets/icon.svg", "/assets/wallet.webmanifest"];

self.addEventListener("install", (ev) => {
  ev.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (ev) => {
  ev.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== "GET" || url.origin !== location.origin || url.pathname.startsWith("/v1/")) return;
  // Network first (the shell is always current when online), the kept copy offline.
  const shellPath = url.pathname.startsWith("/pay/") ? "/" : url.pathname;
  if (!FILES.includes(shellPath)) return;
  // Each copy fetched online replaces the kept one, so the offline shell is this
  // server's current one, not the one from the day it was installed.
  ev.respondWith(fetch(ev.request).then((resp) => {
    if (resp.ok) {
      const copy = resp.clone();
      ev.waitUntil(caches.open(SHELL).then((c) => c.put(shellPath, copy)));
    }
    return resp;
  }).catch(() => caches.match(shellPath)));
});
