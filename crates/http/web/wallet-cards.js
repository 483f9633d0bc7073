// Bank cards, card top-ups and withdrawals, and the sandbox's top-up.
import { t } from "./i18n.js";
import { api, PageError, money, el, showError, newKey, toMinor } from "./common.js";
import { $, session, flash } from "./wallet-state.js";
import { askPin } from "./wallet-pinpad.js";
import { refresh } from "./wallet.js";

export async function refreshCards() {
  const [cards, topups, withdrawals] = await Promise.all([
    api("GET", "/v1/wallet/cards", session.token),
    api("GET", "/v1/wallet/topups", session.token),
    api("GET", "/v1/wallet/withdrawals", session.token),
  ]);
  $("cards").replaceChildren(...(cards.data.length
    ? cards.data.map((c) => el("li", { "data-card": c.id },
        el("span", {}, `${c.brand.toUpperCase()} •••• ${c.last4}`),
        el("span", { class: "muted" }, ` ${String(c.exp_month).padStart(2, "0")}/${c.exp_year} `),
        el("button", {
          type: "button", class: "secondary small", "aria-label": `${t("remove")} ${c.last4}`,
          onclick: async () => {
            try { await api("DELETE", `/v1/wallet/cards/${c.id}`, session.token); await refreshCards(); }
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

export async function bindCard(ev) {
  ev.preventDefault();
  showError($("card-error"), null);
  const m = $("card-exp").value.trim().match(/^(\d{1,2})\s*\/\s*(\d{4})$/);
  if (!m) { showError($("card-error"), new PageError("expiry_format")); return; }
  // What the page can tell is refused before the PIN is asked for.
  if (!luhnValid($("card-number").value)) { showError($("card-error"), new PageError("card_number_format")); return; }
  if (!/^\d{3,4}$/.test($("card-cvc").value.trim())) { showError($("card-error"), new PageError("cvc_format")); return; }
  try {
    const bound = await askPin(t("pin_for_card"), (pin) => api("POST", "/v1/wallet/cards", session.token, {
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

export async function moveMoney(ev) {
  ev.preventDefault();
  showError($("move-error"), null);
  const withdraw = ev.submitter && ev.submitter.value === "withdraw";
  const currency = $("move-currency").value;
  const amount = toMinor($("move-amount").value, currency);
  if (amount === null) { showError($("move-error"), new PageError("page_amount")); return; }
  try {
    const moved = await askPin(t(withdraw ? "pin_for_withdrawal" : "pin_for_topup"), (pin) =>
      api("POST", withdraw ? "/v1/wallet/withdrawals" : "/v1/wallet/topups", session.token,
        { amount, currency, card: $("move-card").value, pin }, newKey()));
    if (moved === null) return;
    $("move-amount").value = "";
    await Promise.all([refresh(), refreshCards()]);
  } catch (e) {
    showError($("move-error"), e);
  }
}

export async function topup(ev) {
  ev.preventDefault();
  showError($("topup-error"), null);
  const currency = $("topup-currency").value;
  const amount = toMinor($("topup-amount").value, currency);
  if (amount === null) { showError($("topup-error"), new PageError("page_amount")); return; }
  try {
    await api("POST", "/v1/wallet/topups", session.token, { amount, currency }, newKey());
    $("topup-amount").value = "";
    flash(t("topup_done"));
    await refresh();
  } catch (e) {
    showError($("topup-error"), e);
  }
}
