package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an io.Writer safe to read while runDemo writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runDemoUntilEnd runs lapse demo in this process with args until the
// test ends, and returns the URL it prints and its output so far, once
// its banner is printed to the end ("Stop with Ctrl-C."): the banner
// is several writes, and on a loaded machine the test could read it
// between two of them.
func runDemoUntilEnd(t *testing.T, args ...string) (base string, stdout *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout = &lockedBuffer{}
	var stderr lockedBuffer
	exit := make(chan int, 1)
	go func() { exit <- runDemo(ctx, args, stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exit:
			if code != 0 {
				t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("lapse demo did not stop")
		}
	})
	addr := regexp.MustCompile(`running on (http://127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out := stdout.String()
		if m := addr.FindStringSubmatch(out); m != nil && strings.Contains(out, "Stop with Ctrl-C.") {
			return m[1], stdout
		}
	}
	t.Fatalf("no address printed; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	return "", nil
}

func TestDemoCommand(t *testing.T) { eachStore(t, testDemoCommand) }

func testDemoCommand(t *testing.T, st storeUnderTest) {
	args := []string{"--listen", "127.0.0.1:0", "--idle", "20s", "--warn", "5s"}
	if st.url != "" {
		args = append(args, "--store", st.url)
	}
	base, stdout := runDemoUntilEnd(t, args...)
	for _, want := range []string{"ada@example.com", "ben@example.com", "olga@example.com", "password \"demo\"", "authenticator app", "lpk_", "removed on exit",
		"curl -X DELETE", "/lapse/v1/subjects/ada@example.com/sessions?reason=admin", base + "/admin", "/console/"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the banner lacks %q:\n%s", want, stdout.String())
		}
	}

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	resp, err := c.PostForm(base+"/signin", url.Values{"email": {"ada@example.com"}, "password": {"demo"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/documents" || !strings.Contains(string(body), "Roadmap 2026") {
		t.Errorf("sign-in landed on %d %s, want the documents page", resp.StatusCode, resp.Request.URL.Path)
	}
	resp, err = c.Get(base + "/lapse/web/lapse-client.js")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("the client: %v %v, want 200", err, resp)
	} else {
		resp.Body.Close()
	}
}

// TestDemoBesideServe checks that without --listen the demo tries
// 127.0.0.1:8090, not lapse serve's 8080, and takes a free port, and says
// so, when 8090 is taken too.
func TestDemoBesideServe(t *testing.T) {
	if ln, err := net.Listen("tcp", demoListen); err == nil { // taken, by this test or by anyone
		defer ln.Close()
	}
	base, stdout := runDemoUntilEnd(t)
	if base == "http://"+demoListen || base == "http://127.0.0.1:8080" || !strings.Contains(stdout.String(), demoListen+" is taken") {
		t.Errorf("with %s taken, the demo is at %s and says:\n%s\nwant a free port, said", demoListen, base, stdout.String())
	}
	resp, err := http.Get(base + "/signin")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("the sign-in page at the printed URL: %v %v, want 200", err, resp)
	}
	resp.Body.Close()
}

func TestDemoRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", "0.0.0.0:8080"},
		{"--idle", "1m", "--warn", "2m"},
		{"stray"},
	} {
		var stderr bytes.Buffer
		if code := runDemo(context.Background(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("lapse demo %v: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}
