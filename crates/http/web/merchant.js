// The merchant console: Overview (takings and charts drawn from the API), New sale
// (a cart priced by the server, its QR code or push to a phone, watched live), Payments
// (filters, search, a detail view with the timeline and webhook deliveries, CSV),
// Catalog, Payouts and Developers (key roll, webhook endpoints, events and deliveries).
import { t, translate, switchLanguage, locale } from "./i18n.js";
import {
  api, apiInBackground, ApiError, PageError, money, when, el, statusBadge, showError, newKey, tickCountdowns, toMinor, toMajor,
  itemsLine, labelTables, fillCurrencies,
} from "./common.js";

const $ = (id) => document.getElementById(id);
const PAGE = 20;
/** How many payments the overview and the date filter read at most (10 pages of 100). */
const MAX_SCAN = 1000;
let sk = sessionStorage.getItem("pocket.sk");
let products = [];
let current = null;
let detail = null;
let watching = 0;
let tab = "overview";
let callingCode = null; // this server's own, "+86": phones of its country shown without it
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

/** A member of the staff signs in with their wallet's phone and PIN. */
async function staffSignIn(ev) {
  ev.preventDefault();
  showError($("staff-error"), null);
  const merchant = $("staff-merchant").value.trim();
  const body = { phone: $("staff-phone").value.trim(), pin: $("staff-pin").value.trim() };
  if (merchant) body.merchant = merchant;
  try {
    const r = await api("POST", "/v1/staff/sessions", null, body);
    sk = r.token;
    sessionStorage.setItem("pocket.sk", sk);
    $("staff-pin").value = "";
    await start();
  } catch (e) {
    if (e instanceof ApiError && e.param === "merchant") $("staff-merchant-row").classList.remove("hidden");
    showError($("staff-error"), e);
  }
}

/** What this credential may do: the page shows only that (the server refuses the rest). */
async function loadAccount() {
  const a = await api("GET", "/v1/account", sk);
  document.body.dataset.scopes = a.scopes.join(" ");
  $("role").textContent = a.role ? t(`role_${a.role}`) : "";
  $("role").classList.toggle("hidden", !a.role);
  return a;
}

function can(scope) {
  return (document.body.dataset.scopes || "").split(" ").includes(scope);
}

function show(name) {
  if (name === "sale" && !can("payments:write")) name = "overview";
  tab = name;
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("hidden", v.id !== `view-${name}`);
  for (const b of document.querySelectorAll("[data-tab]")) {
    if (b.dataset.tab === name) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  }
  const load = { overview: refreshOverview, payments: refreshPayments, catalog: refreshProducts, payouts: refreshPayouts, developers: refreshDevelopers }[name];
  if (load) load().catch(() => {});
}

// ---- overview: takings and charts --------------------------------------------------------

async function refreshBalance() {
  const b = await api("GET", "/v1/balance", sk);
  $("balance").replaceChildren(...(b.balances.length
    ? b.balances.map((x) => el("li", {}, el("span", {}, x.currency), el("strong", { "data-balance": x.currency }, money(x.available, x.currency))))
    : [el("li", { class: "muted" }, t("no_balance"))]));
}

/** Payments created since `sinceMs`, newest first, at most MAX_SCAN. */
async function paymentsSince(sinceMs, status, customer = "") {
  const out = [];
  let after = null;
  while (out.length < MAX_SCAN) {
    const q = `limit=100${status ? `&status=${status}` : ""}${customer ? `&customer=${encodeURIComponent(customer)}` : ""}${after ? `&starting_after=${after}` : ""}`;
    const list = await api("GET", `/v1/payments?${q}`, sk);
    for (const p of list.data) {
      if (new Date(p.created_at).getTime() < sinceMs) return { payments: out, complete: true };
      out.push(p);
    }
    if (!list.has_more) return { payments: out, complete: true };
    after = list.data[list.data.length - 1].id;
  }
  return { payments: out, complete: false };
}

function startOfDay(d) { const x = new Date(d); x.setHours(0, 0, 0, 0); return x; }

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

/** A bar chart of `bars` ([label, value]); values in minor units of `currency`. The
 *  value axis is marked at its top and half way; with few bars each carries its value;
 *  a period without sales says so. */
function barChart(bars, currency, title) {
  const w = 720, h = 170, top = 18, pad = 96, max = Math.max(1, ...bars.map(([, v]) => v));
  const bw = (w - pad) / bars.length;
  const chart = svg("svg", { viewBox: `0 0 ${w} ${top + h + 22}`, role: "img", "aria-label": title, class: "bars" });
  for (const share of [1, 0.5]) {
    const y = top + h - share * h;
    chart.append(svg("line", { x1: pad, y1: y, x2: w, y2: y, class: "grid" }),
      svg("text", { x: pad - 8, y: y + 4, "text-anchor": "end", class: "axis tick" }, money(Math.round(max * share), currency)));
  }
  bars.forEach(([label, v], i) => {
    const bh = Math.max(0, Math.round((v / max) * h));
    const x = pad + i * bw;
    chart.append(svg("rect", { x: x + 2, y: top + h - bh, width: Math.max(1, bw - 4), height: bh, class: "bar" },
      svg("title", {}, `${label}: ${money(v, currency)}`)));
    if (bars.length <= 8 && v > 0) chart.append(svg("text", { x: x + bw / 2, y: top + h - bh - 4, "text-anchor": "middle", class: "axis value" }, money(v, currency)));
    if (bars.length <= 8 || i % 3 === 0) chart.append(svg("text", { x: x + bw / 2, y: top + h + 16, "text-anchor": "middle", class: "axis" }, label));
  });
  chart.append(svg("line", { x1: pad, y1: top + h, x2: w, y2: top + h, class: "axis-line" }));
  if (bars.every(([, v]) => v <= 0)) {
    chart.append(svg("text", { x: pad + (w - pad) / 2, y: top + h / 2, "text-anchor": "middle", class: "axis empty" }, t("no_sales_period")));
  }
  return chart;
}

/** What reached the balance through sales since `from`, per `interval`, from the server's ledger. */
async function takings(from, interval) {
  const q = new URLSearchParams({ from: from.toISOString(), interval, utc_offset: String(-from.getTimezoneOffset()) });
  return api("GET", `/v1/balance/takings?${q}`, sk);
}

async function refreshOverview() {
  await refreshBalance();
  const now = new Date();
  const today = startOfDay(now);
  const weekStart = new Date(today.getTime() - 6 * 86_400_000);
  const [byDay, byHour, { payments, complete }] = await Promise.all([
    takings(weekStart, "day"), takings(today, "hour"), paymentsSince(weekStart.getTime())]);
  // Takings: what reached the balance (captured, less refunds), in the most used currency.
  const main = byDay.currencies.reduce((a, c) => (!a || c.received > a.received ? c : a), null);
  const currency = main?.currency || payments[0]?.currency || "CNY";
  const hourly = byHour.currencies.find((c) => c.currency === currency);
  const daily = main?.intervals || [];
  $("takings-today").textContent = money(daily.length ? daily[daily.length - 1].net : 0, currency);
  $("takings-week").textContent = money(main?.net || 0, currency);
  const hours = Array.from({ length: 24 }, (_, h) => [String(h), 0]);
  for (const i of hourly?.intervals || []) {
    const h = new Date(i.start).getHours();
    hours[h][1] += i.net;
  }
  const days = Array.from({ length: 7 }, (_, i) => {
    const d = new Date(weekStart.getTime() + i * 86_400_000);
    return [new Intl.DateTimeFormat(locale(), { weekday: "short" }).format(d), daily[i]?.net || 0];
  });
  $("chart-hours").replaceChildren(barChart(hours, currency, t("per_hour_today")));
  $("chart-days").replaceChildren(barChart(days, currency, t("per_day")));
  const tiers = new Map();
  for (const p of payments) {
    const row = tiers.get(p.policy.tier) || { succeeded: 0, expired: 0, declined: 0, canceled: 0, pending: 0 };
    row[p.status] += 1;
    tiers.set(p.policy.tier, row);
  }
  const share = (n, row) => {
    const total = row.succeeded + row.expired + row.declined + row.canceled;
    return total ? `${n} (${Math.round((100 * n) / total)}%)` : "0";
  };
  $("tiers").replaceChildren(...[...tiers].map(([tier, row]) => el("tr", { "data-tier": tier },
    el("td", {}, t(`tier_${tier}`) === `tier_${tier}` ? tier : t(`tier_${tier}`)),
    el("td", {}, share(row.succeeded, row)), el("td", {}, share(row.expired, row)),
    el("td", {}, share(row.declined, row)), el("td", {}, share(row.canceled, row)))));
  $("overview-note").textContent = complete ? "" : t("overview_partial", { n: MAX_SCAN });
}

// ---- catalog -----------------------------------------------------------------------------

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
  cartTotal();
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

// ---- new sale: the cart and the payment it made ----------------------------------------------

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
  // A new attempt clears the last result: a "Paid" card beside this attempt's error
  // reads as this sale's success. (Its watcher stops showing it too.)
  watching++;
  current = null;
  $("current").classList.add("hidden");
  $("current-card").replaceChildren();
  const items = [...$("lines").children].map((row) => ({
    sku: row.querySelector(".line-product").value,
    quantity: Number(row.querySelector(".line-qty").value),
  }));
  const currency = (products.find((p) => p.sku === items[0]?.sku) || {}).currency || "CNY";
  const body = { currency, items };
  const phone = $("cart-phone").value.trim();
  if (phone) body.customer = phone;
  // A scanner types the code (and Enter) into this field; the groups the wallet shows
  // may be typed with their spaces.
  const code = $("cart-code").value.replace(/\s/g, "");
  if (code) body.payment_code = code;
  const expires = $("cart-expires").value.trim();
  if (expires) body.expires_in = Number(expires);
  if ($("cart-hold").checked) body.capture = "manual";
  try {
    const p = await api("POST", "/v1/payments", sk, body, newKey());
    $("cart-code").value = "";
    await showPayment(p);
    watch(p.id);
  } catch (e) {
    showError($("cart-error"), e);
  }
}

/** The payer as a person reads them: their name and masked phone, without this server's
 *  own calling code (`Li Lei · 138****0001`); the id when the payment names no more. */
function customerLabel(p) {
  if (!p.customer_name && !p.customer_phone) return el("code", {}, p.customer);
  const own = callingCode ? `${callingCode} ` : null;
  const phone = own && p.customer_phone?.startsWith(own) ? p.customer_phone.slice(own.length) : p.customer_phone;
  if (!p.customer_name) return el("span", { title: p.customer }, phone);
  return el("span", { title: p.customer }, el("span", { "data-user-text": "" }, p.customer_name), p.customer_phone ? ` · ${phone}` : "");
}

function paymentCard(p) {
  return el("div", { class: "card", "data-payment": p.id },
    el("div", { class: "row" }, el("strong", {}, el("code", {}, p.id)), statusBadge(p)),
    el("div", { class: "amount", "data-total": p.amount }, money(p.amount, p.currency)),
    el("div", { class: "muted", "data-user-text": "" }, itemsLine(p)),
    p.customer ? el("div", { class: "muted", "data-customer": p.customer }, customerLabel(p)) : null,
    p.capture === "manual" && p.status === "succeeded" ? el("div", {}, t("captured", { amount: money(p.amount_captured, p.currency) })) : null,
    p.amount_refunded ? el("div", {}, t("refunded", { amount: money(p.amount_refunded, p.currency) })) : null,
    p.status === "pending" ? el("div", { class: "countdown", "data-expires": p.expires_at, role: "timer" }) : null);
}

async function showPayment(p) {
  current = p;
  $("current").classList.remove("hidden");
  $("current-card").replaceChildren(paymentCard(p));
  const link = `${location.origin}/pay/${p.id}`;
  $("pay-link").textContent = link;
  $("pay-link").href = link;
  $("cancel-payment").classList.toggle("hidden", p.status !== "pending" && p.status !== "authorized");
  // A hold: capture all or part of it before its deadline.
  $("capture-form").classList.toggle("hidden", p.status !== "authorized");
  $("capture-before").textContent = p.capture_before ? t("capture_before", { time: when(p.capture_before) }) : "";
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
      const p = await apiInBackground("GET", `/v1/payments/${id}?wait=30`, sk);
      if (mine !== watching) return;
      await showPayment(p);
      if (p.status !== "pending") { refreshBalance().catch(() => {}); return; }
    } catch {
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/** The body of a capture or refund: `{}` for an empty field (all of it), `{amount}` in
 *  minor units, or null when the text is not an amount. */
function amountBody(text, currency) {
  const typed = text.trim();
  if (!typed) return {};
  const amount = toMinor(typed, currency);
  return amount === null ? null : { amount };
}

async function capturePayment(ev) {
  ev.preventDefault();
  showError($("current-error"), null);
  const body = amountBody($("capture-amount").value, current.currency);
  if (!body) { showError($("current-error"), new PageError("page_amount")); return; }
  try {
    await showPayment(await api("POST", `/v1/payments/${current.id}/capture`, sk, body, newKey()));
    $("capture-amount").value = "";
    refreshBalance().catch(() => {});
  } catch (e) {
    showError($("current-error"), e);
  }
}

async function cancelPayment() {
  showError($("current-error"), null);
  try {
    await showPayment(await api("POST", `/v1/payments/${current.id}/cancel`, sk, {}, newKey()));
  } catch (e) {
    showError($("current-error"), e);
  }
}

// ---- payments: table, filters, search, detail, CSV ----------------------------------------------

function filters() {
  const from = $("filter-from").value, to = $("filter-to").value;
  return {
    status: $("filter-status").value,
    customer: $("filter-customer").value.trim(),
    from: from ? new Date(`${from}T00:00:00`).getTime() : null,
    to: to ? new Date(`${to}T00:00:00`).getTime() + 86_400_000 : null,
  };
}

async function refreshPayments() {
  showError($("payments-error"), null);
  const f = filters();
  let rows, hasMore = false;
  if (f.from !== null || f.to !== null) {
    // Dates: read back to the start of the range (at most MAX_SCAN), then filter.
    const { payments } = await paymentsSince(f.from ?? 0, f.status, f.customer);
    rows = payments.filter((p) => f.to === null || new Date(p.created_at).getTime() < f.to);
    $("payments-prev").disabled = true;
  } else {
    const after = pages.payments[cursors.payments];
    const customer = f.customer ? `&customer=${encodeURIComponent(f.customer)}` : "";
    const list = await api("GET", `/v1/payments?limit=${PAGE}${f.status ? `&status=${f.status}` : ""}${customer}${after ? `&starting_after=${after}` : ""}`, sk);
    rows = list.data;
    hasMore = list.has_more;
    pages.payments[cursors.payments + 1] = hasMore ? rows[rows.length - 1].id : undefined;
    $("payments-prev").disabled = cursors.payments === 0;
  }
  $("payments-next").disabled = !hasMore;
  $("payments").replaceChildren(...(rows.length ? rows.map((p) => el("tr", { "data-payment": p.id },
    el("td", {}, when(p.created_at)),
    el("td", {}, el("button", { type: "button", class: "link", onclick: () => openDetail(p) }, el("code", {}, p.id))),
    el("td", { "data-customer": p.customer ?? "" }, p.customer ? customerLabel(p) : "–"),
    el("td", { "data-user-text": "" }, itemsLine(p)),
    el("td", {}, money(p.amount, p.currency)),
    el("td", {}, statusBadge(p))))
    : [el("tr", {}, el("td", { colspan: "6", class: "muted" }, t("no_payments")))]));
}

/** Downloads every payment the filters match, as the server's CSV export streams it. */
async function exportCsv(ev) {
  ev.preventDefault();
  showError($("payments-error"), null);
  const f = filters();
  const q = new URLSearchParams();
  if (f.status) q.set("status", f.status);
  if (f.customer) q.set("customer", f.customer);
  if (f.from !== null) q.set("from", new Date(f.from).toISOString());
  if (f.to !== null) q.set("to", new Date(f.to).toISOString());
  try {
    const resp = await fetch(`/v1/payments/export?${q}`, { headers: { Authorization: `Bearer ${sk}` } });
    if (!resp.ok) throw new ApiError(resp.status, await resp.json().catch(() => null));
    const href = URL.createObjectURL(await resp.blob());
    const a = el("a", { href, download: "payments.csv", class: "hidden" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
  } catch (e) {
    showError($("payments-error"), e);
  }
}

async function search(ev) {
  ev.preventDefault();
  showError($("payments-error"), null);
  const id = $("search-id").value.trim();
  try {
    if (!/^pay_[0-9A-Za-z]{24}$/.test(id)) throw new PageError("page_payment_id");
    await openDetail(await api("GET", `/v1/payments/${id}`, sk));
  } catch (e) {
    showError($("payments-error"), e);
  }
}

async function openDetail(p) {
  detail = p;
  $("detail").classList.remove("hidden");
  $("detail-card").replaceChildren(paymentCard(p));
  detailActions(p);
  showError($("refund-error"), null);
  tickCountdowns();
  // The timeline: this payment's events among the merchant's latest (MAX_SCAN at most),
  // each with its webhook deliveries.
  const events = [];
  let after = null;
  for (let read = 0; read < MAX_SCAN;) {
    const list = await api("GET", `/v1/events?limit=100${after ? `&starting_after=${after}` : ""}`, sk);
    read += list.data.length;
    for (const e of list.data) {
      const o = e.data.object;
      if (o.id === p.id || o.payment === p.id) events.push(e);
    }
    if (!list.has_more || list.data.some((e) => e.type === "payment.created" && e.data.object.id === p.id)) break;
    after = list.data[list.data.length - 1].id;
  }
  if (detail !== p) return;
  $("timeline").replaceChildren(...await eventItems(events.reverse()));
}

/** What the detail view offers: what the payment's state allows, nothing else. */
function detailActions(p) {
  $("detail-capture-form").classList.toggle("hidden", p.status !== "authorized");
  const cancel = $("detail-cancel");
  cancel.classList.toggle("hidden", !(p.status === "pending" || p.status === "authorized"));
  cancel.dataset.i18n = p.status === "authorized" ? "release_hold" : "cancel_payment";
  cancel.textContent = t(cancel.dataset.i18n);
  // A request addressed to a wallet can be sent to it again while it waits.
  $("detail-remind").classList.toggle("hidden", !(p.status === "pending" && p.customer));
  // What can be refunded is what reached the balance: a hold's captured part.
  $("refund-form").classList.toggle("hidden", !(p.status === "succeeded" && p.amount_refunded < p.amount_captured));
  showError($("detail-error"), null);
  $("detail-notice").textContent = "";
}

/** Acts on the payment in the detail view, then shows it as it now is. */
async function detailAct(action, body) {
  showError($("detail-error"), null);
  try {
    await api("POST", `/v1/payments/${detail.id}/${action}`, sk, body, newKey());
    await openDetail(await api("GET", `/v1/payments/${detail.id}`, sk));
    refreshBalance().catch(() => {});
    refreshPayments().catch(() => {});
    return true;
  } catch (e) {
    showError($("detail-error"), e);
    return false;
  }
}

async function detailCapture(ev) {
  ev.preventDefault();
  const body = amountBody($("detail-capture-amount").value, detail.currency);
  if (!body) { showError($("detail-error"), new PageError("page_amount")); return; }
  if (await detailAct("capture", body)) $("detail-capture-amount").value = "";
}

/** The list items of `events`, each with its webhook deliveries (or "No events yet"). */
async function eventItems(events) {
  const items = await Promise.all(events.map(async (e) => {
    const attempts = await api("GET", `/v1/events/${e.id}/deliveries`, sk).catch(() => ({ data: [] }));
    return eventItem(e, attempts.data);
  }));
  return items.length ? items : [el("li", { class: "muted" }, t("no_events"))];
}

function eventItem(e, attempts) {
  return el("li", { "data-event": e.type, "data-event-id": e.id },
    el("strong", {}, t(`event_${e.type.replace(".", "_")}`)), " ", el("span", { class: "muted" }, when(e.created_at)),
    el("ul", { class: "plain deliveries" }, ...(attempts.length ? attempts.map((a) => el("li", { "data-delivery": a.status_code ?? "none" },
      el("span", {}, a.status_code ? `HTTP ${a.status_code}` : t("no_response")),
      el("span", { class: "muted" }, `${when(a.attempted_at)} · ${a.duration_ms} ${t("unit_ms")}`)))
      : [el("li", { class: "muted" }, t("no_deliveries"))])),
    el("button", { type: "button", class: "secondary small", "data-action": "redeliver", "data-needs": "webhooks:write", onclick: (ev) => redeliver(e, ev.target) }, t("redeliver")));
}

async function redeliver(e, button) {
  try {
    await api("POST", `/v1/events/${e.id}/redeliver`, sk, {}, newKey());
    button.textContent = t("redelivery_queued");
    button.disabled = true;
  } catch (err) {
    const p = el("p", { class: "error", role: "alert" });
    showError(p, err);
    button.after(p);
  }
}

async function refund(ev) {
  ev.preventDefault();
  showError($("refund-error"), null);
  const body = amountBody($("refund-amount").value, detail.currency);
  if (!body) { showError($("refund-error"), new PageError("page_amount")); return; }
  try {
    await api("POST", `/v1/payments/${detail.id}/refunds`, sk, body, newKey());
    $("refund-amount").value = "";
    await openDetail(await api("GET", `/v1/payments/${detail.id}`, sk));
    refreshBalance().catch(() => {});
    refreshPayments().catch(() => {});
  } catch (e) {
    showError($("refund-error"), e);
  }
}

function page(list, delta) {
  cursors[list] = Math.max(0, cursors[list] + delta);
  (list === "payments" ? refreshPayments : refreshEvents)().catch(() => {});
}

// ---- payouts ---------------------------------------------------------------------------------

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
        p.failure_code ? el("span", { class: "muted" }, ` ${t(`err_${p.failure_code}`)}`) : ""))
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

// ---- developers: the key, webhook endpoints, events and their deliveries -----------------------

async function refreshDevelopers() {
  await Promise.all([refreshEndpoints(), refreshEvents(), ...(can("keys:write") ? [refreshStaff(), refreshRestrictedKeys()] : [])]);
}

// ---- staff and restricted keys (the owner's) ------------------------------------------------

async function refreshStaff() {
  const list = await api("GET", "/v1/staff", sk);
  $("staff").replaceChildren(...(list.data.length ? list.data.map((m) => el("tr", { "data-staff": m.id },
    el("td", {}, m.phone), el("td", {}, t(`role_${m.role}`)),
    el("td", {}, el("button", { type: "button", class: "danger small", onclick: () => removeStaff(m) }, t("remove")))))
    : [el("tr", {}, el("td", { colspan: "3", class: "muted" }, t("no_staff")))]));
}

async function addStaff(ev) {
  ev.preventDefault();
  showError($("staff-add-error"), null);
  try {
    await api("POST", "/v1/staff", sk, { phone: $("staff-add-phone").value.trim(), role: $("staff-add-role").value });
    $("staff-add-phone").value = "";
    await refreshStaff();
  } catch (e) {
    showError($("staff-add-error"), e);
  }
}

async function removeStaff(m) {
  showError($("staff-add-error"), null);
  try {
    await api("DELETE", `/v1/staff/${m.id}`, sk);
    await refreshStaff();
  } catch (e) {
    showError($("staff-add-error"), e);
  }
}

async function refreshRestrictedKeys() {
  const list = await api("GET", "/v1/restricted_keys", sk);
  $("restricted-keys").replaceChildren(...(list.data.length ? list.data.map((k) => el("li", { "data-key": k.id },
    el("span", {}, el("strong", { "data-user-text": "" }, k.name), " ", el("code", {}, `${k.prefix}…`), el("br"),
      el("span", { class: "muted small" }, k.scopes.join(", "))),
    el("button", { type: "button", class: "danger small", onclick: () => revokeRestrictedKey(k) }, t("revoke"))))
    : [el("li", { class: "muted" }, t("no_restricted_keys"))]));
}

async function createRestrictedKey(ev) {
  ev.preventDefault();
  showError($("rk-error"), null);
  $("rk-secret").textContent = "";
  const scopes = [...document.querySelectorAll('input[name="rk-scope"]:checked')].map((i) => i.value);
  try {
    const k = await api("POST", "/v1/restricted_keys", sk, { name: $("rk-name").value.trim(), scopes });
    $("rk-name").value = "";
    $("rk-secret").replaceChildren(t("key_shown_once"), " ", el("code", { "data-secret": "" }, k.secret));
    await refreshRestrictedKeys();
  } catch (e) {
    showError($("rk-error"), e);
  }
}

async function revokeRestrictedKey(k) {
  showError($("rk-error"), null);
  try {
    await api("DELETE", `/v1/restricted_keys/${k.id}`, sk);
    await refreshRestrictedKeys();
  } catch (e) {
    showError($("rk-error"), e);
  }
}

/** One Idempotency-Key per roll, kept until an answer arrives: a retry after a lost
 *  answer gets the same new key, and the key in use keeps working for the hour. */
let pendingRoll = null;

async function rollKey() {
  showError($("key-error"), null);
  if (!pendingRoll && !window.confirm(t("roll_key_hint"))) return;
  pendingRoll = pendingRoll || newKey();
  try {
    const r = await api("POST", "/v1/keys", sk, { expire_current_in: 3600 }, pendingRoll);
    pendingRoll = null;
    sk = r.secret_key;
    sessionStorage.setItem("pocket.sk", sk);
    $("new-key").textContent = t("new_key_shown_once", { name: r.name, key: r.secret_key });
  } catch (e) {
    // A refusal is final; a lost answer (no status) is retried with the same key.
    if (e.status) pendingRoll = null;
    showError($("key-error"), e);
  }
}

async function refreshEndpoints() {
  const list = await api("GET", "/v1/webhook_endpoints", sk);
  $("endpoints").replaceChildren(...(list.data.length ? list.data.map((w) => el("li", { "data-endpoint": w.id },
    el("span", {}, el("code", {}, w.url)),
    el("button", { type: "button", class: "danger small", "aria-label": `${t("remove")} ${w.url}`, onclick: async () => {
      try { await api("DELETE", `/v1/webhook_endpoints/${w.id}`, sk); await refreshEndpoints(); }
      catch (e) { showError($("endpoint-error"), e); }
    } }, t("remove"))))
    : [el("li", { class: "muted" }, t("no_endpoints"))]));
}

async function addEndpoint(ev) {
  ev.preventDefault();
  showError($("endpoint-error"), null);
  try {
    const w = await api("POST", "/v1/webhook_endpoints", sk, { url: $("endpoint-url").value.trim() }, newKey());
    $("endpoint-url").value = "";
    $("endpoint-secret").textContent = t("endpoint_secret", { secret: w.secret });
    await refreshEndpoints();
  } catch (e) {
    showError($("endpoint-error"), e);
  }
}

async function refreshEvents() {
  const ecur = pages.events[cursors.events];
  const events = await api("GET", `/v1/events?limit=10${ecur ? `&starting_after=${ecur}` : ""}`, sk);
  $("events").replaceChildren(...await eventItems(events.data));
  pages.events[cursors.events + 1] = events.has_more ? events.data[events.data.length - 1].id : undefined;
  $("events-next").disabled = !events.has_more;
  $("events-prev").disabled = cursors.events === 0;
}

// ---- start -----------------------------------------------------------------------------------

async function start() {
  fillCurrencies();
  await loadAccount();
  $("auth").classList.add("hidden");
  $("app").classList.remove("hidden");
  $("signout").classList.remove("hidden");
  await refreshProducts();
  if (!$("lines").children.length) addLine();
  show(tab);
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  labelTables();
  api("GET", "/v1/wallet/settings", null).then((s) => { callingCode = s.calling_code; }).catch(() => { /* phones in full form */ });
  $("lang").addEventListener("click", () => {
    switchLanguage();
    if (sk) { show(tab); cartTotal(); refreshProducts().catch(() => {}); if (current) showPayment(current); if (detail) openDetail(detail); }
  });
  $("auth-form").addEventListener("submit", signIn);
  $("staff-form").addEventListener("submit", staffSignIn);
  $("staff-add-form").addEventListener("submit", addStaff);
  $("rk-form").addEventListener("submit", createRestrictedKey);
  $("signout").addEventListener("click", () => { sessionStorage.removeItem("pocket.sk"); location.reload(); });
  for (const b of document.querySelectorAll("[data-tab]")) b.addEventListener("click", () => show(b.dataset.tab));
  $("product-form").addEventListener("submit", addProduct);
  $("add-line").addEventListener("click", addLine);
  $("cart-form").addEventListener("submit", createPayment);
  $("cancel-payment").addEventListener("click", cancelPayment);
  $("capture-form").addEventListener("submit", capturePayment);
  $("refund-form").addEventListener("submit", refund);
  $("detail-capture-form").addEventListener("submit", detailCapture);
  $("detail-cancel").addEventListener("click", () => detailAct("cancel", {}));
  $("detail-remind").addEventListener("click", async () => {
    $("detail-notice").textContent = "";
    if (await detailAct("remind", {})) $("detail-notice").textContent = t("reminded");
  });
  $("filter-form").addEventListener("submit", (ev) => { ev.preventDefault(); cursors.payments = 0; pages.payments = [null]; refreshPayments().catch((e) => showError($("payments-error"), e)); });
  $("search-form").addEventListener("submit", search);
  $("csv").addEventListener("click", exportCsv);
  $("account-form").addEventListener("submit", addAccount);
  $("payout-form").addEventListener("submit", payOut);
  $("roll-key").addEventListener("click", rollKey);
  $("endpoint-form").addEventListener("submit", addEndpoint);
  $("payments-next").addEventListener("click", () => page("payments", 1));
  $("payments-prev").addEventListener("click", () => page("payments", -1));
  $("events-next").addEventListener("click", () => page("events", 1));
  $("events-prev").addEventListener("click", () => page("events", -1));
  setInterval(() => tickCountdowns(), 250);
  if (sk) start().catch(() => { sessionStorage.removeItem("pocket.sk"); location.reload(); });
});
