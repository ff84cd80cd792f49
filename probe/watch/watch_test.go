package watch_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lapsehq/lapse/probe"
	"github.com/lapsehq/lapse/probe/probetest"
	"github.com/lapsehq/lapse/probe/watch"
	"github.com/lapsehq/lapse/webhook"
)

// watchApp watches an App (or, when app is nil, an address nobody listens on) with a
// short interval until runs have happened, and returns the webhook posts and the scraped
// metrics.
func watchApp(t *testing.T, app *probetest.App, runs int) ([]watch.Failure, string) {
	t.Helper()
	var url string
	transport := http.DefaultTransport
	if app == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url = "https://" + ln.Addr().String()
		ln.Close()
		app = probetest.NewApp(probetest.Sound, time.Minute, time.Hour)
	} else {
		srv := httptest.NewTLSServer(app)
		t.Cleanup(srv.Close)
		url, transport = srv.URL, srv.Client().Transport
	}
	target, err := probe.ParseTarget("app.yaml", app.TargetFile(url, probetest.Web, ""), probetest.Env)
	if err != nil {
		t.Fatal(err)
	}
	posts := make(chan watch.Failure, 100)
	key, err := webhook.ParseSecret(webhook.NewSecret())
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// Verify as a receiver would, with lapse's own verification.
		if err := webhook.Verify(key, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("webhook post does not verify: %v (headers %v)", err, r.Header)
		}
		var f watch.Failure
		if err := json.Unmarshal(body, &f); err != nil {
			t.Errorf("webhook got a body that does not decode: %v", err)
		}
		posts <- f
	}))
	t.Cleanup(hook.Close)
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 100)
	w, err := watch.New(watch.Config{
		Target:     target,
		Options:    probe.Options{Checks: []string{"cookie-attributes", "cache-headers"}, Transport: transport},
		Every:      20 * time.Millisecond,
		Registry:   reg,
		Webhook:    hook.URL,
		WebhookKey: key,
		OnRun:      func(*probe.Report, error) { done <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()
	for range runs {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("no run finished within 10s")
		}
	}
	cancel()
	if err := <-stopped; err != nil {
		t.Errorf("Run returned %v, want nil after cancel", err)
	}
	close(posts)
	var got []watch.Failure
	for f := range posts {
		got = append(got, f)
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return got, rec.Body.String()
}

func assertMetrics(t *testing.T, metrics string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics lack %q; got:\n%s", w, metrics)
		}
	}
}

func TestWatcherPostsFailuresAndExportsMetrics(t *testing.T) {
	posts, metrics := watchApp(t, probetest.NewApp(probetest.WeakCookies, time.Minute, time.Hour), 2)
	if len(posts) < 2 {
		t.Fatalf("got %d webhook posts, want one per failing run (2)", len(posts))
	}
	if f := posts[0]; f.Type != "probe.failed" || len(f.Checks) != 1 || f.Checks[0].ID != "cookie-attributes" {
		t.Errorf("got post %+v, want probe.failed with only cookie-attributes", f)
	}
	target := `target="probetest web app (weak-cookies)"`
	assertMetrics(t, metrics,
		`lapse_probe_up{`+target+`} 1`,
		`lapse_probe_failed_checks{`+target+`} 1`,
		`lapse_probe_check_status{check="cookie-attributes",status="fail",`+target+`} 1`,
		`lapse_probe_check_status{check="cookie-attributes",status="pass",`+target+`} 0`,
		`lapse_probe_check_status{check="cache-headers",status="pass",`+target+`} 1`,
		`lapse_probe_check_status{check="idle-timeout",status="skip",`+target+`} 1`,
		`lapse_probe_runs_total{result="fail",`+target+`}`)
}

func TestWatcherStaysQuietWhileAllPasses(t *testing.T) {
	posts, metrics := watchApp(t, probetest.NewApp(probetest.Sound, time.Minute, time.Hour), 2)
	if len(posts) != 0 {
		t.Errorf("got %d webhook posts, want none", len(posts))
	}
	assertMetrics(t, metrics, `lapse_probe_failed_checks{target="probetest web app (sound)"} 0`)
}

func TestWatcherReportsAnUnreachableTarget(t *testing.T) {
	posts, metrics := watchApp(t, nil, 1)
	if len(posts) == 0 || !strings.Contains(posts[0].Error, "cannot reach") {
		t.Fatalf("got posts %+v, want one saying the target cannot be reached", posts)
	}
	assertMetrics(t, metrics, `lapse_probe_up{target="probetest web app (sound)"} 0`, `result="unreachable"`)
}

func TestWatcherNeedsAKeyForItsWebhook(t *testing.T) {
	target, err := probe.ParseTarget("app.yaml", probetest.NewApp(probetest.Sound, time.Minute, time.Hour).TargetFile("https://app.test", probetest.Web, ""), probetest.Env)
	if err != nil {
		t.Fatal(err)
	}
	_, err = watch.New(watch.Config{Target: target, Every: time.Hour, Registry: prometheus.NewRegistry(), Webhook: "https://hooks.example/probe"})
	if err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("got %v, want an error asking for a key to sign with", err)
	}
}
