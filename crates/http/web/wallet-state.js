// The wallet's shared state (the session's token, the server's settings, the payment
// a /pay/ link opened) and the small helpers every screen uses.
export const $ = (id) => document.getElementById(id);

export const session = {
  token: sessionStorage.getItem("pocket.token"),
  settings: { calling_code: null, sandbox_topups: false },
  openPaymentId: (location.pathname.match(/^\/pay\/(pay_[0-9A-Za-z]{24})$/) || [])[1] || null,
};

/** `138 0000 0001` → `+8613800000001` with this server's calling code; `+…` and
 *  `00…` stay international. */
export function toE164(text) {
  const raw = String(text).replace(/[\s().-]/g, "");
  if (raw.startsWith("+")) return raw;
  if (raw.startsWith("00")) return `+${raw.slice(2)}`;
  if (session.settings.calling_code && /^\d+$/.test(raw)) return session.settings.calling_code + raw.replace(/^0/, "");
  return raw;
}

export function flash(text) {
  $("flash").textContent = text;
  setTimeout(() => { if ($("flash").textContent === text) $("flash").textContent = ""; }, 4000);
}
