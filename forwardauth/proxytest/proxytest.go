// Package proxytest runs real reverse proxies in front of lapse for
// tests and benchmarks: nginx and Caddy, each on the config file the
// docs show (docs/proxy/nginx.conf, docs/proxy/Caddyfile) with only its
// addresses and key replaced, and an upstream app that echoes the
// headers it receives.
package proxytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Addresses in the docs' configs, which Start replaces.
const (
	DocLapse    = "127.0.0.1:8080"
	DocApp      = "127.0.0.1:3000"
	DocProxyKey = "REPLACE-WITH-THE-PROXY-KEY"
)

// Vars are what a docs config is templated with.
type Vars struct {
	// Lapse and App are the host:port of lapse and of the upstream app.
	Lapse, App string
	// ProxyKey is the key the proxy sends in X-Lapse-Proxy-Key.
	ProxyKey string
	// Workers is nginx's worker_processes; 0 means 1.
	Workers int
	// HTTP is more of nginx's http context (another server block).
	HTTP string
	// Replace are more old, new pairs to replace in the config, such as
	// the auth_request line of a benchmark's baseline.
	Replace []string
	// Listen is the loopback address the proxy listens on, for a test
	// that must know it before the proxy starts (a passkey's origin);
	// "" means a free port.
	Listen string
}

// listenAddr returns v.Listen, or a free loopback address.
func (v Vars) listenAddr() (string, error) {
	if v.Listen != "" {
		return v.Listen, nil
	}
	return FreeAddr()
}

// Proxy is a running proxy.
type Proxy struct {
	// URL is where it listens, such as http://127.0.0.1:40123.
	URL  string
	cmd  *exec.Cmd
	dir  string
	out  bytes.Buffer
	done chan struct{}
}

// Log returns what the proxy wrote to its error log and output.
func (p *Proxy) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "error.log"))
	return string(b) + p.out.String()
}

// Stop stops the proxy and waits for it to exit.
func (p *Proxy) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// template reads the docs config at path and puts v's addresses in.
func template(path string, v Vars, replace ...string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := string(b)
	for _, must := range []string{DocLapse, DocApp} {
		if !strings.Contains(s, must) {
			return "", fmt.Errorf("%s does not name %s: the test would not use it", path, must)
		}
	}
	for i := 0; i+1 < len(v.Replace); i += 2 {
		if !strings.Contains(s, v.Replace[i]) {
			return "", fmt.Errorf("%s does not hold %q", path, v.Replace[i])
		}
	}
	pairs := append([]string{DocLapse, v.Lapse, DocApp, v.App, DocProxyKey, v.ProxyKey}, replace...)
	return strings.NewReplacer(append(pairs, v.Replace...)...).Replace(s), nil
}

// StartNginx runs nginx on the site config at path (docs/proxy/nginx.conf),
// in its own directory dir, on v.Listen or a free loopback port.
func StartNginx(path, dir string, v Vars) (*Proxy, error) {
	addr, err := v.listenAddr()
	if err != nil {
		return nil, err
	}
	site, err := template(path, v, "listen 80;", "listen "+addr+";")
	if err != nil {
		return nil, err
	}
	// nginx's workers run as nobody when the master is root: they need
	// to reach the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	workers := max(v.Workers, 1)
	main := fmt.Sprintf(`worker_processes %d;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    include %[2]s/site.conf;
%[3]s
}
`, workers, dir, v.HTTP)
	if err := os.WriteFile(filepath.Join(dir, "site.conf"), []byte(site), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		return nil, err
	}
	return start(addr, dir, nil, "nginx", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
}

// StartCaddy runs Caddy on the Caddyfile at path (docs/proxy/Caddyfile),
// in its own directory dir, on a free loopback port over plain HTTP,
// with the proxy key in LAPSE_PROXY_KEY.
func StartCaddy(path, dir string, v Vars) (*Proxy, error) {
	addr, err := v.listenAddr()
	if err != nil {
		return nil, err
	}
	site, err := template(path, v, "app.example.com {", "http://"+addr+" {")
	if err != nil {
		return nil, err
	}
	// The global options of a test: no admin endpoint, no certificates.
	conf := "{\n\tadmin off\n\tauto_https off\n}\n\n" + site
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir, "HOME="+dir, "LAPSE_PROXY_KEY="+v.ProxyKey)
	return start(addr, dir, env, "caddy", "run", "--config", file, "--adapter", "caddyfile")
}

func start(addr, dir string, env []string, name string, args ...string) (*Proxy, error) {
	p := &Proxy{URL: "http://" + addr, dir: dir, done: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before listening:\n%s", name, p.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s did not listen on %s within 20s:\n%s", name, addr, p.Log())
		}
	}
}

// Need returns the path of command, skipping the test when it is not
// installed, or failing it when CI=true.
func Need(tb testing.TB, command, debianPackage string) string {
	tb.Helper()
	path, err := exec.LookPath(command)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not installed; the proxy tests need it (Debian: apt-get install %s; scripts/test installs it)", command, debianPackage)
	}
	tb.Skipf("%s is not installed: skipping (Debian: apt-get install %s)", command, debianPackage)
	return ""
}

// Nginx runs nginx for a test on the docs config at path, stopped when
// the test ends; its log is shown if the test failed.
func Nginx(tb testing.TB, path string, v Vars) *Proxy {
	tb.Helper()
	Need(tb, "nginx", "nginx-light")
	return forTest(tb, func(dir string) (*Proxy, error) { return StartNginx(path, dir, v) })
}

// Caddy runs Caddy for a test on the docs Caddyfile at path, stopped
// when the test ends; its log is shown if the test failed.
func Caddy(tb testing.TB, path string, v Vars) *Proxy {
	tb.Helper()
	Need(tb, "caddy", "caddy")
	return forTest(tb, func(dir string) (*Proxy, error) { return StartCaddy(path, dir, v) })
}

func forTest(tb testing.TB, start func(dir string) (*Proxy, error)) *Proxy {
	tb.Helper()
	p, err := start(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			tb.Logf("proxy log:\n%s", p.Log())
		}
	})
	return p
}

// Echoed is what [Echo] answers with: the request as the app received it.
type Echoed struct {
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Headers map[string][]string `json:"headers"`
}

// Echo is an upstream app that answers every request with what it
// received (an [Echoed]): as JSON, or, to a request that accepts HTML, as
// a page whose <pre id="echo"> holds the JSON, titled by the path.
// A page of a path with ?script=1 includes the browser client's one-line
// <script>.
func Echo() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := Echoed{Method: r.Method, URI: r.RequestURI, Headers: r.Header}
		b, _ := json.MarshalIndent(e, "", "  ")
		if !strings.Contains(r.Header.Get("Accept"), "text/html") {
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return
		}
		script := ""
		if r.URL.Query().Get("script") == "1" {
			script = `<script type="module" src="/.lapse/web/lapse-start.js"></script>`
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><head><meta charset=utf-8><title>%s</title>%s</head><body><h1>%[1]s</h1><pre id=echo>%[3]s</pre></body></html>",
			html.EscapeString(r.URL.Path), script, html.EscapeString(string(b)))
	})
}

// Header returns the values of name the app received, in order.
func (e *Echoed) Header(name string) []string {
	return http.Header(e.Headers).Values(name)
}

// Names returns the names of the headers the app received, sorted.
func (e *Echoed) Names() []string {
	var out []string
	for k := range e.Headers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ErrNotEchoed is returned by [Decode] for a body that is not an [Echoed].
var ErrNotEchoed = errors.New("proxytest: not an echo of the app")

// Decode reads an [Echoed] from a JSON body.
func Decode(body []byte) (*Echoed, error) {
	var e Echoed
	if err := json.Unmarshal(body, &e); err != nil || e.Method == "" {
		return nil, ErrNotEchoed
	}
	return &e, nil
}

// listening matches the line lapse serve, and the docs' examples, print
// once they listen.
var listening = regexp.MustCompile(`listening on (http://\S+)`)

// Listening starts cmd and returns the URL it says it listens on ("…
// listening on http://…" on its standard output), waiting up to 20 s.
// cmd's standard error is kept for the error of a start that failed; the
// caller stops cmd.
func Listening(cmd *exec.Cmd) (string, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	var stderr bytes.Buffer
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case u := <-found:
		return u, nil
	case <-time.After(20 * time.Second):
		return "", fmt.Errorf("%s did not say it listens within 20s: %s", cmd.Path, stderr.String())
	}
}
