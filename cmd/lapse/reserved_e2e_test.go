package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/console"
)

// consoleSignIn posts key at the console's sign-in form from c, carrying
// the form's cookie by hand (it is Secure, and this is plain HTTP).
func consoleSignIn(t *testing.T, c *http.Client, base, key string) *http.Response {
	t.Helper()
	return consoleSignInWith(t, c, base, url.Values{"key": {key}})
}

// consoleSignInWith posts form at the console's sign-in form from c, as
// consoleSignIn does.
func consoleSignInWith(t *testing.T, c *http.Client, base string, form url.Values) *http.Response {
	t.Helper()
	resp, err := c.Get(base + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if csrf == nil {
		t.Fatalf("no sign-in form:\n%s", page)
	}
	form.Set("csrf", string(csrf[1]))
	req, _ := http.NewRequest("POST", base+"/console/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	for _, ck := range resp.Cookies() {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestOperatorSessionsAreNotThePlatforms: a platform user named like the
// console's operator ("lapse:console:key:<id>") cannot be given a session,
// and the platform's API neither lists nor ends the operator's session.
func TestOperatorSessionsAreNotThePlatforms(t *testing.T) {
	s := start(t, t.TempDir(), e2eConfig, "LAPSE_API_KEY="+testKey)
	if resp := consoleSignIn(t, from("127.0.0.1"), s.url, testKey); resp.StatusCode != 303 {
		t.Fatalf("console sign-in: %d, want 303", resp.StatusCode)
	}
	operator := console.SubjectOf("key:" + lapse.ParseAPIKey(testKey))
	r := call(t, "GET", s.url+"/v1/audit?subject="+url.QueryEscape(operator), testKey, nil)
	evs, _ := r.body["events"].([]any)
	if len(evs) != 1 {
		t.Fatalf("the operator's events = %s, want its session.created", r.raw)
	}
	id := evs[0].(map[string]any)["session_id"].(string)
	if r := call(t, "POST", s.url+"/v1/sessions", testKey, map[string]any{"subject": operator}); r.status != 400 || code(r) != "invalid_request" {
		t.Errorf("creating a platform session for %s: %d %s, want 400 invalid_request", operator, r.status, r.raw)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/sessions/" + id}, {"DELETE", "/v1/sessions/" + id},
	} {
		if r := call(t, c.method, s.url+c.path, testKey, nil); r.status != 404 {
			t.Errorf("%s %s: %d %s, want 404 as for an unknown session", c.method, c.path, r.status, r.raw)
		}
	}
	for _, method := range []string{"GET", "DELETE"} {
		if r := call(t, method, s.url+"/v1/subjects/"+url.PathEscape(operator)+"/sessions", testKey, nil); r.status != 400 {
			t.Errorf("%s the operator's subject: %d %s, want 400", method, r.status, r.raw)
		}
	}
	r = call(t, "GET", s.url+"/v1/audit?session="+id, testKey, nil)
	if strings.Contains(r.raw, "session.revoked") {
		t.Errorf("the operator's session was ended: %s", r.raw)
	}
}
