package demo_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/demo"
	"github.com/lapsehq/lapse/web/webtest"
)

// dbscHost is the test host name Chromium maps to 127.0.0.1: Chromium
// registers device-bound sessions only over HTTPS with a certificate it
// trusts, which a loopback address with a self-signed certificate is not.
const dbscHost = "app.lapse.test"

// dbscLifetime is the bound cookie's lifetime in the browser test: short,
// so that it lapses within the test; the test asserts only what happens
// after it, never how soon.
const dbscLifetime = 2 * time.Second

// dbscGuard bounds every wait of the DBSC browser test ("never happened").
const dbscGuard = 30 * time.Second

// selfSigned returns a certificate for dbscHost and the base64 SHA-256
// of its public key (what --ignore-certificate-errors-spki-list takes).
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: dbscHost}, DNSNames: []string{dbscHost},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, base64.StdEncoding.EncodeToString(spki[:])
}

// dbscEnv is the demo over TLS with device binding, and a Chromium with
// DBSC and its software keys enabled, as Chromium's own web-platform
// tests run it.
type dbscEnv struct {
	t       *testing.T
	app     *demo.App
	url     string
	browser context.Context
}

func newDBSCEnv(t *testing.T) *dbscEnv {
	t.Helper()
	cert, spki := selfSigned(t)
	e := &dbscEnv{t: t}
	srv := httptest.NewUnstartedServer(nil)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	e.url = "https://" + dbscHost + ":" + port
	timeouts := e2eTimeouts
	timeouts.Idle, timeouts.SensitiveIdle = 2*time.Minute, 2*time.Minute
	app, err := demo.New(demo.Config{DataDir: t.TempDir(), Timeouts: timeouts,
		DeviceBinding: lapse.DeviceBindingPreferred, BoundCookieLifetime: dbscLifetime})
	if err != nil {
		t.Fatal(err)
	}
	e.app = app
	srv.Config.Handler = app.Handler()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { app.Run(ctx); close(done) }()
	<-app.Ready()
	srv.StartTLS()
	t.Cleanup(func() { cancel(); <-done; srv.Close(); app.Close() })

	e.browser = webtest.NewBrowser(t,
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.Flag("host-resolver-rules", "MAP "+dbscHost+" 127.0.0.1"),
		chromedp.Flag("enable-features", "DeviceBoundSessions:RefreshQuota/false,DeviceBoundSessionsDevTools,"+
			"EnableBoundSessionCredentialsSoftwareKeysForManualTesting"),
	)
	return e
}

// dbscEvents collects a tab's device-bound session events.
type dbscEvents struct {
	mu  sync.Mutex
	evs []*network.EventDeviceBoundSessionEventOccurred
}

func (d *dbscEvents) count(match func(*network.EventDeviceBoundSessionEventOccurred) bool) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, ev := range d.evs {
		if match(ev) {
			n++
		}
	}
	return n
}

func (d *dbscEvents) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, _ := json.Marshal(d.evs)
	return string(b)
}

// tab opens a tab in a fresh browser context with the Network domain's
// device-bound session events on.
func (e *dbscEnv) tab() (context.Context, *dbscEvents) {
	e.t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser, chromedp.WithNewBrowserContext())
	e.t.Cleanup(cancel)
	evs := &dbscEvents{}
	if err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventDeviceBoundSessionEventOccurred); ok {
			evs.mu.Lock()
			evs.evs = append(evs.evs, ev)
			evs.mu.Unlock()
		}
	}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.EnableDeviceBoundSessions, network.EnableDeviceBoundSessionsParams{Enable: true}); err != nil {
		e.t.Fatalf("Network.enableDeviceBoundSessions: %v", err)
	}
	return ctx, evs
}

func (e *dbscEnv) do(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	e.t.Helper()
	c, cancel := context.WithTimeout(ctx, dbscGuard)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		e.t.Fatal(err)
	}
}

// path navigates to path and returns the path the tab lands on.
func (e *dbscEnv) path(ctx context.Context, path string) string {
	e.t.Helper()
	p, err := e.landing(ctx, path)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// landing navigates to path and returns the path the tab lands on, or the
// navigation's error. A poll uses it rather than path: there a navigation
// can race the page's own (the signed-out page sending itself to sign in),
// and Chromium aborts one of them (net::ERR_ABORTED) — a reason to look
// again, not a failure.
func (e *dbscEnv) landing(ctx context.Context, path string) (string, error) {
	c, cancel := context.WithTimeout(ctx, dbscGuard)
	defer cancel()
	if err := chromedp.Do(c, chromedp.Navigate(e.url+path)); err != nil {
		return "", fmt.Errorf("navigating to %s: %w", path, err)
	}
	return chromedp.Run(c, chromedp.Evaluate[string](`location.pathname + location.search`))
}

// within polls cond until it holds, for up to dbscGuard.
func (e *dbscEnv) within(what string, cond func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(dbscGuard); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not happen within %s", what, dbscGuard)
		}
	}
}

func TestChromiumBindsTheSessionAndCopiedCookiesStopWorking(t *testing.T) {
	e := newDBSCEnv(t)
	ctx, evs := e.tab()
	e.do(ctx,
		chromedp.Navigate(e.url+"/signin"),
		chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), "demo"),
		chromedp.Click(chromedp.CSS(`form[action="/signin"] button[type=submit]`)),
	)
	e.within("a device-bound session created (DevTools event)", func() bool {
		return evs.count(func(ev *network.EventDeviceBoundSessionEventOccurred) bool {
			return ev.Succeeded && ev.CreationEventDetails != nil
		}) > 0
	})
	ss, err := e.app.Manager().Sessions(context.Background(), lapse.Filter{Subject: "ada@example.com"})
	if err != nil || len(ss) != 1 {
		t.Fatalf("sessions of ada: %d, %v", len(ss), err)
	}
	bound, err := e.app.Manager().DeviceBound(context.Background(), []string{ss[0].ID})
	if err != nil || !bound[ss[0].ID] {
		t.Fatalf("the server holds no binding for the session: %v, %v", bound, err)
	}

	// Past the bound cookie's lifetime, the browser refreshes it with a
	// proof of its key before the request goes out, and the page loads.
	time.Sleep(dbscLifetime + time.Second)
	if p := e.path(ctx, "/documents"); p != "/documents" {
		t.Fatalf("after the bound cookie's lifetime the page is %s, want /documents; events %s", p, evs)
	}
	e.within("a refresh (DevTools event)", func() bool {
		return evs.count(func(ev *network.EventDeviceBoundSessionEventOccurred) bool {
			return ev.Succeeded && ev.RefreshEventDetails != nil &&
				ev.RefreshEventDetails.RefreshResult == network.RefreshEventDetailsRefreshResultRefreshed
		}) > 0
	})

	// The sessions page says the session is bound.
	if p := e.path(ctx, "/account/sessions"); p != "/account/sessions" {
		t.Fatalf("sessions page: landed on %s; events %s", p, evs)
	}
	c0, cancel0 := context.WithTimeout(ctx, dbscGuard)
	defer cancel0()
	facts, err := chromedp.Run(c0, chromedp.Text(chromedp.CSS(`.lapse-session--current .lapse-session__facts`)))
	if err != nil || !strings.Contains(facts, "Bound to device") || !strings.Contains(facts, "Yes") {
		t.Errorf("the sessions page's facts of this session %q (%v): want it shown bound to the device", facts, err)
	}

	// The cookies, copied into another browser context (infostealer
	// malware's copy of the cookie jar), work until the bound cookie's
	// lifetime and then stop: that context has no key to refresh it.
	c, cancel := context.WithTimeout(ctx, dbscGuard)
	defer cancel()
	jar, err := chromedp.Call(c, network.GetCookies, network.GetCookiesParams{URLs: []string{e.url + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	var copied []*network.CookieParam
	for _, ck := range jar.Cookies {
		p := &network.CookieParam{Name: ck.Name, Value: ck.Value, URL: e.url + "/", Path: ck.Path, Secure: ck.Secure, HTTPOnly: ck.HTTPOnly, SameSite: ck.SameSite}
		if !ck.Session {
			p.Expires = cdp.TimeSinceEpoch(ck.Expires)
		}
		copied = append(copied, p)
	}
	if len(copied) != 2 {
		t.Fatalf("cookies %+v: want the session cookie and the bound cookie", jar.Cookies)
	}
	thief, _ := e.tab()
	c2, cancel2 := context.WithTimeout(thief, dbscGuard)
	defer cancel2()
	if _, err := chromedp.Call(c2, network.SetCookies, network.SetCookiesParams{Cookies: copied}); err != nil {
		t.Fatal(err)
	}
	e.within("the copied cookies refused", func() bool {
		p, err := e.landing(thief, "/documents")
		if le := (*chromedp.LoadError)(nil); errors.As(err, &le) && le.ErrorText == "net::ERR_ABORTED" {
			t.Logf("polling: %v", err)
			return false
		} else if err != nil {
			t.Fatal(err)
		}
		return !strings.HasPrefix(p, "/documents")
	})
	// Their use without the bound cookie is theft: the tier revokes.
	s, err := e.app.Manager().Session(context.Background(), ss[0].ID)
	if err != nil || s.Status != lapse.StatusRevoked || s.EndReason != lapse.ReasonTheft {
		t.Errorf("session after the copied cookies' use: %+v, %v; want revoked for theft", s, err)
	}
}
