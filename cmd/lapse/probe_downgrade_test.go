package main

import (
	"bufio"
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// connListener hands out connections another goroutine accepted.
type connListener struct {
	addr  net.Addr
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *connListener) Addr() net.Addr { return l.addr }

// peekedConn is a connection whose first bytes were read ahead.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// splitListener serves TLS and plain HTTP on one port, telling them apart by the first
// byte (a TLS handshake starts with 0x16): to a client that compares only hosts, the
// https and the http URL of such a host are the same place.
func splitListener(t *testing.T) (tlsLn, plainLn *connListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsLn = &connListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	plainLn = &connListener{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); tlsLn.Close(); plainLn.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				r := bufio.NewReader(c)
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				first, err := r.Peek(1)
				c.SetReadDeadline(time.Time{})
				to := plainLn
				if err == nil && first[0] == 0x16 {
					to = tlsLn
				}
				select {
				case to.conns <- peekedConn{c, r}:
				case <-to.done:
					c.Close()
				}
			}()
		}
	}()
	return tlsLn, plainLn
}

// TestProbeSendsNothingOverPlainHTTP runs the built binary against an https target that
// redirects, with 307, to http on the same host and port: once from the sign-in (which
// would carry the password and a Secure cookie) and once from the sign-out (which would
// carry the Secure session cookie). Nothing may arrive over plain http.
func TestProbeSendsNothingOverPlainHTTP(t *testing.T) {
	tlsLn, plainLn := splitListener(t)
	const password = "s3cret-password-never-in-clear"
	const sid = "session-id-never-in-clear-0123456789abcdef"
	var mu sync.Mutex
	var inClear []string
	plain := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		inClear = append(inClear, fmt.Sprintf("%s %s cookies=%q body=%q", r.Method, r.URL, r.Header.Get("Cookie"), b))
		mu.Unlock()
		http.Error(w, "plain http", http.StatusForbidden)
	}))
	plain.Listener = plainLn
	plain.Start()
	defer plain.Close()

	app := httptest.NewUnstartedServer(nil)
	app.Config.ErrorLog = log.New(io.Discard, "", 0)
	app.Listener = tlsLn
	downgrade := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://"+r.Host+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "__Host-pre", Value: "pre-session-never-in-clear", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		fmt.Fprint(w, `<input name="csrf" value="c5rf">`)
	})
	mux.HandleFunc("POST /login-downgrades", downgrade)
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("password") != password {
			http.Error(w, "wrong password", http.StatusUnauthorized)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "__Host-sid", Value: sid, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/account", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /account", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if c, err := r.Cookie("__Host-sid"); err == nil && c.Value == sid {
			fmt.Fprint(w, "Signed in as alice")
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
	mux.HandleFunc("POST /logout", downgrade)
	app.Config.Handler = mux
	app.StartTLS()
	defer app.Close()

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: app.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	target := func(login string) string {
		return writeTarget(t, fmt.Appendf(nil, `base_url: %s
tls: {ca_file: %s}
credentials: {username: alice, password: %s}
login:
  url: %s
  csrf: {url: /login, pattern: 'name="csrf" value="([^"]+)"'}
  form: {username: "{{username}}", password: "{{password}}", csrf: "{{csrf}}"}
session: {cookie: __Host-sid}
authenticated: {url: /account, body_contains: Signed in as alice}
logout: {method: POST, url: /logout}
`, app.URL, ca, password, login))
	}
	cases := []struct {
		name   string
		login  string
		code   int
		stderr string
	}{
		{"sign_in_redirects_to_http", "/login-downgrades", 2, "(another origin: not followed)"},
		{"sign_out_redirects_to_http", "/login", 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(lapseBin, "probe", target(tc.login), "--checks", "cache-headers")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Fatal(err)
			}
			if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("got exit %d, stderr %q, want exit %d and a stderr with %q\nstdout:\n%s", code, stderr.String(), tc.code, tc.stderr, stdout.String())
			}
			mu.Lock()
			defer mu.Unlock()
			if len(inClear) > 0 {
				t.Errorf("the probe sent over plain http:\n%s", strings.Join(inClear, "\n"))
			}
			inClear = nil
		})
	}
}
