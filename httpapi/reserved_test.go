package httpapi

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/lapsehq/lapse"
)

// TestReservedSubjectsAreRefused: the subject routes refuse subjects in
// lapse's own namespace, and a session cannot be created for one.
func TestReservedSubjectsAreRefused(t *testing.T) {
	h := newHarness(t)
	subject := url.PathEscape(lapse.ReservedPrefix + "console-admin")
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/subjects/" + subject + "/sessions"},
		{"DELETE", "/v1/subjects/" + subject + "/sessions"},
		{"GET", "/v1/subjects/" + subject + "/factors"},
		{"POST", "/v1/subjects/" + subject + "/credential-changed"},
	} {
		wantProblem(t, h.call(c.method, c.path, "{}"), http.StatusBadRequest, lapse.CodeInvalid)
	}
	wantProblem(t, h.call("POST", "/v1/sessions", map[string]any{"subject": lapse.ReservedPrefix + "console-admin"}), http.StatusBadRequest, lapse.CodeInvalid)
}
