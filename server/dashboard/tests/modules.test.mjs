// The dashboard's pure modules under Node (no browser): the zh/en tables cover the same keys, any
// warning kind has a label (an unknown one is its code), China days, and the key encodings the
// server expects (a SEC1 compressed point; ES256 signatures in the low-S form).

import assert from 'node:assert/strict';
import { ECDH, webcrypto } from 'node:crypto';
import { test } from 'node:test';

import { allKeys, chinaDay, kindLabel, setLang, t } from '../i18n.js';
import { compressPoint, lowS, refreshMessage, toHex } from '../auth.js';

const N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

test('both languages have every text, and no text is left empty', () => {
  const { zh, en } = allKeys();
  assert.deepEqual([...zh].sort(), [...en].sort());
  globalThis.document = { documentElement: {} };
  for (const lang of ['zh', 'en']) {
    setLang(lang);
    for (const key of zh) assert.ok(t(key).trim().length > 0, `${lang} ${key}`);
  }
});

test('known warning kinds have labels in both languages; an unknown kind shows its code', () => {
  globalThis.document = { documentElement: {} };
  setLang('zh');
  assert.equal(kindLabel('start_far_from_machine'), '扫码位置远离焊机');
  assert.equal(kindLabel('fire_watch_left_post'), 'fire_watch_left_post');
  setLang('en');
  assert.equal(kindLabel('start_far_from_machine'), 'Scan far from the machine');
  assert.equal(kindLabel('fire_watch_left_post'), 'fire_watch_left_post');
});

test('the China day turns at 16:00 UTC', () => {
  assert.equal(chinaDay(Date.UTC(2026, 11, 7, 15, 59)), '2026-12-07');
  assert.equal(chinaDay(Date.UTC(2026, 11, 7, 16, 0)), '2026-12-08');
  assert.equal(chinaDay(Date.UTC(2026, 11, 31, 16, 0), -1), '2026-12-31');
});

test('the public key is sent as the SEC1 compressed point of the raw one', async () => {
  const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const raw = new Uint8Array(await webcrypto.subtle.exportKey('raw', pair.publicKey));
  const expected = ECDH.convertKey(Buffer.from(raw), 'prime256v1', undefined, 'hex', 'compressed');
  assert.equal(toHex(compressPoint(raw)), expected);
  assert.throws(() => compressPoint(raw.slice(1)));
});

test('signatures leave in the low-S form and still verify', async () => {
  const pair = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const message = refreshMessage('dev-1', 'ab12');
  assert.equal(Buffer.from(message).toString('latin1'), 'weldguard-token-refresh\0dev-1\0ab12');
  const verify = (sig) => webcrypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pair.publicKey, sig, message);
  for (let i = 0; i < 4; i += 1) {
    const signature = new Uint8Array(await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, message));
    const s = BigInt(`0x${toHex(signature.slice(32))}`);
    // The signature and its other-S twin (r, n − s): both verify, one is high; lowS gives the
    // low one for either.
    const twin = new Uint8Array(64);
    twin.set(signature.slice(0, 32));
    twin.set(Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex'), 32);
    assert.ok(await verify(twin));
    const low = lowS(signature);
    assert.deepEqual(lowS(twin), low);
    assert.ok(BigInt(`0x${toHex(low.slice(32))}`) <= N / 2n);
    assert.deepEqual(low.slice(0, 32), signature.slice(0, 32));
    assert.ok(await verify(low));
  }
});
