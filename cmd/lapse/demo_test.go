package main

import (
	"bytes"
	"context"
	"io"
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

func TestDemoCommand(t *testing.T) { eachStore(t, testDemoCommand) }

func testDemoCommand(t *testing.T, st storeUnderTest) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	exit := make(chan int, 1)
	args := []string{"--listen", "127.0.0.1:0", "--idle", "20s", "--warn", "5s"}
	if st.url != "" {
		args = append(args, "--store", st.url)
	}
	go func() { exit <- runDemo(ctx, args, &stdout, &stderr) }()

	addr := regexp.MustCompile(`running on (http://127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
		}
	}
	if base == "" {
		cancel()
		t.Fatalf("no address printed; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	for _, want := range []string{"ada@example.com", "ben@example.com", "olga@example.com", "password \"demo\"", "authenticator app", "lpk_", "removed on exit"} {
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

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lapse demo did not stop")
	}
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
