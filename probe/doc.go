// Package probe tests a web application's session handling from the outside, the way
// the OWASP Web Security Testing Guide's session tests (WSTG-SESS) describe: it signs in,
// replays credentials after sign-out, waits out idle and absolute timeouts, plants session
// ids, measures token randomness and reads cookie attributes and cache headers.
//
// A [Target] describes the application (read from YAML by [ParseTarget]); [Run] probes it
// and returns a [Report] whose [Result] entries carry stable check ids, WSTG and ASVS
// references and redacted evidence. The package only speaks HTTP to its target and never
// prints; session tokens appear in reports only as a short prefix, a length and a hash.
package probe
