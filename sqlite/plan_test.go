package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
)

var t0 = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)

// TestQueryPlans holds the queries that run on every sweep and on every
// audit query by key to their indexes: none may scan a whole table.
func TestQueryPlans(t *testing.T) {
	st, err := Open(filepath.Join(t.TempDir(), "lapse.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	subject, subjectArgs := eventQuery(lapse.EventQuery{Subject: "alice"}, 0, 0, 1<<62)
	session, sessionArgs := eventQuery(lapse.EventQuery{SessionID: "ses_x", Types: []lapse.EventType{lapse.EventExpired}}, 0, 0, 1<<62)
	span, spanArgs := eventQuery(lapse.EventQuery{Since: t0, Until: t0.Add(time.Hour), Tenant: "acme"}, 5, 9, 1<<62)
	for _, c := range []struct {
		name, query string
		args        []any
		want        []string
	}{
		{"expire range", dueRange, []any{0, 0, 0}, []string{"SEARCH sessions USING INDEX sessions_by_deadline (<expr>>? AND <expr><?)"}},
		{"expire tie", dueAt, []any{0}, []string{"SEARCH sessions USING INDEX sessions_by_deadline (<expr>=?)"}},
		{"settle", settleQuery, []any{0, 0}, []string{"SEARCH sessions USING INDEX sessions_by_deadline (<expr><?)"}},
		{"touch as seen", touchSeenQuery, []any{0, 0, 0, "ses_x", []byte{1}, 0, 0, 0}, []string{"SEARCH sessions USING INDEX sqlite_autoindex_sessions_"}}, // by id or token, both unique,
		{"warn", warnQuery, []any{0, 0}, []string{"SEARCH sessions USING INDEX sessions_by_warn (warn_at<?)"}},
		{"events of a subject", subject, subjectArgs, []string{"MERGE", "SEARCH k USING PRIMARY KEY (subject=? AND seq>? AND seq<?)", "SEARCH e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"}},
		{"events in a time range", span, spanArgs, []string{"SEARCH e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"}},
		{"events of a session", session, sessionArgs, []string{"MERGE", "SEARCH k USING PRIMARY KEY (session_id=? AND seq>? AND seq<?)", "SEARCH e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"}},
	} {
		rows, err := st.r.Query(`EXPLAIN QUERY PLAN `+c.query, c.args...)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: plan does not use %q:\n%s", c.name, w, text)
			}
		}
		for _, line := range plan {
			// SCAN, even USING an index, reads all of it.
			if strings.HasPrefix(line, "SCAN ") && line != "SCAN CONSTANT ROW" {
				t.Errorf("%s: plan scans a whole table or index (%s):\n%s", c.name, line, text)
			}
			if strings.Contains(line, "TEMP B-TREE") {
				t.Errorf("%s: plan sorts all it reads (%s):\n%s", c.name, line, text)
			}
		}
	}
}
