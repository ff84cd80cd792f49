// Types of lapse-passkey.js, the browser's part of lapse's passkey
// ceremonies.

/** The prefix of lapse's routes: where lapse-passkey.js is served, less /web. */
export const DEFAULT_ENDPOINT: string;

/** An answer of lapse's that is not a success (code, status), or a refusal of the browser (name). */
export class PasskeyError extends Error {
  code: string;
  status: number;
}

/** A passkey as lapse's session routes show it. */
export interface Passkey {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  /** Synced to the user's other devices (recorded as swk), or device-bound (hwk). */
  synced: boolean;
  backed_up: boolean;
}

export interface Options {
  /** lapse's prefix, such as "/lapse" or "/.lapse"; default: DEFAULT_ENDPOINT. */
  endpoint?: string;
  /** The fetch to use; default: the global one. */
  fetch?: typeof fetch;
}

export function supported(): boolean;
/** Steps the session up with a passkey; the new cookie is set when it resolves. */
export function stepUp(opts?: Options): Promise<{ session: Record<string, unknown>; now: string }>;
export function register(opts?: Options & { name?: string; endOthers?: boolean }): Promise<{ passkey: Passkey; ended: number }>;
export function list(opts?: Options): Promise<Passkey[]>;
export function rename(id: string, name: string, opts?: Options): Promise<{ passkey: Passkey }>;
export function remove(id: string, opts?: Options & { endOthers?: boolean }): Promise<{ ended: number }>;

export function fromB64url(s: string): ArrayBuffer;
export function toB64url(buf: ArrayBuffer | ArrayBufferView): string;
export function creationOptions(json: { publicKey: Record<string, any> }): CredentialCreationOptions;
export function requestOptions(json: { publicKey: Record<string, any> }): CredentialRequestOptions;
export function credentialJSON(cred: PublicKeyCredential): Record<string, unknown>;
export function localPath(next: string | undefined, fallback?: string): string;
/** Wires up [data-lapse-passkey] elements; done once when the module loads. */
export function bind(root?: ParentNode, opts?: { endpoint?: string }): void;
