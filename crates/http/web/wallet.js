// The wallet app, phone first: a balance header and five tabs (Home, Pay, Cards,
// History, Me). A request that arrives opens a full-screen payment sheet (merchant,
// items, amount, countdown, one action) that ends on a receipt; a PIN pad that stays
// open after a wrong PIN and says how many tries are left; paying links and QR codes, and
// showing the wallet's own payment code at a till; bank cards; the history of every
// movement, paged.
import { t, translate, switchLanguage } from "./i18n.js";
import { api, ApiError, money, el, showError, tickCountdowns, fillCurrencies } from "./common.js";
import { $, session, flash } from "./wallet-state.js";
import { buildPinPad } from "./wallet-pinpad.js";
import { sheet, paymentCard, onExpired, openSheet, closeSheet, showReceipt, confirmSheet, declineSheet } from "./wallet-sheet.js";
import { historyNav, refreshHistory, historyPage, refreshRecent } from "./wallet-history.js";
import { showPayCode, hidePayCode, openLink, scan, codeShownSince } from "./wallet-pay.js";
import { refreshCards, bindCard, moveMoney, topup } from "./wallet-cards.js";
import {
  signOut, submitAuth, submitReset, showReset, changePin, refreshDevices, showPreview, toggleSignUp,
} from "./wallet-me.js";

let tab = "home";

const seenRequests = new Set();

let stream = null;

export function show(name) {
  tab = name;
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("hidden", v.id !== `view-${name}`);
  for (const b of document.querySelectorAll("[data-tab]")) {
    if (b.dataset.tab === name) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  }
  if (name !== "pay") hidePayCode();
  if (name === "history") refreshHistory().catch(() => {});
  if (name === "home" && session.token) refreshRecent().catch(() => {});
  if (name === "cards") refreshCards().catch(() => {});
  if (name === "me") refreshDevices().catch((e) => showError($("devices-error"), e));
}

export async function refresh() {
  const [me, pending] = await Promise.all([
    api("GET", "/v1/wallet/me", session.token),
    api("GET", "/v1/wallet/payments?status=pending&limit=100", session.token),
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
  if (fresh && !sheet.payment && !$("pin-dialog").open) openSheet(fresh);
  if (session.openPaymentId) await showOpenPayment();
  if (tab === "history") await refreshHistory();
  if (tab === "home") await refreshRecent();
  if (tab === "me") await refreshDevices();
  if (tab === "cards") await refreshCards();
  tickCountdowns(onExpired);
}

export async function showOpenPayment() {
  $("open-payment").classList.remove("hidden");
  try {
    const p = await api("GET", `/v1/wallet/payments/${session.openPaymentId}`, session.token);
    $("open-card").replaceChildren(paymentCard(p));
    if (p.status === "pending" && !seenRequests.has(p.id)) {
      seenRequests.add(p.id);
      if (!sheet.payment) openSheet(p);
    }
  } catch (e) {
    const msg = el("p", { class: "error" });
    showError(msg, e);
    $("open-card").replaceChildren(msg);
  }
}

function setLive(key) {
  $("live").dataset.i18n = key;
  $("live").textContent = t(key);
}

async function listen() {
  if (stream) stream.close();
  try {
    const { ticket } = await api("POST", "/v1/wallet/events/tickets", session.token);
    stream = new EventSource(`/v1/wallet/events?ticket=${encodeURIComponent(ticket)}`);
    stream.onopen = () => setLive("live");
    const changed = () => refresh().catch(() => {});
    // A request the merchant sent again opens again, and says who asks.
    stream.addEventListener("payment.reminded", (ev) => {
      const p = JSON.parse(ev.data).data.object;
      flash(t("reminder_from", { merchant: p.merchant_name }));
      if (!sheet.payment && !$("pin-dialog").open && p.status === "pending") openSheet(p);
    });
    // A refund arriving says so, naming the merchant.
    stream.addEventListener("refund.succeeded", (ev) => {
      const r = JSON.parse(ev.data).data.object;
      api("GET", `/v1/wallet/payments/${r.payment}`, session.token)
        .then((p) => flash(t("refund_arrived", { amount: money(r.amount, p.currency), merchant: p.merchant_name })))
        .catch(() => {});
    });
    for (const type of ["payment.created", "payment.authorized", "payment.succeeded", "payment.declined", "payment.expired", "payment.canceled", "refund.succeeded"]) {
      stream.addEventListener(type, changed);
    }
    // A code shown at a till was charged: the receipt replaces the code.
    stream.addEventListener("payment.succeeded", (ev) => {
      const shownSince = codeShownSince();
      if (shownSince === null) return;
      const p = JSON.parse(ev.data).data.object;
      // Only a payment made while the code was shown (a minute's leeway for the phone's
      // clock), not one paid from the sheet.
      if (new Date(p.created_at).getTime() < shownSince - 60_000 || sheet.payment?.id === p.id) return;
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

export async function start() {
  fillCurrencies();
  $("auth").classList.add("hidden");
  $("link-preview").classList.add("hidden");
  $("app").classList.remove("hidden");
  $("topup-section").classList.toggle("hidden", !session.settings.sandbox_topups);
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
  $("lang").addEventListener("click", () => { switchLanguage(); if (session.token) refresh().catch(() => {}); });
  $("auth-form").addEventListener("submit", submitAuth);
  $("auth-toggle").addEventListener("click", toggleSignUp);
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
  $("sheet").addEventListener("close", () => { sheet.payment = null; });
  setInterval(() => tickCountdowns(onExpired), 250);
  // Opened without a network (the offline shell): say so, and carry on when it is back.
  window.addEventListener("offline", () => setLive("offline"));
  window.addEventListener("online", () => { if (session.token) { listen(); refresh().catch(() => {}); } else setLive("online"); });
  if (!navigator.onLine) setLive("offline");
  try { session.settings = await api("GET", "/v1/wallet/settings", null); } catch { /* E.164 only */ }
  if (session.token) start(); else showPreview();
});

/** Closes the live stream (signing out). */
export function stopListening() {
  if (stream) stream.close();
}
