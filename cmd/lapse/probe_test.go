package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse/probe/probetest"
	"github.com/lapsehq/lapse/webhook"
)

// probeTarget serves app over TLS and writes a target file for it that trusts the
// server's certificate through tls.ca_file.
func probeTarget(t *testing.T, app *probetest.App) string {
	t.Helper()
	srv := httptest.NewTLSServer(app)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return writeTarget(t, app.TargetFile(srv.URL, probetest.Web, "tls:\n  ca_file: "+ca+"\n"))
}

func writeTarget(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "target.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runProbeArgs(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errs bytes.Buffer
	code = runProbe(ctx, args, &out, &errs)
	return code, out.String(), errs.String()
}

func TestProbeExitCodes(t *testing.T) {
	t.Setenv("PROBE_PASSWORD", probetest.Password)
	t.Setenv("PROBE_NEW_PASSWORD", probetest.NewPassword)
	minute := time.Minute
	sound := probeTarget(t, probetest.NewApp(probetest.Sound, minute, time.Hour))
	weak := probeTarget(t, probetest.NewApp(probetest.WeakCookies, minute, time.Hour))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := writeTarget(t, probetest.NewApp(probetest.Sound, minute, time.Hour).TargetFile("https://"+ln.Addr().String(), probetest.Web, ""))
	ln.Close()
	bad := writeTarget(t, []byte("base_url: https://x\nlogin:\n  url: /login\n  csrf: {url: /login, pattern: nogroup}\n"))
	quick := "--checks=cookie-attributes,cache-headers"
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring of stdout
		stderr string // a substring of stderr
	}{
		{"all_pass", []string{sound, quick}, 0, "PASS  cookie-attributes", ""},
		{"flags_before_the_file", []string{quick, "--format", "junit", sound}, 0, "<testsuites>", ""},
		{"a_check_fails", []string{weak, quick}, 1, "FAIL  cookie-attributes", ""},
		{"no_target_file", nil, 2, "", "Usage: lapse probe"},
		{"missing_file", []string{filepath.Join(t.TempDir(), "nope.yaml")}, 2, "", "no such file"},
		{"bad_target_file", []string{bad}, 2, "", bad + ":4: login.csrf.pattern: needs a group"},
		{"unreachable_target", []string{gone, quick}, 2, "", "cannot reach https://" + ln.Addr().String()},
		{"unknown_check", []string{sound, "--checks", "idle"}, 2, "", `unknown check "idle"`},
		{"unknown_format", []string{sound, "--format", "xml"}, 2, "", "--format"},
		{"webhook_without_watch", []string{sound, "--webhook", "http://x"}, 2, "", "need --watch"},
		{"webhook_without_secret", []string{sound, "--watch", "--webhook", "http://x"}, 2, "", "set LAPSE_PROBE_WEBHOOK_SECRET"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runProbeArgs(context.Background(), tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("got exit %d, stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout with %q, stderr with %q", code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestProbeJSONAndHTMLOutput(t *testing.T) {
	t.Setenv("PROBE_PASSWORD", probetest.Password)
	t.Setenv("PROBE_NEW_PASSWORD", probetest.NewPassword)
	target := probeTarget(t, probetest.NewApp(probetest.Fixation, time.Minute, time.Hour))
	code, stdout, stderr := runProbeArgs(context.Background(), target, "--format", "json", "--checks", "fixation")
	var rep struct {
		Checks []struct{ ID, Status string }
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || code != 1 {
		t.Fatalf("got exit %d and %v decoding stdout %q (stderr %q), want exit 1 and JSON", code, err, stdout, stderr)
	}
	if rep.Checks[2].ID != "fixation" || rep.Checks[2].Status != "fail" {
		t.Errorf("got %+v, want fixation to fail", rep.Checks[2])
	}
	html := filepath.Join(t.TempDir(), "report.html")
	if code, _, stderr := runProbeArgs(context.Background(), target, "--format", "html", "--output", html, "--checks", "fixation"); code != 1 {
		t.Fatalf("html: got exit %d (%s), want 1", code, stderr)
	}
	page, err := os.ReadFile(html)
	if err != nil || !bytes.Contains(page, []byte(`<section id="fixation">`)) {
		t.Errorf("got %v and a page without the fixation section", err)
	}
}

func TestProbeWatchServesMetricsAndPostsFailures(t *testing.T) {
	t.Setenv("PROBE_PASSWORD", probetest.Password)
	t.Setenv("PROBE_NEW_PASSWORD", probetest.NewPassword)
	target := probeTarget(t, probetest.NewApp(probetest.WeakCookies, time.Minute, time.Hour))
	secret := webhook.NewSecret()
	t.Setenv("LAPSE_PROBE_WEBHOOK_SECRET", secret)
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	posted := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(key, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), b, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("the webhook post does not verify with the secret: %v", err)
		}
		posted <- string(b)
	}))
	defer hook.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int)
	go func() {
		code, _, _ := runProbeArgs(ctx, target, "--watch", "--every", "100ms", "--metrics-listen", addr,
			"--webhook", hook.URL, "--checks", "cookie-attributes", "--output", filepath.Join(t.TempDir(), "r.txt"))
		exit <- code
	}()
	select {
	case body := <-posted:
		if !strings.Contains(body, `"type":"probe.failed"`) || !strings.Contains(body, `"cookie-attributes"`) {
			t.Errorf("webhook got %s, want a probe.failed naming cookie-attributes", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook post within 10s")
	}
	want := `lapse_probe_check_status{check="cookie-attributes",status="fail"`
	var metrics string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && !strings.Contains(metrics, want); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(b)
		}
	}
	if !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %s; got:\n%s", want, metrics)
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Errorf("got exit %d after interrupt, want 0", code)
	}
}
