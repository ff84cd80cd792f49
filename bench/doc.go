// Package bench holds lapse's benchmarks: Go benchmarks of the engine in
// verify_test.go; in cmd/loadgen a load generator that compares
// POST /v1/sessions/verify over HTTP against a bare net/http handler,
// with the SQLite store and with the Redis store on a private
// redis-server, and measures revocation propagation between two nodes on
// one Redis; in cmd/sweepbench a measure of how soon the sweeper records
// many expiries that fall due at once; in cmd/proxybench the cost of the
// forward-auth gateway behind nginx (nginx alone against nginx with
// auth_request to lapse, interleaved). run.sh runs them and keeps their
// raw output in results/; the figures are summarised in BENCHMARKS.md at
// the root of the repository.
//
// The package has no API of its own.
package bench
