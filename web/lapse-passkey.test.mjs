// Unit tests of lapse-passkey.js: node --test web/
// The ceremonies run against a fake lapse and a fake
// navigator.credentials: what is sent where, and what comes back.

import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  fromB64url, toB64url, creationOptions, requestOptions, credentialJSON, stepUp, register, remove, localPath, PasskeyError,
} from './static/lapse-passkey.js';

const bytes = (...b) => new Uint8Array(b).buffer;

describe('base64url', () => {
  test('round-trips every length, with and without padding', () => {
    for (let n = 0; n < 40; n++) {
      const b = new Uint8Array(n).map((_, i) => (i * 37 + 251) & 255);
      const s = toB64url(b);
      assert.doesNotMatch(s, /[+/=]/);
      assert.deepEqual(new Uint8Array(fromB64url(s)), b);
      assert.deepEqual(new Uint8Array(fromB64url(s + '='.repeat((4 - (s.length % 4)) % 4))), b);
    }
  });
});

describe('options', () => {
  test('creation options decode the challenge, the user id and the excluded ids', () => {
    const o = creationOptions({ publicKey: { challenge: '_-8', rp: { id: 'example.com' }, user: { id: 'AAE', name: 'ada' },
      excludeCredentials: [{ type: 'public-key', id: 'AgM' }], authenticatorSelection: { userVerification: 'required' } } });
    assert.deepEqual(new Uint8Array(o.publicKey.challenge), new Uint8Array([0xff, 0xef]));
    assert.deepEqual(new Uint8Array(o.publicKey.user.id), new Uint8Array([0, 1]));
    assert.deepEqual(new Uint8Array(o.publicKey.excludeCredentials[0].id), new Uint8Array([2, 3]));
    assert.equal(o.publicKey.user.name, 'ada');
    assert.equal(o.publicKey.authenticatorSelection.userVerification, 'required');
  });
  test('request options decode the challenge and the allowed ids, and have an empty list without any', () => {
    const o = requestOptions({ publicKey: { challenge: 'AQ', rpId: 'example.com', allowCredentials: [{ type: 'public-key', id: 'Bw' }] } });
    assert.deepEqual(new Uint8Array(o.publicKey.allowCredentials[0].id), new Uint8Array([7]));
    assert.deepEqual(requestOptions({ publicKey: { challenge: 'AQ' } }).publicKey.allowCredentials, []);
  });
});

test('credentialJSON encodes an assertion where the browser has no toJSON', () => {
  const cred = { id: 'Bw', rawId: bytes(7), type: 'public-key', authenticatorAttachment: 'platform',
    response: { clientDataJSON: bytes(1), authenticatorData: bytes(2), signature: bytes(3), userHandle: bytes(4) },
    getClientExtensionResults: () => ({}) };
  assert.deepEqual(credentialJSON(cred), { id: 'Bw', rawId: 'Bw', type: 'public-key', authenticatorAttachment: 'platform',
    response: { clientDataJSON: 'AQ', authenticatorData: 'Ag', signature: 'Aw', userHandle: 'BA' }, clientExtensionResults: {} });
});

test('localPath keeps paths of this origin only', () => {
  assert.equal(localPath('/billing?x=1'), '/billing?x=1');
  for (const bad of ['//evil.test/', '/\\evil.test', 'https://evil.test/', '', undefined]) assert.equal(localPath(bad, '/home'), '/home');
});

// fakeLapse answers the routes with the given bodies and records the calls.
function fakeLapse(answers) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, method: init.method, headers: init.headers, body: init.body ? JSON.parse(init.body) : undefined, credentials: init.credentials });
    const [status, body] = answers[url] || [404, { code: 'not_found', detail: 'no such route' }];
    return { ok: status < 400, status, json: async () => body };
  };
  return { f, calls };
}

describe('ceremonies', () => {
  afterEach(() => { delete globalThis.navigator; });
  const setCredentials = (c) => Object.defineProperty(globalThis, 'navigator', { value: { credentials: c }, configurable: true });

  test('stepUp sends lapse\'s options to the browser and the browser\'s credential to lapse, with the CSRF header', async () => {
    const { f, calls } = fakeLapse({
      '/lapse/v1/session/step-up/passkey/options': [200, { publicKey: { challenge: 'AQI', rpId: 'example.com', allowCredentials: [] } }],
      '/lapse/v1/session/step-up/passkey': [200, { session: { aal: 2 }, now: 'x' }],
    });
    let asked;
    setCredentials({ get: async (o) => { asked = o; return { toJSON: () => ({ id: 'Bw', type: 'public-key' }) }; } });
    const out = await stepUp({ endpoint: '/lapse', fetch: f });
    assert.equal(out.session.aal, 2);
    assert.deepEqual(new Uint8Array(asked.publicKey.challenge), new Uint8Array([1, 2]));
    assert.deepEqual(calls.map((c) => [c.method, c.url, c.headers['X-Lapse-CSRF'], c.credentials]), [
      ['POST', '/lapse/v1/session/step-up/passkey/options', '1', 'same-origin'],
      ['POST', '/lapse/v1/session/step-up/passkey', '1', 'same-origin'],
    ]);
    assert.deepEqual(calls[1].body, { credential: { id: 'Bw', type: 'public-key' } });
  });

  test('a refusal of lapse\'s comes back as a PasskeyError with its code and detail', async () => {
    const { f } = fakeLapse({
      '/lapse/v1/session/step-up/passkey/options': [200, { publicKey: { challenge: 'AQ' } }],
      '/lapse/v1/session/step-up/passkey': [403, { code: 'challenge_invalid', detail: 'start again' }],
    });
    setCredentials({ get: async () => ({ toJSON: () => ({}) }) });
    await assert.rejects(stepUp({ endpoint: '/lapse', fetch: f }), (e) => e instanceof PasskeyError && e.code === 'challenge_invalid' && e.status === 403 && e.message === 'start again');
  });

  test('a closed prompt is said in words and sends nothing to lapse', async () => {
    const { f, calls } = fakeLapse({ '/lapse/v1/session/passkeys/options': [200, { publicKey: { challenge: 'AQ', user: { id: 'AA' } } }] });
    setCredentials({ create: async () => { const e = new Error('x'); e.name = 'NotAllowedError'; throw e; } });
    await assert.rejects(register({ endpoint: '/lapse', fetch: f }), (e) => e.name === 'NotAllowedError' && /closed or timed out/.test(e.message));
    assert.equal(calls.length, 1);
  });

  test('register and remove send the name and end_others', async () => {
    const { f, calls } = fakeLapse({
      '/lapse/v1/session/passkeys/options': [200, { publicKey: { challenge: 'AQ', user: { id: 'AA' } } }],
      '/lapse/v1/session/passkeys': [201, { passkey: { id: 'pk_1' }, ended: 2 }],
      '/lapse/v1/session/passkeys/pk_1/remove': [200, { ended: 0 }],
    });
    setCredentials({ create: async () => ({ toJSON: () => ({ id: 'x' }) }) });
    assert.equal((await register({ endpoint: '/lapse', name: 'Laptop', endOthers: true, fetch: f })).ended, 2);
    assert.deepEqual(calls[1].body, { credential: { id: 'x' }, name: 'Laptop', end_others: true });
    await remove('pk_1', { endpoint: '/lapse', fetch: f });
    assert.deepEqual(calls[2].body, { end_others: false });
  });
});
