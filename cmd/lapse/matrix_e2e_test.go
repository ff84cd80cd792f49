package main

import (
	"slices"
	"testing"

	"github.com/lapsehq/lapse/postgres/pgtest"
	"github.com/lapsehq/lapse/redis/redistest"
)

// storeUnderTest is one store the end-to-end matrix runs lapse on.
type storeUnderTest struct {
	name string
	// url is the --store URL; "" is the embedded SQLite store in the data
	// directory.
	url string
}

// yaml returns the configuration lines that select the store.
func (s storeUnderTest) yaml() string {
	if s.url == "" {
		return ""
	}
	return "store: " + s.url + "\n"
}

// cli returns the flags with which the lapse tools find the store that
// a server with data directory dir uses.
func (s storeUnderTest) cli(dir string, args ...string) []string {
	if s.url == "" {
		return append(slices.Clone(args), "--data-dir", dir)
	}
	return append(slices.Clone(args), "--data-dir", dir, "--store", s.url)
}

// eachStore runs test as a subtest on each store: the embedded SQLite
// store, a private Redis and a fresh database of a private PostgreSQL.
func eachStore(t *testing.T, test func(t *testing.T, st storeUnderTest)) {
	for _, c := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"redis", func(t *testing.T) string { return redistest.NewServer(t).URL() }},
		{"postgres", func(t *testing.T) string { return pgtest.NewDatabase(t) }},
	} {
		t.Run(c.name, func(t *testing.T) { test(t, storeUnderTest{name: c.name, url: c.url(t)}) })
	}
}
