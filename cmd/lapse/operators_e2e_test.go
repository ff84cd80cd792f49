package main

import (
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"
)

// TestOperatorsEndToEnd runs lapse serve on each store: lapse operators
// create (the password on stdin) prints the TOTP key once; the operator
// signs in to the console with name, password and code; the sign-in and
// the creation are in the audit log with their actors and the address;
// lapse operators set --role, disable and reset-totp each end the open
// console session at once; a new sign-in shows the new role; list shows
// the disabled operator, who cannot sign in until lapse operators
// enable; after reset-totp the old secret and recovery codes are refused
// and the new ones accepted; each change is an operator.changed event by
// the cli.
func TestOperatorsEndToEnd(t *testing.T) { eachStore(t, testOperatorsEndToEnd) }

func testOperatorsEndToEnd(t *testing.T, st storeUnderTest) {
	dir := t.TempDir()
	s := start(t, dir, e2eConfig+st.yaml(), "LAPSE_API_KEY="+testKey)
	lapse := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(lapseBin, st.cli(dir, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("lapse %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	const pw = "a long operator password, on stdin"
	if out, err := exec.Command(lapseBin, st.cli(dir, "operators", "create", "--name", "ada", "--role", "admin")...).CombinedOutput(); err == nil {
		t.Fatalf("lapse operators create without a password on stdin succeeded:\n%s", out)
	}
	out := lapse(pw+"\n", "operators", "create", "--name", "ada", "--role", "admin")
	secret := regexp.MustCompile(`secret: ([A-Z2-7]+)`).FindStringSubmatch(out)
	id := regexp.MustCompile(`\((op_[0-9A-Za-z]{22})\)`).FindStringSubmatch(out)
	if secret == nil || id == nil || !strings.Contains(out, "otpauth://totp/") {
		t.Fatalf("lapse operators create printed no id, secret or otpauth URI:\n%s", out)
	}
	recovery := recoveryCodes(t, out)
	code, err := pqtotp.GenerateCode(secret[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := from("127.0.0.1")
	signIn := func(code string) *http.Response {
		t.Helper()
		return consoleSignInWith(t, c, s.url, url.Values{"name": {"ada"}, "password": {pw}, "code": {code}})
	}
	session := consoleCookie(t, signIn(code))
	// page gets the sessions page with the console cookie ck, and
	// returns the answer and its body.
	page := func(ck *http.Cookie) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url+"/console/sessions", nil)
		req.AddCookie(ck)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	sessions := func() *http.Response { r, _ := page(session); return r }
	if r := sessions(); r.StatusCode != http.StatusOK {
		t.Fatalf("the sessions page with the operator's cookie: %d, want 200", r.StatusCode)
	}
	actor := "operator:" + id[1]
	r := call(t, "GET", s.url+"/v1/audit?type=operator.signed_in,operator.changed", testKey, nil)
	for _, want := range []string{`"type":"operator.changed"`, `"reason":"` + id[1] + `"`, `"actor":"cli"`,
		`"type":"operator.signed_in"`, `"actor":"` + actor + `"`, `"ip":"127.0.0.1"`} {
		if !strings.Contains(r.raw, want) {
			t.Errorf("the audit log lacks %s:\n%s", want, r.raw)
		}
	}

	ended := func(when string) {
		t.Helper()
		if r := sessions(); r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "ended=revoked") {
			t.Errorf("the sessions page after %s: %d to %q, want 303 to the sign-in page, ended=revoked",
				when, r.StatusCode, r.Header.Get("Location"))
		}
	}
	// signedInAs signs in with code and checks the console shows the role.
	signedInAs := func(code, role string) *http.Cookie {
		t.Helper()
		ck := consoleCookie(t, signIn(code))
		r, body := page(ck)
		if r.StatusCode != http.StatusOK || !strings.Contains(body, `<span class="who-name">ada</span> · `+role) {
			t.Errorf("the sessions page after a new sign-in: %d, want 200 showing ada · %s:\n%s", r.StatusCode, role, body)
		}
		return ck
	}

	if out, err := exec.Command(lapseBin, st.cli(dir, "operators", "set", "ada")...).CombinedOutput(); err == nil {
		t.Errorf("lapse operators set with neither --role nor --tenant nor --platform succeeded:\n%s", out)
	}
	lapse("", "operators", "set", "ada", "--role", "viewer")
	ended("lapse operators set --role viewer")
	session = signedInAs(recovery[0], "viewer")

	lapse("", "operators", "disable", "ada")
	ended("lapse operators disable")
	list := lapse("", "operators", "list")
	line := regexp.MustCompile(`(?m)^` + id[1] + `.*$`).FindString(list)
	if f := strings.Fields(line); len(f) != 6 || f[1] != "ada" || f[2] != "viewer" || f[5] == "-" {
		t.Errorf("lapse operators list does not show ada, viewer, disabled:\n%s", list)
	}
	if r := signIn(recovery[1]); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a disabled operator's sign-in: %d, want 401", r.StatusCode)
	}
	lapse("", "operators", "enable", "ada")
	session = signedInAs(recovery[1], "viewer")

	out = lapse("", "operators", "reset-totp", "ada")
	ended("lapse operators reset-totp")
	newSecret := regexp.MustCompile(`secret: ([A-Z2-7]+)`).FindStringSubmatch(out)
	newRecovery := recoveryCodes(t, out)
	if newSecret == nil || newSecret[1] == secret[1] || slices.Contains(newRecovery, recovery[2]) {
		t.Fatalf("lapse operators reset-totp printed no new secret and codes:\n%s", out)
	}
	// The old secret's code of the next time step is one it would accept
	// (newer than the step of the first sign-in, within the skew).
	oldCode, err := pqtotp.GenerateCode(secret[1], time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for what, code := range map[string]string{"the old secret's code": oldCode, "an old recovery code": recovery[2]} {
		if r := signIn(code); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("a sign-in with %s after reset-totp: %d, want 401", what, r.StatusCode)
		}
	}
	newCode, err := pqtotp.GenerateCode(newSecret[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signedInAs(newCode, "viewer")
	signedInAs(newRecovery[0], "viewer")

	r = call(t, "GET", s.url+"/v1/audit?type=operator.changed", testKey, nil)
	if n := strings.Count(r.raw, `"actor":"cli"`); n != 5 {
		t.Errorf("the audit log has %d operator.changed events by cli, want 5 (create, set, disable, enable, reset-totp):\n%s", n, r.raw)
	}
}

// consoleCookie returns the console session cookie a sign-in set, after
// checking it was one: 303 to the sessions page.
func consoleCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/sessions" {
		t.Fatalf("operator sign-in: %d to %q, want 303 to /console/sessions", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-lapse-console" && ck.Value != "" {
			return &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	t.Fatal("the sign-in set no console session cookie")
	return nil
}

// recoveryCodes returns the recovery codes lapse operators create or
// reset-totp printed.
func recoveryCodes(t *testing.T, out string) []string {
	t.Helper()
	var codes []string
	for _, m := range regexp.MustCompile(`(?m)^    ([0-9A-Z]{4}(?:-[0-9A-Z]{4})+)$`).FindAllStringSubmatch(out, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) < 3 {
		t.Fatalf("fewer than 3 recovery codes printed:\n%s", out)
	}
	return codes
}
