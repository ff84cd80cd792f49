// lapse-passkey.js: the browser's part of lapse's passkey ceremonies, for
// any page on the origin where lapse's session routes are mounted (the
// app's, or the forward-auth gateway's /.lapse/). Plain ES module, no
// dependencies. It talks to the routes of the prefix it is served under
// (its own URL without /web/lapse-passkey.js), with the session cookie
// and the X-Lapse-CSRF header; the token never reaches it.
//
// Functions: stepUp(), register({name, endOthers}), list(), rename(id,
// name), remove(id, {endOthers}). Markup it wires up by itself when it is
// loaded, shown only where the browser has passkeys (they start hidden):
//
//   <button hidden data-lapse-passkey="step-up" data-next="/billing">Use your passkey</button>
//   <form hidden data-lapse-passkey="register" data-next="/account/passkeys?done=added">
//     <input name="name"> <input type="checkbox" name="end_others" checked> <button>Add a passkey</button>
//   </form>
//   <p hidden data-lapse-passkey-error role="alert"></p>
//
// After a step-up or a registration the page goes to data-next (a path
// on this origin). A failure is written into the nearest
// [data-lapse-passkey-error] of the element's section.

const here = typeof import.meta.url === 'string' ? new URL('..', import.meta.url).pathname.replace(/\/$/, '') : '';

/** The prefix of lapse's routes: where this file is served, less /web. */
export const DEFAULT_ENDPOINT = here;

/** An answer of lapse's that is not a success, or a refusal of the browser. */
export class PasskeyError extends Error {
  constructor(message, { code = '', status = 0, name = 'PasskeyError' } = {}) {
    super(message);
    this.name = name;
    this.code = code;
    this.status = status;
  }
}

/** Whether this browser can use passkeys at all. */
export function supported() {
  return typeof window !== 'undefined' && typeof window.PublicKeyCredential === 'function' &&
    !!navigator.credentials && typeof navigator.credentials.get === 'function';
}

// --- base64url, for the JSON forms of the options and credentials ---

/** Decodes base64url (padding optional) to an ArrayBuffer. */
export function fromB64url(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

/** Encodes bytes (an ArrayBuffer or a view) as base64url without padding. */
export function toB64url(buf) {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const descriptors = (list) => (list || []).map((d) => ({ ...d, id: fromB64url(d.id) }));

/** The argument of navigator.credentials.create() for lapse's creation options. */
export function creationOptions(json) {
  const pk = json.publicKey;
  return {
    publicKey: {
      ...pk,
      challenge: fromB64url(pk.challenge),
      user: { ...pk.user, id: fromB64url(pk.user.id) },
      excludeCredentials: descriptors(pk.excludeCredentials),
    },
  };
}

/** The argument of navigator.credentials.get() for lapse's request options. */
export function requestOptions(json) {
  const pk = json.publicKey;
  return { publicKey: { ...pk, challenge: fromB64url(pk.challenge), allowCredentials: descriptors(pk.allowCredentials) } };
}

/** The JSON of a PublicKeyCredential, as its toJSON() writes it where the browser has one. */
export function credentialJSON(cred) {
  if (typeof cred.toJSON === 'function') return cred.toJSON();
  const r = cred.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    if (typeof r.getTransports === 'function') response.transports = r.getTransports();
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return {
    id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response,
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
    clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
  };
}

// --- lapse's session routes ---

async function call(endpoint, method, path, body, fetchImpl = globalThis.fetch) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (method !== 'GET') {
    init.headers['X-Lapse-CSRF'] = '1';
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  const res = await fetchImpl(endpoint + path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new PasskeyError(data.detail || `lapse answered ${res.status}`, { code: data.code || '', status: res.status });
  return data;
}

// browserError turns what navigator.credentials throws into words.
function browserError(e) {
  const words = {
    NotAllowedError: 'The passkey prompt was closed or timed out. Try again.',
    InvalidStateError: 'This device already holds one of your passkeys.',
    SecurityError: 'Passkeys do not work on this address.',
    AbortError: 'The passkey prompt was cancelled.',
  };
  return new PasskeyError(words[e && e.name] || (e && e.message) || 'The passkey did not work.', { name: (e && e.name) || 'Error' });
}

async function ceremony(run) {
  try {
    return await run();
  } catch (e) {
    throw e instanceof PasskeyError ? e : browserError(e);
  }
}

/**
 * Steps the session up with one of the subject's passkeys: lapse's
 * options, the browser's prompt, lapse's check. Resolves to lapse's
 * answer ({session, now}); the new cookie is already set.
 */
export function stepUp({ endpoint = DEFAULT_ENDPOINT, fetch: f } = {}) {
  return ceremony(async () => {
    const opts = await call(endpoint, 'POST', '/v1/session/step-up/passkey/options', undefined, f);
    const cred = await navigator.credentials.get(requestOptions(opts));
    return call(endpoint, 'POST', '/v1/session/step-up/passkey', { credential: credentialJSON(cred) }, f);
  });
}

/** Registers a new passkey; resolves to {passkey, ended}. */
export function register({ endpoint = DEFAULT_ENDPOINT, name = '', endOthers = false, fetch: f } = {}) {
  return ceremony(async () => {
    const opts = await call(endpoint, 'POST', '/v1/session/passkeys/options', undefined, f);
    const cred = await navigator.credentials.create(creationOptions(opts));
    return call(endpoint, 'POST', '/v1/session/passkeys', { credential: credentialJSON(cred), name, end_others: endOthers }, f);
  });
}

/** The subject's passkeys, oldest first. */
export async function list({ endpoint = DEFAULT_ENDPOINT, fetch: f } = {}) {
  return (await call(endpoint, 'GET', '/v1/session/passkeys', undefined, f)).passkeys;
}

/** Renames one of the subject's passkeys. */
export function rename(id, name, { endpoint = DEFAULT_ENDPOINT, fetch: f } = {}) {
  return call(endpoint, 'POST', `/v1/session/passkeys/${encodeURIComponent(id)}/rename`, { name }, f);
}

/** Removes one of the subject's passkeys (needs a recent step-up). */
export function remove(id, { endpoint = DEFAULT_ENDPOINT, endOthers = false, fetch: f } = {}) {
  return call(endpoint, 'POST', `/v1/session/passkeys/${encodeURIComponent(id)}/remove`, { end_others: endOthers }, f);
}

// --- the markup ---

/** Returns next if it is a path on this origin, else fallback. */
export function localPath(next, fallback = '/') {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : fallback;
}

function showError(el, err) {
  const box = (el.closest('section, form, main') || document).querySelector('[data-lapse-passkey-error]') ||
    document.querySelector('[data-lapse-passkey-error]');
  if (!box) return;
  box.textContent = err.message;
  box.hidden = false;
}

/** Wires up the [data-lapse-passkey] elements under root; done once on load. */
export function bind(root = document, { endpoint = DEFAULT_ENDPOINT } = {}) {
  if (!supported()) return;
  for (const el of root.querySelectorAll('[data-lapse-passkey]')) {
    el.hidden = false;
    const go = () => location.assign(localPath(el.dataset.next, location.pathname));
    if (el.dataset.lapsePasskey === 'step-up') {
      el.addEventListener('click', async () => {
        el.disabled = true;
        try {
          await stepUp({ endpoint });
          go();
        } catch (e) {
          showError(el, e);
          el.disabled = false;
        }
      });
    } else if (el.dataset.lapsePasskey === 'register') {
      el.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const name = el.elements.namedItem('name');
        const others = el.elements.namedItem('end_others');
        const button = el.querySelector('button');
        if (button) button.disabled = true;
        try {
          await register({ endpoint, name: name ? name.value : '', endOthers: !!(others && others.checked) });
          go();
        } catch (e) {
          showError(el, e);
          if (button) button.disabled = false;
        }
      });
    }
  }
}

if (typeof document !== 'undefined') bind();
