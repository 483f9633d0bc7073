// The payment sheet (a request full screen: merchant, items, amount, countdown, one
// action), its receipt, and the payment cards of Home.
import { t } from "./i18n.js";
import { api, ApiError, money, when, el, statusBadge, showError, newKey, tickCountdowns, itemsLine } from "./common.js";
import { $, session, flash } from "./wallet-state.js";
import { deviceKey, sign } from "./wallet-keys.js";
import { askPin } from "./wallet-pinpad.js";
import { refresh } from "./wallet.js";

/** The payment the sheet shows, if it is open. */
export const sheet = { payment: null };

export function paymentCard(p) {
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

export function onExpired(countdown) {
  const card = countdown.closest(".card, #sheet");
  if (!card) return;
  // Confirming is no longer offered: the card loses its button, the sheet's go grey.
  for (const b of card.querySelectorAll("[data-action]")) b.remove();
  for (const b of card.querySelectorAll("#sheet-confirm, #sheet-decline")) b.disabled = true;
  const badge = card.querySelector(".status");
  if (badge) badge.replaceWith(statusBadge("expired"));
}

export function openSheet(p) {
  sheet.payment = p;
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
  const dialog = $("sheet");
  if (!dialog.open) dialog.showModal();
  tickCountdowns(onExpired);
  $("sheet-later").focus();
  setTimeout(() => {
    if (sheet.payment === p) $("sheet-confirm").disabled = isExpired(p);
  }, SHEET_ARM_MS);
}

/** How long Pay stays disabled after a sheet opens by itself. */
const SHEET_ARM_MS = 600;

function isExpired(p) {
  return new Date(p.expires_at) <= new Date();
}

export function closeSheet() {
  sheet.payment = null;
  if ($("sheet").open) $("sheet").close();
}

export function showReceipt(p) {
  sheet.payment = p;
  $("sheet-pay").classList.add("hidden");
  $("sheet-receipt").classList.remove("hidden");
  $("receipt-body").replaceChildren(el("dl", { class: "receipt", "data-payment": p.id },
    el("dt", {}, t("merchant")), el("dd", {}, p.merchant_name),
    el("dt", {}, t("items")), el("dd", {}, itemsLine(p) || "–"),
    el("dt", {}, t("amount")), el("dd", { class: "amount" }, money(p.amount, p.currency)),
    el("dt", {}, t("status")), el("dd", {}, statusBadge(p)),
    el("dt", {}, t("paid_at")), el("dd", {}, when(p.completed_at || p.created_at)),
    el("dt", {}, t("payment_id")), el("dd", {}, el("code", {}, p.id))));
  const dialog = $("sheet");
  if (!dialog.open) dialog.showModal();
  $("receipt-done").focus();
}

export async function confirmSheet() {
  const p = sheet.payment;
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
      return api("POST", `/v1/wallet/payments/${p.id}/confirm`, session.token, body, newKey());
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

export async function declineSheet() {
  const p = sheet.payment;
  if (!p) return;
  try {
    await api("POST", `/v1/wallet/payments/${p.id}/decline`, session.token, {}, newKey());
    closeSheet();
    await refresh();
  } catch (e) {
    showError($("sheet-error"), e);
  }
}
