// Type declarations for lapse-client.js. See docs/browser.md.

/** Why a session ended, as the signed-out page receives it in ?reason=. */
export type Reason =
  | 'idle_timeout'
  | 'absolute_timeout'
  | 'logout'
  | 'logout_all'
  | 'admin'
  | 'password_change'
  | 'limit'
  | 'theft'
  | 'idp_logout'
  | 'revoked'
  | 'signed_out'
  | (string & {});

/** The session JSON of lapse's browser routes (GET /v1/session). */
export interface SessionJSON {
  id: string;
  subject: string;
  tenant: string;
  tier: string;
  aal: number;
  amr: string[];
  status: 'active' | 'expired' | 'revoked';
  end_reason: string | null;
  created_at: string;
  last_active_at: string;
  authenticated_at: string;
  idle_expires_at: string;
  expires_at: string;
  warn_at: string;
  ended_at: string | null;
  /** created_at plus the tier's remind_after; null when the tier has none. */
  remind_at?: string | null;
  [member: string]: unknown;
}

/** A session as the client works with it: times in ms since the epoch. */
export interface SessionState {
  id: string;
  status: string;
  endReason: string;
  tier: string;
  aal: number;
  idleExpiresAt: number;
  expiresAt: number;
  warnAt: number;
  lastActiveAt: number;
  createdAt: number;
  authenticatedAt: number;
  /** NaN when no reminder applies. */
  remindAt: number;
}

export type Phase = 'active' | 'warning' | 'expired' | 'ended';

export interface Evaluation {
  phase: Phase;
  kind: 'idle' | 'absolute';
  deadline: number;
  remaining: number;
  reason: string;
  remind: boolean;
  next: number;
}

/** What a custom renderer is asked to show; null means show nothing. */
export interface View {
  phase: Phase;
  /** Which deadline the warning is about: an idle one can be extended, an absolute one only acknowledged. */
  kind: 'idle' | 'absolute';
  remaining: number;
  /** remaining as m:ss. */
  countdown: string;
  /** Whether the long-session reminder is due. */
  remind: boolean;
  /** How long the user has been signed in, in words. */
  signedInFor: string;
  /** A problem to tell the user about ("Cannot reach the server"), or "". */
  status: string;
}

export interface Actions {
  /** "Stay signed in": extends the session in every tab. */
  stay(): Promise<boolean>;
  /** Ends the session on the server, then signs every tab out. */
  signOut(): Promise<boolean>;
  /** Dismisses a time-limit (absolute) warning in every tab. */
  acknowledge(): void;
  /** Hides the long-session reminder in every tab. */
  dismissReminder(): void;
}

export interface Text {
  warningTitle: string;
  /** {time} is replaced by the live countdown. */
  warningIdle: string;
  warningAbsolute: string;
  stay: string;
  signOut: string;
  acknowledge: string;
  timeLeft: string;
  offline: string;
  signOutFailed: string;
  /** {duration} is replaced by how long the user has been signed in. */
  reminder: string;
  dismiss: string;
}

export interface Options {
  /** Base URL of lapse's browser routes: "/lapse" calls /lapse/v1/session. Default "". */
  endpoint?: string;
  /** Where to send the user when the session ends; ?reason= is added. Default "/signed-out"; "" stays on the page. */
  signedOutUrl?: string;
  /** fetch credentials; "include" for an endpoint on another origin. Default "same-origin". */
  credentials?: RequestCredentials;
  /** DOM events that count as activity. */
  activityEvents?: string[];
  /** Activity is acted on at most this often per tab. Default 1000. */
  activityThrottleMs?: number;
  /**
   * When to suggest signing out on a long session, in seconds after sign-in, for a session
   * without a remind_at (lapse sends one when the tier has a remind_after). 0 = never.
   */
  remindAfterSeconds?: number;
  /** Name of the BroadcastChannel (and prefix of the Web Locks). Default "lapse". */
  channel?: string;
  /** Follow the server-sent-events stream. Default true. */
  stream?: boolean;
  /** Add the default stylesheet. Default true (false with render). */
  styles?: boolean;
  /** CSP nonce for the <style> fallback on browsers without constructable style sheets. */
  nonce?: string;
  /** Forms that sign out: other tabs check with the server at once on submit. Default "form[data-lapse-signout]". */
  signOutForms?: string;
  /** Where the built-in UI is added. Default document.body. */
  root?: Element;
  /** Replaces the built-in dialog and reminder: called on every change, with null for nothing to show. */
  render?: (view: View | null, actions: Actions) => void;
  /** Called when the session ends, before the redirect; return false to stay on the page. */
  onSignedOut?: (e: { reason: Reason }) => boolean | void;
  /** Replaces the built-in texts. */
  text?: Partial<Text>;
  /** The clock, for tests. Default Date.now. */
  now?: () => number;
}

export interface ClientState extends Partial<Evaluation> {
  session: SessionState | null;
  /** Server clock minus this one, ms. */
  offset: number;
  ended: boolean;
}

export interface EventMap {
  state: { session: SessionState };
  warning: { deadline: number; kind: 'idle' | 'absolute' };
  warningend: Record<string, never>;
  extended: { session: SessionState };
  signedout: { reason: Reason };
  /** A problem the user should know of, such as a sign-out that could not reach the server. */
  status: { text: string };
}

export class LapseClient {
  constructor(options?: Options);
  readonly state: ClientState;
  start(): void;
  on<K extends keyof EventMap>(type: K, fn: (detail: EventMap[K]) => void): () => void;
  extend(): Promise<boolean>;
  acknowledge(): void;
  dismissReminder(): void;
  signOut(): Promise<boolean>;
  refresh(): Promise<boolean>;
  stop(): void;
}

/** Creates a client and starts it. */
export function start(options?: Options): LapseClient;

export const REASON_BY_CODE: Readonly<Record<string, Reason>>;
export const DEFAULT_TEXT: Readonly<Text>;
export function parseTime(s: string): number;
export function clockOffset(serverNow: number, sentAt: number, receivedAt: number): number;
export function sessionState(session: SessionJSON, remindAfterMs?: number): SessionState;
export function deadline(s: SessionState): number;
export function kind(s: SessionState): 'idle' | 'absolute';
export function newer(a: SessionState | null, b: SessionState): boolean;
export function evaluate(s: SessionState, now: number, opts?: { acknowledged?: number; remindDismissed?: boolean }): Evaluation;
export function extendPoint(s: SessionState): number;
export function shouldReport(s: SessionState | null, now: number, activityAt: number, freshMs?: number): boolean;
export function reasonOf(code: string | undefined): Reason;
export function signedOutURL(page: string, reason: string): string;
export function formatCountdown(ms: number): string;
export function formatDuration(ms: number): string;
export function fill(text: string, values: Record<string, string>): string;

export class Bus {
  constructor(name: string, onMessage: (m: unknown) => void, env?: typeof globalThis);
  post(m: unknown): void;
  close(): void;
}
