package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lapsehq/lapse/redis/redistest"
	"github.com/lapsehq/lapse/webhook"
	goredis "github.com/redis/go-redis/v9"
)

// TestNoPasswordInAnyOutput starts the binary with a password in every
// URL it takes (the Redis store, a webhook receiver's user info and
// query) and runs it through start-up, deliveries that fail, the data
// tools and the errors of a wrong password, a malformed URL and a bad
// webhook URL: no output holds a password, and what the URLs say is
// printed redacted.
func TestNoPasswordInAnyOutput(t *testing.T) {
	const (
		redisPw   = "S3cretRedisPassword"
		hookPw    = "S3cretHookPassword"
		hookToken = "S3cretHookToken"
		wrongPw   = "S3cretWrongPassword"
	)
	rs := redistest.NewServer(t)
	rc := goredis.NewClient(&goredis.Options{Addr: rs.Addr})
	if err := rc.ConfigSet(context.Background(), "requirepass", redisPw).Err(); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	store := "redis://:" + redisPw + "@" + rs.Addr + "/0"
	var gotAuth atomic.Value
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pw, _ := r.BasicAuth()
		gotAuth.Store(pw + " " + r.URL.Query().Get("token"))
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer receiver.Close()
	hook := strings.Replace(receiver.URL, "http://", "http://hook:"+hookPw+"@", 1) + "/x?token=" + hookToken
	cfgPath := filepath.Join(t.TempDir(), "lapse.yaml")
	os.WriteFile(cfgPath, []byte(e2eConfig+`
webhook_retry: {base: 100ms, max: 200ms, attempts: 1}
webhook_allow_networks: [127.0.0.0/8]
webhooks:
  - {name: ops, url: "`+hook+`", secret: "`+webhook.NewSecret()+`", events: [session.revoked]}
`), 0o600)
	// Both output streams go to one file, read back whole.
	outPath := filepath.Join(t.TempDir(), "output")
	outFile, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	output := func() string { b, _ := os.ReadFile(outPath); return string(b) }
	cmd := exec.Command(lapseBin, "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--config", cfgPath, "--store", store)
	cmd.Env = append(os.Environ(), "LAPSE_API_KEY="+testKey)
	cmd.Stdout, cmd.Stderr = outFile, outFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	listening := regexp.MustCompile(`lapse listening on (http://\S+)`)
	deadline := time.Now().Add(15 * time.Second)
	var base []string
	for base == nil && time.Now().Before(deadline) {
		base = listening.FindStringSubmatch(output())
		time.Sleep(20 * time.Millisecond)
	}
	if base == nil {
		t.Fatalf("lapse did not start:\n%s", output())
	}
	tok := call(t, "POST", base[1]+"/v1/sessions", testKey, map[string]any{"subject": "a", "tier": "durable"}).body["token"].(string)
	call(t, "POST", base[1]+"/v1/sessions/revoke", testKey, map[string]any{"token": tok})
	dead := waitFor(t, "session.revoked", 15*time.Second, lapseBin, "webhooks", "dead", "--store", store)
	if got, _ := gotAuth.Load().(string); got != hookPw+" "+hookToken {
		t.Fatalf("the receiver was not called with the URL's credentials (%q): the test sees nothing", got)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	outputs := map[string]string{"lapse serve": output(), "lapse webhooks dead": dead}
	for name, args := range map[string][]string{
		"audit log":                   {"audit", "log", "--store", store},
		"audit verify":                {"audit", "verify", "--store", store},
		"serve with a wrong password": {"serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--store", "redis://:" + wrongPw + "@" + rs.Addr + "/0"},
		"serve with a malformed URL":  {"serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--store", "redis://:" + redisPw + "@127.0.0.1:notaport/0"},
		"webhooks dead, cluster URL":  {"webhooks", "dead", "--store", "redis+cluster://:" + redisPw + "@127.0.0.1:1,127.0.0.1:2/?x=%zz"},
	} {
		o, _ := exec.Command(lapseBin, args...).CombinedOutput()
		outputs[name] = string(o)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("webhooks:\n  - {name: ops, url: \"ftp://hook:"+hookPw+"@example.com/?token="+hookToken+"\", secret: x}\n"), 0o600)
	o, _ := exec.Command(lapseBin, "serve", "--config", bad, "--data-dir", t.TempDir()).CombinedOutput()
	outputs["serve with a bad webhook URL"] = string(o)

	for name, o := range outputs {
		for _, secret := range []string{redisPw, hookPw, hookToken, wrongPw} {
			if strings.Contains(o, secret) {
				t.Errorf("%s printed a password:\n%s", name, o)
			}
		}
	}
	if !strings.Contains(outputs["lapse serve"], "redis://[REDACTED]@"+rs.Addr+"/0") {
		t.Errorf("lapse serve did not name its store, redacted: the test would not see it\n%s", outputs["lapse serve"])
	}
	if !strings.Contains(outputs["serve with a wrong password"], "redis://[REDACTED]@") || !strings.Contains(outputs["serve with a bad webhook URL"], "ftp://[REDACTED]@example.com/?token=[REDACTED]") {
		t.Errorf("the errors do not name the URL redacted:\n%s\n%s", outputs["serve with a wrong password"], outputs["serve with a bad webhook URL"])
	}
}
