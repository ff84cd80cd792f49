//go:build !unix

package lapse

// coldAlloc returns n bytes for the cold tier; outside unix they are on
// the Go heap (no pointers, so not scanned, but counted by the
// collector's pacing).
func coldAlloc(n int) []byte { return make([]byte, n) }

// coldFree leaves the memory to the collector.
func coldFree([]byte) {}
