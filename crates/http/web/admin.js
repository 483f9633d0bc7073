// The operator console: merchants (create, list, roll keys), customers by phone,
// top-ups, the ledger audit, and a live view read from /metrics.
import { t, translate, switchLanguage } from "./i18n.js";
import { api, ApiError, PageError, money, when, el, showError, newKey, toMinor, labelTables, fillCurrencies } from "./common.js";

const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem("pocket.admin");
const pages = [null];
let cursor = 0;
let tab = "system";
let lastPaid = null;

// ---- sections --------------------------------------------------------------------------

function show(name) {
  tab = name;
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("hidden", v.id !== `view-${name}`);
  for (const b of document.querySelectorAll("[data-tab]")) {
    if (b.dataset.tab === name) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  }
  if (name === "merchants") refreshMerchants().catch((e) => showError($("merchant-error"), e));
  if (name === "ledger") refreshLedger(false);
  if (name === "rules") refreshRules().catch((e) => showError($("rule-error"), e));
}

// ---- risk rules ----------------------------------------------------------------------------

async function refreshRules() {
  const list = await api("GET", "/v1/admin/rules", key);
  $("rules").replaceChildren(...(list.data.length ? list.data.map((r) => el("tr", { "data-rule": r.id },
    el("td", { "data-user-text": "" }, r.name), el("td", { "data-user-text": "" }, el("code", {}, r.when)),
    el("td", {}, t(`action_${r.action}`)),
    el("td", {}, el("button", { type: "button", class: "danger", "aria-label": `${t("remove_rule")} ${r.name}`, onclick: () => removeRule(r) }, t("remove_rule")))))
    : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, t("no_rules")))]));
}

async function addRule(ev) {
  ev.preventDefault();
  showError($("rule-error"), null);
  const body = { name: $("rule-name").value.trim(), when: $("rule-when").value.trim(), action: $("rule-action").value };
  try {
    await api("POST", "/v1/admin/rules", key, body, newKey());
    $("rule-name").value = "";
    $("rule-when").value = "";
    await refreshRules();
  } catch (e) {
    showError($("rule-error"), e);
    if (e instanceof ApiError && e.position !== null) markRuleError(e.position);
  }
}

/** Selects the character of the rule the parser points at (1-based, as sent: trimmed). */
function markRuleError(position) {
  const input = $("rule-when");
  const lead = input.value.length - input.value.trimStart().length;
  const at = Math.min(input.value.length, lead + position - 1);
  input.focus();
  input.setSelectionRange(at, Math.min(input.value.length, at + 1));
  input.setAttribute("aria-invalid", "true");
  input.addEventListener("input", () => input.removeAttribute("aria-invalid"), { once: true });
}

async function removeRule(r) {
  showError($("rule-error"), null);
  try {
    await api("DELETE", `/v1/admin/rules/${r.id}`, key);
    await refreshRules();
  } catch (e) {
    showError($("rule-error"), e);
  }
}

// ---- merchants -------------------------------------------------------------------------

async function refreshMerchants() {
  const after = pages[cursor];
  const list = await api("GET", `/v1/admin/merchants?limit=20${after ? `&starting_after=${after}` : ""}`, key);
  $("merchants").replaceChildren(...(list.data.length ? list.data.map((m) => el("tr", { "data-merchant": m.id },
    el("td", { "data-user-text": "" }, m.name), el("td", {}, el("code", {}, m.id)), el("td", {}, when(m.created_at)),
    el("td", {}, el("button", { type: "button", class: "secondary", "aria-label": `${t("roll_key")} ${m.name}`, onclick: () => rollKey(m) }, t("roll_key")))))
    : [el("tr", {}, el("td", { colspan: "4", class: "muted" }, t("no_merchants")))]));
  pages[cursor + 1] = list.has_more ? list.data[list.data.length - 1].id : undefined;
  $("merchants-next").disabled = !list.has_more;
  $("merchants-prev").disabled = cursor === 0;
}

async function createMerchant(ev) {
  ev.preventDefault();
  showError($("merchant-error"), null);
  try {
    const m = await api("POST", "/v1/admin/merchants", key, { name: $("merchant-name").value.trim() }, newKey());
    $("merchant-name").value = "";
    $("merchant-key").textContent = t("new_key_shown_once", { name: m.name, key: m.secret_key });
    cursor = 0;
    await refreshMerchants();
  } catch (e) {
    showError($("merchant-error"), e);
  }
}

async function rollKey(m) {
  showError($("merchant-error"), null);
  if (!window.confirm(t("roll_key_confirm", { name: m.name }))) return;
  try {
    const r = await api("POST", `/v1/admin/merchants/${m.id}/keys`, key, {}, newKey());
    $("merchant-key").textContent = t("new_key_shown_once", { name: m.name, key: r.secret_key });
  } catch (e) {
    showError($("merchant-error"), e);
  }
}

// ---- customers and top-ups --------------------------------------------------------------

async function findCustomer(ev) {
  ev.preventDefault();
  showError($("customer-error"), null);
  try {
    const found = await api("GET", `/v1/admin/customers?phone=${encodeURIComponent($("customer-phone").value.trim())}`, key);
    $("customer-found").replaceChildren(...(found.data.length ? found.data.map((c) => el("div", { class: "card", "data-customer": c.id },
      el("strong", { "data-user-text": "" }, c.name), el("div", {}, c.phone), el("div", {}, el("code", {}, c.id)),
      el("ul", { class: "plain" }, ...c.balances.map((b) => el("li", {}, el("span", {}, b.currency), el("strong", {}, money(b.available, b.currency))))),
      el("div", { class: "actions" }, el("button", { type: "button", class: "secondary", "data-action": "pin-reset", onclick: (ev) => pinReset(c, ev.target) }, t("issue_pin_reset"))),
      el("p", { class: "notice pin-reset-code", role: "status" })))
      : [el("p", { class: "muted" }, t("no_customer"))]));
  } catch (e) {
    showError($("customer-error"), e);
  }
}

/** A one-time code for a customer who forgot their PIN, to hand over once their
 *  identity is checked; shown here only. */
async function pinReset(c, button) {
  showError($("customer-error"), null);
  const out = button.closest("[data-customer]").querySelector(".pin-reset-code");
  try {
    const r = await api("POST", `/v1/admin/customers/${c.id}/pin_reset`, key, {});
    const code = r.code.replace(/(\d{4})(\d{3})(\d{3})/, "$1 $2 $3");
    out.replaceChildren(t("pin_reset_code", { time: when(r.expires_at) }), " ", el("code", { "data-code": r.code }, code));
  } catch (e) {
    showError($("customer-error"), e);
  }
}

async function topup(ev) {
  ev.preventDefault();
  showError($("topup-error"), null);
  $("topup-done").textContent = "";
  const currency = $("topup-currency").value;
  const amount = toMinor($("topup-amount").value, currency);
  if (amount === null) { showError($("topup-error"), new PageError("page_amount")); return; }
  try {
    const r = await api("POST", "/v1/admin/topups", key, { customer: $("topup-customer").value.trim(), amount, currency }, newKey());
    $("topup-amount").value = "";
    $("topup-done").textContent = `${t("topup_done")}: ${money(r.amount, r.currency)} → ${r.customer}`;
  } catch (e) {
    showError($("topup-error"), e);
  }
}

// ---- ledger ----------------------------------------------------------------------------

async function refreshLedger(full) {
  showError($("ledger-error"), null);
  try {
    const r = await api("GET", `/v1/admin/ledger${full ? "?audit=full" : ""}`, key);
    $("ledger").replaceChildren(...r.currencies.map((c) => el("tr", { "data-currency": c.currency },
      el("td", {}, c.currency), el("td", {}, money(c.total_debits, c.currency)), el("td", {}, money(c.total_credits, c.currency)),
      el("td", {}, el("span", { class: `status ${c.balanced ? "succeeded" : "declined"}`, "data-balanced": String(c.balanced) }, t(c.balanced ? "balanced" : "not_balanced"))))));
    $("ledger-summary").textContent = `${t("accounts")}: ${r.accounts} · ${t("transfers")}: ${r.transfers}`;
  } catch (e) {
    showError($("ledger-error"), e);
  }
}

// ---- reconciliation: Pocket's operations against a connector's statement -----------------------

/** A line as text; whatever a bank put in it, one bad line never hides the others. */
function lineText(l) {
  if (!l) return "–";
  let amount;
  try {
    amount = money(l.amount, l.currency);
  } catch {
    amount = `${String(l.amount)} ${String(l.currency)}`;
  }
  return `${amount} · ${t(`op_status_${l.status}`)}`;
}

async function reconcile(ev) {
  ev.preventDefault();
  showError($("reconcile-error"), null);
  const q = new URLSearchParams({ connector: $("reconcile-connector").value.trim(), date: $("reconcile-date").value });
  try {
    const r = await api("GET", `/v1/admin/reconciliation?${q}`, key);
    const rows = [
      ...r.missing_at_connector.map((l) => ["missing_at_connector", l.operation_id, l, null]),
      ...r.missing_in_pocket.map((l) => ["missing_in_pocket", l.operation_id, null, l]),
      ...r.amount_mismatches.map((m) => ["amount_mismatch", m.operation_id, m.pocket, m.connector]),
      ...r.status_mismatches.map((m) => ["status_mismatch", m.operation_id, m.pocket, m.connector]),
      ...(r.refused_answers || []).map((x) => ["refused_answer", x.operation_id, null, null, x.why]),
    ];
    $("reconcile-summary").textContent = t(rows.length ? "reconcile_differences" : "reconcile_clean", { matched: r.matched, n: rows.length });
    $("reconcile-summary").dataset.clean = String(rows.length === 0);
    $("reconcile-lines").replaceChildren(...rows.map(([kind, id, pocket, bank, why]) => el("tr", { "data-kind": kind },
      el("td", {}, t(`diff_${kind}`)), el("td", {}, el("code", {}, String(id))), el("td", {}, lineText(pocket)),
      el("td", {}, why === undefined ? lineText(bank) : String(why)))));
  } catch (e) {
    showError($("reconcile-error"), e);
  }
}

// ---- live figures from /metrics ----------------------------------------------------------

function metricSum(text, name, filter = () => true) {
  let sum = 0, seen = false;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = line.match(/^([a-z_]+)(\{[^}]*\})?\s+(\S+)$/);
    if (!m || m[1] !== name || !filter(m[2] || "")) continue;
    sum += Number(m[3]);
    seen = true;
  }
  return seen ? sum : null;
}

async function refreshSystem() {
  if (tab !== "system") return;
  try {
    const resp = await fetch("/metrics", { headers: { Authorization: `Bearer ${key}` } });
    if (!resp.ok) throw new ApiError(resp.status, await resp.json().catch(() => null));
    const text = await resp.text();
    const paid = metricSum(text, "pocket_payments", (labels) => labels.includes('status="succeeded"')) || 0;
    const now = Date.now();
    if (lastPaid) $("fig-pps").textContent = Math.max(0, (paid - lastPaid.n) / ((now - lastPaid.at) / 1000)).toFixed(1);
    lastPaid = { n: paid, at: now };
    const lag = metricSum(text, "pocket_expiry_lag_seconds", (labels) => labels.includes('quantile="0.99"'));
    $("fig-lag").textContent = lag === null ? "–" : `${(lag * 1000).toFixed(0)} ${t("unit_ms")}`;
    const backlog = metricSum(text, "pocket_webhook_delivery_backlog");
    $("fig-backlog").textContent = backlog === null ? "0" : String(backlog);
    showError($("system-error"), null);
  } catch (e) {
    showError($("system-error"), e);
  }
}

// ---- start -------------------------------------------------------------------------------

async function signIn(ev) {
  ev.preventDefault();
  showError($("auth-error"), null);
  const candidate = $("admin-key").value.trim();
  try {
    await api("GET", "/v1/admin/ledger", candidate);
    key = candidate;
    sessionStorage.setItem("pocket.admin", key);
    $("admin-key").value = "";
    start();
  } catch (e) {
    showError($("auth-error"), e);
  }
}

function start() {
  fillCurrencies();
  $("auth").classList.add("hidden");
  $("app").classList.remove("hidden");
  $("signout").classList.remove("hidden");
  show(tab);
  refreshSystem();
}

document.addEventListener("DOMContentLoaded", () => {
  translate();
  labelTables();
  $("lang").addEventListener("click", () => { switchLanguage(); if (key) show(tab); });
  $("auth-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", () => { sessionStorage.removeItem("pocket.admin"); location.reload(); });
  for (const b of document.querySelectorAll("[data-tab]")) b.addEventListener("click", () => show(b.dataset.tab));
  $("merchant-form").addEventListener("submit", createMerchant);
  $("merchants-next").addEventListener("click", () => { cursor += 1; refreshMerchants(); });
  $("merchants-prev").addEventListener("click", () => { cursor = Math.max(0, cursor - 1); refreshMerchants(); });
  $("customer-form").addEventListener("submit", findCustomer);
  $("topup-form").addEventListener("submit", topup);
  $("ledger-refresh").addEventListener("click", () => refreshLedger(false));
  $("ledger-full").addEventListener("click", () => refreshLedger(true));
  $("reconcile-form").addEventListener("submit", reconcile);
  $("rule-form").addEventListener("submit", addRule);
  $("reconcile-date").value = new Date().toISOString().slice(0, 10);
  setInterval(refreshSystem, 2000);
  if (key) start();
});
