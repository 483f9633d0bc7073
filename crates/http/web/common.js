// What the wallet and the console share: the API client, money and time formatting,
// and small DOM helpers. Tokens live in sessionStorage only, never in a URL.
import { locale, t, renderError } from "./i18n.js";

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || "unknown";
    this.param = e.param || null;
    this.triesLeft = Number.isInteger(e.tries_left) ? e.tries_left : null;
    this.position = Number.isInteger(e.position) ? e.position : null;
  }
}

/** An error made in the page (a field the server never saw), shown by its i18n key. */
export class PageError extends Error {
  constructor(key) {
    super(key);
    this.pageKey = key;
  }
}

/** Calls the API with a bearer credential; throws ApiError on a non-2xx answer. */
/** How long an answer may take before the page says it is waiting for it. */
const SLOW_MS = 400;
let waiting = 0;
let slowTimer = null;

/** A bar at the top of the page, "Loading…", while some answer is slow in coming. */
function waitingFor(delta) {
  waiting += delta;
  let bar = document.getElementById("busy");
  if (!bar) {
    bar = el("div", { id: "busy", class: "busy hidden", role: "status", "data-i18n": "loading" }, t("loading"));
    document.body.prepend(bar);
  }
  clearTimeout(slowTimer);
  if (waiting > 0) slowTimer = setTimeout(() => { bar.classList.remove("hidden"); document.body.setAttribute("aria-busy", "true"); }, SLOW_MS);
  else { bar.classList.add("hidden"); document.body.removeAttribute("aria-busy"); }
}

export async function api(method, path, credential, body, idempotencyKey) {
  waitingFor(1);
  try {
    return await request(method, path, credential, body, idempotencyKey);
  } finally {
    waitingFor(-1);
  }
}

/** An API call nobody waits on at the screen (a long-poll): no "Loading…" for it. */
export async function apiInBackground(method, path, credential, body, idempotencyKey) {
  return request(method, path, credential, body, idempotencyKey);
}

async function request(method, path, credential, body, idempotencyKey) {
  const headers = {};
  if (credential) headers["Authorization"] = `Bearer ${credential}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!resp.ok) throw new ApiError(resp.status, json);
  return json;
}

/** The currencies the apps offer wherever one is picked (the first is the default):
 *  the one list, filled into every `<select data-currencies>` by `fillCurrencies`. */
export const CURRENCIES = ["CNY", "USD", "JPY", "KWD"];

/** Fills every empty `<select data-currencies>` with `CURRENCIES`. */
export function fillCurrencies(root = document) {
  for (const select of root.querySelectorAll("select[data-currencies]")) {
    if (select.options.length === 0) for (const c of CURRENCIES) select.append(el("option", {}, c));
  }
}

/** The ISO 4217 exponent of a currency, from Intl (CNY 2, JPY 0, KWD 3). */
export function exponent(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch { return 2; }
}

/** Minor units → an exact decimal string in major units ("25.98"), no floats. */
export function toMajor(amountMinor, currency) {
  const exp = exponent(currency);
  const neg = amountMinor < 0;
  const digits = String(Math.abs(amountMinor)).padStart(exp + 1, "0");
  const major = exp === 0 ? digits : `${digits.slice(0, -exp)}.${digits.slice(-exp)}`;
  return (neg ? "-" : "") + major;
}

/** Major-unit text typed by a person → minor units (integer), or null. */
export function toMinor(text, currency) {
  const exp = exponent(currency);
  const m = String(text).trim().match(/^(\d+)(?:[.,](\d+))?$/);
  if (!m || (m[2] && m[2].length > exp)) return null;
  const frac = (m[2] || "").padEnd(exp, "0");
  const n = Number(m[1] + frac);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

export function money(amountMinor, currency) {
  const exp = exponent(currency);
  return new Intl.NumberFormat(locale(), { style: "currency", currency, minimumFractionDigits: exp, maximumFractionDigits: exp })
    .format(toMajor(amountMinor, currency));
}

export function when(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "medium" }).format(new Date(iso));
}

/** "4:05" until `expiresAt`, or null when it has passed. */
export function remaining(expiresAt) {
  const ms = new Date(expiresAt).getTime() - Date.now();
  if (ms <= 0) return null;
  const s = Math.ceil(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Creates an element: el("li", {class: "x"}, "text", child…). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

/** "Green tea × 2, Mooncake × 1" (or the description of a payment without a cart). */
export function itemsLine(p) {
  if (!p.items || !p.items.length) return p.description || "";
  return p.items.map((i) => `${i.name} × ${i.quantity}`).join(", ");
}

/** What a payment's badge says: its status, or how much of it came back. */
export function shownStatus(p) {
  if (p.status === "succeeded" && p.amount_refunded > 0) {
    return p.amount_refunded >= p.amount ? "refunded" : "partially_refunded";
  }
  return p.status;
}

/** A status badge; given a payment, refunds show ("Refunded", "Partially refunded"). */
export function statusBadge(status) {
  const shown = typeof status === "string" ? status : shownStatus(status);
  return el("span", { class: `status ${shown}`, "data-status": shown }, t(`status_${shown}`));
}

/** Shows an error as a sentence in the page's language (never raw server English in
 *  Chinese mode); the server's message stays in the title for whoever needs it. */
export function showError(target, err) {
  renderError(target, err);
}

export function newKey() {
  return crypto.randomUUID();
}

/** Keeps every [data-expires] countdown current; turns them into "Expired". */
export function tickCountdowns(onExpired) {
  for (const c of document.querySelectorAll("[data-expires]")) {
    const left = remaining(c.dataset.expires);
    if (left) {
      c.textContent = t("expires_in", { t: left });
    } else if (!c.classList.contains("expired")) {
      c.textContent = t("expired");
      c.classList.add("expired");
      if (onExpired) onExpired(c);
    }
  }
}

/** The payment id in a link (…/pay/pay_…), an EMV QR payload or a bare id. */
export function paymentIdFrom(text) {
  const m = String(text).match(/pay_[0-9A-Za-z]{24}/);
  return m ? m[0] : null;
}

/** Labels each body cell of `table` with its column's heading (`data-label`), which the
 *  narrow layout shows beside the value; a heading only screen readers see labels nothing. */
function labelCells(table) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => (th.querySelector(".sr-only") ? "" : th.textContent.trim()));
  for (const tr of table.querySelectorAll("tbody tr")) {
    [...tr.children].forEach((td, i) => {
      const label = td.colSpan > 1 ? "" : heads[i] || "";
      if (td.dataset.label !== label) td.dataset.label = label;
    });
  }
}

/** Keeps every table's cells labelled as rows arrive and headings change language. */
export function labelTables() {
  for (const table of document.querySelectorAll("table")) {
    labelCells(table);
    new MutationObserver(() => labelCells(table)).observe(table, { childList: true, subtree: true, characterData: true });
  }
}
