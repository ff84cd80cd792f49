package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/lapsehq/lapse"
)

// pingOnly is a store type with one optional interface, Pinger.
type pingOnly struct{ lapse.Store }

func (pingOnly) Ping(context.Context) error { return nil }

func TestMismatchesAreFoundBothWays(t *testing.T) {
	for _, c := range []struct {
		name   string
		claims []Capability
		want   []string // a word of each mismatch, in order
	}{
		{"exact", []Capability{Pinger}, nil},
		{"implements_what_it_does_not_claim", nil, []string{"does not claim it: add storetest.Pinger"}},
		{"claims_what_it_lacks", []Capability{Pinger, Tidier}, []string{"claims Tidier but"}},
		{"both", []Capability{FactorStore}, []string{"claims FactorStore but", "does not claim it: add storetest.Pinger"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			claimed := map[Capability]bool{}
			for _, x := range c.claims {
				claimed[x] = true
			}
			got := mismatches(pingOnly{}, claimed)
			if len(got) != len(c.want) || !slices.EqualFunc(got, c.want, strings.Contains) {
				t.Errorf("mismatches = %q, want ones containing %q", got, c.want)
			}
		})
	}
}
