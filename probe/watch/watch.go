// Package watch runs lapse probe on a schedule: it keeps the latest results as
// Prometheus metrics and posts failing runs to a webhook, signed as lapse signs its own
// (Standard Webhooks).
package watch

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lapsehq/lapse/probe"
)

// Config configures a [Watcher]. Target, Every and Registry are required.
type Config struct {
	Target   *probe.Target         // from probe.ParseTarget
	Options  probe.Options         // passed to every probe.Run
	Every    time.Duration         // from the start of one run to the start of the next
	Registry prometheus.Registerer // where the metrics are registered
	Webhook  string                // URL to POST failing runs to; empty posts nothing
	// WebhookKey signs the posts (the key of a "whsec_" secret, from
	// webhook.ParseSecret); required with Webhook.
	WebhookKey []byte
	Client     *http.Client // for the webhook; nil uses one with a 10s timeout that follows no redirect
	Logger     *slog.Logger // nil logs nothing
	// OnRun, when set, is called after every run, once its metrics are recorded and its
	// webhook posted, with its report or the error that kept it from starting (then the
	// report is nil).
	OnRun func(*probe.Report, error)
}

// Watcher probes a target again and again. Create one with [New] and start it with
// [Watcher.Run]; it starts no goroutine of its own.
type Watcher struct {
	cfg     Config
	metrics *metrics
}

// New validates cfg and registers the metrics. It fails when a required field is
// missing or the metrics are already registered.
func New(cfg Config) (*Watcher, error) {
	switch {
	case cfg.Target == nil:
		return nil, errors.New("watch: no target")
	case cfg.Every <= 0:
		return nil, errors.New("watch: Every must be positive")
	case cfg.Registry == nil:
		return nil, errors.New("watch: no registry")
	case cfg.Webhook != "" && len(cfg.WebhookKey) == 0:
		return nil, errors.New("watch: a webhook needs a key to sign its posts with")
	}
	if cfg.Client == nil {
		// A receiver's redirect is a failed post: following it would send the signed
		// report somewhere nobody configured.
		cfg.Client = &http.Client{Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	return &Watcher{cfg: cfg, metrics: m}, nil
}

// Run probes the target at once and then every cfg.Every, until ctx ends; it then
// returns nil. A run that fails to start (an unreachable target) is recorded and
// retried at the next tick.
func (w *Watcher) Run(ctx context.Context) error {
	for {
		start := time.Now()
		w.once(ctx)
		timer := time.NewTimer(time.Until(start.Add(w.cfg.Every)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

func (w *Watcher) once(ctx context.Context) {
	name := w.cfg.Target.Name
	started := time.Now()
	rep, err := probe.Run(ctx, w.cfg.Target, w.cfg.Options)
	if ctx.Err() != nil {
		return
	}
	w.metrics.record(name, started, rep, err)
	if err != nil {
		w.cfg.Logger.Warn("probe could not run", "target", name, "err", err)
	} else if rep.Failed() {
		w.cfg.Logger.Warn("probe found failures", "target", name, "fail", rep.Count(probe.Fail), "error", rep.Count(probe.Error))
	}
	if w.cfg.Webhook != "" && (err != nil || rep.Failed()) {
		if err := w.post(ctx, name, rep, err); err != nil {
			w.cfg.Logger.Error("webhook", "url", w.cfg.Webhook, "err", err)
		}
	}
	if w.cfg.OnRun != nil {
		w.cfg.OnRun(rep, err)
	}
}
