// Sign-in like the phones (docs/adr/0002, 0010, 0019): the browser makes a NON-EXTRACTABLE P-256 key
// with WebCrypto, keeps the CryptoKey in IndexedDB (the private part never leaves the browser's key
// store), enrols its public part with a monitor's enrolment code (POST /v1/enrol: SEC1 compressed
// point, hex), and gets every later token by signing a challenge (POST /v1/auth/challenge, then
// /v1/auth/refresh: ES256 over "weldguard-token-refresh" 0 device_id 0 nonce, r||s hex, low S).
// The access token lives in memory only; a fresh page load refreshes it with the stored key.

const DB_NAME = 'weldguard-dashboard';
const STORE = 'account';
const KEY = 'current';
/** The roles the dashboard serves; phone roles are refused. */
export const PLATFORM_ROLES = ['monitor', 'admin'];
/** The P-256 group order n, for the low-S form the server requires. */
const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** An error with the API's stable code (or a local one: `network`, `browser.*`). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.status = status;
    this.code = code;
  }
}

/** WebCrypto's subtle API exists only in a secure context (https, or localhost). */
export function secureContextOk() {
  return Boolean(window.isSecureContext && window.crypto && window.crypto.subtle && window.indexedDB);
}

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new ApiError(0, 'browser.storage', String(request.error)));
  });
}

async function withStore(mode, work) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const result = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(result.result);
      tx.onerror = () => reject(new ApiError(0, 'browser.storage', String(tx.error)));
      tx.onabort = () => reject(new ApiError(0, 'browser.storage', String(tx.error)));
    });
  } finally {
    db.close();
  }
}

/** The stored account: {deviceId, person, role, privateKey}, or null. */
export async function storedAccount() {
  const value = await withStore('readonly', (s) => s.get(KEY));
  return value && value.privateKey && value.deviceId ? value : null;
}

async function saveAccount(account) {
  await withStore('readwrite', (s) => s.put(account, KEY));
}

/** Forget the key and the account (sign out). */
export async function forgetAccount() {
  await withStore('readwrite', (s) => s.delete(KEY));
}

export function toHex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

function bigFrom(bytes) {
  return BigInt(`0x${toHex(bytes) || '0'}`);
}

function bigTo32(n) {
  const hex = n.toString(16).padStart(64, '0');
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A raw (uncompressed, 65-byte) P-256 point as a SEC1 compressed point (33 bytes). */
export function compressPoint(raw) {
  const bytes = new Uint8Array(raw);
  if (bytes.length !== 65 || bytes[0] !== 4) throw new ApiError(0, 'browser.key', 'unexpected public key form');
  const out = new Uint8Array(33);
  out[0] = (bytes[64] & 1) ? 3 : 2;
  out.set(bytes.slice(1, 33), 1);
  return out;
}

/** WebCrypto's r||s (IEEE P1363) signature in the low-S form: s > n/2 becomes n − s. */
export function lowS(signature) {
  const bytes = new Uint8Array(signature);
  const r = bytes.slice(0, 32);
  let s = bigFrom(bytes.slice(32, 64));
  if (s > N / 2n) s = N - s;
  const out = new Uint8Array(64);
  out.set(r, 0);
  out.set(bigTo32(s), 32);
  return out;
}

async function postJson(path, body) {
  let response;
  try {
    response = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, 'network', String(e));
  }
  return readAnswer(response);
}

/** The JSON of a successful answer, or its error as an ApiError. */
export async function readAnswer(response) {
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    throw new ApiError(response.status, body?.code || `http.${response.status}`, body?.message || response.statusText);
  }
  return body;
}

/**
 * Enrol this browser with `code`: a new non-extractable key, its public part registered. A phone
 * role's code is refused after the fact (the platform consumed it): the key is forgotten.
 * Returns {account, token, expiresAt}.
 */
export async function enrol(code) {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const raw = await crypto.subtle.exportKey('raw', pair.publicKey);
  const publicKey = toHex(compressPoint(raw));
  const deviceName = `dashboard: ${navigator.userAgent}`.slice(0, 200);
  const answer = await postJson('/v1/enrol', { code, public_key: publicKey, device_name: deviceName });
  if (!PLATFORM_ROLES.includes(answer.role)) {
    throw new ApiError(403, 'dashboard.phone_role', answer.role);
  }
  const account = { deviceId: answer.device_id, person: answer.person, role: answer.role, privateKey: pair.privateKey };
  await saveAccount(account);
  return { account, token: answer.token, expiresAt: answer.token_expires_at_ms ?? null };
}

/** The bytes a refresh signs (protocol::token_refresh_message). */
export function refreshMessage(deviceId, nonce) {
  const enc = new TextEncoder();
  const parts = [enc.encode('weldguard-token-refresh'), new Uint8Array([0]), enc.encode(deviceId), new Uint8Array([0]), enc.encode(nonce)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** A new token for the stored account, by signing a fresh challenge with its key. */
export async function refresh(account) {
  const challenge = await postJson('/v1/auth/challenge', { device_id: account.deviceId });
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' }, account.privateKey, refreshMessage(account.deviceId, challenge.nonce));
  const answer = await postJson('/v1/auth/refresh', {
    device_id: account.deviceId, nonce: challenge.nonce, signature: toHex(lowS(signature)),
  });
  return { token: answer.token, expiresAt: answer.token_expires_at_ms ?? null };
}
