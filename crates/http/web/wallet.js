// The wallet app: sign in, see requests arrive live, pay them (tap, PIN, or PIN and a
// WebCrypto device key), history, sandbox top-up, and paying a link or QR code.
import { t, translate, switchLanguage } from "./i18n.js";
import { api, ApiError, money, when, el, statusBadge, showError, newKey, tickCountdowns, paymentIdFrom, toMinor } from "./common.js";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("pocket.token");
let signingUp = false;
let stream = null;
let openPaymentId = (location.pathname.match(/^\/pay\/(pay_[0-9A-Za-z]{24})$/) || [])[1] || null;

// ---- sign in / sign up -------------------------------------------------------------

function renderAuthMode() {
  $("auth-title").dataset.i18n = signingUp ? "sign_up" : "sign_in";
  $("auth-submit").dataset.i18n = signingUp ? "sign_up" : "sign_in";
  $("auth-toggle").dataset.i18n = signingUp ? "sign_in" : "sign_up";
  $("name-row").classList.toggle("hidden", !signingUp);
  $("pin").autocomplete = signingUp ? "new-password" : "current-password";
  translate();
}

async function submitAuth(ev) {
  ev.preventDefault();
  showError($("auth-error"), null);
  const phone = $("phone").value.trim();
  const pin = $("pin").value.trim();
  try {
    const body = signingUp ? { phone, name: $("name").value.trim(), pin } : { phone, pin };
    const r = await api("POST", signingUp ? "/v1/wallet/signup" : "/v1/wallet/sessions", null, body, newKey());
    token = r.token;
    sessionStorage.setItem("pocket.token", token);
    $("pin").value = "";
    await start();
  } catch (e) {
    showError($("auth-error"), e);
  }
}

async function signOut() {
  try { await api("DELETE", "/v1/wallet/sessions/current", token); } catch { /* already gone */ }
  sessionStorage.removeItem("pocket.token");
  token = null;
  if (stream) stream.close();
  location.href = "/";
}

// ---- rendering -----------------------------------------------------------------------

function itemsLine(p) {
  if (!p.items.length) return p.description || "";
  return p.items.map((i) => `${i.name} × ${i.quantity}`).join(", ");
}

function paymentCard(p, { actions }) {
  const card = el("div", { class: "card", "data-payment": p.id },
    el("div", { class: "row" },
      el("strong", {}, p.merchant_name),
      statusBadge(p.status)),
    el("div", { class: "amount" }, money(p.amount, p.currency)),
    el("div", { class: "muted" }, itemsLine(p)),
  );
  if (p.status === "pending") {
    card.append(el("div", { class: "countdown", "data-expires": p.expires_at, role: "timer" }));
    if (actions) {
      const buttons = el("div", { class: "actions" },
        el("button", { type: "button", "data-action": "confirm", onclick: () => pay(p) }, t("confirm")));
      if (p.customer) {
        buttons.append(el("button", { type: "button", class: "danger", "data-action": "decline", onclick: () => decline(p) }, t("decline")));
      }
      card.append(buttons, el("p", { class: "error", role: "alert" }));
    }
  } else {
    card.append(el("div", { class: "muted" }, when(p.completed_at || p.created_at)));
  }
  return card;
}

async function refresh() {
  const [me, pending, all] = await Promise.all([
    api("GET", "/v1/wallet/me", token),
    api("GET", "/v1/wallet/payments?status=pending&limit=100", token),
    api("GET", "/v1/wallet/payments?limit=20", token),
  ]);
  const balances = $("balances");
  balances.replaceChildren(...(me.balances.length
    ? me.balances.map((b) => el("li", { "data-currency": b.currency }, el("span", {}, b.currency), el("strong", { "data-balance": b.currency }, money(b.available, b.currency))))
    : [el("li", { class: "muted" }, t("no_balance"))]));
  const live = pending.data.filter((p) => new Date(p.expires_at) > new Date());
  $("requests").replaceChildren(...(live.length ? live.map((p) => paymentCard(p, { actions: true })) : [el("p", { class: "muted" }, t("no_requests"))]));
  const done = all.data.filter((p) => p.status !== "pending");
  $("history").replaceChildren(...(done.length ? done.map((p) => paymentCard(p, { actions: false })) : [el("p", { class: "muted" }, t("no_history"))]));
  if (openPaymentId) await showOpenPayment();
  tickCountdowns(onExpired);
}

async function showOpenPayment() {
  try {
    const p = await api("GET", `/v1/wallet/payments/${openPaymentId}`, token);
    $("open-payment").classList.remove("hidden");
    $("open-card").replaceChildren(paymentCard(p, { actions: p.status === "pending" }));
  } catch (e) {
    $("open-payment").classList.remove("hidden");
    $("open-card").replaceChildren(el("p", { class: "error" }, e.message));
  }
}

function onExpired(countdown) {
  const card = countdown.closest(".card");
  if (!card) return;
  for (const b of card.querySelectorAll("button")) b.remove();
  const badge = card.querySelector(".status");
  if (badge) badge.replaceWith(statusBadge("expired"));
}

// ---- paying --------------------------------------------------------------------------

function cardError(p, err) {
  for (const card of document.querySelectorAll(`[data-payment="${p.id}"] .error`)) showError(card, err);
}

async function pay(p) {
  cardError(p, null);
  try {
    const body = {};
    const auth = p.policy.authentication;
    if (auth !== "none") {
      const pin = await askPin(t("pin_for", { amount: money(p.amount, p.currency), merchant: p.merchant_name }));
      if (pin === null) return;
      body.pin = pin;
    }
    if (auth === "pin_and_device") {
      const device = await deviceKey(body.pin);
      const message = `pocket-confirm:v1:${p.id}:${p.amount}:${p.currency}:${p.merchant}:${p.expires_at}`;
      body.device = device.id;
      body.signature = await sign(device.keys.privateKey, message);
    }
    await api("POST", `/v1/wallet/payments/${p.id}/confirm`, token, body, newKey());
    flash(t("paid"));
    await refresh();
  } catch (e) {
    cardError(p, e);
    if (e instanceof ApiError && (e.code === "payment_expired" || e.code === "payment_not_pending")) await refresh();
  }
}

async function decline(p) {
  try {
    await api("POST", `/v1/wallet/payments/${p.id}/decline`, token, {}, newKey());
    await refresh();
  } catch (e) {
    cardError(p, e);
  }
}

function flash(text) {
  $("flash").textContent = text;
  setTimeout(() => { if ($("flash").textContent === text) $("flash").textContent = ""; }, 4000);
}

// ---- PIN pad -------------------------------------------------------------------------

function askPin(what) {
  const dialog = $("pin-dialog");
  const entry = $("pin-entry");
  entry.value = "";
  $("pin-what").textContent = what;
  showError($("pin-error"), null);
  return new Promise((resolve) => {
    const done = (value) => {
      dialog.removeEventListener("close", onClose);
      $("pin-cancel").removeEventListener("click", onCancel);
      resolve(value);
    };
    const onClose = () => {
      if (dialog.returnValue === "ok" && /^\d{6}$/.test(entry.value)) done(entry.value);
      else done(null);
    };
    const onCancel = () => { dialog.returnValue = "cancel"; dialog.close(); };
    dialog.addEventListener("close", onClose);
    $("pin-cancel").addEventListener("click", onCancel);
    dialog.returnValue = "";
    dialog.showModal();
    entry.focus();
  });
}

function buildPinPad() {
  const pad = $("pinpad");
  const entry = $("pin-entry");
  for (const k of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0"]) {
    const isDelete = k === "⌫";
    pad.append(el("button", {
      type: "button", class: "secondary", "aria-label": isDelete ? t("delete_digit") : k,
      onclick: () => {
        entry.value = isDelete ? entry.value.slice(0, -1) : (entry.value + k).slice(0, 6);
        entry.focus();
      },
    }, k));
  }
}

// ---- device keys (WebCrypto, private key never extractable) -------------------------

function idb() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open("pocket", 1);
    r.onupgradeneeded = () => r.result.createObjectStore("keys");
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function idbGet(key) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const r = db.transaction("keys").objectStore("keys").get(key);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

async function idbPut(key, value) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction("keys", "readwrite");
    tx.objectStore("keys").put(value, key);
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

/** This device's registered key for the signed-in customer, made on first use. */
async function deviceKey(pin) {
  const me = await api("GET", "/v1/wallet/me", token);
  const slot = `device:${me.id}`;
  const saved = await idbGet(slot);
  if (saved) {
    const devices = await api("GET", "/v1/wallet/devices", token);
    if (devices.data.some((d) => d.id === saved.id && !d.revoked_at)) return saved;
  }
  flash(t("device_needed"));
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", keys.publicKey);
  const publicKey = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  const device = await api("POST", "/v1/wallet/devices", token, { name: navigator.userAgent.slice(0, 80) || "browser", public_key: publicKey, pin }, newKey());
  const entry = { id: device.id, keys };
  await idbPut(slot, entry);
  return entry;
}

async function sign(privateKey, message) {
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, new TextEncoder().encode(message)));
  let bin = "";
  for (const b of sig) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// ---- live updates (SSE with a single-use ticket) -------------------------------------

async function listen() {
  if (stream) stream.close();
  try {
    const { ticket } = await api("POST", "/v1/wallet/events/tickets", token);
    stream = new EventSource(`/v1/wallet/events?ticket=${encodeURIComponent(ticket)}`);
    stream.onopen = () => { $("live").textContent = `● ${t("live")}`; };
    const changed = () => refresh().catch(() => {});
    for (const type of ["payment.created", "payment.succeeded", "payment.declined", "payment.expired", "payment.canceled", "refund.succeeded"]) {
      stream.addEventListener(type, changed);
    }
    // Operations the bank answers later arrive here too.
    const moved = () => Promise.all([refresh(), refreshCards()]).catch(() => {});
    for (const type of ["topup.succeeded", "topup.failed", "withdrawal.succeeded", "withdrawal.failed"]) {
      stream.addEventListener(type, moved);
    }
    stream.onerror = () => {
      // A ticket is single-use: reconnect with a new one.
      $("live").textContent = t("reconnecting");
      stream.close();
      setTimeout(() => { listen(); refresh().catch(() => {}); }, 1000);
    };
  } catch {
    setTimeout(listen, 2000);
  }
}

// ---- links, QR codes, top-up ---------------------------------------------------------

async function openLink(text) {
  showError($("link-error"), null);
  const id = paymentIdFrom(text);
  if (!id) { showError($("link-error"), new Error(t("paste_hint"))); return; }
  history.pushState({}, "", `/pay/${id}`);
  openPaymentId = id;
  await showOpenPayment();
  tickCountdowns(onExpired);
}

async function scan() {
  const video = $("camera");
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices) {
    showError($("link-error"), new Error(t("no_camera")));
    return;
  }
  try {
    const media = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = media;
    video.classList.remove("hidden");
    await video.play();
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    const started = Date.now();
    while (Date.now() - started < 60000) {
      const codes = await detector.detect(video);
      if (codes.length) { await openLink(codes[0].rawValue); break; }
      await new Promise((r) => setTimeout(r, 250));
    }
    media.getTracks().forEach((tr) => tr.stop());
    video.classList.add("hidden");
  } catch (e) {
    showError($("link-error"), e);
  }
}

async function topup(ev) {
  ev.preventDefault();
  showError($("topup-error"), null);
  const currency = $("topup-currency").value;
  const amount = toMinor($("topup-amount").value, currency);
  if (amount === null) { showError($("topup-error"), new Error(t("amount_major"))); return; }
  try {
    await api("POST", "/v1/wallet/topups", token, { amount, currency }, newKey());
    $("topup-amount").value = "";
    flash(t("topup_done"));
    await refresh();
  } catch (e) {
    showError($("topup-error"), e);
  }
}

// ---- bank cards, card top-ups and withdrawals ---------------------------------------------

async function refreshCards() {
  const [cards, topups, withdrawals] = await Promise.all([
    api("GET", "/v1/wallet/cards", token),
    api("GET", "/v1/wallet/topups", token),
    api("GET", "/v1/wallet/withdrawals", token),
  ]);
  $("cards").replaceChildren(...(cards.data.length
    ? cards.data.map((c) => el("li", { "data-card": c.id },
        el("span", {}, `${c.brand.toUpperCase()} •••• ${c.last4}`),
        el("span", { class: "muted" }, ` ${String(c.exp_month).padStart(2, "0")}/${c.exp_year} `),
        (() => {
          const b = el("button", { type: "button", class: "secondary small" }, t("remove"));
          b.addEventListener("click", async () => {
            try { await api("DELETE", `/v1/wallet/cards/${c.id}`, token); await refreshCards(); }
            catch (e) { showError($("card-error"), e); }
          });
          return b;
        })()))
    : [el("li", { class: "muted" }, t("no_cards"))]));
  $("move-card").replaceChildren(...cards.data.map((c) => el("option", { value: c.id }, `${c.brand.toUpperCase()} •••• ${c.last4}`)));
  const ops = [...topups.data, ...withdrawals.data].sort((a, b) => b.created_at.localeCompare(a.created_at)).slice(0, 20);
  $("operations").replaceChildren(...(ops.length
    ? ops.map((o) => el("li", { "data-operation": o.id, "data-status": o.status },
        el("span", {}, `${t(o.object === "topup" ? "op_topup" : "op_withdrawal")} ${money(o.amount, o.currency)} `),
        el("span", { class: `status ${o.status}` }, t(`op_status_${o.status}`)),
        o.failure_code ? el("span", { class: "muted" }, ` ${o.failure_code}`) : ""))
    : [el("li", { class: "muted" }, t("no_operations"))]));
}

async function bindCard(ev) {
  ev.preventDefault();
  showError($("card-error"), null);
  const m = $("card-exp").value.trim().match(/^(\d{1,2})\s*\/\s*(\d{4})$/);
  if (!m) { showError($("card-error"), new Error(t("expiry_format"))); return; }
  const pin = await askPin(t("pin_for_card"));
  if (!pin) return;
  try {
    await api("POST", "/v1/wallet/cards", token, {
      number: $("card-number").value, exp_month: Number(m[1]), exp_year: Number(m[2]), cvc: $("card-cvc").value, pin,
    }, newKey());
    // The number and CVC leave the page as soon as the bank has them.
    $("card-number").value = ""; $("card-cvc").value = ""; $("card-exp").value = "";
    flash(t("card_added"));
    await refreshCards();
  } catch (e) {
    showError($("card-error"), e);
  }
}

async function moveMoney(ev) {
  ev.preventDefault();
  showError($("move-error"), null);
  const withdraw = ev.submitter && ev.submitter.value === "withdraw";
  const currency = $("move-currency").value;
  const amount = toMinor($("move-amount").value, currency);
  if (amount === null) { showError($("move-error"), new Error(t("amount_major"))); return; }
  const pin = await askPin(t(withdraw ? "pin_for_withdrawal" : "pin_for_topup"));
  if (!pin) return;
  try {
    await api("POST", withdraw ? "/v1/wallet/withdrawals" : "/v1/wallet/topups", token,
      { amount, currency, card: $("move-card").value, pin }, newKey());
    $("move-amount").value = "";
    await Promise.all([refresh(), refreshCards()]);
  } catch (e) {
    showError($("move-error"), e);
  }
}

// ---- start -----------------------------------------------------------------------------

async function start() {
  $("auth").classList.add("hidden");
  $("app").classList.remove("hidden");
  $("signout").classList.remove("hidden");
  try {
    await Promise.all([refresh(), refreshCards()]);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { sessionStorage.removeItem("pocket.token"); location.reload(); return; }
    throw e;
  }
  listen();
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  buildPinPad();
  $("lang").addEventListener("click", () => { switchLanguage(); if (token) refresh(); });
  $("auth-form").addEventListener("submit", submitAuth);
  $("auth-toggle").addEventListener("click", () => { signingUp = !signingUp; renderAuthMode(); });
  $("signout").addEventListener("click", signOut);
  $("link-form").addEventListener("submit", (ev) => { ev.preventDefault(); openLink($("link").value); });
  $("scan").addEventListener("click", scan);
  $("topup-form").addEventListener("submit", topup);
  $("card-form").addEventListener("submit", bindCard);
  $("move-form").addEventListener("submit", moveMoney);
  setInterval(() => tickCountdowns(onExpired), 250);
  if (token) start();
});
