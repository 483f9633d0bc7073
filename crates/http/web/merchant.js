// The merchant console: catalog, carts priced by the server, payments sent to a phone
// or shown as a QR code and watched live (long-poll), refunds, lists with paging.
import { t, translate, switchLanguage } from "./i18n.js";
import { api, PageError, money, when, el, statusBadge, showError, newKey, tickCountdowns, toMinor, toMajor } from "./common.js";

const $ = (id) => document.getElementById(id);
let sk = sessionStorage.getItem("pocket.sk");
let products = [];
let current = null;
let watching = 0;
const pages = { payments: [null], events: [null] };
const cursors = { payments: 0, events: 0 };

async function signIn(ev) {
  ev.preventDefault();
  showError($("auth-error"), null);
  const key = $("sk").value.trim();
  try {
    await api("GET", "/v1/balance", key);
    sk = key;
    sessionStorage.setItem("pocket.sk", sk);
    $("sk").value = "";
    await start();
  } catch (e) {
    showError($("auth-error"), e);
  }
}

async function refreshBalance() {
  const b = await api("GET", "/v1/balance", sk);
  $("balance").replaceChildren(...(b.balances.length
    ? b.balances.map((x) => el("li", {}, el("span", {}, x.currency), el("strong", { "data-balance": x.currency }, money(x.available, x.currency))))
    : [el("li", { class: "muted" }, t("no_balance"))]));
}

// ---- catalog ---------------------------------------------------------------------------

async function refreshProducts() {
  const list = await api("GET", "/v1/products?limit=100", sk);
  products = list.data;
  $("products").replaceChildren(...products.map((p) => el("tr", { "data-sku": p.sku },
    el("td", { "data-user-text": "" }, p.sku), el("td", { "data-user-text": "" }, p.name), el("td", {}, money(p.unit_amount, p.currency)),
    el("td", {}, p.active ? t("active") : t("inactive")),
    el("td", {},
      el("button", { type: "button", class: "secondary", "aria-label": `${t("edit")} ${p.sku}`, onclick: () => editProduct(p) }, t("edit")),
      " ",
      el("button", { type: "button", class: "secondary", "aria-label": `${p.active ? t("deactivate") : t("activate")} ${p.sku}`,
        onclick: () => setActive(p, !p.active) }, p.active ? t("deactivate") : t("activate"))))));
  for (const select of document.querySelectorAll("select.line-product")) fillProducts(select);
}

async function addProduct(ev) {
  ev.preventDefault();
  showError($("product-error"), null);
  const currency = $("p-currency").value;
  const unit_amount = toMinor($("p-price").value, currency);
  try {
    if (unit_amount === null) throw new PageError("page_unit_price");
    await api("POST", "/v1/products", sk, { sku: $("p-sku").value.trim(), name: $("p-name").value.trim(), unit_amount, currency }, newKey());
    $("product-form").reset();
    await refreshProducts();
  } catch (e) {
    showError($("product-error"), e);
  }
}

async function editProduct(p) {
  // A small inline editor: name and price in the add form's fields.
  $("p-sku").value = p.sku;
  $("p-name").value = p.name;
  $("p-price").value = toMajor(p.unit_amount, p.currency);
  $("p-currency").value = p.currency;
  const save = el("button", { type: "button", id: "p-save" }, t("save"));
  save.addEventListener("click", async () => {
    try {
      const unit_amount = toMinor($("p-price").value, p.currency);
      if (unit_amount === null) throw new PageError("page_unit_price");
      await api("POST", `/v1/products/${encodeURIComponent(p.sku)}`, sk, { name: $("p-name").value.trim(), unit_amount }, newKey());
      save.remove();
      $("product-form").reset();
      await refreshProducts();
    } catch (e) {
      showError($("product-error"), e);
    }
  });
  const old = $("p-save");
  if (old) old.remove();
  $("product-form").append(save);
  $("p-name").focus();
}

async function setActive(p, active) {
  try {
    await api("POST", `/v1/products/${encodeURIComponent(p.sku)}`, sk, { active }, newKey());
    await refreshProducts();
  } catch (e) {
    showError($("product-error"), e);
  }
}

// ---- cart and the current payment ------------------------------------------------------

function fillProducts(select) {
  const chosen = select.value;
  select.replaceChildren(...products.filter((p) => p.active).map((p) =>
    el("option", { value: p.sku }, `${p.name} — ${money(p.unit_amount, p.currency)}`)));
  if (chosen) select.value = chosen;
}

function addLine() {
  const n = $("lines").children.length;
  const select = el("select", { class: "line-product", id: `line-${n}-sku`, "data-user-text": "" });
  fillProducts(select);
  const qty = el("input", { class: "line-qty", id: `line-${n}-qty`, inputmode: "numeric", value: "1" });
  select.addEventListener("change", cartTotal);
  qty.addEventListener("input", cartTotal);
  $("lines").append(el("div", { class: "row" },
    el("div", {}, el("label", { for: select.id, "data-i18n": "product" }, t("product")), select),
    el("div", {}, el("label", { for: qty.id, "data-i18n": "quantity" }, t("quantity")), qty),
    el("button", { type: "button", class: "secondary", "data-i18n-label": "remove", "aria-label": t("remove"),
      onclick: (ev) => { ev.target.closest(".row").remove(); cartTotal(); } }, "×")));
  cartTotal();
}

/** The cart's total as the catalog prices it, while it is built (the server's total
 *  on the created payment is the one that counts). */
function cartTotal() {
  let total = 0, currency = null, ok = true;
  for (const row of $("lines").children) {
    const p = products.find((x) => x.sku === row.querySelector(".line-product").value);
    const q = Number(row.querySelector(".line-qty").value);
    if (!p || !Number.isInteger(q) || q < 1) { ok = false; continue; }
    if (currency && currency !== p.currency) ok = false;
    currency = p.currency;
    total += p.unit_amount * q;
  }
  $("cart-total").textContent = ok && currency ? money(total, currency) : "–";
}

async function createPayment(ev) {
  ev.preventDefault();
  showError($("cart-error"), null);
  const items = [...$("lines").children].map((row) => ({
    sku: row.querySelector(".line-product").value,
    quantity: Number(row.querySelector(".line-qty").value),
  }));
  const currency = (products.find((p) => p.sku === items[0]?.sku) || {}).currency || "CNY";
  const body = { currency, items };
  const phone = $("cart-phone").value.trim();
  if (phone) body.customer = phone;
  const expires = $("cart-expires").value.trim();
  if (expires) body.expires_in = Number(expires);
  try {
    const p = await api("POST", "/v1/payments", sk, body, newKey());
    await showPayment(p);
    watch(p.id);
    refreshLists();
  } catch (e) {
    showError($("cart-error"), e);
  }
}

async function showPayment(p) {
  current = p;
  $("current").classList.remove("hidden");
  const card = el("div", { class: "card", "data-payment": p.id },
    el("div", { class: "row" }, el("strong", {}, p.id), statusBadge(p)),
    el("div", { class: "amount", "data-total": p.amount }, money(p.amount, p.currency)),
    el("div", { class: "muted", "data-user-text": "" }, p.items.map((i) => `${i.name} × ${i.quantity}`).join(", ")),
    p.amount_refunded ? el("div", {}, t("refunded", { amount: money(p.amount_refunded, p.currency) })) : null,
    p.status === "pending" ? el("div", { class: "countdown", "data-expires": p.expires_at, role: "timer" }) : null);
  $("current-card").replaceChildren(card);
  const link = `${location.origin}/pay/${p.id}`;
  $("pay-link").textContent = link;
  $("pay-link").href = link;
  $("refund-form").classList.toggle("hidden", !(p.status === "succeeded" && p.amount_refunded < p.amount));
  $("cancel-payment").classList.toggle("hidden", p.status !== "pending");
  const img = $("qr");
  if (!p.customer && p.status === "pending") {
    // Only this payment's own code: the image is swapped only once it has loaded, and
    // only if this payment is still the one shown.
    if (img.dataset.payment !== p.id) {
      img.classList.add("hidden");
      img.removeAttribute("data-payment");
      const resp = await fetch(`/v1/payments/${p.id}/qr`, { headers: { Authorization: `Bearer ${sk}` } });
      const blob = await resp.blob();
      if (current.id !== p.id) return;
      if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
      img.src = URL.createObjectURL(blob);
      img.dataset.payment = p.id;
    }
    img.alt = t("qr_alt");
    img.classList.remove("hidden");
  } else {
    // A payment sent to a phone, or one no longer payable, has no code to scan: never
    // leave another payment's code under it.
    img.classList.add("hidden");
    img.removeAttribute("data-payment");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.removeAttribute("src");
  }
  tickCountdowns();
}

/** Follows the payment with long-polls until it is no longer pending. */
async function watch(id) {
  const mine = ++watching;
  for (;;) {
    try {
      const p = await api("GET", `/v1/payments/${id}?wait=30`, sk);
      if (mine !== watching) return;
      await showPayment(p);
      if (p.status !== "pending") { refreshBalance(); refreshLists(); return; }
    } catch {
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

async function cancelPayment() {
  showError($("refund-error"), null);
  try {
    await showPayment(await api("POST", `/v1/payments/${current.id}/cancel`, sk, {}, newKey()));
    refreshLists();
  } catch (e) {
    showError($("refund-error"), e);
  }
}

async function refund(ev) {
  ev.preventDefault();
  showError($("refund-error"), null);
  const text = $("refund-amount").value.trim();
  const body = {};
  if (text) {
    const amount = toMinor(text, current.currency);
    if (amount === null) { showError($("refund-error"), new PageError("page_amount")); return; }
    body.amount = amount;
  }
  try {
    await api("POST", `/v1/payments/${current.id}/refunds`, sk, body, newKey());
    $("refund-amount").value = "";
    await showPayment(await api("GET", `/v1/payments/${current.id}`, sk));
    refreshBalance();
    refreshLists();
  } catch (e) {
    showError($("refund-error"), e);
  }
}

// ---- lists with paging ---------------------------------------------------------------

async function refreshLists() {
  const pcur = pages.payments[cursors.payments];
  const payments = await api("GET", `/v1/payments?limit=10${pcur ? `&starting_after=${pcur}` : ""}`, sk);
  $("payments").replaceChildren(...payments.data.map((p) => el("div", { class: "card", "data-payment": p.id },
    el("div", { class: "row" }, el("button", { type: "button", class: "secondary", onclick: () => { showPayment(p); if (p.status === "pending") watch(p.id); } }, p.id), statusBadge(p)),
    el("div", {}, money(p.amount, p.currency), " · ", when(p.created_at)))));
  pages.payments[cursors.payments + 1] = payments.has_more ? payments.data[payments.data.length - 1].id : undefined;
  $("payments-next").disabled = !payments.has_more;
  $("payments-prev").disabled = cursors.payments === 0;
  const ecur = pages.events[cursors.events];
  const events = await api("GET", `/v1/events?limit=10${ecur ? `&starting_after=${ecur}` : ""}`, sk);
  $("events").replaceChildren(...events.data.map((e) => el("li", { "data-event": e.type }, el("span", {}, t(`event_${e.type.replace(".", "_")}`)), el("span", { class: "muted" }, when(e.created_at)))));
  pages.events[cursors.events + 1] = events.has_more ? events.data[events.data.length - 1].id : undefined;
  $("events-next").disabled = !events.has_more;
  $("events-prev").disabled = cursors.events === 0;
}

function page(list, delta) {
  cursors[list] = Math.max(0, cursors[list] + delta);
  refreshLists();
}

async function refreshPayouts() {
  const [accounts, payouts] = await Promise.all([
    api("GET", "/v1/bank_accounts", sk),
    api("GET", "/v1/payouts", sk),
  ]);
  $("payout-account").replaceChildren(...accounts.data.map((a) =>
    el("option", { value: a.id, "data-currency": a.currency }, `${a.bank_code} •••• ${a.last4} (${a.currency})`)));
  $("payouts").replaceChildren(...(payouts.data.length
    ? payouts.data.map((p) => el("li", { "data-payout": p.id, "data-status": p.status },
        el("span", {}, `${money(p.amount, p.currency)} `),
        el("span", { class: `status ${p.status}` }, t(`op_status_${p.status}`)),
        p.failure_code ? el("span", { class: "muted" }, ` ${p.failure_code}`) : ""))
    : [el("li", { class: "muted" }, t("no_payouts"))]));
}

async function addAccount(ev) {
  ev.preventDefault();
  showError($("account-error"), null);
  try {
    await api("POST", "/v1/bank_accounts", sk, {
      holder_name: $("account-holder").value, account_number: $("account-number").value,
      bank_code: $("account-bank").value, currency: "CNY",
    }, newKey());
    $("account-number").value = "";
    await refreshPayouts();
  } catch (e) {
    showError($("account-error"), e);
  }
}

async function payOut(ev) {
  ev.preventDefault();
  showError($("payout-error"), null);
  const option = $("payout-account").selectedOptions[0];
  const currency = option ? option.dataset.currency : "CNY";
  const amount = toMinor($("payout-amount").value, currency);
  if (amount === null) { showError($("payout-error"), new PageError("page_amount")); return; }
  try {
    await api("POST", "/v1/payouts", sk, { amount, currency, bank_account: $("payout-account").value }, newKey());
    $("payout-amount").value = "";
    await Promise.all([refreshPayouts(), refreshBalance()]);
  } catch (e) {
    showError($("payout-error"), e);
  }
}

async function start() {
  $("auth").classList.add("hidden");
  $("app").classList.remove("hidden");
  $("signout").classList.remove("hidden");
  await Promise.all([refreshBalance(), refreshProducts(), refreshPayouts()]);
  if (!$("lines").children.length) addLine();
  await refreshLists();
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  $("lang").addEventListener("click", () => {
    switchLanguage();
    if (sk) { refreshProducts(); refreshLists(); refreshBalance(); refreshPayouts(); cartTotal(); if (current) showPayment(current); }
  });
  $("auth-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => { sessionStorage.removeItem("pocket.sk"); location.reload(); });
  $("product-form").addEventListener("submit", addProduct);
  $("add-line").addEventListener("click", addLine);
  $("cart-form").addEventListener("submit", createPayment);
  $("refund-form").addEventListener("submit", refund);
  $("cancel-payment").addEventListener("click", cancelPayment);
  $("account-form").addEventListener("submit", addAccount);
  $("payout-form").addEventListener("submit", payOut);
  $("payments-next").addEventListener("click", () => page("payments", 1));
  $("payments-prev").addEventListener("click", () => page("payments", -1));
  $("events-next").addEventListener("click", () => page("events", 1));
  $("events-prev").addEventListener("click", () => page("events", -1));
  setInterval(() => tickCountdowns(), 250);
  if (sk) start().catch(() => { sessionStorage.removeItem("pocket.sk"); location.reload(); });
});
