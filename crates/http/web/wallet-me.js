// Signing in, up and out, a forgotten PIN, and Me: changing the PIN, this wallet's
// devices; and a pay link's preview before sign-in.
import { t, translate } from "./i18n.js";
import { api, PageError, money, when, el, statusBadge, showError, newKey, tickCountdowns, itemsLine } from "./common.js";
import { $, session, toE164 } from "./wallet-state.js";
import { idbGet, idbDelete } from "./wallet-keys.js";
import { start, stopListening } from "./wallet.js";

/** Whether the form signs up (else in). */
let signingUp = false;

export function toggleSignUp() {
  signingUp = !signingUp;
  renderAuthMode();
}

function renderAuthMode() {
  $("auth-title").dataset.i18n = signingUp ? "sign_up" : "sign_in";
  $("auth-submit").dataset.i18n = signingUp ? "sign_up" : "sign_in";
  $("auth-toggle").dataset.i18n = signingUp ? "sign_in" : "sign_up";
  $("name-row").classList.toggle("hidden", !signingUp);
  $("pin").autocomplete = signingUp ? "new-password" : "current-password";
  translate();
}

export async function submitAuth(ev) {
  ev.preventDefault();
  showError($("auth-error"), null);
  const phone = toE164($("phone").value.trim());
  const pin = $("pin").value.trim();
  if (!/^\+\d{8,15}$/.test(phone)) { showError($("auth-error"), new PageError("page_phone")); return; }
  if (!/^\d{6}$/.test(pin)) { showError($("auth-error"), new PageError("page_pin")); return; }
  try {
    const body = signingUp ? { phone, name: $("name").value.trim(), pin } : { phone, pin };
    const r = await api("POST", signingUp ? "/v1/wallet/signup" : "/v1/wallet/sessions", null, body, newKey());
    session.token = r.token;
    sessionStorage.setItem("pocket.token", session.token);
    $("pin").value = "";
    await start();
  } catch (e) {
    showError($("auth-error"), e);
  }
}

export async function signOut() {
  // A signed-out phone shows no payment codes: its device is revoked and forgotten.
  const customer = localStorage.getItem("pocket.customer");
  if (customer) {
    const saved = await idbGet(`device:${customer}`).catch(() => null);
    if (saved) {
      try { await api("DELETE", `/v1/wallet/devices/${saved.id}`, session.token); } catch { /* offline: revoke it from another session */ }
      await idbDelete(`device:${customer}`).catch(() => {});
    }
    localStorage.removeItem("pocket.customer");
  }
  try { await api("DELETE", "/v1/wallet/sessions/current", session.token); } catch { /* already gone */ }
  sessionStorage.removeItem("pocket.token");
  session.token = null;
  stopListening();
  location.href = "/";
}

/** A forgotten PIN: the operator's one-time code sets a new one and signs in. */
export async function submitReset(ev) {
  ev.preventDefault();
  showError($("reset-error"), null);
  const phone = toE164($("reset-phone").value.trim());
  const pin = $("reset-pin").value.trim();
  if (!/^\+\d{8,15}$/.test(phone)) { showError($("reset-error"), new PageError("page_phone")); return; }
  if (!/^\d{6}$/.test(pin)) { showError($("reset-error"), new PageError("page_pin")); return; }
  try {
    const r = await api("POST", "/v1/wallet/pin_reset", null, { phone, code: $("reset-code").value, new_pin: pin });
    session.token = r.token;
    sessionStorage.setItem("pocket.token", session.token);
    $("reset-pin").value = "";
    $("reset-code").value = "";
    await start();
  } catch (e) {
    showError($("reset-error"), e);
  }
}

export function showReset(on) {
  $("auth-form").classList.toggle("hidden", on);
  $("reset-form").classList.toggle("hidden", !on);
  if (on) { $("reset-phone").value = $("phone").value; $("reset-code").focus(); }
}

export async function changePin(ev) {
  ev.preventDefault();
  showError($("pin-change-error"), null);
  $("pin-change-done").textContent = "";
  try {
    await api("POST", "/v1/wallet/pin", session.token, { old_pin: $("pin-old").value.trim(), new_pin: $("pin-new").value.trim() }, newKey());
    $("pin-old").value = "";
    $("pin-new").value = "";
    $("pin-change-done").textContent = t("pin_changed_done");
    refreshDevices().catch(() => {});
  } catch (e) {
    showError($("pin-change-error"), e);
  }
}

/** This wallet's devices, this phone's marked; each active one can be removed. */
export async function refreshDevices() {
  const [list, mine] = await Promise.all([
    api("GET", "/v1/wallet/devices", session.token),
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
    await api("DELETE", `/v1/wallet/devices/${d.id}`, session.token);
    if (mine?.id === d.id) await idbDelete(`device:${localStorage.getItem("pocket.customer")}`).catch(() => {});
    await refreshDevices();
  } catch (e) {
    showError($("devices-error"), e);
  }
}

/** A pay link opened while signed out: the merchant and amount above the sign-in. */
export async function showPreview() {
  if (!session.openPaymentId) return;
  try {
    const p = await api("GET", `/v1/pay/${session.openPaymentId}`, null);
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
