// The payment code the wallet shows at a till (付款码): 18 digits, `28` and 16 digits
// from HMAC-SHA256 of the current 30-second step under the device's code secret (the
// server's `pocket_core::code`), drawn as a QR code and a Code 128 barcode. Made on the
// phone, without a network; the secret is a non-extractable WebCrypto key.
import qrcode from "./qrcode.mjs";

export const STEP_MS = 30_000;
const MODULUS = 10_000_000_000_000_000n;

/** The device's code secret (base64url, from its registration) as an HMAC key that
 *  can sign but never be read back. */
export async function importCodeSecret(b64url) {
  const bin = atob(b64url.replace(/-/g, "+").replace(/_/g, "/"));
  const raw = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

export const stepOf = (ms) => Math.floor(ms / STEP_MS);

/** How far the server's clock is ahead of the phone's (ms), from the `Date` of an
 *  answer: codes follow the server's time, so a phone set minutes off still shows codes
 *  the till accepts. Within the header's one-second resolution, 0. */
export async function serverClockOffset() {
  const sent = Date.now();
  const resp = await fetch("/healthz", { cache: "no-store" });
  const received = Date.now();
  const server = Date.parse(resp.headers.get("date") || "");
  if (Number.isNaN(server)) return 0;
  // `Date` has whole seconds: the server's time was within [server, server + 1000).
  const offset = server + 500 - (sent + received) / 2;
  return Math.abs(offset) < 2_000 ? 0 : Math.round(offset);
}

/** The code shown during `step`. */
export async function codeAt(key, step) {
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`pocket-code:v1:${step}`)));
  let n = 0n;
  for (let i = 0; i < 8; i++) n = (n << 8n) | BigInt(mac[i]);
  return `28${(n % MODULUS).toString().padStart(16, "0")}`;
}

/** Draws `code` into the QR `<img>` and the barcode `<canvas>`, and its digits in
 *  groups of four for a cashier who types it. */
export function drawCode(code, qrImg, barCanvas, digits) {
  const qr = qrcode(0, "M");
  qr.addData(code);
  qr.make();
  qrImg.src = qr.createDataURL(6, 4);
  // Set C packs two digits per symbol: the 18 digits make a short, easily read bar.
  window.JsBarcode(barCanvas, code, { format: "CODE128C", displayValue: false, height: 70, width: 2, margin: 8 });
  digits.textContent = code.replace(/(\d{4})(?=\d)/g, "$1 ");
}
