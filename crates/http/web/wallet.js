// The wallet app, phone first: a balance header and five tabs (Home, Pay, Cards,
// History, Me). A request that arrives opens a full-screen payment sheet (merchant,
// items, amount, countdown, one action) that ends on a receipt; a PIN pad that stays
// open after a wrong PIN and says how many tries are left; paying links and QR codes, and
// showing the wallet's own payment code at a till; bank cards; the history of every
// movement, paged.
import { t, translate, switchLanguage, locale } from "./i18n.js";
import {
  api, ApiError, PageError, money, when, el, statusBadge, showError, newKey, tickCountdowns, paymentIdFrom, toMinor,
  itemsLine,
} from "./common.js";
import { importCodeSecret, codeAt, drawCode, stepOf, STEP_MS, serverClockOffset } from "./paycode.js";

const $ = (id) => document.getElementById(id);
const HISTORY_PAGE = 20;
let token = sessionStorage.getItem("pocket.token");
let signingUp = false;
let stream = null;
let settings = { calling_code: null, sandbox_topups: false };
let openPaymentId = (location.pathname.match(/^\/pay\/(pay_[0-9A-Za-z]{24})$/) || [])[1] || null;
let tab = "home";
const historyNav = { pages: [null], at: 0 };
let sheetPayment = null;
const seenRequests = new Set();

// ---- phone numbers typed the local way ---------------------------------------------------

/** `138 0000 0001` → `+8613800000001` with this server's calling code; `+…` and
 *  `00…` stay international. */
export function toE164(text) {
  const raw = String(text).replace(/[\s().-]/g, "");
  if (raw.startsWith("+")) return raw;
  if (raw.startsWith("00")) return `+${raw.slice(2)}`;
  if (settings.calling_code && /^\d+$/.test(raw)) return settings.calling_code + raw.replace(/^0/, "");
  return raw;
}

// ---- sign in / sign up -------------------------------------------------------------------

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
  const phone = toE164($("phone").value.trim());
  const pin = $("pin").value.trim();
  if (!/^\+\d{8,15}$/.test(phone)) { showError($("auth-error"), new PageError("page_phone")); return; }
  if (!/^\d{6}$/.test(pin)) { showError($("auth-error"), new PageError("page_pin")); return; }
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
  // A signed-out phone shows no payment codes: its device is revoked and forgotten.
  const customer = localStorage.getItem("pocket.customer");
  if (customer) {
    const saved = await idbGet(`device:${customer}`).catch(() => null);
    if (saved) {
      try { await api("DELETE", `/v1/wallet/devices/${saved.id}`, token); } catch { /* offline: revoke it from another session */ }
      await idbDelete(`device:${customer}`).catch(() => {});
    }
    localStorage.removeItem("pocket.customer");
  }
  try { await api("DELETE", "/v1/wallet/sessions/current", token); } catch { /* already gone */ }
  sessionStorage.removeItem("pocket.token");
  token = null;
  if (stream) stream.close();
  location.href = "/";
}

/** A forgotten PIN: the operator's one-time code sets a new one and signs in. */
async function submitReset(ev) {
  ev.preventDefault();
  showError($("reset-error"), null);
  const phone = toE164($("reset-phone").value.trim());
  const pin = $("reset-pin").value.trim();
  if (!/^\+\d{8,15}$/.test(phone)) { showError($("reset-error"), new PageError("page_phone")); return; }
  if (!/^\d{6}$/.test(pin)) { showError($("reset-error"), new PageError("page_pin")); return; }
  try {
    const r = await api("POST", "/v1/wallet/pin_reset", null, { phone, code: $("reset-code").value, new_pin: pin });
    token = r.token;
    sessionStorage.setItem("pocket.token", token);
    $("reset-pin").value = "";
    $("reset-code").value = "";
    await start();
  } catch (e) {
    showError($("reset-error"), e);
  }
}

function showReset(on) {
  $("auth-form").classList.toggle("hidden", on);
  $("reset-form").classList.toggle("hidden", !on);
  if (on) { $("reset-phone").value = $("phone").value; $("reset-code").focus(); }
}

// ---- me: the PIN, devices ------------------------------------------------------------------

async function changePin(ev) {
  ev.preventDefault();
  showError($("pin-change-error"), null);
  $("pin-change-done").textContent = "";
  try {
    await api("POST", "/v1/wallet/pin", token, { old_pin: $("pin-old").value.trim(), new_pin: $("pin-new").value.trim() }, newKey());
    $("pin-old").value = "";
    $("pin-new").value = "";
    $("pin-change-done").textContent = t("pin_changed_done");
    refreshDevices().catch(() => {});
  } catch (e) {
    showError($("pin-change-error"), e);
  }
}

/** This wallet's devices, this phone's marked; each active one can be removed. */
async function refreshDevices() {
  const [list, mine] = await Promise.all([
    api("GET", "/v1/wallet/devices", token),
    idbGet(`device:${localStorage.getItem("pocket.customer")}`).catch(() => null),
  ]);
  const rows = list.data.map((d) => el("li", { "data-device": d.id },
    el("span", {}, el("strong", { "data-user-text": "" }, d.name), mine?.id === d.id ? ` (${t("this_device")})` : "",
      el("br"), el("span", { class: "muted small" }, d.revoked_at ? t("device_removed") : t("device_added", { time: when(d.created_at) }))),
    d.revoked_at ? null : el("button", { type: "button", class: "secondary small", "data-action": "remove", onclick: () => removeDevice(d, mine) }, t("remove_device"))));
  $("devices").replaceChildren(...(rows.length ? rows : [el("li", { class: "muted" }, t("no_devices"))]));
}

async function removeDevice(d, mine) {
  showError($("devices-error"), null);
  try {
    await api("DELETE", `/v1/wallet/devices/${d.id}`, token);
    if (mine?.id === d.id) await idbDelete(`device:${localStorage.getItem("pocket.customer")}`).catch(() => {});
    await refreshDevices();
  } catch (e) {
    showError($("devices-error"), e);
  }
}

/** A pay link opened while signed out: the merchant and amount above the sign-in. */
async function showPreview() {
  if (!openPaymentId) return;
  try {
    const p = await api("GET", `/v1/pay/${openPaymentId}`, null);
    $("preview-card").replaceChildren(el("div", { class: "card", "data-preview": p.id },
      el("strong", {}, p.merchant_name),
      el("div", { class: "amount" }, money(p.amount, p.currency)),
      el("div", { class: "muted" }, itemsLine(p)),
      p.status === "pending" ? el("div", { class: "countdown", "data-expires": p.expires_at, role: "timer" }) : statusBadge(p.status),
      el("p", {}, t("sign_in_to_pay"))));
    $("link-preview").classList.remove("hidden");
    tickCountdowns();
  } catch { /* not an open payment: the sign-in alone */ }
}

// ---- tabs ----------------------------------------------------------------------------------

function show(name) {
  tab = name;
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("hidden", v.id !== `view-${name}`);
  for (const b of document.querySelectorAll("[data-tab]")) {
    if (b.dataset.tab === name) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  }
  if (name !== "pay") hidePayCode();
  if (name === "history") refreshHistory().catch(() => {});
  if (name === "home" && token) refreshRecent().catch(() => {});
  if (name === "cards") refreshCards().catch(() => {});
  if (name === "me") refreshDevices().catch((e) => showError($("devices-error"), e));
}

// ---- rendering -----------------------------------------------------------------------------

function paymentCard(p) {
  const card = el("div", { class: "card", "data-payment": p.id },
    el("div", { class: "row" }, el("strong", {}, p.merchant_name), statusBadge(p)),
    el("div", { class: "amount" }, money(p.amount, p.currency)),
    el("div", { class: "muted" }, itemsLine(p)));
  if (p.status === "pending") {
    card.append(el("div", { class: "countdown", "data-expires": p.expires_at, role: "timer" }),
      el("div", { class: "actions" },
        el("button", { type: "button", "data-action": "open", onclick: () => openSheet(p) }, t("confirm"))));
  } else if (p.status === "authorized") {
    card.append(el("div", { class: "muted" }, t("held_until", { time: when(p.capture_before) })));
  } else {
    card.append(el("div", { class: "muted" }, when(p.completed_at || p.created_at)));
  }
  return card;
}

async function refresh() {
  const [me, pending] = await Promise.all([
    api("GET", "/v1/wallet/me", token),
    api("GET", "/v1/wallet/payments?status=pending&limit=100", token),
  ]);
  // Whose device entry this phone may use when it is offline.
  localStorage.setItem("pocket.customer", me.id);
  $("me-name").textContent = me.name;
  $("me-phone").textContent = me.phone;
  const [first, ...others] = me.balances.length ? me.balances : [];
  $("hero-amount").replaceChildren(first
    ? el("span", { "data-balance": first.currency }, money(first.available, first.currency))
    : el("span", { class: "hero-empty" }, t("no_balance")));
  // Money held for merchants (holds not yet captured, withdrawals the bank has not answered).
  $("hero-held").classList.toggle("hidden", !(first && first.reserved > 0));
  $("hero-held").textContent = first && first.reserved > 0 ? t("held_amount", { amount: money(first.reserved, first.currency) }) : "";
  $("balances").replaceChildren(...others.map((b) => el("li", { "data-currency": b.currency },
    el("span", { "data-balance": b.currency }, money(b.available, b.currency)))));
  const live = pending.data.filter((p) => new Date(p.expires_at) > new Date());
  $("requests").replaceChildren(...(live.length ? live.map(paymentCard) : [el("p", { class: "muted" }, t("no_requests"))]));
  // A request that just arrived opens the payment sheet by itself (once).
  const fresh = live.find((p) => !seenRequests.has(p.id));
  for (const p of live) seenRequests.add(p.id);
  if (fresh && !sheetPayment && !$("pin-dialog").open) openSheet(fresh);
  if (openPaymentId) await showOpenPayment();
  if (tab === "history") await refreshHistory();
  if (tab === "home") await refreshRecent();
  if (tab === "me") await refreshDevices();
  if (tab === "cards") await refreshCards();
  tickCountdowns(onExpired);
}

async function showOpenPayment() {
  $("open-payment").classList.remove("hidden");
  try {
    const p = await api("GET", `/v1/wallet/payments/${openPaymentId}`, token);
    $("open-card").replaceChildren(paymentCard(p));
    if (p.status === "pending" && !seenRequests.has(p.id)) {
      seenRequests.add(p.id);
      if (!sheetPayment) openSheet(p);
    }
  } catch (e) {
    const msg = el("p", { class: "error" });
    showError(msg, e);
    $("open-card").replaceChildren(msg);
  }
}

function onExpired(countdown) {
  const card = countdown.closest(".card, #sheet");
  if (!card) return;
  // Confirming is no longer offered: the card loses its button, the sheet's go grey.
  for (const b of card.querySelectorAll("[data-action]")) b.remove();
  for (const b of card.querySelectorAll("#sheet-confirm, #sheet-decline")) b.disabled = true;
  const badge = card.querySelector(".status");
  if (badge) badge.replaceWith(statusBadge("expired"));
}

// ---- history: every movement, 20 to a page -----------------------------------------------------

/** History from the server's activity: each line what it did to the money (payments,
 *  holds and what became of them, refunds naming the merchant, top-ups, declines),
 *  grouped by month with the month's money in and out, filterable by kind. */
async function refreshHistory() {
  const after = historyNav.pages[historyNav.at];
  const kind = $("history-kind").value;
  const q = new URLSearchParams({ limit: String(HISTORY_PAGE), utc_offset: String(-new Date().getTimezoneOffset()) });
  if (kind) q.set("kind", kind);
  if (after) q.set("starting_after", after);
  const list = await api("GET", `/v1/wallet/activity?${q}`, token);
  // Payments show their state now (refunded, partly refunded) and open their receipt.
  const ids = [...new Set(list.data.filter((x) => x.payment).map((x) => x.payment))];
  const payments = new Map((await Promise.all(ids.map((id) =>
    api("GET", `/v1/wallet/payments/${id}`, token).catch(() => null)))).filter(Boolean).map((p) => [p.id, p]));
  const groups = new Map();
  for (const x of list.data) {
    const month = monthOf(x.created_at);
    if (!groups.has(month)) groups.set(month, []);
    groups.get(month).push(historyLine(x, payments.get(x.payment)));
  }
  $("history").replaceChildren(...(list.data.length ? [...groups].map(([month, lines]) => el("section", { class: "month", "data-month": month },
    el("h3", {}, monthName(month)),
    el("p", { class: "flow muted small" }, ...list.months.filter((m) => m.month === month).map((m) =>
      el("span", { "data-currency": m.currency }, t("month_flow", { in: money(m.in, m.currency), out: money(m.out, m.currency) }), " "))),
    el("ul", { class: "plain" }, ...lines)))
    : [el("p", { class: "muted" }, t("no_history"))]));
  historyNav.pages[historyNav.at + 1] = list.has_more ? list.data[list.data.length - 1].id : undefined;
  $("history-next").disabled = !list.has_more;
  $("history-prev").disabled = historyNav.at === 0;
}

/** `YYYY-MM` of an instant, by this phone's clock (as the server was asked to sum). */
function monthOf(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
}

function monthName(month) {
  const [y, m] = month.split("-").map(Number);
  return new Intl.DateTimeFormat(locale(), { year: "numeric", month: "long" }).format(new Date(y, m - 1, 1));
}

function historyLine(x, p) {
  const attrs = { "data-activity": x.id, "data-kind": x.kind, class: `movement ${x.direction}` };
  if (x.payment) attrs["data-payment"] = x.payment;
  const sign = x.direction === "in" ? "+" : x.direction === "out" ? "−" : "";
  const figure = sign + money(x.amount, x.currency);
  const showsState = p && ["payment", "capture", "hold"].includes(x.kind);
  const row = el("li", attrs,
    el("span", { class: "what" }, el("strong", { "data-user-text": "" }, x.merchant_name || t(`kind_${x.kind}`)),
      x.merchant_name ? el("span", { class: "muted" }, ` ${t(`kind_${x.kind}`)}`) : null,
      el("br"), el("span", { class: "muted small" }, when(x.created_at))),
    el("span", { class: "how-much" }, el("strong", {}, figure), showsState ? statusBadge(p) : null));
  if (p && x.kind !== "refund") {
    row.append(el("button", { type: "button", class: "secondary small", "data-action": "receipt", onclick: () => showReceipt(p) }, t("receipt")));
  }
  return row;
}

function historyPage(delta) {
  historyNav.at = Math.max(0, historyNav.at + delta);
  refreshHistory().catch(() => {});
}

// ---- the payment sheet and the receipt -------------------------------------------------------------

function openSheet(p) {
  sheetPayment = p;
  $("sheet-pay").classList.remove("hidden");
  $("sheet-receipt").classList.add("hidden");
  showError($("sheet-error"), null);
  $("sheet-body").replaceChildren(el("div", { "data-payment": p.id },
    el("p", { class: "sheet-merchant" }, p.merchant_name),
    el("p", { class: "sheet-amount amount" }, money(p.amount, p.currency)),
    el("ul", { class: "plain" }, ...p.items.map((i) => el("li", {},
      el("span", {}, `${i.name} × ${i.quantity}`), el("span", {}, money(i.amount, p.currency))))),
    p.description ? el("p", { class: "muted" }, p.description) : null,
    el("p", { class: "countdown big", "data-expires": p.expires_at, role: "timer" })));
  // A sheet opens by itself when a request arrives: a key pressed for something else
  // in that moment must not pay. The focus goes to "Later", and Pay waits a moment.
  $("sheet-confirm").disabled = true;
  $("sheet-decline").disabled = false;
  $("sheet-decline").classList.toggle("hidden", !p.customer);
  const sheet = $("sheet");
  if (!sheet.open) sheet.showModal();
  tickCountdowns(onExpired);
  $("sheet-later").focus();
  setTimeout(() => {
    if (sheetPayment === p) $("sheet-confirm").disabled = isExpired(p);
  }, SHEET_ARM_MS);
}

/** How long Pay stays disabled after a sheet opens by itself. */
const SHEET_ARM_MS = 600;

function isExpired(p) {
  return new Date(p.expires_at) <= new Date();
}

function closeSheet() {
  sheetPayment = null;
  if ($("sheet").open) $("sheet").close();
}

function showReceipt(p) {
  sheetPayment = p;
  $("sheet-pay").classList.add("hidden");
  $("sheet-receipt").classList.remove("hidden");
  $("receipt-body").replaceChildren(el("dl", { class: "receipt", "data-payment": p.id },
    el("dt", {}, t("merchant")), el("dd", {}, p.merchant_name),
    el("dt", {}, t("items")), el("dd", {}, itemsLine(p) || "–"),
    el("dt", {}, t("amount")), el("dd", { class: "amount" }, money(p.amount, p.currency)),
    el("dt", {}, t("status")), el("dd", {}, statusBadge(p)),
    el("dt", {}, t("paid_at")), el("dd", {}, when(p.completed_at || p.created_at)),
    el("dt", {}, t("payment_id")), el("dd", {}, el("code", {}, p.id))));
  const sheet = $("sheet");
  if (!sheet.open) sheet.showModal();
  $("receipt-done").focus();
}

async function confirmSheet() {
  const p = sheetPayment;
  if (!p) return;
  showError($("sheet-error"), null);
  $("sheet-confirm").disabled = true;
  try {
    // A risk rule may ask more of this payment than its policy said when it was shown
    // (checked when it is confirmed): the server's 401 names the proof, and the wallet
    // asks for it (at most twice: the PIN, then the device key).
    let auth = p.policy.authentication;
    let paid;
    for (let tries = 0; tries < 3; tries += 1) {
      paid = await payWithProof(p, auth);
      if (!paid || !paid.raise) break;
      auth = paid.raise;
    }
    if (!paid || paid.raise) return;
    flash(t(paid.status === "authorized" ? "held" : "paid"));
    showReceipt(paid);
    await refresh();
  } catch (e) {
    showError($("sheet-error"), e);
    if (e instanceof ApiError && (e.code === "payment_expired" || e.code === "payment_not_pending")) refresh().catch(() => {});
  } finally {
    $("sheet-confirm").disabled = isExpired(p);
  }
}

/** Confirms `p` with the proof `auth` names (the PIN pad, the device key): the payment,
 *  null when the customer closed the PIN pad, or `{raise}` when the server asks for a
 *  stronger proof than `auth`. */
async function payWithProof(p, auth) {
  try {
    const confirm = async (pin) => {
      const body = {};
      if (pin !== null) body.pin = pin;
      if (auth === "pin_and_device") {
        const device = await deviceKey(pin);
        body.device = device.id;
        body.signature = await sign(device.keys.privateKey,
          `pocket-confirm:v1:${p.id}:${p.amount}:${p.currency}:${p.merchant}:${p.expires_at}`);
      }
      return api("POST", `/v1/wallet/payments/${p.id}/confirm`, token, body, newKey());
    };
    return auth === "none"
      ? await confirm(null)
      : await askPin(t("pin_for", { amount: money(p.amount, p.currency), merchant: p.merchant_name }), confirm);
  } catch (e) {
    if (e instanceof ApiError && e.code === "pin_required" && auth === "none") return { raise: "pin" };
    if (e instanceof ApiError && e.code === "device_signature_required" && auth !== "pin_and_device") {
      return { raise: "pin_and_device" };
    }
    throw e;
  }
}

async function declineSheet() {
  const p = sheetPayment;
  if (!p) return;
  try {
    await api("POST", `/v1/wallet/payments/${p.id}/decline`, token, {}, newKey());
    closeSheet();
    await refresh();
  } catch (e) {
    showError($("sheet-error"), e);
  }
}

function flash(text) {
  $("flash").textContent = text;
  setTimeout(() => { if ($("flash").textContent === text) $("flash").textContent = ""; }, 4000);
}

// ---- PIN pad: stays open after a wrong PIN and says how many tries are left --------------------------

/** Asks for the PIN and runs `use(pin)` with it; a wrong PIN keeps the pad open with
 *  the error (and the tries left). Resolves with `use`'s answer, or null on cancel. */
function askPin(what, use) {
  const dialog = $("pin-dialog");
  const entry = $("pin-entry");
  entry.value = "";
  $("pin-what").textContent = what;
  showError($("pin-error"), null);
  return new Promise((resolve, reject) => {
    const finish = (fn) => {
      $("pin-form").removeEventListener("submit", onSubmit);
      $("pin-cancel").removeEventListener("click", onCancel);
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      fn();
    };
    const onSubmit = async (ev) => {
      ev.preventDefault();
      if (!/^\d{6}$/.test(entry.value)) { showError($("pin-error"), new PageError("page_pin")); return; }
      $("pin-ok").disabled = true;
      try {
        const answer = await use(entry.value);
        finish(() => resolve(answer));
      } catch (e) {
        if (e instanceof ApiError && e.code === "incorrect_pin") {
          entry.value = "";
          showError($("pin-error"), e);
          entry.focus();
        } else {
          finish(() => reject(e));
        }
      } finally {
        $("pin-ok").disabled = false;
      }
    };
    const onCancel = (ev) => { if (ev) ev.preventDefault(); finish(() => resolve(null)); };
    $("pin-form").addEventListener("submit", onSubmit);
    $("pin-cancel").addEventListener("click", onCancel);
    dialog.addEventListener("cancel", onCancel);
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
      "data-i18n-label": isDelete ? "delete_digit" : null,
      onclick: () => {
        entry.value = isDelete ? entry.value.slice(0, -1) : (entry.value + k).slice(0, 6);
        entry.focus();
      },
    }, k));
  }
}

// ---- device keys (WebCrypto, private key never extractable) ---------------------------------------

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

/** Runs `change(store)` in a read-write transaction; resolves once it is committed. */
async function idbWrite(change) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction("keys", "readwrite");
    change(tx.objectStore("keys"));
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

const idbPut = (key, value) => idbWrite((store) => store.put(value, key));
const idbDelete = (key) => idbWrite((store) => store.delete(key));

/** This device's entry for the signed-in customer, if it was registered and is still
 *  active: `{ id, keys, codeKey }` (`codeKey` is missing on devices registered before
 *  payment codes). Offline, the entry kept on the phone. */
async function savedDevice() {
  let me = null;
  try {
    me = await api("GET", "/v1/wallet/me", token);
  } catch (e) {
    if (e instanceof ApiError) throw e; // the server answered: not offline
  }
  const customer = me ? me.id : localStorage.getItem("pocket.customer");
  if (!customer) return null;
  localStorage.setItem("pocket.customer", customer);
  const saved = await idbGet(`device:${customer}`);
  if (!saved || !me) return saved || null;
  const devices = await api("GET", "/v1/wallet/devices", token);
  return devices.data.some((d) => d.id === saved.id && !d.revoked_at) ? saved : null;
}

/** This device's registered key for the signed-in customer, made on first use (and
 *  again when `withCode` asks for a payment code secret an older entry lacks). */
async function deviceKey(pin, withCode = false) {
  const saved = await savedDevice();
  if (saved && (saved.codeKey || !withCode)) return saved;
  const customer = localStorage.getItem("pocket.customer");
  flash(t(withCode ? "paycode_on" : "device_needed"));
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", keys.publicKey);
  const publicKey = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  const device = await api("POST", "/v1/wallet/devices", token, { name: navigator.userAgent.slice(0, 80) || "browser", public_key: publicKey, pin }, newKey());
  // The code secret is shown this once: it lives on as a key that cannot be read back.
  const entry = { id: device.id, keys, codeKey: await importCodeSecret(device.code_secret) };
  await idbPut(`device:${customer}`, entry);
  // An older entry without a code secret is replaced: its device is revoked, so a
  // wallet's devices do not pile up to the limit.
  if (saved) await api("DELETE", `/v1/wallet/devices/${saved.id}`, token).catch(() => {});
  return entry;
}

// ---- the payment code shown at a till (made on the phone, also offline) --------------------------------

let codeTimer = null;
let codeShownAt = 0;

async function showPayCode() {
  showError($("paycode-error"), null);
  try {
    let device = await savedDevice();
    if (!device || !device.codeKey) {
      device = await askPin(t("paycode_pin"), (pin) => deviceKey(pin, true));
      if (!device) return;
    }
    // The server's time, learnt while online and kept for offline use.
    let offset = Number(localStorage.getItem("pocket.clock_offset_ms")) || 0;
    try {
      offset = await serverClockOffset();
      localStorage.setItem("pocket.clock_offset_ms", String(offset));
    } catch { /* offline: the offset learnt last */ }
    $("paycode").classList.remove("hidden");
    $("paycode-show").classList.add("hidden");
    codeShownAt = Date.now();
    let shown = null;
    const tick = async () => {
      const now = Date.now() + offset;
      const step = stepOf(now);
      if (step !== shown) {
        shown = step;
        drawCode(await codeAt(device.codeKey, step), $("paycode-qr"), $("paycode-bar"), $("paycode-digits"));
      }
      $("paycode-left").textContent = t("paycode_left", { s: Math.ceil(((step + 1) * STEP_MS - now) / 1000) });
    };
    await tick();
    clearInterval(codeTimer);
    codeTimer = setInterval(() => tick().catch(() => {}), 1000);
  } catch (e) {
    showError($("paycode-error"), e);
  }
}

function hidePayCode() {
  clearInterval(codeTimer);
  codeTimer = null;
  $("paycode").classList.add("hidden");
  $("paycode-show").classList.remove("hidden");
}

async function sign(privateKey, message) {
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, new TextEncoder().encode(message)));
  let bin = "";
  for (const b of sig) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// ---- live updates (SSE with a single-use ticket) -----------------------------------------------------

function setLive(key) {
  $("live").dataset.i18n = key;
  $("live").textContent = t(key);
}

async function listen() {
  if (stream) stream.close();
  try {
    const { ticket } = await api("POST", "/v1/wallet/events/tickets", token);
    stream = new EventSource(`/v1/wallet/events?ticket=${encodeURIComponent(ticket)}`);
    stream.onopen = () => setLive("live");
    const changed = () => refresh().catch(() => {});
    // A request the merchant sent again opens again, and says who asks.
    stream.addEventListener("payment.reminded", (ev) => {
      const p = JSON.parse(ev.data).data.object;
      flash(t("reminder_from", { merchant: p.merchant_name }));
      if (!sheetPayment && !$("pin-dialog").open && p.status === "pending") openSheet(p);
    });
    // A refund arriving says so, naming the merchant.
    stream.addEventListener("refund.succeeded", (ev) => {
      const r = JSON.parse(ev.data).data.object;
      api("GET", `/v1/wallet/payments/${r.payment}`, token)
        .then((p) => flash(t("refund_arrived", { amount: money(r.amount, p.currency), merchant: p.merchant_name })))
        .catch(() => {});
    });
    for (const type of ["payment.created", "payment.authorized", "payment.succeeded", "payment.declined", "payment.expired", "payment.canceled", "refund.succeeded"]) {
      stream.addEventListener(type, changed);
    }
    // A code shown at a till was charged: the receipt replaces the code.
    stream.addEventListener("payment.succeeded", (ev) => {
      if (!codeTimer) return;
      const p = JSON.parse(ev.data).data.object;
      // Only a payment made while the code was shown (a minute's leeway for the phone's
      // clock), not one paid from the sheet.
      if (new Date(p.created_at).getTime() < codeShownAt - 60_000 || sheetPayment?.id === p.id) return;
      hidePayCode();
      showReceipt(p);
    });
    // Operations the bank answers later arrive here too.
    const moved = () => Promise.all([refresh(), refreshCards()]).catch(() => {});
    for (const type of ["topup.succeeded", "topup.failed", "withdrawal.succeeded", "withdrawal.failed"]) {
      stream.addEventListener(type, moved);
    }
    stream.onerror = () => {
      // A ticket is single-use: reconnect with a new one.
      setLive("reconnecting");
      stream.close();
      setTimeout(() => { listen(); refresh().catch(() => {}); }, 1000);
    };
  } catch {
    setTimeout(listen, 2000);
  }
}

// ---- links, QR codes, top-up -------------------------------------------------------------------------

async function openLink(text) {
  showError($("link-error"), null);
  const id = paymentIdFrom(text);
  if (!id) { showError($("link-error"), new PageError("page_link")); return; }
  window.history.pushState({}, "", `/pay/${id}`);
  openPaymentId = id;
  show("home");
  await showOpenPayment();
  tickCountdowns(onExpired);
}

/** How long Scan looks before it gives up, and how often it looks. */
const SCAN_FOR_MS = 60_000;
const SCAN_EVERY_MS = 200;

/** Reads merchant QR codes and pay links with the camera: the browser's own
 *  `BarcodeDetector` where it has one, else the vendored jsQR (loaded only then). */
async function scan() {
  const video = $("camera");
  showError($("link-error"), null);
  if (!navigator.mediaDevices?.getUserMedia) {
    showError($("link-error"), new PageError("no_camera"));
    return;
  }
  let media = null;
  try {
    media = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = media;
    video.classList.remove("hidden");
    await video.play();
    const read = await qrReader(video);
    const started = Date.now();
    while (Date.now() - started < SCAN_FOR_MS) {
      const text = await read();
      if (text && paymentIdFrom(text)) { await openLink(text); return; }
      await new Promise((r) => setTimeout(r, SCAN_EVERY_MS));
    }
    showError($("link-error"), new PageError("scan_nothing"));
  } catch (e) {
    showError($("link-error"), e instanceof ApiError ? e : new PageError("no_camera"));
  } finally {
    media?.getTracks().forEach((tr) => tr.stop());
    video.classList.add("hidden");
  }
}

/** A function that reads the QR code in the camera's frame now, or gives `null`. */
async function qrReader(video) {
  if ("BarcodeDetector" in window) {
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    return async () => (await detector.detect(video))[0]?.rawValue || null;
  }
  if (!window.jsQR) {
    await new Promise((resolve, reject) => {
      const s = el("script", { src: "/assets/jsQR.js" });
      s.onload = resolve;
      s.onerror = () => reject(new PageError("no_camera"));
      document.head.append(s);
    });
  }
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  return async () => {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    canvas.width = w;
    canvas.height = h;
    ctx.drawImage(video, 0, 0, w, h);
    return window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h)?.data || null;
  };
}

/** Home's latest lines of History. */
async function refreshRecent() {
  const list = await api("GET", "/v1/wallet/activity?limit=5", token);
  $("recent").replaceChildren(...(list.data.length ? list.data.map((x) => historyLine(x, null)) : [el("li", { class: "muted" }, t("no_history"))]));
}

async function topup(ev) {
  ev.preventDefault();
  showError($("topup-error"), null);
  const currency = $("topup-currency").value;
  const amount = toMinor($("topup-amount").value, currency);
  if (amount === null) { showError($("topup-error"), new PageError("page_amount")); return; }
  try {
    await api("POST", "/v1/wallet/topups", token, { amount, currency }, newKey());
    $("topup-amount").value = "";
    flash(t("topup_done"));
    await refresh();
  } catch (e) {
    showError($("topup-error"), e);
  }
}

// ---- bank cards, card top-ups and withdrawals ------------------------------------------------------------

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
        el("button", {
          type: "button", class: "secondary small", "aria-label": `${t("remove")} ${c.last4}`,
          onclick: async () => {
            try { await api("DELETE", `/v1/wallet/cards/${c.id}`, token); await refreshCards(); }
            catch (e) { showError($("card-error"), e); }
          },
        }, t("remove"))))
    : [el("li", { class: "muted" }, t("no_cards"))]));
  $("move-card").replaceChildren(...cards.data.map((c) => el("option", { value: c.id }, `${c.brand.toUpperCase()} •••• ${c.last4}`)));
  // Money moves through a card: without one, say so instead of a form that cannot work.
  $("move-form").classList.toggle("hidden", cards.data.length === 0);
  $("move-needs-card").classList.toggle("hidden", cards.data.length > 0);
  const ops = [...topups.data, ...withdrawals.data].sort((a, b) => b.created_at.localeCompare(a.created_at)).slice(0, 20);
  $("operations").replaceChildren(...(ops.length
    ? ops.map((o) => el("li", { "data-operation": o.id, "data-status": o.status },
        el("span", {}, `${t(o.object === "topup" ? "op_topup" : "op_withdrawal")} ${money(o.amount, o.currency)} `),
        el("span", { class: `status ${o.status}` }, t(`op_status_${o.status}`)),
        o.failure_code ? el("span", { class: "muted" }, ` ${t(`err_${o.failure_code}`)}`) : ""))
    : [el("li", { class: "muted" }, t("no_operations"))]));
}

/** A card number as typed (spaces and dashes allowed): 12 to 19 digits, Luhn-valid. */
function luhnValid(text) {
  const digits = String(text).replace(/[\s-]/g, "");
  if (!/^\d{12,19}$/.test(digits)) return false;
  let sum = 0;
  [...digits].reverse().forEach((d, i) => {
    let n = Number(d);
    if (i % 2 === 1) { n *= 2; if (n > 9) n -= 9; }
    sum += n;
  });
  return sum % 10 === 0;
}

async function bindCard(ev) {
  ev.preventDefault();
  showError($("card-error"), null);
  const m = $("card-exp").value.trim().match(/^(\d{1,2})\s*\/\s*(\d{4})$/);
  if (!m) { showError($("card-error"), new PageError("expiry_format")); return; }
  // What the page can tell is refused before the PIN is asked for.
  if (!luhnValid($("card-number").value)) { showError($("card-error"), new PageError("card_number_format")); return; }
  if (!/^\d{3,4}$/.test($("card-cvc").value.trim())) { showError($("card-error"), new PageError("cvc_format")); return; }
  try {
    const bound = await askPin(t("pin_for_card"), (pin) => api("POST", "/v1/wallet/cards", token, {
      number: $("card-number").value, exp_month: Number(m[1]), exp_year: Number(m[2]), cvc: $("card-cvc").value, pin,
    }, newKey()));
    if (bound === null) return;
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
  if (amount === null) { showError($("move-error"), new PageError("page_amount")); return; }
  try {
    const moved = await askPin(t(withdraw ? "pin_for_withdrawal" : "pin_for_topup"), (pin) =>
      api("POST", withdraw ? "/v1/wallet/withdrawals" : "/v1/wallet/topups", token,
        { amount, currency, card: $("move-card").value, pin }, newKey()));
    if (moved === null) return;
    $("move-amount").value = "";
    await Promise.all([refresh(), refreshCards()]);
  } catch (e) {
    showError($("move-error"), e);
  }
}

// ---- start ---------------------------------------------------------------------------------------------

async function start() {
  $("auth").classList.add("hidden");
  $("link-preview").classList.add("hidden");
  $("app").classList.remove("hidden");
  $("topup-section").classList.toggle("hidden", !settings.sandbox_topups);
  show(tab);
  try {
    await refresh();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { sessionStorage.removeItem("pocket.token"); location.reload(); return; }
    // No network: the kept shell, which can still show the payment code; the "online"
    // handler refreshes and listens when the network is back.
    if (!(e instanceof ApiError)) { setLive("offline"); return; }
    throw e;
  }
  listen();
}

document.addEventListener("DOMContentLoaded", async () => {
  translate();
  buildPinPad();
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
  $("lang").addEventListener("click", () => { switchLanguage(); if (token) refresh().catch(() => {}); });
  $("auth-form").addEventListener("submit", submitAuth);
  $("auth-toggle").addEventListener("click", () => { signingUp = !signingUp; renderAuthMode(); });
  $("signout").addEventListener("click", signOut);
  $("forgot-show").addEventListener("click", () => showReset(true));
  $("forgot-hide").addEventListener("click", () => showReset(false));
  $("reset-form").addEventListener("submit", submitReset);
  $("pin-change-form").addEventListener("submit", changePin);
  $("me-lang").addEventListener("click", () => $("lang").click());
  for (const b of document.querySelectorAll("[data-tab]")) b.addEventListener("click", () => show(b.dataset.tab));
  $("link-form").addEventListener("submit", (ev) => { ev.preventDefault(); openLink($("link").value); });
  $("scan").addEventListener("click", scan);
  $("home-scan").addEventListener("click", () => { show("pay"); scan(); });
  $("home-pay").addEventListener("click", () => { show("pay"); showPayCode(); });
  $("recent-all").addEventListener("click", () => show("history"));
  $("paycode-show").addEventListener("click", showPayCode);
  $("paycode-hide").addEventListener("click", hidePayCode);
  $("topup-form").addEventListener("submit", topup);
  $("card-form").addEventListener("submit", bindCard);
  $("move-form").addEventListener("submit", moveMoney);
  $("history-next").addEventListener("click", () => historyPage(1));
  $("history-prev").addEventListener("click", () => historyPage(-1));
  $("history-kind").addEventListener("change", () => { historyNav.pages = [null]; historyNav.at = 0; refreshHistory().catch(() => {}); });
  $("sheet-confirm").addEventListener("click", confirmSheet);
  $("sheet-decline").addEventListener("click", declineSheet);
  $("sheet-later").addEventListener("click", closeSheet);
  $("receipt-done").addEventListener("click", closeSheet);
  $("sheet").addEventListener("close", () => { sheetPayment = null; });
  setInterval(() => tickCountdowns(onExpired), 250);
  // Opened without a network (the offline shell): say so, and carry on when it is back.
  window.addEventListener("offline", () => setLive("offline"));
  window.addEventListener("online", () => { if (token) { listen(); refresh().catch(() => {}); } else setLive("online"); });
  if (!navigator.onLine) setLive("offline");
  try { settings = await api("GET", "/v1/wallet/settings", null); } catch { /* E.164 only */ }
  if (token) start(); else showPreview();
});
