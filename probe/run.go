package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options tune a [Run]. The zero value runs every check the target file does not skip,
// trusting certificates as the target file says and reporting no progress.
type Options struct {
	// Checks, when not empty, selects the checks to run by id; the others are skipped.
	Checks []string
	// Transport replaces the HTTP transport built from the target's tls settings.
	Transport http.RoundTripper
	// Progress, when set, is told what checks are doing. It is called from several
	// goroutines at once and must not block.
	Progress func(Event)
}

// Event tells an [Options.Progress] observer what a check is doing.
type Event struct {
	Check   string    // the check's id
	Message string    // what it is doing, such as "7 sessions idle"
	Until   time.Time // when the current wait ends; zero when not waiting
	Done    bool      // the check has finished with Status
	Status  Status
}

// prober is what a running check uses: the client, the target, the progress sink and
// what the preflight learnt about the credentials a sign-in produces. Checks only read
// it.
type prober struct {
	c        *client
	t        *Target
	progress func(Event)
	shapes   []shape  // the credentials a sign-in produces, session ones first
	names    []string // the cookies that may be credentials
	found    []string // what discovery saw, for the evidence
}

// wait blocks until t, telling the observer what the check is waiting for.
func (p *prober) wait(ctx context.Context, r *Result, until time.Time, format string, args ...any) error {
	p.progress(Event{Check: r.ID, Message: fmt.Sprintf(format, args...), Until: until})
	return sleepUntil(ctx, until)
}

// sleepUntil blocks until t or until ctx ends, and then returns ctx.Err().
func sleepUntil(ctx context.Context, until time.Time) error {
	d := time.Until(until)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Run probes the target t, which must come from [ParseTarget]. It first checks that the
// target is reachable, that the authenticated URL refuses an anonymous request and that
// signing in and out works; if not, it returns an error and no report. Then it runs the
// disruptive checks (token-entropy, password-change-revokes, concurrent-logout) one at a
// time and all others concurrently, each with its own sessions, so a run lasts about as
// long as its longest wait. A check that cannot complete gets status [Error]; Run itself
// does not fail then. Cancelling ctx ends waits early.
func Run(ctx context.Context, t *Target, opts Options) (*Report, error) {
	for _, id := range opts.Checks {
		if specByID(id) == nil {
			return nil, fmt.Errorf("unknown check %q; known: %s", id, strings.Join(checkIDs(), ", "))
		}
	}
	rt := opts.Transport
	if rt == nil {
		var err error
		if rt, err = t.transport(); err != nil {
			return nil, err
		}
	}
	c, err := newClient(t, rt)
	if err != nil {
		return nil, err
	}
	p := &prober{c: c, t: t, progress: opts.Progress}
	if p.progress == nil {
		p.progress = func(Event) {}
	}
	rep := &Report{Target: t.Name, Started: time.Now()}
	if err := p.preflight(ctx); err != nil {
		return nil, cleanError{err}
	}
	rep.Checks = make([]Result, len(specs))
	var concurrent []int
	for i, s := range specs {
		r := &rep.Checks[i]
		*r = Result{ID: s.id, WSTG: s.wstg, ASVS: s.asvs, Evidence: []string{}}
		switch {
		case len(opts.Checks) > 0 && !slices.Contains(opts.Checks, s.id):
			r.set(Skip, "not selected")
		case slices.Contains(t.Checks.Skip, s.id):
			r.set(Skip, "skipped by checks.skip in the target file")
		case s.disruptive:
			p.run(ctx, &specs[i], r)
		default:
			concurrent = append(concurrent, i)
		}
	}
	var wg sync.WaitGroup
	for _, i := range concurrent {
		wg.Go(func() { p.run(ctx, &specs[i], &rep.Checks[i]) })
	}
	wg.Wait()
	rep.Finished = time.Now()
	return rep, nil
}

// run runs one check into r: a check that panics, ends without a verdict
// or is interrupted gets status [Error].
func (p *prober) run(ctx context.Context, s *spec, r *Result) {
	r.Started = time.Now()
	p.progress(Event{Check: s.id, Message: "running"})
	func() {
		defer func() {
			if v := recover(); v != nil {
				r.set(Error, "internal error: %v", v)
			}
		}()
		s.run(ctx, p, r)
	}()
	if r.Status == "" {
		r.set(Error, "the check ended without a verdict")
	}
	if ctx.Err() != nil && r.Status != Skip {
		r.set(Error, "interrupted: %v", ctx.Err())
	}
	r.Finished = time.Now()
	p.progress(Event{Check: s.id, Done: true, Status: r.Status})
}

// preflight checks that the target answers, tells signed-in from anonymous requests and
// lets the probe sign in and out, and learns what credentials a sign-in produces.
func (p *prober) preflight(ctx context.Context) error {
	c := p.c
	ok, ex, err := c.accepted(ctx, &session{})
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", c.t.BaseURL, err)
	}
	if ok {
		return fmt.Errorf("authenticated: %s without signing in, and that counts as signed in; set status, body_contains, json_path or location_contains so only a signed-in answer matches", ex.trail())
	}
	s := &session{}
	if err := c.signIn(ctx, s); err != nil {
		return err
	}
	if err := p.discover(ctx, s); err != nil {
		return err
	}
	if c.t.Logout.None {
		return nil
	}
	if _, err := c.send(ctx, s, &c.t.Logout.Request); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// cleanError escapes control characters in the message of the error it wraps: the
// target chooses some of it, and it is printed on terminals.
type cleanError struct{ error }

func (e cleanError) Error() string { return printable(e.error.Error()) }
func (e cleanError) Unwrap() error { return e.error }

// transport builds the HTTP transport the target's tls settings ask for.
func (t *Target) transport() (http.RoundTripper, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	if t.TLS.CAFile == "" && !t.TLS.InsecureSkipVerify {
		return tr, nil
	}
	cfg := &tls.Config{InsecureSkipVerify: t.TLS.InsecureSkipVerify}
	if t.TLS.CAFile != "" {
		pem, err := os.ReadFile(t.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: no PEM certificate in %s", t.TLS.CAFile)
		}
		cfg.RootCAs = pool
	}
	tr.TLSClientConfig = cfg
	return tr, nil
}
