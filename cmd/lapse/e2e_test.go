package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/postgres/pgtest"
)

// These tests run the built binary over real HTTP on loopback, with
// second-scale timeouts.

var lapseBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lapse-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lapseBin = filepath.Join(dir, "lapse")
	if out, err := exec.Command("go", "build", "-o", lapseBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building lapse: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testKey = "lpk_test_key_that_is_long_enough_for_lapse_0123456789"

// e2eConfig has a tier with second-scale timeouts.
const e2eConfig = `
default_tier: quick
cache_memory: 64MiB
tiers:
  quick:   {idle_timeout: 2s, absolute_timeout: 4s, warn_before: 1s}
  steady:  {idle_timeout: 3s, absolute_timeout: 8s, warn_before: 1s}
  durable: {idle_timeout: 1h, absolute_timeout: 12h}
`

type server struct {
	url     string
	cmd     *exec.Cmd
	stdout  *bytes.Buffer
	dataDir string
	done    chan struct{}
}

// start runs lapse serve on a free port and waits until it listens.
func start(t *testing.T, dataDir, configYAML string, env ...string) *server {
	t.Helper()
	return startAt(t, "127.0.0.1:0", dataDir, configYAML, env...)
}

// startAt runs lapse serve listening on addr.
func startAt(t *testing.T, addr, dataDir, configYAML string, env ...string) *server {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "lapse.yaml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lapseBin, "serve", "--listen", addr, "--data-dir", dataDir, "--config", cfg)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, stdout: &bytes.Buffer{}, dataDir: dataDir, done: make(chan struct{})}
	go func() { cmd.Wait(); pw.Close(); close(s.done) }()
	listening := regexp.MustCompile(`lapse listening on (http://\S+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.stdout.WriteString(sc.Text() + "\n")
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case s.url = <-found:
	case <-s.done:
		t.Fatalf("lapse exited before listening:\n%s", stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("lapse did not listen within 15s:\n%s", stderr.String())
	}
	t.Cleanup(func() { s.kill(syscall.SIGTERM) })
	return s
}

func (s *server) kill(sig syscall.Signal) {
	s.cmd.Process.Signal(sig)
	<-s.done
}

type reply struct {
	status int
	body   map[string]any
	raw    string
	header http.Header
}

func call(t *testing.T, method, url, key string, body any) reply {
	t.Helper()
	return doFrom(t, http.DefaultClient, method, url, key, body)
}

func (s *server) create(t *testing.T, body map[string]any) (token, id string) {
	t.Helper()
	r := call(t, "POST", s.url+"/v1/sessions", testKey, body)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	return r.body["token"].(string), r.body["session"].(map[string]any)["id"].(string)
}

func (s *server) verify(t *testing.T, token string) reply {
	t.Helper()
	return call(t, "POST", s.url+"/v1/sessions/verify", testKey, map[string]any{"token": token})
}

// sessionTime reads a time of the session in a verify reply.
func sessionTime(t *testing.T, r reply, key string) time.Time {
	t.Helper()
	sess, _ := r.body["session"].(map[string]any)
	v, _ := sess[key].(string)
	at, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatalf("session.%s in %s: %v", key, r.raw, err)
	}
	return at
}

func code(r reply) string {
	c, _ := r.body["code"].(string)
	return c
}

func TestServeEndToEnd(t *testing.T) { eachStore(t, testServeEndToEnd) }

func testServeEndToEnd(t *testing.T, st storeUnderTest) {
	s := start(t, t.TempDir(), e2eConfig+st.yaml(), "LAPSE_API_KEY="+testKey)
	if r := call(t, "GET", s.url+"/healthz", "", nil); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	if r := call(t, "POST", s.url+"/v1/sessions", "", map[string]any{"subject": "a"}); r.status != 401 || code(r) != "unauthorized" {
		t.Fatalf("create without key: %d %s, want 401 unauthorized", r.status, r.raw)
	}

	t.Run("idle_session_expires_after_idle_timeout", func(t *testing.T) {
		tok, _ := s.create(t, map[string]any{"subject": "idle"})
		if r := s.verify(t, tok); r.status != 200 {
			t.Fatalf("fresh verify: %d %s", r.status, r.raw)
		}
		time.Sleep(2500 * time.Millisecond)
		if r := s.verify(t, tok); r.status != 401 || code(r) != "session_expired_idle" {
			t.Fatalf("after 2.5s idle: %d %s, want 401 session_expired_idle", r.status, r.raw)
		}
	})
	t.Run("active_session_survives_idle_but_not_absolute", func(t *testing.T) {
		// The steady tier: idle 3s, absolute 8s. Verifies every 300 ms keep
		// it alive past two idle timeouts; they stop 2 s before the absolute
		// deadline, so a verify delayed by a busy machine still lands before it.
		tok, _ := s.create(t, map[string]any{"subject": "busy", "tier": "steady"})
		first := s.verify(t, tok)
		if first.status != 200 {
			t.Fatalf("fresh verify: %d %s", first.status, first.raw)
		}
		absolute := sessionTime(t, first, "expires_at")
		idle := sessionTime(t, first, "idle_expires_at")
		for time.Until(absolute) > 2*time.Second {
			time.Sleep(300 * time.Millisecond)
			r := s.verify(t, tok)
			if r.status != 200 {
				t.Fatalf("verify %v before the absolute deadline, while active: %d %s", time.Until(absolute).Round(time.Millisecond), r.status, r.raw)
			}
			idle = sessionTime(t, r, "idle_expires_at")
		}
		if first := sessionTime(t, first, "idle_expires_at"); !idle.After(first.Add(3 * time.Second)) {
			t.Errorf("idle deadline %v, want activity to have moved it past two idle timeouts from %v", idle, first)
		}
		time.Sleep(time.Until(absolute))
		if r := s.verify(t, tok); r.status != 401 || code(r) != "session_expired_absolute" {
			t.Fatalf("after the 8s absolute timeout: %d %s, want 401 session_expired_absolute", r.status, r.raw)
		}
	})
	t.Run("logout_ends_session_and_is_idempotent", func(t *testing.T) {
		tok, id := s.create(t, map[string]any{"subject": "carol", "tier": "durable"})
		for range 2 {
			if r := call(t, "POST", s.url+"/v1/sessions/revoke", testKey, map[string]any{"token": tok}); r.status != 204 {
				t.Fatalf("revoke: %d %s", r.status, r.raw)
			}
		}
		if r := s.verify(t, tok); code(r) != "session_revoked" {
			t.Fatalf("verify after revoke: %d %s", r.status, r.raw)
		}
		r := call(t, "GET", s.url+"/v1/sessions/"+id, testKey, nil)
		if r.status != 200 || r.body["status"] != "revoked" || r.body["end_reason"] != "logout" {
			t.Fatalf("GET after revoke: %d %s", r.status, r.raw)
		}
	})
	t.Run("metrics_count_what_happened", func(t *testing.T) {
		if r := call(t, "GET", s.url+"/metrics", "", nil); r.status != 401 {
			t.Errorf("metrics without the API key: %d, want 401", r.status)
		}
		r := call(t, "GET", s.url+"/metrics", testKey, nil)
		for _, want := range []string{`lapse_verifications_total{outcome="session_expired_idle"}`, `lapse_sessions_active{tier="durable"}`,
			`lapse_sessions_ended_total{reason="logout",status="revoked",tier="durable"} 1`, `lapse_verify_duration_seconds_bucket`} {
			if !strings.Contains(r.raw, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func TestGeneratedAdminKeyIsPrintedOnceAndOnlyItsHashKept(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, e2eConfig)
	key := regexp.MustCompile(`lpk_[0-9A-Za-z]{49}`).FindString(s.stdout.String())
	if key == "" {
		t.Fatalf("no admin key printed on first start:\n%s", s.stdout)
	}
	if r := call(t, "POST", s.url+"/v1/sessions", key, map[string]any{"subject": "a"}); r.status != 201 {
		t.Fatalf("the printed key does not work: %d %s", r.status, r.raw)
	}
	s.kill(syscall.SIGTERM)
	hash, _ := os.ReadFile(filepath.Join(dir, "admin-key.sha256"))
	if want := fmt.Sprintf("%x", sha256.Sum256([]byte(key))); strings.TrimSpace(string(hash)) != want {
		t.Fatalf("admin-key.sha256 holds %q, want the key's SHA-256", hash)
	}
	again := start(t, dir, e2eConfig)
	if strings.Contains(again.stdout.String(), "lpk_") {
		t.Errorf("second start printed a key again:\n%s", again.stdout)
	}
	if r := call(t, "POST", again.url+"/v1/sessions", key, map[string]any{"subject": "a"}); r.status != 201 {
		t.Errorf("the key does not work after a restart: %d", r.status)
	}
}

func TestConfigErrorRefusesToStart(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(cfg, []byte("tiers:\n  standard: {idle_timeout: 5x, absolute_timeout: 1h}\ndefault_tier: standard\n"), 0o600)
	out, err := exec.Command(lapseBin, "serve", "--config", cfg, "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("lapse serve with a bad config: %v, want exit status 2\n%s", err, out)
	}
	for _, want := range []string{cfg + ":2", "tiers.standard.idle_timeout", `"5x" is not a duration`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("error output lacks %q:\n%s", want, out)
		}
	}
}

// crashConfig is e2eConfig with a tier whose touch interval (a
// twentieth of its idle timeout) is 3 s: a verify of a session of it
// created 3 s before writes activity.
const crashConfig = e2eConfig + "  active:  {idle_timeout: 1m, absolute_timeout: 12h}\n"

// TestCrashKeepsAcknowledgedWrites kills lapse with SIGKILL in the middle
// of creates, revokes and activity writes (extends, and the routine
// activity a verify writes once a touch interval has passed), sent by 24
// clients at once so that the store commits them in groups, restarts it
// on the same data, and checks that every acknowledged revoke still
// holds, every acknowledged live session still verifies, and every
// acknowledged extend's and touch's idle deadline is still there.
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, crashConfig, "LAPSE_API_KEY="+testKey)
	var (
		mu       sync.Mutex
		live     []string              // created, no revoke sent
		revoked  []string              // revoke acknowledged
		extended = map[string]string{} // token: idle_expires_at of the acknowledged extend
		touched  = map[string]string{} // token: idle_expires_at of the last acknowledged verify that moved it
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	client := &http.Client{Timeout: 5 * time.Second}
	post := func(path, key string, body any) (int, map[string]any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", s.url+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	// one creates a session and then, by i, keeps it, revokes it or
	// extends it, and records what was acknowledged.
	one := func(w, i int) {
		status, out := post("/v1/sessions", testKey, map[string]any{"subject": fmt.Sprintf("user%d", w), "tier": "durable"})
		if status != 201 {
			return // the crash came first: not acknowledged
		}
		tok := out["token"].(string)
		switch i % 3 {
		case 0:
			mu.Lock()
			live = append(live, tok)
			mu.Unlock()
		case 1:
			if status, _ := post("/v1/sessions/revoke", testKey, map[string]any{"token": tok}); status == 204 {
				mu.Lock()
				revoked = append(revoked, tok)
				mu.Unlock()
			}
		case 2:
			if status, out := post("/v1/session/extend", tok, map[string]any{}); status == 200 {
				sess, _ := out["session"].(map[string]any)
				mu.Lock()
				extended[tok], _ = sess["idle_expires_at"].(string)
				mu.Unlock()
			}
		}
	}
	// touches verifies, in turn, sessions of tier active created (or last
	// verified) more than a touch interval before, creating more while
	// none is due, so that activity writes flow until the kill.
	touches := func(w int) {
		type due struct {
			tok string
			at  time.Time
		}
		var queue []due
		for {
			select {
			case <-stop:
				return
			default:
			}
			if len(queue) == 0 || time.Since(queue[0].at) < 3100*time.Millisecond {
				status, out := post("/v1/sessions", testKey, map[string]any{"subject": fmt.Sprintf("toucher%d", w), "tier": "active"})
				if status == 201 {
					queue = append(queue, due{out["token"].(string), time.Now()})
				}
				continue
			}
			d := queue[0]
			queue = append(queue[1:], due{d.tok, time.Now()})
			status, out := post("/v1/sessions/verify", testKey, map[string]any{"token": d.tok})
			sess, _ := out["session"].(map[string]any)
			last, _ := sess["last_active_at"].(string)
			created, _ := sess["created_at"].(string)
			if status == 200 && last != created { // the verify wrote activity
				mu.Lock()
				touched[d.tok], _ = sess["idle_expires_at"].(string)
				mu.Unlock()
			}
		}
	}
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w >= 16 {
				touches(w)
				return
			}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				one(w, i)
			}
		}()
	}
	// Kill it mid-stream once enough has been acknowledged to test, however
	// long a busy machine takes to get there.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		enough := len(live) >= 100 && len(revoked) >= 100 && len(extended) >= 100 && len(touched) >= 100
		mu.Unlock()
		if enough {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 100 creates, 100 revokes, 100 extends and 100 touches acknowledged in 60s: %d, %d, %d, %d",
				len(live), len(revoked), len(extended), len(touched))
		}
	}
	s.kill(syscall.SIGKILL)
	close(stop)
	wg.Wait()
	t.Logf("acknowledged before SIGKILL: %d live sessions, %d revokes, %d extends, %d touches", len(live), len(revoked), len(extended), len(touched))

	s = start(t, dir, crashConfig, "LAPSE_API_KEY="+testKey)
	for _, tok := range revoked {
		if r := s.verify(t, tok); r.status != 401 || code(r) != "session_revoked" {
			t.Fatalf("an acknowledged revoke was undone by the crash: verify %d %s", r.status, r.raw)
		}
	}
	for _, tok := range live {
		if r := s.verify(t, tok); r.status != 200 {
			t.Fatalf("an acknowledged session was lost in the crash: verify %d %s", r.status, r.raw)
		}
	}
	for what, acked := range map[string]map[string]string{"extend": extended, "touch": touched} {
		for tok, idle := range acked {
			want, err := time.Parse(time.RFC3339Nano, idle)
			if err != nil {
				t.Fatalf("%s reply's idle_expires_at %q: %v", what, idle, err)
			}
			// touch false: a verify that wrote activity itself would hide
			// a lost one.
			r := call(t, "POST", s.url+"/v1/sessions/verify", testKey, map[string]any{"token": tok, "touch": false})
			if r.status != 200 {
				t.Fatalf("a session with an acknowledged %s was lost in the crash: verify %d %s", what, r.status, r.raw)
			}
			if got := sessionTime(t, r, "idle_expires_at"); got.Before(want) {
				t.Fatalf("an acknowledged %s was lost in the crash: idle_expires_at %s, the %s acknowledged %s", what, got, what, want)
			}
		}
	}
}

// TestDataDirHoldsNoRawToken scans every file lapse wrote for the tokens
// and the admin key it handed out; it also looks for their hashes, to
// show the scan would find what is there.
func TestDataDirHoldsNoRawToken(t *testing.T) {
	dir := t.TempDir()
	s := start(t, dir, e2eConfig)
	key := regexp.MustCompile(`lpk_[0-9A-Za-z]{49}`).FindString(s.stdout.String())
	var tokens []string
	for i := range 20 {
		r := call(t, "POST", s.url+"/v1/sessions", key, map[string]any{"subject": fmt.Sprintf("u%d", i), "tier": "durable"})
		tok := r.body["token"].(string)
		tokens = append(tokens, tok)
		// With this server's own key: s.verify sends testKey, which this
		// server does not have (it was refused, and is now throttled).
		if r := call(t, "POST", s.url+"/v1/sessions/verify", key, map[string]any{"token": tok}); r.status != 200 {
			t.Fatalf("verify: %d %s", r.status, r.raw)
		}
		if i%3 == 0 {
			call(t, "POST", s.url+"/v1/sessions/revoke", key, map[string]any{"token": tok})
		}
	}
	var files [][]byte
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			files = append(files, b)
		}
		return nil
	})
	contains := func(needle []byte) bool {
		for _, f := range files {
			if bytes.Contains(f, needle) {
				return true
			}
		}
		return false
	}
	for _, secret := range append(tokens, key) {
		if contains([]byte(secret)) || contains([]byte(secret[4:47])) {
			t.Fatalf("the data directory holds a raw token or key (%s...)", secret[:8])
		}
	}
	h, _ := lapse.HashToken(tokens[0]) // as the store keeps it
	if !contains(h[:]) {
		t.Errorf("the scan did not find a token's hash either: it cannot see the database")
	}
	if out := s.stdout.String(); strings.Count(out, key) != 1 {
		t.Errorf("the admin key appeared %d times in the output, want exactly once", strings.Count(out, key))
	}
}

func TestShutdownEndsOpenEventStreams(t *testing.T) {
	s := start(t, t.TempDir(), e2eConfig, "LAPSE_API_KEY="+testKey)
	tok, _ := s.create(t, map[string]any{"subject": "a", "tier": "durable"})
	req, _ := http.NewRequest("GET", s.url+"/v1/session/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	s.cmd.Process.Signal(syscall.SIGTERM)
	// The stream ends when shutdown starts. Had it held the server open,
	// Shutdown would have run out its timeout and lapse would exit 1.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading the stream to its end: %v", err)
	}
	<-s.done
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("lapse exited %d on SIGTERM with an open stream, want 0 (a stream held the shutdown to its timeout?)", code)
	}
}

// waitFor runs cmd until its output holds want, and returns the output;
// within is a guard against "never", not a latency.
func waitFor(t *testing.T, want string, within time.Duration, name string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out, _ := exec.Command(name, args...).CombinedOutput()
		if strings.Contains(string(out), want) || time.Now().After(deadline) {
			return string(out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// from returns a client whose connections leave from the loopback
// address local, another client address for lapse.
func from(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	return &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// doFrom sends a request with c, with the API key if key is set and
// body as JSON if it is not nil.
func doFrom(t *testing.T, c *http.Client, method, url, key string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(raw), header: resp.Header}
	json.Unmarshal(raw, &r.body)
	return r
}
