package probe

import (
	"context"
	"fmt"
)

// spec is one check: its stable id, the standards it follows and how to run it.
// Disruptive checks sign in many times or end other sessions, so [Run] runs them one at a
// time before the others, which run concurrently.
type spec struct {
	id         string
	wstg       string
	asvs       []string
	disruptive bool
	run        func(ctx context.Context, p *prober, r *Result)
}

// specs lists every check in report order.
var specs = []spec{
	{id: "token-entropy", wstg: "WSTG-SESS-01", asvs: []string{"v4.0.3-3.2.2", "v5.0.0-7.2.3"}, disruptive: true, run: checkEntropy},
	{id: "cookie-attributes", wstg: "WSTG-SESS-02", asvs: []string{"v4.0.3-3.4.1", "v4.0.3-3.4.2", "v4.0.3-3.4.3", "v4.0.3-3.4.4", "v4.0.3-3.4.5", "v5.0.0-3.3.1", "v5.0.0-3.3.2", "v5.0.0-3.3.3", "v5.0.0-3.3.4"}, run: checkCookies},
	{id: "fixation", wstg: "WSTG-SESS-03", asvs: []string{"v4.0.3-3.2.1", "v5.0.0-7.2.4"}, run: checkFixation},
	{id: "logout-invalidates", wstg: "WSTG-SESS-06", asvs: []string{"v4.0.3-3.3.1", "v5.0.0-7.4.1"}, run: checkLogout},
	{id: "idle-timeout", wstg: "WSTG-SESS-07", asvs: []string{"v4.0.3-3.3.2", "v5.0.0-7.3.1"}, run: checkIdle},
	{id: "absolute-timeout", wstg: "WSTG-SESS-07", asvs: []string{"v4.0.3-3.3.2", "v5.0.0-7.3.2"}, run: checkAbsolute},
	{id: "password-change-revokes", wstg: "WSTG-ATHN-09", asvs: []string{"v4.0.3-3.3.3", "v5.0.0-7.4.3"}, disruptive: true, run: checkPasswordChange},
	{id: "concurrent-logout", wstg: "WSTG-SESS-11", asvs: []string{"v4.0.3-3.3.4", "v5.0.0-7.5.2"}, disruptive: true, run: checkLogoutAll},
	{id: "cache-headers", wstg: "WSTG-SESS-04", asvs: []string{"v4.0.3-3.1.1", "v5.0.0-14.2.1"}, run: checkCache},
}

func specByID(id string) *spec {
	for i := range specs {
		if specs[i].id == id {
			return &specs[i]
		}
	}
	return nil
}

func checkIDs() []string {
	ids := make([]string, len(specs))
	for i, s := range specs {
		ids[i] = s.id
	}
	return ids
}

func (r *Result) set(s Status, format string, args ...any) {
	r.Status = s
	r.Detail = fmt.Sprintf(format, args...)
}

func (r *Result) note(format string, args ...any) {
	r.Evidence = append(r.Evidence, fmt.Sprintf(format, args...))
}
