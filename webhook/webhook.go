package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lapsehq/lapse"
)

// Endpoint is a receiver of events.
type Endpoint struct {
	// Name identifies the endpoint in the delivery queue; keep it stable.
	Name string
	// URL is where events are posted; it prints redacted.
	URL lapse.SecretURL
	// Key is the HMAC key (the decoded part of a "whsec_" secret).
	Key []byte
	// Types filters the events sent; empty means all.
	Types []lapse.EventType
}

func (e Endpoint) wants(t lapse.EventType) bool {
	return len(e.Types) == 0 || slices.Contains(e.Types, t)
}

// Config configures a [Dispatcher]. Zero values are the defaults.
type Config struct {
	Endpoints []Endpoint
	Log       lapse.EventLog
	Queue     lapse.DeliveryQueue
	Clock     lapse.Clock // nil: the system clock
	// AllowNetworks are the private networks receivers may be in, for
	// receivers on premises. Outside them a delivery refuses, when it
	// connects, any address no internet host has: loopback, private,
	// link-local, shared, multicast and other special-purpose ranges.
	// Cloud metadata addresses are refused even inside them. No redirect
	// is followed: a 3xx is a failed attempt.
	AllowNetworks []netip.Prefix
	// RetryBase is the first retry's delay; each retry doubles it up to
	// RetryMax, with full jitter in its upper half. 0 means 5s and 1h.
	RetryBase, RetryMax time.Duration
	// MaxAttempts after which a delivery is dead; 0 means 12 (about 8
	// hours with the default delays).
	MaxAttempts int
	// Every is the pause between polls of the event log; 0 means 100ms.
	Every time.Duration
	// OnError is told of store failures; nil ignores them.
	OnError func(error)
}

// Dispatcher moves events from the event log into each endpoint's queue
// and delivers them. Delivery runs apart from the request path, so it
// never slows a verify.
type Dispatcher struct {
	cfg    Config
	client *http.Client
}

// New returns a dispatcher for cfg.
func New(cfg Config) *Dispatcher {
	if cfg.Clock == nil {
		cfg.Clock = lapse.SystemClock{}
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = time.Hour
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 12
	}
	if cfg.Every <= 0 {
		cfg.Every = 100 * time.Millisecond
	}
	if cfg.OnError == nil {
		cfg.OnError = func(error) {}
	}
	return &Dispatcher{cfg: cfg, client: newClient(cfg.AllowNetworks)}
}

// Run polls and delivers until ctx is done.
func (d *Dispatcher) Run(ctx context.Context) error {
	if len(d.cfg.Endpoints) == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(d.cfg.Every)
	defer t.Stop()
	for {
		if err := d.Tick(ctx); err != nil && ctx.Err() == nil {
			d.cfg.OnError(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Start gives every endpoint new to the queue its starting point: the
// present end of the audit log. Every event recorded after Start returns
// is delivered to it. Without Start, a new endpoint starts wherever the
// log ends at Run's first round, which a busy machine may delay past the
// first requests; lapse serve calls Start before it takes any.
func (d *Dispatcher) Start(ctx context.Context) error {
	for _, ep := range d.cfg.Endpoints {
		if _, ok, err := d.cfg.Queue.Cursor(ctx, ep.Name); err != nil {
			return err
		} else if ok {
			continue
		}
		last, err := d.cfg.Log.LastSeq(ctx)
		if err != nil {
			return err
		}
		if err := d.cfg.Queue.Enqueue(ctx, ep.Name, nil, last, d.cfg.Clock.Now()); err != nil {
			return err
		}
	}
	return nil
}

// perEndpoint is how many deliveries may be in flight to one endpoint,
// and dueBatch how many due deliveries one tick takes.
const (
	perEndpoint = 16
	dueBatch    = 1000
)

// Tick enqueues new events for every endpoint, then attempts every due
// delivery once, up to perEndpoint at a time to each endpoint, and
// records the outcomes together. Until they are recorded, a crash only
// makes deliveries be sent again (at least once). A round ends when its
// slowest endpoint is done.
func (d *Dispatcher) Tick(ctx context.Context) error {
	for _, ep := range d.cfg.Endpoints {
		if err := d.enqueue(ctx, ep); err != nil {
			return err
		}
	}
	due, err := d.cfg.Queue.Due(ctx, d.cfg.Clock.Now(), dueBatch)
	if err != nil {
		return err
	}
	// Each endpoint's deliveries go out from a goroutine of their own, so
	// that one endpoint's full slots do not hold up handing out another's.
	byEndpoint := map[string][]lapse.Delivery{}
	for _, del := range due {
		byEndpoint[del.Endpoint] = append(byEndpoint[del.Endpoint], del)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done []lapse.Delivery
	)
	for name, dels := range byEndpoint {
		ep, ok := d.endpoint(name)
		if !ok {
			continue // an endpoint removed from the config: left pending
		}
		wg.Go(func() {
			var inner sync.WaitGroup
			sem := make(chan struct{}, perEndpoint)
			for _, del := range dels {
				sem <- struct{}{}
				inner.Go(func() {
					defer func() { <-sem }()
					if del, ok := d.attempt(ctx, ep, del); ok {
						mu.Lock()
						done = append(done, del)
						mu.Unlock()
					}
				})
			}
			inner.Wait()
		})
	}
	wg.Wait()
	return d.cfg.Queue.Record(context.WithoutCancel(ctx), done, d.cfg.Clock.Now())
}

func (d *Dispatcher) endpoint(name string) (Endpoint, bool) {
	for _, ep := range d.cfg.Endpoints {
		if ep.Name == name {
			return ep, true
		}
	}
	return Endpoint{}, false
}

// enqueue copies the events after ep's cursor that ep wants into its queue.
func (d *Dispatcher) enqueue(ctx context.Context, ep Endpoint) error {
	cursor, ok, err := d.cfg.Queue.Cursor(ctx, ep.Name)
	if err != nil {
		return err
	}
	if !ok {
		// A new endpoint starts at the present, not at the beginning of
		// the audit log (see Start).
		return d.Start(ctx)
	}
	for {
		evs, err := d.cfg.Log.Events(ctx, cursor, 500)
		if err != nil || len(evs) == 0 {
			return err
		}
		var seqs []int64
		for _, ev := range evs {
			if ep.wants(ev.Type) {
				seqs = append(seqs, ev.Seq)
			}
		}
		cursor = evs[len(evs)-1].Seq
		if err := d.cfg.Queue.Enqueue(ctx, ep.Name, seqs, cursor, d.cfg.Clock.Now()); err != nil {
			return err
		}
		if len(evs) < 500 {
			return nil
		}
	}
}

// Payload is the JSON body of a delivery.
type Payload struct {
	Type      lapse.EventType `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      lapse.Event     `json:"data"`
}

// attempt sends one delivery and returns it with its outcome, to record,
// or false when the dispatcher is shutting down and the attempt does not
// count.
func (d *Dispatcher) attempt(ctx context.Context, ep Endpoint, del lapse.Delivery) (lapse.Delivery, bool) {
	body, err := json.Marshal(Payload{Type: del.Event.Type, Timestamp: del.Event.Time, Data: del.Event})
	if err != nil {
		return d.failed(del, err), true
	}
	now := d.cfg.Clock.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return d.failed(del, err), true
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lapse-webhook/1")
	req.Header.Set("webhook-id", del.Event.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", Sign(ep.Key, del.Event.ID, now, body))
	resp, err := d.client.Do(req)
	if err == nil {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			del.Attempts++
			del.Status, del.LastError = lapse.DeliveryDelivered, ""
			return del, true
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			// Where it points is not recorded: it is the receiver's to
			// fix, and lapse never goes there.
			err = fmt.Errorf("the endpoint answered %s; redirects are not followed", resp.Status)
		default:
			err = fmt.Errorf("the endpoint answered %s", resp.Status)
		}
	}
	if ctx.Err() != nil {
		return del, false
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // without the URL, which may carry a secret
	}
	return d.failed(del, err), true
}

// failed counts a failed attempt of del: it is retried after a backoff,
// or dead after MaxAttempts.
func (d *Dispatcher) failed(del lapse.Delivery, err error) lapse.Delivery {
	del.Attempts++
	del.LastError = err.Error()
	if del.Attempts >= d.cfg.MaxAttempts {
		del.Status = lapse.DeliveryDead
	} else {
		del.NextAt = d.cfg.Clock.Now().Add(d.backoff(del.Attempts))
	}
	return del
}

// backoff returns the delay before retry n (1-based): RetryBase·2^(n-1),
// capped at RetryMax, drawn uniformly from its upper half so that
// receivers coming back are not hit by every sender at once.
func (d *Dispatcher) backoff(n int) time.Duration {
	delay := d.cfg.RetryMax
	if n-1 < 40 {
		delay = min(d.cfg.RetryBase<<(n-1), d.cfg.RetryMax)
	}
	return delay/2 + rand.N(delay/2+1)
}
