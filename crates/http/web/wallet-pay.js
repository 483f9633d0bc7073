// Pay: the payment code shown at a till (made on the phone, also offline), and
// paying links and merchants' QR codes (typed, pasted or scanned).
import { t } from "./i18n.js";
import { ApiError, PageError, el, showError, tickCountdowns, paymentIdFrom } from "./common.js";
import { codeAt, drawCode, stepOf, STEP_MS, serverClockOffset } from "./paycode.js";
import { $, session } from "./wallet-state.js";
import { savedDevice, deviceKey } from "./wallet-keys.js";
import { askPin } from "./wallet-pinpad.js";
import { onExpired } from "./wallet-sheet.js";
import { show, showOpenPayment } from "./wallet.js";

let codeTimer = null;

let codeShownAt = 0;

export async function showPayCode() {
  showError($("paycode-error"), null);
  try {
    let device = await savedDevice();
    if (!device || !device.codeKey) {
      device = await askPin(t("paycode_pin"), (pin) => deviceKey(pin, true));
      if (!device) return;
    }
    // The server's time, learnt while online and kept for offline use.
    let offset = Number(localStorage.getItem("pocket.clock_offset_ms")) || 0;
    try {
      offset = await serverClockOffset();
      localStorage.setItem("pocket.clock_offset_ms", String(offset));
    } catch { /* offline: the offset learnt last */ }
    $("paycode").classList.remove("hidden");
    $("paycode-show").classList.add("hidden");
    codeShownAt = Date.now();
    let shown = null;
    const tick = async () => {
      const now = Date.now() + offset;
      const step = stepOf(now);
      if (step !== shown) {
        shown = step;
        drawCode(await codeAt(device.codeKey, step), $("paycode-qr"), $("paycode-bar"), $("paycode-digits"));
      }
      $("paycode-left").textContent = t("paycode_left", { s: Math.ceil(((step + 1) * STEP_MS - now) / 1000) });
    };
    await tick();
    clearInterval(codeTimer);
    codeTimer = setInterval(() => tick().catch(() => {}), 1000);
  } catch (e) {
    showError($("paycode-error"), e);
  }
}

export function hidePayCode() {
  clearInterval(codeTimer);
  codeTimer = null;
  $("paycode").classList.add("hidden");
  $("paycode-show").classList.remove("hidden");
}

export async function openLink(text) {
  showError($("link-error"), null);
  const id = paymentIdFrom(text);
  if (!id) { showError($("link-error"), new PageError("page_link")); return; }
  window.history.pushState({}, "", `/pay/${id}`);
  session.openPaymentId = id;
  show("home");
  await showOpenPayment();
  tickCountdowns(onExpired);
}

/** How long Scan looks before it gives up, and how often it looks. */
const SCAN_FOR_MS = 60_000;

const SCAN_EVERY_MS = 200;

/** Reads merchant QR codes and pay links with the camera: the browser's own
 *  `BarcodeDetector` where it has one, else the vendored jsQR (loaded only then). */
export async function scan() {
  const video = $("camera");
  showError($("link-error"), null);
  if (!navigator.mediaDevices?.getUserMedia) {
    showError($("link-error"), new PageError("no_camera"));
    return;
  }
  let media = null;
  try {
    media = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = media;
    video.classList.remove("hidden");
    await video.play();
    const read = await qrReader(video);
    const started = Date.now();
    while (Date.now() - started < SCAN_FOR_MS) {
      const text = await read();
      if (text && paymentIdFrom(text)) { await openLink(text); return; }
      await new Promise((r) => setTimeout(r, SCAN_EVERY_MS));
    }
    showError($("link-error"), new PageError("scan_nothing"));
  } catch (e) {
    showError($("link-error"), e instanceof ApiError ? e : new PageError("no_camera"));
  } finally {
    media?.getTracks().forEach((tr) => tr.stop());
    video.classList.add("hidden");
  }
}

/** A function that reads the QR code in the camera's frame now, or gives `null`. */
async function qrReader(video) {
  if ("BarcodeDetector" in window) {
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    return async () => (await detector.detect(video))[0]?.rawValue || null;
  }
  if (!window.jsQR) {
    await new Promise((resolve, reject) => {
      const s = el("script", { src: "/assets/jsQR.js" });
      s.onload = resolve;
      s.onerror = () => reject(new PageError("no_camera"));
      document.head.append(s);
    });
  }
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  return async () => {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    canvas.width = w;
    canvas.height = h;
    ctx.drawImage(video, 0, 0, w, h);
    return window.jsQR(ctx.getImageData(0, 0, w, h).data, w, h)?.data || null;
  };
}

/** Since when the payment code is on screen (ms), or null when it is not. */
export function codeShownSince() {
  return codeTimer ? codeShownAt : null;
}
