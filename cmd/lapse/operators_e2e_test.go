package main

import (
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	pqtotp "github.com/pquerna/otp/totp"
)

// TestOperatorsEndToEnd runs lapse serve on each store: lapse operators
// create (the password on stdin) prints the TOTP key once; the operator
// signs in to the console with name, password and code; the sign-in and
// the creation are in the audit log with their actors and the address;
// lapse operators disable ends the open console session at once, and
// lapse operators list shows it.
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
	code, err := pqtotp.GenerateCode(secret[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := from("127.0.0.1")
	resp := consoleSignInWith(t, c, s.url, url.Values{"name": {"ada"}, "password": {pw}, "code": {code}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/sessions" {
		t.Fatalf("operator sign-in: %d to %q, want 303 to /console/sessions", resp.StatusCode, resp.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-lapse-console" && ck.Value != "" {
			session = &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	if session == nil {
		t.Fatal("the sign-in set no console session cookie")
	}
	sessions := func() *http.Response {
		req, _ := http.NewRequest("GET", s.url+"/console/sessions", nil)
		req.AddCookie(session)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
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

	lapse("", "operators", "disable", "ada")
	if r := sessions(); r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "ended=revoked") {
		t.Errorf("the sessions page after lapse operators disable: %d to %q, want 303 to the sign-in page, ended=revoked",
			r.StatusCode, r.Header.Get("Location"))
	}
	list := lapse("", "operators", "list")
	line := regexp.MustCompile(`(?m)^` + id[1] + `.*$`).FindString(list)
	if f := strings.Fields(line); len(f) != 6 || f[1] != "ada" || f[2] != "admin" || f[5] == "-" {
		t.Errorf("lapse operators list does not show ada, admin, disabled:\n%s", list)
	}
}
