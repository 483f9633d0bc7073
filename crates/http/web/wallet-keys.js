// Device keys (WebCrypto; the private key is never extractable) and the entry this
// phone keeps for each customer in IndexedDB: the key, and the payment-code secret.
import { t } from "./i18n.js";
import { api, ApiError, newKey } from "./common.js";
import { importCodeSecret } from "./paycode.js";
import { session, flash } from "./wallet-state.js";

function idb() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open("pocket", 1);
    r.onupgradeneeded = () => r.result.createObjectStore("keys");
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export async function idbGet(key) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const r = db.transaction("keys").objectStore("keys").get(key);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Runs `change(store)` in a read-write transaction; resolves once it is committed. */
async function idbWrite(change) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction("keys", "readwrite");
    change(tx.objectStore("keys"));
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
}

const idbPut = (key, value) => idbWrite((store) => store.put(value, key));

export const idbDelete = (key) => idbWrite((store) => store.delete(key));

/** This device's entry for the signed-in customer, if it was registered and is still
 *  active: `{ id, keys, codeKey }` (`codeKey` is missing on devices registered before
 *  payment codes). Offline, the entry kept on the phone. */
export async function savedDevice() {
  let me = null;
  try {
    me = await api("GET", "/v1/wallet/me", session.token);
  } catch (e) {
    if (e instanceof ApiError) throw e; // the server answered: not offline
  }
  const customer = me ? me.id : localStorage.getItem("pocket.customer");
  if (!customer) return null;
  localStorage.setItem("pocket.customer", customer);
  const saved = await idbGet(`device:${customer}`);
  if (!saved || !me) return saved || null;
  const devices = await api("GET", "/v1/wallet/devices", session.token);
  return devices.data.some((d) => d.id === saved.id && !d.revoked_at) ? saved : null;
}

/** This device's registered key for the signed-in customer, made on first use (and
 *  again when `withCode` asks for a payment code secret an older entry lacks). */
export async function deviceKey(pin, withCode = false) {
  const saved = await savedDevice();
  if (saved && (saved.codeKey || !withCode)) return saved;
  const customer = localStorage.getItem("pocket.customer");
  flash(t(withCode ? "paycode_on" : "device_needed"));
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", keys.publicKey);
  const publicKey = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  const device = await api("POST", "/v1/wallet/devices", session.token, { name: navigator.userAgent.slice(0, 80) || "browser", public_key: publicKey, pin }, newKey());
  // The code secret is shown this once: it lives on as a key that cannot be read back.
  const entry = { id: device.id, keys, codeKey: await importCodeSecret(device.code_secret) };
  await idbPut(`device:${customer}`, entry);
  // An older entry without a code secret is replaced: its device is revoked, so a
  // wallet's devices do not pile up to the limit.
  if (saved) await api("DELETE", `/v1/wallet/devices/${saved.id}`, session.token).catch(() => {});
  return entry;
}

export async function sign(privateKey, message) {
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, new TextEncoder().encode(message)));
  let bin = "";
  for (const b of sig) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
