// lapse-client.js: the browser side of a lapse session.
//
// It mirrors the session the server keeps; it never decides on its own
// that a session is alive. It tracks the user's activity and tells the
// server about it only when the idle deadline needs it, warns before the
// session ends (an accessible alert dialog with a live countdown, "Stay
// signed in" and "Sign out"), follows the session's event stream so a
// revoke from elsewhere takes effect at once, keeps every tab of the
// browser in step, and sends the user to a signed-out page with the
// reason when the session ends.
//
// Plain ES module, no dependencies. The pure logic (everything exported
// except start and LapseClient) runs without a DOM and is unit-tested
// with Node's test runner. Types: lapse-client.d.ts. Guide:
// docs/browser.md.

/** Sign-out reasons by the problem code of lapse's HTTP API. */
export const REASON_BY_CODE = Object.freeze({
  session_expired_idle: 'idle_timeout',
  session_expired_absolute: 'absolute_timeout',
  session_revoked: 'revoked',
  session_not_found: 'signed_out',
});

/** The built-in texts; override any of them with the `text` option. */
export const DEFAULT_TEXT = Object.freeze({
  warningTitle: 'Your session is about to end',
  warningIdle: 'You have not been active for a while. To protect your account, you will be signed out in {time}.',
  warningAbsolute: 'Your session reaches its time limit and ends in {time}. Save your work: you will need to sign in again.',
  stay: 'Stay signed in',
  signOut: 'Sign out',
  acknowledge: 'OK',
  timeLeft: '{time} left',
  offline: 'Cannot reach the server. Trying again…',
  signOutFailed: 'Could not sign out: check your connection and try again.',
  reminder: 'You have been signed in for {duration}. If this is a shared device, remember to sign out.',
  dismiss: 'Dismiss',
});

// ---------------------------------------------------------------------
// Pure logic. Times are numbers of milliseconds since the epoch.

/**
 * parseTime reads an RFC 3339 time with any number of fractional digits
 * (lapse sends nine) and returns milliseconds since the epoch, or NaN.
 * Digits past the millisecond are dropped, which can only make a
 * deadline earlier.
 */
export function parseTime(s) {
  if (typeof s !== 'string') return NaN;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/.exec(s);
  if (!m) return NaN;
  const ms = (m[2] || '').padEnd(3, '0').slice(0, 3);
  return Date.parse(`${m[1]}.${ms}${m[3]}`);
}

/**
 * clockOffset estimates how far the server's clock is ahead of this
 * one: the server's `now` is taken to be the midpoint of the round trip.
 */
export function clockOffset(serverNow, sentAt, receivedAt) {
  return serverNow - (sentAt + receivedAt) / 2;
}

/**
 * sessionState turns the session JSON of lapse's browser routes into the
 * times the client works with. The long-session reminder comes at the
 * session's `remind_at`, which lapse sends when the tier has a
 * remind_after; remindAfterMs (the remindAfterSeconds option) is used
 * only when the session has none (null, or a server too old to send it).
 */
export function sessionState(session, remindAfterMs = 0) {
  const s = {
    id: session.id,
    status: session.status,
    endReason: session.end_reason || '',
    tier: session.tier,
    aal: session.aal,
    idleExpiresAt: parseTime(session.idle_expires_at),
    expiresAt: parseTime(session.expires_at),
    warnAt: parseTime(session.warn_at),
    lastActiveAt: parseTime(session.last_active_at),
    createdAt: parseTime(session.created_at),
    authenticatedAt: parseTime(session.authenticated_at),
    remindAt: NaN,
  };
  if (session.remind_at) s.remindAt = parseTime(session.remind_at);
  else if (remindAfterMs > 0) s.remindAt = s.createdAt + remindAfterMs;
  return s;
}

/** deadline returns the earlier of the session's two deadlines. */
export function deadline(s) {
  return Math.min(s.idleExpiresAt, s.expiresAt);
}

/** kind says which deadline comes first: "idle" or "absolute". */
export function kind(s) {
  return s.idleExpiresAt < s.expiresAt ? 'idle' : 'absolute';
}

/**
 * newer reports whether state b should replace state a: an ended session
 * always does, a session that took the cookie over (another id) does,
 * and otherwise the one with the later activity or authentication.
 */
export function newer(a, b) {
  if (!a) return true;
  if (a.status !== 'active') return false;
  if (b.id !== a.id || b.status !== 'active') return true;
  return b.lastActiveAt >= a.lastActiveAt || b.authenticatedAt > a.authenticatedAt;
}

/**
 * evaluate says where session s stands at server time now:
 *   phase "active", "warning", "expired" (a deadline passed: ask the
 *   server) or "ended" (the server said so);
 *   kind, deadline and remaining (ms) of the first deadline;
 *   reason, for an ended or expired session;
 *   remind, whether the long-session reminder is due;
 *   next, ms until something changes (the warning, the deadline, the
 *   reminder), for the next check.
 * acknowledged is the deadline whose time-limit warning the user already
 * acknowledged (an absolute deadline cannot be extended, so its warning
 * can only be dismissed); remindDismissed hides the reminder.
 */
export function evaluate(s, now, { acknowledged = 0, remindDismissed = false } = {}) {
  const end = deadline(s);
  const k = kind(s);
  const out = { phase: 'active', kind: k, deadline: end, remaining: Math.max(0, end - now), reason: '', remind: false, next: Infinity };
  if (s.status !== 'active') {
    out.phase = 'ended';
    out.reason = s.endReason || (s.status === 'revoked' ? 'revoked' : 'signed_out');
    return out;
  }
  if (now >= end) {
    out.phase = 'expired';
    out.reason = k === 'idle' ? 'idle_timeout' : 'absolute_timeout';
    return out;
  }
  if (now >= s.warnAt && !(k === 'absolute' && acknowledged === end)) {
    out.phase = 'warning';
  }
  // remindAt may be NaN (no reminder), or null after a trip through JSON.
  const remindAt = Number.isFinite(s.remindAt) ? s.remindAt : Infinity;
  out.remind = out.phase === 'active' && !remindDismissed && now >= remindAt;
  const upcoming = [end];
  if (now < s.warnAt) upcoming.push(s.warnAt);
  if (!remindDismissed && now < remindAt) upcoming.push(remindAt);
  out.next = Math.max(0, Math.min(...upcoming) - now);
  return out;
}

/**
 * extendPoint is when activity starts being worth reporting: halfway
 * from the server's last recorded activity to the warning. Activity
 * before it is not reported (the deadline is still far), so an active
 * user costs about two requests per idle period and never one per event.
 */
export function extendPoint(s) {
  return s.lastActiveAt + (s.warnAt - s.lastActiveAt) / 2;
}

/**
 * shouldReport decides whether activity at server time activityAt must
 * be reported now (POST /v1/session/activity) to keep the session
 * alive. Only fresh activity counts (within freshMs), so the request
 * records the time the user was really there: the server's idle
 * deadline may end up earlier than the user's true last activity, never
 * later. Nothing is reported while the warning shows (only an explicit
 * "Stay signed in" extends then), nor when the idle deadline is already
 * capped by the absolute one.
 */
export function shouldReport(s, now, activityAt, freshMs = 2000) {
  if (!s || s.status !== 'active') return false;
  if (s.idleExpiresAt >= s.expiresAt) return false;
  if (now >= s.warnAt || now >= deadline(s)) return false;
  if (!(activityAt > s.lastActiveAt) || now - activityAt > freshMs) return false;
  return now >= extendPoint(s);
}

/** reasonOf returns the sign-out reason for a problem code. */
export function reasonOf(code) {
  return REASON_BY_CODE[code] || 'signed_out';
}

/** signedOutURL adds ?reason= to the signed-out page's URL. */
export function signedOutURL(page, reason) {
  const hash = page.indexOf('#');
  const base = hash < 0 ? page : page.slice(0, hash);
  const frag = hash < 0 ? '' : page.slice(hash);
  return `${base}${base.includes('?') ? '&' : '?'}reason=${encodeURIComponent(reason)}${frag}`;
}

/** formatCountdown shows ms as m:ss (or h:mm:ss), rounding up. */
export function formatCountdown(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** formatDuration shows ms in words, to the hour or minute. */
export function formatDuration(ms) {
  const minutes = Math.floor(ms / 60000);
  if (minutes >= 120) return `${Math.floor(minutes / 60)} hours`;
  if (minutes >= 60) return '1 hour';
  if (minutes === 1) return '1 minute';
  if (minutes === 0) return 'less than a minute';
  return `${minutes} minutes`;
}

/** fill replaces {name} placeholders in a text. */
export function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (all, k) => (k in values ? values[k] : all));
}

/**
 * Bus carries messages between the tabs of one origin: a
 * BroadcastChannel where there is one, otherwise the storage event of
 * localStorage (which fires in every other tab of the origin). A
 * message never comes back to the tab that sent it.
 */
export class Bus {
  constructor(name, onMessage, env = globalThis) {
    this.name = name;
    this.closed = false;
    if (typeof env.BroadcastChannel === 'function') {
      this.channel = new env.BroadcastChannel(name);
      this.channel.onmessage = (e) => !this.closed && onMessage(e.data);
    } else if (env.localStorage && typeof env.addEventListener === 'function') {
      this.storage = env.localStorage;
      this.env = env;
      this.listener = (e) => {
        if (this.closed || e.key !== name || !e.newValue) return;
        try {
          onMessage(JSON.parse(e.newValue).m);
        } catch {
          // a value some other script wrote: not ours
        }
      };
      env.addEventListener('storage', this.listener);
    }
  }

  post(m) {
    if (this.closed) return;
    if (this.channel) {
      this.channel.postMessage(m);
    } else if (this.storage) {
      try {
        // The nonce makes every message a change, so the event fires.
        this.storage.setItem(this.name, JSON.stringify({ m, n: `${Date.now()}-${Math.random()}` }));
      } catch {
        // storage full or forbidden: this tab only
      }
    }
  }

  close() {
    this.closed = true;
    if (this.channel) this.channel.close();
    if (this.listener) this.env.removeEventListener('storage', this.listener);
  }
}

// ---------------------------------------------------------------------
// The client.

// Scrolling counts through the wheel, touch, keys and scrollbar drags
// that cause it; the scroll event itself is left out because scripts
// fire it too (an auto-scrolling feed is not a user).
const ACTIVITY_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'touchmove', 'input'];

// The default look. Class selectors (up to two classes) keep a site's
// element-level rules, such as a reset's "button { background: none }",
// from breaking the dialog; theme it with the custom properties, or turn
// it off (styles: false) and style the class hooks yourself.
const STYLE = `
.lapse-dialog {
  box-sizing: border-box; width: min(30rem, calc(100vw - 2rem)); padding: 1.5rem; border: 0;
  border-radius: var(--lapse-radius, .75rem); background: var(--lapse-bg, #fff); color: var(--lapse-fg, #1b1f24);
  font: var(--lapse-font, 1rem/1.5 system-ui, -apple-system, "Segoe UI", sans-serif);
  box-shadow: 0 12px 40px rgb(0 0 0 / .3);
}
.lapse-dialog::backdrop { background: var(--lapse-backdrop, rgb(15 23 42 / .55)); }
.lapse-dialog .lapse-dialog__title { margin: 0 0 .5rem; font-size: 1.25rem; line-height: 1.3; }
.lapse-dialog .lapse-dialog__message { margin: 0; }
.lapse-dialog .lapse-dialog__countdown { font-variant-numeric: tabular-nums; font-weight: 700; }
.lapse-dialog .lapse-dialog__status { margin: .75rem 0 0; color: var(--lapse-muted, #4b5563); }
.lapse-dialog .lapse-dialog__status:empty { display: none; }
.lapse-dialog .lapse-dialog__announce {
  position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
.lapse-dialog .lapse-dialog__actions { display: flex; flex-wrap: wrap; gap: .75rem; margin-top: 1rem; }
.lapse-dialog .lapse-button, .lapse-reminder .lapse-button {
  font: inherit; padding: .55rem 1.1rem; cursor: pointer; color: inherit;
  border: 1px solid var(--lapse-border, #9aa3ae); border-radius: var(--lapse-button-radius, .5rem);
  background: var(--lapse-button-bg, transparent);
}
.lapse-dialog .lapse-button--primary, .lapse-reminder .lapse-button--primary {
  background: var(--lapse-accent, #1d4ed8); border-color: var(--lapse-accent, #1d4ed8); color: var(--lapse-accent-fg, #fff);
}
.lapse-dialog .lapse-button:focus-visible, .lapse-reminder .lapse-button:focus-visible {
  outline: 3px solid var(--lapse-focus, #f59e0b); outline-offset: 2px;
}
.lapse-reminder {
  position: fixed; inset-inline: 1rem; bottom: 1rem; margin-inline: auto; max-width: 42rem; z-index: 2147483000;
  display: flex; flex-wrap: wrap; align-items: center; gap: .75rem; padding: .75rem 1rem;
  font: var(--lapse-font, 1rem/1.5 system-ui, -apple-system, "Segoe UI", sans-serif);
  background: var(--lapse-reminder-bg, #fffbeb); color: var(--lapse-fg, #1b1f24);
  border: 1px solid var(--lapse-reminder-border, #d97706); border-radius: var(--lapse-radius, .75rem);
  box-shadow: 0 4px 16px rgb(0 0 0 / .15);
}
.lapse-reminder .lapse-reminder__message { margin: 0; flex: 1 1 16rem; }
`;

/**
 * start creates a client with the given options and starts it. See
 * lapse-client.d.ts for the options.
 */
export function start(options = {}) {
  const c = new LapseClient(options);
  c.start();
  return c;
}

export class LapseClient {
  constructor(options = {}) {
    this.opts = {
      endpoint: '',
      signedOutUrl: '/signed-out',
      credentials: 'same-origin',
      activityEvents: ACTIVITY_EVENTS,
      activityThrottleMs: 1000,
      remindAfterSeconds: 0,
      channel: 'lapse',
      stream: true,
      styles: true,
      signOutForms: 'form[data-lapse-signout]',
      ...options,
    };
    this.text = { ...DEFAULT_TEXT, ...(options.text || {}) };
    this.s = null; // the session as the server last described it
    this.offset = 0; // server clock minus ours, ms
    this.activityAt = 0; // our clock: the latest activity in any tab
    this.processedAt = 0; // our clock: the last activity we acted on
    this.acknowledged = 0;
    this.remindDismissed = false;
    this.ended = false;
    this.view = null; // what is shown
    this.listeners = new Map();
    this.cleanups = [];
    this.timer = 0;
    this.lastTick = 0;
    this.checking = null; // the expiry check in flight
    this.extending = null; // the extend in flight
    this.reporting = null; // the activity report in flight
    this.noActivityRoute = false; // the server predates POST /activity
    this.status = '';
    this.now = this.opts.now || Date.now;
  }

  // --- public API ---

  /** The session and what the client shows, for a custom UI or tests. */
  get state() {
    const v = this.s && evaluate(this.s, this.serverNow(), this.evalOptions());
    return { session: this.s, offset: this.offset, ended: this.ended, ...(v || {}) };
  }

  /** on subscribes fn to an event; it returns a function that unsubscribes. */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  /** extend is "Stay signed in": it extends the session in every tab. */
  async extend() {
    const ok = await this.doExtend();
    if (ok) this.emit('extended', { session: this.s });
    return ok;
  }

  /** acknowledge dismisses a time-limit warning in every tab. */
  acknowledge() {
    if (!this.s) return;
    this.acknowledged = deadline(this.s);
    this.bus.post({ t: 'ack', sid: this.s.id, deadline: this.acknowledged });
    this.tick();
  }

  /** dismissReminder hides the long-session reminder in every tab. */
  dismissReminder() {
    this.remindDismissed = true;
    if (this.s) this.bus.post({ t: 'remind-dismiss', sid: this.s.id });
    this.tick();
  }

  /**
   * signOut ends the session on the server, then signs out every tab.
   * If the server cannot be reached the user stays signed in and is
   * told so: a sign-out that did not happen must not look like one.
   */
  async signOut() {
    let res;
    try {
      res = await this.request('POST', '/logout');
    } catch {
      this.setStatus(this.text.signOutFailed);
      return false;
    }
    if (res.status === 204 || res.status === 401) {
      this.signedOut('logout', true);
      return true;
    }
    this.setStatus(this.text.signOutFailed);
    return false;
  }

  /** refresh reads the session from the server again. */
  async refresh() {
    let res;
    try {
      res = await this.request('GET', '');
    } catch {
      return false;
    }
    return this.handle(res);
  }

  /** stop removes the client's listeners, timers, stream and UI. */
  stop() {
    clearTimeout(this.timer);
    clearTimeout(this.retry);
    for (const f of this.cleanups.splice(0)) f();
    if (this.bus) this.bus.close();
    this.closeStream();
    this.render(null);
  }

  // --- life cycle ---

  start() {
    this.bus = new Bus(this.opts.channel, (m) => this.receive(m));
    const onActivity = (e) => this.activity(e);
    for (const type of this.opts.activityEvents) {
      this.listen(document, type, onActivity, { capture: true, passive: true });
    }
    this.listen(document, 'visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        this.activity(); // coming back to the tab is the user being there
        this.refresh(); // and whatever happened meanwhile, the server knows
      }
      this.tick();
    });
    this.listen(window, 'pageshow', (e) => e.persisted && this.refresh());
    this.listen(window, 'online', () => this.refresh());
    this.listen(window, 'focus', onActivity);
    this.listen(document, 'submit', (e) => {
      // A sign-out form of the app itself: the other tabs check with the
      // server at once (the form's POST ends the session).
      if (this.s && e.target instanceof Element && e.target.matches(this.opts.signOutForms)) {
        this.bus.post({ t: 'signout-pending', sid: this.s.id, reason: 'logout' });
      }
    }, { capture: true });
    if (this.opts.styles && !this.opts.render) injectStyle(this.opts.nonce);
    const first = async () => {
      if (this.ended) return;
      if (await this.refresh()) this.startStream();
      else if (!this.ended) this.retry = setTimeout(first, 2000); // offline: try again
    };
    first();
  }

  listen(target, type, fn, opts) {
    target.addEventListener(type, fn, opts);
    this.cleanups.push(() => target.removeEventListener(type, fn, opts));
  }

  serverNow() {
    return this.now() + this.offset;
  }

  evalOptions() {
    return { acknowledged: this.acknowledged, remindDismissed: this.remindDismissed };
  }

  emit(type, detail) {
    for (const fn of this.listeners.get(type) || []) {
      try {
        fn(detail);
      } catch (err) {
        setTimeout(() => { throw err; });
      }
    }
  }

  // --- server ---

  async request(method, path) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET') headers['X-Lapse-CSRF'] = '1';
    const sent = this.now();
    const res = await fetch(`${this.opts.endpoint}/v1/session${path}`, {
      method, headers, credentials: this.opts.credentials, cache: 'no-store',
    });
    const received = this.now();
    let body = null;
    if (res.status !== 204) {
      try {
        body = await res.json();
      } catch {
        body = null;
      }
    }
    if (body && body.now) {
      const t = parseTime(body.now);
      if (!Number.isNaN(t)) this.offset = clockOffset(t, sent, received);
    }
    return { status: res.status, body };
  }

  // handle applies the answer of a session route.
  handle(res) {
    if (res.status === 200 && res.body && res.body.session) {
      this.accept(sessionState(res.body.session, this.opts.remindAfterSeconds * 1000), true);
      this.setStatus('');
      return true;
    }
    if (res.status === 401) {
      const code = res.body && res.body.code;
      // The problem of an ended session says why (end_reason). Without
      // it, a sign-out another tab announced has its reason: the server
      // says "not found" once that tab's response has cleared the cookie
      // all tabs share.
      const announced = this.pendingReason && (code === 'session_revoked' || code === 'session_not_found');
      const reason = (res.body && typeof res.body.end_reason === 'string' && res.body.end_reason)
        || (announced ? this.pendingReason : reasonOf(code));
      this.signedOut(reason, true);
    }
    return false;
  }

  // accept takes a newer description of the session.
  accept(s, share) {
    if (this.ended || !newer(this.s, s)) return;
    const changedId = this.s && this.s.id !== s.id;
    this.s = s;
    if (changedId) this.acknowledged = 0;
    if (share) this.bus.post({ t: 'state', sid: s.id, s });
    this.emit('state', { session: s });
    if (s.status !== 'active') {
      this.signedOut(evaluate(s, this.serverNow()).reason, share);
      return;
    }
    this.tick();
  }

  // doExtend is "Stay signed in": POST /extend, which the server records
  // as session.extended.
  async doExtend() {
    if (!this.extending) {
      this.extending = this.post('/extend').finally(() => {
        this.extending = null;
      });
    }
    return this.extending;
  }

  // doReport reports routine activity: POST /activity. A server that
  // predates that route (404) gets the report as an extend, as it used to.
  async doReport() {
    if (!this.reporting) {
      this.reporting = this.post(this.noActivityRoute ? '/extend' : '/activity', true).finally(() => {
        this.reporting = null;
      });
    }
    return this.reporting;
  }

  // post sends a POST to a session route and applies the answer.
  async post(path, report = false) {
    try {
      let res = await this.request('POST', path);
      if (report && res.status === 404 && path === '/activity') {
        this.noActivityRoute = true;
        res = await this.request('POST', '/extend');
      }
      const ok = this.handle(res);
      if (!ok && !this.ended) this.setStatus(this.text.offline);
      return ok;
    } catch {
      this.setStatus(this.text.offline);
      return false;
    }
  }

  // --- activity ---

  activity(e) {
    // Events a script made up (dispatchEvent) are not a user.
    if (e && e.isTrusted === false) return;
    const now = this.now();
    this.activityAt = now;
    if (this.ended || now - this.processedAt < this.opts.activityThrottleMs) return;
    this.processedAt = now;
    if (this.s) this.bus.post({ t: 'activity', sid: this.s.id, at: now });
    this.maybeReport();
  }

  // maybeReport reports activity to the server if it needs reporting
  // (POST /activity: recorded as a verify records activity, not as an
  // extend). The tab where the activity happened does it, under a Web
  // Lock where the browser has them, re-checking once it holds the lock:
  // another tab may have just done it.
  maybeReport() {
    const due = () => shouldReport(this.s, this.serverNow(), this.activityAt + this.offset);
    if (!due()) return;
    const go = () => (due() ? this.doReport() : undefined);
    const locks = webLocks();
    if (locks) {
      locks.request(`${this.opts.channel}:activity`, { ifAvailable: true }, (lock) => lock && go()).catch(() => {});
    } else {
      go();
    }
  }

  // --- other tabs ---

  receive(m) {
    if (!m || typeof m !== 'object' || this.ended) return;
    const mine = this.s && m.sid === this.s.id;
    switch (m.t) {
      case 'activity':
        if (mine) this.activityAt = Math.max(this.activityAt, m.at);
        break;
      case 'state':
        if (m.s && m.s.id) this.accept(m.s, false);
        break;
      case 'ack':
        if (mine) {
          this.acknowledged = m.deadline;
          this.tick();
        }
        break;
      case 'remind-dismiss':
        if (mine) {
          this.remindDismissed = true;
          this.tick();
        }
        break;
      case 'signout':
        if (mine || !this.s) this.signedOut(m.reason || 'logout', false);
        break;
      case 'signout-pending':
        if (mine) this.confirmSoon(m.reason);
        break;
    }
  }

  // confirmSoon asks the server, a few times over the next two seconds,
  // whether the session another tab is signing out has ended.
  confirmSoon(reason) {
    this.pendingReason = reason || 'logout';
    let tries = 0;
    const check = async () => {
      if (this.ended || tries++ > 8) return;
      await this.refresh();
      if (!this.ended) setTimeout(check, 250);
    };
    setTimeout(check, 100);
  }

  // --- the event stream ---

  // startStream follows the session's server-sent events. One tab per
  // browser holds the stream (the holder of a Web Lock; when it closes,
  // another tab takes over) and shares what it hears; without Web Locks
  // every tab holds its own.
  startStream() {
    if (!this.opts.stream || typeof EventSource !== 'function') return;
    const locks = webLocks();
    if (locks) {
      locks.request(`${this.opts.channel}:stream`, () => new Promise((release) => {
        if (this.ended) return release();
        this.releaseStream = release;
        this.openStream();
      })).catch(() => {});
    } else {
      this.openStream();
    }
  }

  openStream() {
    const es = new EventSource(`${this.opts.endpoint}/v1/session/events`, { withCredentials: this.opts.credentials === 'include' });
    this.es = es;
    const update = (e) => {
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      if (!data.session) return;
      const s = sessionState(data.session, this.opts.remindAfterSeconds * 1000);
      if (e.type === 'revoked' || e.type === 'expired') {
        s.status = s.status === 'active' ? e.type : s.status;
        s.endReason = data.reason || s.endReason;
      }
      this.accept(s, true);
    };
    for (const type of ['session', 'extended', 'stepped_up', 'rotated', 'expiring_soon', 'revoked', 'expired']) {
      es.addEventListener(type, update);
    }
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED) return; // the browser reconnects
      // Refused (401) or broken: ask the server why, and follow again
      // later if the session lives.
      this.es = null;
      this.refresh().then(() => {
        if (!this.ended) setTimeout(() => !this.ended && !this.es && this.openStream(), 3000);
      });
    };
  }

  closeStream() {
    if (this.es) this.es.close();
    this.es = null;
    if (this.releaseStream) this.releaseStream();
    this.releaseStream = null;
  }

  // --- the clock ---

  // tick recomputes everything from the absolute times the server gave,
  // then sleeps until the next change, at most a second: a countdown
  // never decides anything, so a throttled tab or a machine waking from
  // sleep shows the truth on its first tick.
  tick() {
    clearTimeout(this.timer);
    if (this.ended || !this.s) return;
    const now = this.now();
    if (this.lastTick && now - this.lastTick > 5000 && document.visibilityState === 'visible') {
      this.refresh(); // we were asleep (or frozen): the server knows what happened
    }
    this.lastTick = now;
    let v = evaluate(this.s, now + this.offset, this.evalOptions());
    if (v.phase === 'warning' && this.checkedWarnAt !== this.s.warnAt) {
      // Before warning, ask the server: requests this client did not see
      // (another device, the app's own pages and API) may have moved the
      // deadline. Shown once the answer is in, or if it does not come.
      this.checkedWarnAt = this.s.warnAt;
      this.refresh().then(() => this.tick());
      v = { ...v, phase: 'active' };
    }
    if (v.phase === 'expired') this.checkExpiry(v);
    if (this.ended) return;
    this.render(v);
    let wait = Math.min(v.next, 1000);
    if (v.phase === 'warning') wait = Math.min(wait, (v.remaining % 1000) || 1000);
    this.timer = setTimeout(() => this.tick(), Math.max(wait, 20));
  }

  // checkExpiry asks the server once a deadline has passed here: another
  // tab or device may have extended the session. If the server cannot
  // be reached for a while, the session is over anyway.
  checkExpiry(v) {
    if (this.checking) return;
    this.checking = this.refresh().then((ok) => {
      this.checking = null;
      if (!ok && !this.ended && this.serverNow() > v.deadline + 10000) this.signedOut(v.reason, true);
    });
  }

  // signedOut leaves: tells the other tabs (unless they told us), stops,
  // and goes to the signed-out page with the reason.
  signedOut(reason, share) {
    if (this.ended) return;
    this.ended = true;
    if (share) this.bus.post({ t: 'signout', sid: this.s && this.s.id, reason });
    this.stop();
    this.emit('signedout', { reason });
    if (this.opts.onSignedOut && this.opts.onSignedOut({ reason }) === false) return;
    if (this.opts.signedOutUrl) window.location.assign(signedOutURL(this.opts.signedOutUrl, reason));
  }

  setStatus(text) {
    if (text && text !== this.status) this.emit('status', { text });
    this.status = text;
    if (this.view) this.render(this.lastView);
  }

  // --- the UI ---

  render(v) {
    this.lastView = v;
    const view = v && {
      phase: v.phase,
      kind: v.kind,
      remaining: v.remaining,
      countdown: formatCountdown(v.remaining),
      remind: v.remind,
      signedInFor: this.s ? formatDuration(this.serverNow() - this.s.createdAt) : '',
      status: this.status,
    };
    const wasWarning = this.view && this.view.phase === 'warning';
    this.view = view;
    // While the client asks the server about a passed deadline, the
    // warning stays up at 0:00.
    const warning = !!view && (view.phase === 'warning' || (view.phase === 'expired' && wasWarning));
    if (warning && !wasWarning) this.emit('warning', { deadline: v.deadline, kind: v.kind });
    if (!warning && wasWarning) this.emit('warningend', {});
    if (this.opts.render) {
      this.opts.render(view, this.actions());
      return;
    }
    if (typeof document === 'undefined') return;
    this.renderDialog(warning ? view : null);
    this.renderReminder(view && view.remind ? view : null);
  }

  actions() {
    return {
      stay: () => this.extend(),
      signOut: () => this.signOut(),
      acknowledge: () => this.acknowledge(),
      dismissReminder: () => this.dismissReminder(),
    };
  }

  renderDialog(view) {
    if (!view) {
      if (this.dialog) {
        const d = this.dialog;
        this.dialog = null;
        if (d.open) d.close();
        d.remove();
        if (this.returnFocus && this.returnFocus.isConnected) this.returnFocus.focus();
        this.returnFocus = null;
      }
      return;
    }
    const t = this.text;
    const idle = view.kind === 'idle';
    if (!this.dialog || this.dialog.dataset.kind !== view.kind) {
      this.renderDialog(null);
      const d = document.createElement('dialog');
      d.className = 'lapse-dialog';
      d.dataset.kind = view.kind;
      d.setAttribute('role', 'alertdialog');
      d.setAttribute('aria-modal', 'true');
      d.setAttribute('aria-labelledby', 'lapse-dialog-title');
      d.setAttribute('aria-describedby', 'lapse-dialog-message');
      const [before, after] = (idle ? t.warningIdle : t.warningAbsolute).split('{time}');
      d.innerHTML = `
        <h2 class="lapse-dialog__title" id="lapse-dialog-title"></h2>
        <p class="lapse-dialog__message" id="lapse-dialog-message"><span></span><span class="lapse-dialog__countdown" role="timer"></span><span></span></p>
        <p class="lapse-dialog__status" role="status"></p>
        <p class="lapse-dialog__announce" aria-live="polite"></p>
        <div class="lapse-dialog__actions">
          <button type="button" class="lapse-button lapse-button--primary" data-lapse-action="${idle ? 'stay' : 'acknowledge'}"></button>
          <button type="button" class="lapse-button" data-lapse-action="signout"></button>
        </div>`;
      d.querySelector('.lapse-dialog__title').textContent = t.warningTitle;
      const parts = d.querySelectorAll('.lapse-dialog__message > span');
      parts[0].textContent = before;
      parts[2].textContent = after === undefined ? '' : after;
      d.querySelector('.lapse-button--primary').textContent = idle ? t.stay : t.acknowledge;
      d.querySelector('[data-lapse-action="signout"]').textContent = t.signOut;
      const primary = () => (idle ? this.extend() : this.acknowledge());
      d.addEventListener('click', (e) => {
        const a = e.target instanceof Element && e.target.closest('[data-lapse-action]');
        if (!a) return;
        if (a.dataset.lapseAction === 'signout') this.signOut();
        else primary();
      });
      // Escape is the same as the primary button: the user is here and
      // pressed a key, which is what the warning asks; closing without
      // extending would leave the session to end while the user thinks
      // the matter settled.
      d.addEventListener('cancel', (e) => {
        e.preventDefault(); // not always honoured: see the re-open below
        primary();
      });
      this.returnFocus = document.activeElement;
      (this.opts.root || document.body).appendChild(d);
      this.dialog = d;
      if (typeof d.showModal === 'function') d.showModal();
      else d.setAttribute('open', '');
      d.querySelector('.lapse-button--primary').focus();
      // The dialog's description, read when it opens, says the time
      // left; announce only the steps still to come.
      this.announced = Math.ceil(view.remaining / 1000);
    }
    const d = this.dialog;
    // The browser may close a modal dialog on Escape by itself (when the
    // cancel event is not cancelable); while the warning stands and no
    // extend is on its way, it comes back.
    if (!d.open && !this.extending && typeof d.showModal === 'function') {
      d.showModal();
      d.querySelector('.lapse-button--primary').focus();
    }
    d.querySelector('.lapse-dialog__countdown').textContent = view.countdown;
    // The timer itself is silent for screen readers (it would talk every
    // second); a polite live region says the time left at a few steps.
    const secs = Math.ceil(view.remaining / 1000);
    for (const step of [60, 30, 10]) {
      if (secs <= step && this.announced > step) {
        this.announced = step;
        d.querySelector('.lapse-dialog__announce').textContent = fill(t.timeLeft, { time: formatCountdown(secs * 1000) });
      }
    }
    const st = d.querySelector('.lapse-dialog__status');
    if (st.textContent !== view.status) st.textContent = view.status;
  }

  renderReminder(view) {
    if (!view) {
      if (this.reminder) this.reminder.remove();
      this.reminder = null;
      return;
    }
    if (!this.reminder) {
      const r = document.createElement('div');
      r.className = 'lapse-reminder';
      r.setAttribute('role', 'status');
      r.innerHTML = `<p class="lapse-reminder__message"></p>
        <button type="button" class="lapse-button lapse-button--primary" data-lapse-action="signout"></button>
        <button type="button" class="lapse-button" data-lapse-action="dismiss"></button>`;
      r.querySelector('[data-lapse-action="signout"]').textContent = this.text.signOut;
      r.querySelector('[data-lapse-action="dismiss"]').textContent = this.text.dismiss;
      r.addEventListener('click', (e) => {
        const a = e.target instanceof Element && e.target.closest('[data-lapse-action]');
        if (!a) return;
        if (a.dataset.lapseAction === 'signout') this.signOut();
        else this.dismissReminder();
      });
      (this.opts.root || document.body).appendChild(r);
      this.reminder = r;
    }
    const msg = fill(this.text.reminder, { duration: view.signedInFor });
    const p = this.reminder.querySelector('.lapse-reminder__message');
    if (p.textContent !== msg) p.textContent = msg;
  }
}

function webLocks() {
  const locks = typeof navigator !== 'undefined' && navigator.locks;
  return locks && typeof locks.request === 'function' ? locks : null;
}

// injectStyle adds the default look once per document. Constructed style
// sheets are used where the browser has them, since a strict
// Content-Security-Policy does not block them; otherwise a <style> with
// the page's nonce.
function injectStyle(nonce) {
  if (typeof document === 'undefined' || document.documentElement.dataset.lapseStyled) return;
  document.documentElement.dataset.lapseStyled = '1';
  if (typeof CSSStyleSheet === 'function' && 'adoptedStyleSheets' in document) {
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(STYLE);
      document.adoptedStyleSheets = [sheet, ...document.adoptedStyleSheets];
      return;
    } catch {
      // fall through
    }
  }
  const el = document.createElement('style');
  if (nonce) el.nonce = nonce;
  el.textContent = STYLE;
  document.head.prepend(el);
}
