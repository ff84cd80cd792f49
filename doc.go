// Package lapse is a session authority: it issues, verifies, extends and
// ends user sessions so that no session outlives the policy that governs it.
//
// The package holds the domain — [Session], [Policy], [Tier], [Token],
// [Event], [Clock], [Store] and the [Manager] that applies the rules — and
// imports only the standard library. Stores, the HTTP API, metrics and the
// command live in subpackages that import this one.
//
// A session is valid only while it exists, is not ended, and the current
// time is before both its idle deadline and its absolute deadline. Every
// approximation (activity writes, caches) may make a session end sooner
// than its policy says, never later.
package lapse
