// Unit tests of the browser client's logic: node --test web/
// The pure functions run as they are; the client itself runs against a
// fake server, a fake clock and a minimal DOM, with Node's own
// BroadcastChannel standing in for the browser's between "tabs".

import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseTime, clockOffset, sessionState, deadline, kind, newer, evaluate, extendPoint,
  shouldReport, reasonOf, signedOutURL, formatCountdown, formatDuration, fill, Bus, LapseClient,
} from './static/lapse-client.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const S = 1000;
const iso = (ms) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');

// session returns the JSON lapse sends for a session last active at
// `last`, with the given timeouts.
function session({ id = 'ses_1', created = T0, last = T0, idle = 30 * S, absolute = 600 * S, warnBefore = 10 * S, status = 'active', endReason = null } = {}) {
  const idleAt = Math.min(last + idle, created + absolute);
  const first = Math.min(idleAt, created + absolute);
  return {
    id, subject: 'ada', tenant: '', tier: 'standard', aal: 1, amr: ['pwd'], status, end_reason: endReason,
    created_at: iso(created), last_active_at: iso(last), authenticated_at: iso(created),
    idle_expires_at: iso(idleAt), expires_at: iso(created + absolute), warn_at: iso(first - warnBefore), ended_at: null,
  };
}

describe('parseTime', () => {
  test('reads nine fractional digits, dropping those past the millisecond', () => {
    assert.equal(parseTime('2026-01-01T00:00:01.123456789Z'), T0 + 1123);
  });
  test('reads offsets and whole seconds', () => {
    assert.equal(parseTime('2026-01-01T01:00:00+01:00'), T0);
    assert.equal(parseTime('2026-01-01T00:00:00Z'), T0);
  });
  test('refuses what is not RFC 3339', () => {
    for (const bad of ['', 'yesterday', '2026-01-01', '2026-01-01 00:00:00Z', null, undefined]) {
      assert.ok(Number.isNaN(parseTime(bad)), `parseTime(${bad})`);
    }
  });
});

test('clockOffset takes the server time at the midpoint of the round trip', () => {
  assert.equal(clockOffset(T0 + 3600 * S, T0, T0 + 200), 3600 * S - 100);
});

describe('sessionState', () => {
  test('converts every time', () => {
    const s = sessionState(session({ last: T0 + 5 * S }));
    assert.equal(s.lastActiveAt, T0 + 5 * S);
    assert.equal(s.idleExpiresAt, T0 + 35 * S);
    assert.equal(s.warnAt, T0 + 25 * S);
    assert.equal(deadline(s), T0 + 35 * S);
    assert.equal(kind(s), 'idle');
    assert.ok(Number.isNaN(s.remindAt));
  });
  test('the reminder comes remind_after past sign-in, or at remind_at', () => {
    assert.equal(sessionState(session(), 60 * S).remindAt, T0 + 60 * S);
    assert.equal(sessionState({ ...session(), remind_at: iso(T0 + 7 * S) }, 60 * S).remindAt, T0 + 7 * S);
  });
  test('an idle deadline capped by the absolute one is an absolute deadline', () => {
    const s = sessionState(session({ last: T0 + 590 * S }));
    assert.equal(kind(s), 'absolute');
  });
});

describe('evaluate', () => {
  const s = sessionState(session(), 100 * S);
  test('active before warn_at, with the warning as the next change', () => {
    const v = evaluate(s, T0 + 5 * S);
    assert.equal(v.phase, 'active');
    assert.equal(v.remaining, 25 * S);
    assert.equal(v.next, 15 * S);
  });
  test('warning from warn_at until the deadline', () => {
    assert.equal(evaluate(s, T0 + 20 * S).phase, 'warning');
    assert.equal(evaluate(s, T0 + 29999).phase, 'warning');
    assert.equal(evaluate(s, T0 + 20 * S).next, 10 * S);
  });
  test('expired at the deadline, with the reason', () => {
    const v = evaluate(s, T0 + 30 * S);
    assert.deepEqual([v.phase, v.reason], ['expired', 'idle_timeout']);
  });
  test('ended when the server says so, with its reason', () => {
    const v = evaluate(sessionState(session({ status: 'revoked', endReason: 'admin' })), T0);
    assert.deepEqual([v.phase, v.reason], ['ended', 'admin']);
  });
  test('an acknowledged time-limit warning stays dismissed; an idle one cannot be', () => {
    const abs = sessionState(session({ last: T0 + 595 * S }));
    assert.equal(evaluate(abs, T0 + 595 * S).phase, 'warning');
    assert.equal(evaluate(abs, T0 + 595 * S, { acknowledged: T0 + 600 * S }).phase, 'active');
    assert.equal(evaluate(s, T0 + 25 * S, { acknowledged: T0 + 30 * S }).phase, 'warning');
  });
  test('no reminder without remind_after, also after a trip through JSON (NaN becomes null)', () => {
    const plain = sessionState(session());
    assert.equal(evaluate(plain, T0 + 5 * S).remind, false);
    assert.equal(evaluate(JSON.parse(JSON.stringify(plain)), T0 + 5 * S).remind, false);
    assert.equal(evaluate(JSON.parse(JSON.stringify(plain)), T0 + 5 * S).next, 15 * S);
  });
  test('the reminder is due after remindAt unless dismissed, and never over a warning', () => {
    const long = sessionState(session({ last: T0 + 100 * S }), 100 * S);
    assert.equal(evaluate(long, T0 + 101 * S).remind, true);
    assert.equal(evaluate(long, T0 + 101 * S, { remindDismissed: true }).remind, false);
    assert.equal(evaluate(long, T0 + 125 * S).remind, false);
  });
});

describe('shouldReport', () => {
  const s = sessionState(session()); // last active T0, warn at 20 s: halfway is 10 s
  test('halfway to the warning is when activity starts to matter', () => {
    assert.equal(extendPoint(s), T0 + 10 * S);
  });
  test('fresh activity past halfway is reported', () => {
    assert.equal(shouldReport(s, T0 + 12 * S, T0 + 12 * S), true);
  });
  test('activity before halfway is not: the deadline is still far', () => {
    assert.equal(shouldReport(s, T0 + 8 * S, T0 + 8 * S), false);
  });
  test('stale activity is not: the user is away', () => {
    assert.equal(shouldReport(s, T0 + 15 * S, T0 + 11 * S), false);
  });
  test('activity the server already recorded is not', () => {
    assert.equal(shouldReport(s, T0 + 12 * S, T0), false);
  });
  test('nothing is reported while the warning shows', () => {
    assert.equal(shouldReport(s, T0 + 21 * S, T0 + 21 * S), false);
  });
  test('nothing is reported when the absolute deadline caps the idle one', () => {
    const capped = sessionState(session({ last: T0 + 580 * S }));
    assert.equal(shouldReport(capped, T0 + 590 * S, T0 + 590 * S), false);
  });

  // A fake server slides the idle deadline on each report, as lapse does.
  function simulate(activeUntil, until) {
    let last = T0;
    let reports = 0;
    let warned = false;
    for (let now = T0; now < until; now += S) {
      const s = sessionState(session({ last }));
      if (now >= deadline(s)) return { reports, warned, expiredAt: now, last };
      if (evaluate(s, now).phase === 'warning') warned = true;
      const activityAt = now < activeUntil ? now : activeUntil;
      if (shouldReport(s, now, activityAt)) {
        last = now;
        reports++;
      }
    }
    return { reports, warned, expiredAt: null, last };
  }
  test('an always-active user is never warned and costs one request per half the quiet time, not one per event', () => {
    // Idle 30 s, warning 10 s before: a report every 10 s at most, while
    // the user makes an event every second.
    const r = simulate(Infinity, T0 + 300 * S);
    assert.equal(r.warned, false);
    assert.equal(r.expiredAt, null);
    assert.ok(r.reports >= 20 && r.reports <= 30, `${r.reports} reports in 300 s`);
  });
  test('a user who leaves is not kept alive: the session ends at most an idle period after the last activity', () => {
    const leftAt = T0 + 47 * S;
    const r = simulate(leftAt, T0 + 300 * S);
    assert.ok(r.last <= leftAt, 'reported activity after the user left');
    assert.ok(r.expiredAt !== null && r.expiredAt <= leftAt + 30 * S, `expired at ${(r.expiredAt - T0) / S} s, left at 47 s`);
    assert.equal(r.warned, true);
  });
});

test('newer prefers ended sessions, a new session, then later activity', () => {
  const a = sessionState(session({ last: T0 + 5 * S }));
  assert.equal(newer(null, a), true);
  assert.equal(newer(a, sessionState(session({ last: T0 + 6 * S }))), true);
  assert.equal(newer(a, sessionState(session({ last: T0 + 4 * S }))), false);
  assert.equal(newer(a, sessionState(session({ status: 'revoked', last: T0 }))), true);
  assert.equal(newer(a, sessionState(session({ id: 'ses_2', last: T0 }))), true);
  const ended = sessionState(session({ status: 'expired' }));
  assert.equal(newer(ended, a), false);
});

test('formatting', () => {
  assert.equal(formatCountdown(65 * S), '1:05');
  assert.equal(formatCountdown(9001), '0:10');
  assert.equal(formatCountdown(-5), '0:00');
  assert.equal(formatCountdown(3723 * S), '1:02:03');
  assert.equal(formatDuration(8 * 3600 * S + 5), '8 hours');
  assert.equal(formatDuration(61 * 60 * S), '1 hour');
  assert.equal(formatDuration(60 * S), '1 minute');
  assert.equal(formatDuration(45 * 60 * S), '45 minutes');
  assert.equal(formatDuration(59 * S), 'less than a minute');
  assert.equal(reasonOf('session_expired_idle'), 'idle_timeout');
  assert.equal(reasonOf('session_revoked'), 'revoked');
  assert.equal(reasonOf(undefined), 'signed_out');
  assert.equal(signedOutURL('/signed-out', 'idle_timeout'), '/signed-out?reason=idle_timeout');
  assert.equal(signedOutURL('/bye?lang=en#top', 'admin'), '/bye?lang=en&reason=admin#top');
  assert.equal(fill('in {time}, {x}', { time: '1:00' }), 'in 1:00, {x}');
});

const flush = (ms = 30) => new Promise((r) => setTimeout(r, ms));
// until waits for messages between tabs, which a BroadcastChannel
// delivers asynchronously, and in a busy process late.
async function until(cond, ms = 10000) {
  for (const end = Date.now() + ms; !cond() && Date.now() < end;) await flush(10);
}

describe('Bus', () => {
  test('BroadcastChannel reaches the other tabs, not the sender', async () => {
    const got = [[], []];
    const a = new Bus('lapse-test-bc', (m) => got[0].push(m));
    const b = new Bus('lapse-test-bc', (m) => got[1].push(m));
    a.post({ t: 'activity' });
    await until(() => got[1].length > 0);
    await flush();
    a.close();
    b.close();
    assert.deepEqual(got, [[], [{ t: 'activity' }]]);
  });
  test('without BroadcastChannel, the storage event carries every message, repeats included', () => {
    // Two tabs of one origin: a shared localStorage whose writes fire
    // "storage" in the other tab only, as browsers do.
    const tabs = [];
    const store = new Map();
    const env = (i) => {
      const et = new EventTarget();
      const fire = (k, v) => {
        for (const [j, other] of tabs.entries()) {
          if (j !== i) other.dispatchEvent(Object.assign(new Event('storage'), { key: k, newValue: v }));
        }
      };
      return {
        localStorage: { setItem: (k, v) => { store.set(k, v); fire(k, v); } },
        addEventListener: et.addEventListener.bind(et),
        removeEventListener: et.removeEventListener.bind(et),
        dispatchEvent: et.dispatchEvent.bind(et),
      };
    };
    const envs = [env(0), env(1)];
    tabs.push(...envs);
    const got = [];
    const a = new Bus('lapse', () => assert.fail('the sender heard itself'), envs[0]);
    const b = new Bus('lapse', (m) => got.push(m), envs[1]);
    a.post({ t: 'signout', reason: 'logout' });
    a.post({ t: 'signout', reason: 'logout' });
    b.close();
    a.post({ t: 'late' });
    assert.deepEqual(got, [{ t: 'signout', reason: 'logout' }, { t: 'signout', reason: 'logout' }]);
  });
});

// --- the client against a fake server, clock and DOM ---

class FakeServer {
  constructor(clock, { idle = 30 * S, absolute = 600 * S, warnBefore = 10 * S } = {}) {
    this.clock = clock;
    this.opts = { idle, absolute, warnBefore };
    this.created = clock.now;
    this.last = clock.now;
    this.status = 'active';
    this.endReason = null;
    this.remindAt = undefined; // the session's remind_at: undefined leaves the member out
    this.activityRoute = true; // false: a server that predates POST /v1/session/activity
    this.requests = [];
    this.skew = 0; // how far the server's clock is ahead
  }
  json() {
    const s = session({ created: this.created, last: this.last, status: this.status, endReason: this.endReason, ...this.opts });
    if (this.remindAt !== undefined) s.remind_at = this.remindAt === null ? null : iso(this.remindAt);
    return s;
  }
  fetch = async (url, init) => {
    const path = new URL(url, 'http://app.test').pathname;
    this.requests.push(`${init.method} ${path}`);
    const now = this.clock.now + this.skew;
    const reply = (status, body) => ({ status, json: async () => body });
    if (this.status === 'active' && now >= Math.min(this.last + this.opts.idle, this.created + this.opts.absolute)) {
      this.status = 'expired';
      this.endReason = 'idle_timeout';
    }
    if (this.status !== 'active') {
      const code = this.status === 'revoked' ? 'session_revoked' : 'session_expired_idle';
      return reply(401, this.endReason ? { code, status: 401, end_reason: this.endReason } : { code, status: 401 });
    }
    if (init.method !== 'GET' && init.headers['X-Lapse-CSRF'] === undefined) return reply(403, { code: 'csrf_header_required' });
    switch (`${init.method} ${path}`) {
      case 'GET /lapse/v1/session':
        return reply(200, { session: this.json(), now: iso(now) });
      case 'POST /lapse/v1/session/extend':
        this.last = now;
        return reply(200, { session: this.json(), now: iso(now) });
      case 'POST /lapse/v1/session/activity':
        if (!this.activityRoute) break;
        this.last = now;
        return reply(200, { session: this.json(), now: iso(now) });
      case 'POST /lapse/v1/session/logout':
        this.status = 'revoked';
        this.endReason = 'logout';
        return reply(204, null);
    }
    return reply(404, {});
  };
}

const clock = { now: T0 };
let server;
const clients = [];

function setupDOM() {
  globalThis.document = Object.assign(new EventTarget(), { visibilityState: 'visible', documentElement: { dataset: {} } });
  globalThis.window = Object.assign(new EventTarget(), { location: { assign: () => assert.fail('redirected instead of calling onSignedOut') } });
  globalThis.Element ??= class {};
  globalThis.fetch = (url, init) => server.fetch(url, init);
}

// tab starts a client that renders into a list of views and records
// sign-outs instead of navigating.
async function tab(extra = {}) {
  const views = [];
  const signedOut = [];
  const c = new LapseClient({
    ...extra,
    endpoint: '/lapse',
    channel: 'lapse-test-client',
    now: () => clock.now,
    render: (v) => views.push(v),
    onSignedOut: (e) => {
      signedOut.push(e.reason);
      return false;
    },
  });
  c.start();
  clients.push(c);
  await flush();
  return { c, views, signedOut, last: () => views[views.length - 1] };
}

describe('LapseClient', () => {
  afterEach(() => {
    for (const c of clients.splice(0)) c.stop();
  });

  test('reads the session at start and warns at warn_at, by the server clock', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    server.skew = 3600 * S; // the server is an hour ahead of this machine
    server.created = server.last = T0 + 3600 * S;
    const a = await tab();
    assert.equal(a.last().phase, 'active');
    clock.now = T0 + 19 * S;
    a.c.tick();
    assert.equal(a.last().phase, 'active');
    clock.now = T0 + 20 * S;
    a.c.tick();
    assert.equal(a.last().phase, 'active', 'warned before the server confirmed');
    await until(() => a.last().phase === 'warning');
    assert.equal(a.last().phase, 'warning');
    assert.equal(a.last().countdown, '0:10');
  });

  test('"Stay signed in" extends on the server and closes the warning in every tab', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    const a = await tab();
    const b = await tab();
    clock.now = T0 + 22 * S;
    a.c.tick();
    b.c.tick();
    await until(() => a.last().phase === 'warning' && b.last().phase === 'warning');
    assert.equal(b.last().phase, 'warning');
    assert.equal(await a.c.extend(), true);
    await until(() => b.last().phase === 'active');
    assert.equal(server.last, T0 + 22 * S);
    assert.equal(a.last().phase, 'active');
    assert.equal(b.last().phase, 'active');
    assert.deepEqual(server.requests.filter((r) => r.includes('extend')), ['POST /lapse/v1/session/extend']);
  });

  test('activity in one tab keeps the other alive, with one activity report and no extend', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    const a = await tab();
    const b = await tab();
    clock.now = T0 + 16 * S; // past halfway to the warning
    a.c.activity();
    await until(() => b.c.s.lastActiveAt === T0 + 16 * S && b.c.activityAt > 0);
    b.c.activity(); // too late to matter: a already reported
    await flush();
    assert.equal(server.last, T0 + 16 * S);
    assert.deepEqual(server.requests.filter((r) => r.startsWith('POST')), ['POST /lapse/v1/session/activity']);
    clock.now = T0 + 33 * S; // past the first deadline, before the new warning
    b.c.tick();
    assert.equal(b.last().phase, 'active');
  });

  test('no activity, no request: the idle tab expires and says why', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    const a = await tab();
    const b = await tab();
    clock.now = T0 + 30 * S;
    a.c.tick();
    await until(() => b.signedOut.length > 0);
    assert.deepEqual(server.requests.filter((r) => r.startsWith('POST')), []);
    assert.deepEqual(a.signedOut, ['idle_timeout']);
    assert.deepEqual(b.signedOut, ['idle_timeout']);
  });

  test('sign-out in one tab signs out the others', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    const a = await tab();
    const b = await tab();
    assert.equal(await a.c.signOut(), true);
    await until(() => b.signedOut.length > 0);
    assert.equal(server.status, 'revoked');
    assert.deepEqual(a.signedOut, ['logout']);
    assert.deepEqual(b.signedOut, ['logout']);
  });

  test('a sign-out the server did not confirm signs nobody out', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    const a = await tab();
    globalThis.fetch = async () => {
      throw new TypeError('network down');
    };
    assert.equal(await a.c.signOut(), false);
    assert.deepEqual(a.signedOut, []);
    assert.match(a.c.status, /Could not sign out/);
  });

  test('a session revoked elsewhere is noticed on the next check', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    const a = await tab();
    server.status = 'revoked';
    document.dispatchEvent(new Event('visibilitychange'));
    await until(() => a.signedOut.length > 0);
    assert.deepEqual(a.signedOut, ['revoked']);
  });

  test('an ended session\'s problem says why, without the stream', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    const a = await tab();
    server.status = 'revoked';
    server.endReason = 'admin';
    document.dispatchEvent(new Event('visibilitychange'));
    await until(() => a.signedOut.length > 0);
    assert.deepEqual(a.signedOut, ['admin']);
  });

  test('a server without POST /v1/session/activity gets the report as an extend', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    server.activityRoute = false;
    const a = await tab();
    clock.now = T0 + 16 * S;
    a.c.activity();
    await until(() => a.c.s.lastActiveAt === T0 + 16 * S);
    assert.equal(a.c.status, '');
    clock.now = T0 + 32 * S;
    a.c.activity();
    await until(() => a.c.s.lastActiveAt === T0 + 32 * S);
    assert.deepEqual(server.requests.filter((r) => r.startsWith('POST')),
      ['POST /lapse/v1/session/activity', 'POST /lapse/v1/session/extend', 'POST /lapse/v1/session/extend']);
  });

  test('the reminder comes at the session\'s remind_at; remindAfterSeconds only fills in for a session without one', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    server.remindAt = T0 + 5 * S;
    const a = await tab({ remindAfterSeconds: 8 });
    assert.equal(a.c.s.remindAt, T0 + 5 * S);
    clock.now = T0 + 6 * S;
    a.c.tick();
    assert.equal(a.last().remind, true);
    a.c.stop();
    server = new FakeServer(clock);
    server.remindAt = null; // the tier has none: the page's option applies
    const b = await tab({ remindAfterSeconds: 8 });
    assert.equal(b.c.s.remindAt, T0 + 6 * S + 8 * S);
    const c = await tab();
    assert.ok(Number.isNaN(c.c.s.remindAt));
  });

  test('waking from sleep shows the truth at once', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    const a = await tab();
    clock.now = T0 + 3600 * S; // the lid was closed for an hour
    a.c.tick();
    await until(() => a.signedOut.length > 0);
    assert.deepEqual(a.signedOut, ['idle_timeout']);
  });

  test('the long-session reminder comes after remind_after; dismissing it hides it in every tab', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    const a = await tab({ remindAfterSeconds: 8 });
    const b = await tab({ remindAfterSeconds: 8 });
    clock.now = T0 + 9 * S;
    a.c.tick();
    b.c.tick();
    assert.equal(a.last().remind, true);
    assert.equal(a.last().signedInFor, 'less than a minute');
    a.c.dismissReminder();
    await until(() => b.last().remind === false);
    assert.equal(a.last().remind, false);
    assert.equal(b.last().remind, false);
  });

  test('a time-limit warning cannot be extended, only acknowledged, in every tab at once', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock, { idle: 30 * S, absolute: 40 * S, warnBefore: 10 * S });
    server.last = T0 + 15 * S; // idle deadline 45 s, capped by the absolute one at 40 s
    const a = await tab();
    const b = await tab();
    clock.now = T0 + 31 * S;
    a.c.tick();
    b.c.tick();
    await until(() => a.last().phase === 'warning' && b.last().phase === 'warning');
    assert.deepEqual([a.last().phase, a.last().kind], ['warning', 'absolute']);
    a.c.activity();
    await flush();
    assert.deepEqual(server.requests.filter((r) => r.startsWith('POST')), []);
    a.c.acknowledge();
    await until(() => b.last().phase === 'active');
    assert.equal(a.last().phase, 'active');
    assert.equal(b.last().phase, 'active');
  });

  test('a deadline moved by requests the client did not see cancels the warning', async () => {
    setupDOM();
    clock.now = T0;
    server = new FakeServer(clock);
    const a = await tab();
    server.last = T0 + 15 * S; // a page load in another browser touched the session
    clock.now = T0 + 21 * S;
    a.c.tick();
    await until(() => a.c.s.lastActiveAt === T0 + 15 * S);
    await flush();
    assert.ok(a.views.every((v) => !v || v.phase !== 'warning'), 'warned although the server had moved the deadline');
  });
});
