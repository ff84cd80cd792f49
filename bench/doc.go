// Package bench holds lapse's benchmarks: Go benchmarks of the engine in
// verify_test.go, and in cmd/loadgen a load generator that compares
// POST /v1/sessions/verify over HTTP against a bare net/http handler.
// run.sh runs both and keeps their raw output in results/; the figures
// are summarised in BENCHMARKS.md at the root of the repository.
//
// The package has no API of its own.
package bench
