package lapse

import (
	"context"
	"time"
)

// SweepBatch is how many sessions one store call of a sweep handles.
const SweepBatch = 5000

// sweepBudget is how long one sweep goes on expiring while each of its
// calls finds sessions due.
const sweepBudget = time.Second

// Sweep ends every session whose deadline has passed and records the
// warnings whose time has come, without waiting for anyone to present a
// token. It needs a store that implements [ExpiryIndex] and does nothing
// otherwise. Several nodes may sweep one store at once: the store expires
// each session once. It returns how many sessions it expired and warned.
func (m *Manager) Sweep(ctx context.Context) (expired, warned int, err error) {
	x, ok := m.store.(ExpiryIndex)
	if !ok {
		return 0, 0, nil
	}
	start := m.clock.Now()
	now := start
	for {
		due, err := x.ExpireDue(ctx, now, SweepBatch)
		if err != nil {
			return expired, warned, err
		}
		for _, s := range due {
			// The store's answer holds only the session's identity and
			// end, so the cache drops its entry rather than keep that.
			if m.cache != nil {
				m.cache.forget(s.TokenHash)
			}
			m.obs.Ended(s)
		}
		expired += len(due)
		// In a burst, deadlines keep passing while the sweep works: they
		// are taken now rather than at the next tick, for as long as each
		// call finds some, up to sweepBudget so that warnings get their
		// turn.
		next := m.clock.Now()
		if len(due) == 0 || next.Sub(start) >= sweepBudget || len(due) < SweepBatch && !next.After(now) {
			break
		}
		now = next
	}
	for {
		due, err := x.WarnDue(ctx, now, SweepBatch)
		if err != nil {
			return expired, warned, err
		}
		warned += len(due)
		if len(due) < SweepBatch {
			break
		}
	}
	return expired, warned, nil
}

// RunOptions configure [Manager.Run]; zero values are the defaults.
type RunOptions struct {
	// SweepEvery is the pause between sweeps; 0 means 200ms, so an
	// expiry is recorded well within a second of its deadline.
	SweepEvery time.Duration
	// Retention is how long ended sessions are kept before they are
	// purged (their events stay in the audit log); 0 means 30 days and a
	// negative value keeps them forever.
	Retention time.Duration
	// OnError is told of failed sweeps and purges; nil ignores them. Run
	// keeps going: a store that comes back is swept again.
	OnError func(error)
}

// Run sweeps and purges until ctx is done, then returns nil. It is the
// manager's only background work and must be started by the caller.
func (m *Manager) Run(ctx context.Context, opts RunOptions) error {
	every := opts.SweepEvery
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	retention := opts.Retention
	if retention == 0 {
		retention = 30 * 24 * time.Hour
	}
	report := opts.OnError
	if report == nil {
		report = func(error) {}
	}
	if feed, ok := m.store.(ChangeFeed); ok && m.cache != nil {
		done := make(chan struct{})
		go func() { m.follow(ctx, feed, report); close(done) }()
		defer func() { <-done }()
	}
	sweep := time.NewTicker(every)
	defer sweep.Stop()
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	m.purge(ctx, retention, report)
	sinceTidy := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			expired, _, err := m.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				report(err)
			}
			// Tidy after a sweep that found little to do, and after every
			// tidyEvery sweeps all the same, so that a steady stream of
			// expiries cannot put the work off for ever.
			if sinceTidy++; err == nil && (expired < tidyBelow || sinceTidy >= tidyEvery) {
				m.tidy(ctx, report)
				sinceTidy = 0
			}
		case <-purge.C:
			m.purge(ctx, retention, report)
		}
	}
}

// tidyBelow is the number of expiries in one sweep below which Run
// tidies the store after it: a sweep with fewer is not in a burst. Run
// tidies after every tidyEvery sweeps in any case.
const (
	tidyBelow = SweepBatch / 10
	tidyEvery = 25
)

// tidy does one round of the work a [Tidier] put off, small enough not to
// hold up the next sweep by more than a few milliseconds.
func (m *Manager) tidy(ctx context.Context, report func(error)) {
	if t, ok := m.store.(Tidier); ok {
		if _, err := t.Tidy(ctx, tidyBelow); err != nil && ctx.Err() == nil {
			report(err)
		}
	}
}

func (m *Manager) purge(ctx context.Context, retention time.Duration, report func(error)) {
	p, ok := m.store.(Purger)
	if !ok || retention < 0 {
		return
	}
	before := m.clock.Now().Add(-retention)
	for {
		n, err := p.Purge(ctx, before, SweepBatch)
		if err != nil {
			if ctx.Err() == nil {
				report(err)
			}
			return
		}
		if n < SweepBatch {
			return
		}
	}
}

// follow keeps the cache in step with the changes other nodes make,
// resubscribing after a lost feed. While the feed is down the cache is
// empty and unused.
func (m *Manager) follow(ctx context.Context, feed ChangeFeed, report func(error)) {
	for ctx.Err() == nil {
		err := feed.Changes(ctx, func(c Change) {
			switch {
			case c.Reset:
				m.cache.clear()
				m.live.Store(true)
			case c.Token != (TokenHash{}):
				m.cache.forget(c.Token)
			}
		})
		m.live.Store(false)
		m.cache.clear()
		if ctx.Err() != nil {
			return
		}
		report(err)
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}
