// The sign-in of an app behind lapse's forward-auth gateway, in Node with
// nothing but its standard library (Node 18 or newer).
//
// The app checks the password itself, then hands over to lapse: it creates
// the session with lapse's API (POST /v1/sessions, with an API key, from
// the server, never from the browser) and sets the token lapse returns in
// the cookie that forward_auth.cookie names. From then on the proxy asks
// lapse about every request, and the app reads who is signed in from the
// X-Lapse-Subject header the proxy passes on.
//
//   LAPSE_URL=http://127.0.0.1:8080 LAPSE_API_KEY=lpk_... PORT=3001 node server.mjs
//
// Environment: LAPSE_URL (lapse serve), LAPSE_API_KEY (an API key of
// lapse), PORT (default 3001), LAPSE_COOKIE (default "lapse": the name in
// forward_auth.cookie), SIGNIN_USERS (JSON {"user": "password"}: this
// example's stand-in for the app's own user store).
//
// Routes: GET /login (the form; ?rd= is where to go after signing in),
// POST /login, POST /logout. Route /login to it as a public route of
// lapse's rules (access: public), so that a signed-out browser reaches it.
import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';

const LAPSE_URL = process.env.LAPSE_URL || 'http://127.0.0.1:8080';
const API_KEY = process.env.LAPSE_API_KEY;
const COOKIE = process.env.LAPSE_COOKIE || 'lapse';
const PORT = Number(process.env.PORT || 3001);
const USERS = JSON.parse(process.env.SIGNIN_USERS || '{"alice": "alice-password"}');

if (!API_KEY) {
  console.error('LAPSE_API_KEY is required');
  process.exit(2);
}

// lapse calls lapse's API with the app's API key.
async function lapse(path, body) {
  return fetch(LAPSE_URL + path, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

// passwordOK compares in constant time (a real app compares a password hash).
function passwordOK(user, password) {
  const want = Object.hasOwn(USERS, user) ? USERS[user] : null;
  const h = (s) => createHash('sha256').update(String(s)).digest();
  return want !== null && timingSafeEqual(h(want), h(password));
}

// localPath keeps rd on this origin: no open redirect.
function localPath(p) {
  if (typeof p !== 'string' || !p.startsWith('/') || p.startsWith('//') || p.startsWith('/\\') || /[\r\n\t]/.test(p)) {
    return '/';
  }
  return p;
}

function cookieOf(req, name) {
  for (const part of (req.headers.cookie || '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return '';
}

// secure: the cookie is Secure unless this is plain HTTP to a loopback
// host (local development), as the proxy says (X-Forwarded-Proto).
function secure(req) {
  const proto = (req.headers['x-forwarded-proto'] || 'http').split(',')[0].trim();
  const host = (req.headers.host || '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return proto !== 'http' || !(host === 'localhost' || host === '::1' || host.startsWith('127.'));
}

function setCookie(req, res, value, maxAge) {
  const attrs = [`${COOKIE}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Lax'];
  if (maxAge !== undefined) attrs.push(`Max-Age=${maxAge}`);
  if (secure(req)) attrs.push('Secure');
  res.setHeader('Set-Cookie', attrs.join('; '));
}

// sameOrigin refuses a form another site posted (the cookie is SameSite=Lax too).
function sameOrigin(req) {
  const site = req.headers['sec-fetch-site'];
  if (site) return site === 'same-origin' || site === 'none';
  const origin = req.headers.origin;
  return !origin || new URL(origin).host === req.headers.host;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 8192) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, rd, error) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head><body>
<h1>Sign in</h1>${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/login">
<input type="hidden" name="rd" value="${escape(rd)}">
<label>User <input id="user" name="user" autocomplete="username" required></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>`);
}

async function signIn(req, res) {
  const form = await readForm(req);
  const rd = localPath(form.get('rd'));
  if (!passwordOK(form.get('user'), form.get('password'))) {
    page(res, 401, rd, 'Wrong user or password.');
    return;
  }
  // A session the browser still held ends here: the new token is fresh.
  const old = cookieOf(req, COOKIE);
  if (old) await lapse('/v1/sessions/revoke', { token: old });
  const ip = (req.headers['x-forwarded-for'] || req.socket.remoteAddress || '').split(',')[0].trim();
  const r = await lapse('/v1/sessions', {
    subject: form.get('user'), aal: 1, amr: ['pwd'],
    ip: ip.replace(/^::ffff:/, ''), user_agent: req.headers['user-agent'] || '',
  });
  if (r.status !== 201) {
    console.error('lapse refused the session:', r.status, await r.text());
    page(res, 503, rd, 'Signing in does not work right now; try again in a moment.');
    return;
  }
  const { token } = await r.json();
  setCookie(req, res, token);
  res.writeHead(303, { location: rd, 'cache-control': 'no-store' });
  res.end();
}

async function signOut(req, res) {
  const tok = cookieOf(req, COOKIE);
  if (tok) await lapse('/v1/sessions/revoke', { token: tok });
  setCookie(req, res, '', 0);
  res.writeHead(303, { location: '/login' });
  res.end();
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://app.invalid');
  try {
    if (req.method === 'GET' && url.pathname === '/login') {
      page(res, 200, localPath(url.searchParams.get('rd')), '');
    } else if (req.method === 'POST' && (url.pathname === '/login' || url.pathname === '/logout')) {
      if (!sameOrigin(req)) {
        res.writeHead(403).end('cross-site form refused');
        return;
      }
      await (url.pathname === '/login' ? signIn(req, res) : signOut(req, res));
    } else {
      res.writeHead(404).end('not found');
    }
  } catch (e) {
    console.error(e);
    if (!res.headersSent) res.writeHead(500).end('internal error');
  }
});

server.listen(PORT, '127.0.0.1', () => console.log(`sign-in listening on http://127.0.0.1:${server.address().port}`));
