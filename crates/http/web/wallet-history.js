// History: every movement, 20 to a page, grouped by month; and Home's latest lines.
import { t, locale } from "./i18n.js";
import { api, money, when, el, statusBadge } from "./common.js";
import { $, session } from "./wallet-state.js";
import { showReceipt } from "./wallet-sheet.js";

const HISTORY_PAGE = 20;

export const historyNav = { pages: [null], at: 0 };

/** History from the server's activity: each line what it did to the money (payments,
 *  holds and what became of them, refunds naming the merchant, top-ups, declines),
 *  grouped by month with the month's money in and out, filterable by kind. */
export async function refreshHistory() {
  const after = historyNav.pages[historyNav.at];
  const kind = $("history-kind").value;
  const q = new URLSearchParams({ limit: String(HISTORY_PAGE), utc_offset: String(-new Date().getTimezoneOffset()) });
  if (kind) q.set("kind", kind);
  if (after) q.set("starting_after", after);
  const list = await api("GET", `/v1/wallet/activity?${q}`, session.token);
  // Payments show their state now (refunded, partly refunded) and open their receipt.
  const ids = [...new Set(list.data.filter((x) => x.payment).map((x) => x.payment))];
  const payments = new Map((await Promise.all(ids.map((id) =>
    api("GET", `/v1/wallet/payments/${id}`, session.token).catch(() => null)))).filter(Boolean).map((p) => [p.id, p]));
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

export function historyPage(delta) {
  historyNav.at = Math.max(0, historyNav.at + delta);
  refreshHistory().catch(() => {});
}

/** Home's latest lines of History. */
export async function refreshRecent() {
  const list = await api("GET", "/v1/wallet/activity?limit=5", session.token);
  $("recent").replaceChildren(...(list.data.length ? list.data.map((x) => historyLine(x, null)) : [el("li", { class: "muted" }, t("no_history"))]));
}
