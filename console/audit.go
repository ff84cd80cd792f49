package console

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
)

// eventTypes are the event types the audit filter offers.
var eventTypes = []lapse.EventType{
	lapse.EventCreated, lapse.EventExtended, lapse.EventSteppedUp, lapse.EventRotated,
	lapse.EventExpiringSoon, lapse.EventExpired, lapse.EventRevoked, lapse.EventDeviceBound, lapse.EventTheftSuspected,
	lapse.EventClientChanged, lapse.EventNewDevice, lapse.EventTokenReused, lapse.EventTokenGuessing,
}

// auditPageSize is how many events one page of the audit log shows.
const auditPageSize = 100

// auditFilter is the filter form of the audit log. Since and Until are
// UTC times as an <input type="datetime-local"> sends them.
type auditFilter struct {
	Subject, Tenant, Session, Type, Since, Until string
}

func (f auditFilter) values() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"subject": f.Subject, "tenant": f.Tenant, "session": f.Session,
		"type": f.Type, "since": f.Since, "until": f.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

type auditView struct {
	base
	F      auditFilter
	Types  []lapse.EventType
	Events []lapse.Event
	// Older is the URL of the page of older events, "" on the last;
	// Newest the URL of the first page when this is not it.
	Older, Newest string
	// Broken is the Seq of a record to highlight.
	Broken int64
	NoLog  bool
	Chain  *chainView
	// HeadSeq and HeadHash echo the verification form.
	HeadSeq, HeadHash string
}

type chainView struct {
	lapse.ChainReport
	Head string // hex
	Took time.Duration
	// Why is the problem, without the record number that starts it.
	Why string
	// Link shows the broken record in the log.
	Link string
}

const timeInput = "2006-01-02T15:04"

// parseTimeInput reads a datetime-local value as UTC.
func parseTimeInput(s string) (time.Time, error) {
	for _, layout := range []string{timeInput, timeInput + ":05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, &pageError{http.StatusBadRequest, "Invalid time", "Give times as YYYY-MM-DDTHH:MM, in UTC."}
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, a *access) error {
	v := &auditView{base: c.base(r, a, "Audit log", "audit"), Types: eventTypes}
	v.Broken, _ = strconv.ParseInt(r.URL.Query().Get("broken"), 10, 64)
	return c.showAudit(w, r, v, r.URL.Query())
}

// showAudit fills v with the page of events q selects and renders it.
func (c *Console) showAudit(w http.ResponseWriter, r *http.Request, v *auditView, q url.Values) error {
	log, ok := c.m.Store().(lapse.AuditLog)
	if !ok {
		v.NoLog = true
		c.render(w, http.StatusOK, "audit", v)
		return nil
	}
	f := auditFilter{
		Subject: strings.TrimSpace(q.Get("subject")), Tenant: strings.TrimSpace(q.Get("tenant")),
		Session: strings.TrimSpace(q.Get("session")), Type: q.Get("type"),
		Since: q.Get("since"), Until: q.Get("until"),
	}
	if t := lapse.TenantOf(r.Context()); t != "" {
		f.Tenant = t // an operator bound to a tenant reads its events only
	}
	v.F = f
	eq := lapse.EventQuery{Subject: f.Subject, Tenant: f.Tenant, SessionID: f.Session}
	if f.Type != "" {
		if !slices.Contains(eventTypes, lapse.EventType(f.Type)) {
			return &pageError{http.StatusBadRequest, "Invalid filter", "Choose an event type from the list."}
		}
		eq.Types = []lapse.EventType{lapse.EventType(f.Type)}
	}
	var err error
	if f.Since != "" {
		if eq.Since, err = parseTimeInput(f.Since); err != nil {
			return err
		}
	}
	if f.Until != "" {
		if eq.Until, err = parseTimeInput(f.Until); err != nil {
			return err
		}
	}
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	ctx, cancel := timeout(r)
	defer cancel()
	events, more, err := newestEvents(ctx, log, eq, before, auditPageSize)
	if err != nil {
		return err
	}
	v.Events = events
	if more {
		nq := f.values()
		nq.Set("before", strconv.FormatInt(events[len(events)-1].Seq, 10))
		v.Older = Prefix + "audit?" + nq.Encode()
	}
	if before > 0 {
		v.Newest = Prefix + "audit"
		if fq := f.values().Encode(); fq != "" {
			v.Newest += "?" + fq
		}
	}
	c.render(w, http.StatusOK, "audit", v)
	return nil
}

// newestEvents returns up to n of the events q selects with Seq below
// before (0: any), newest first, and whether older ones exist. The log
// reads forward only, so it reads a window of Seqs just below before,
// widening it until it holds n events or reaches the start.
func newestEvents(ctx context.Context, log lapse.AuditLog, q lapse.EventQuery, before int64, n int) ([]lapse.Event, bool, error) {
	last, err := log.LastSeq(ctx)
	if err != nil {
		return nil, false, err
	}
	if before <= 0 || before > last+1 {
		before = last + 1
	}
	for span := int64(4 * n); ; span = min(span*8, before) {
		lo := max(0, before-1-span)
		var kept []lapse.Event // the newest n+1 so far, oldest first
		q.After, q.Limit = lo, 1000
	read:
		for {
			evs, err := log.QueryEvents(ctx, q)
			if err != nil {
				return nil, false, err
			}
			for _, e := range evs {
				if e.Seq >= before {
					break read
				}
				kept = append(kept, e)
				if len(kept) > 2*(n+1) {
					kept = slices.Clone(kept[len(kept)-(n+1):])
				}
			}
			if len(evs) < q.Limit {
				break
			}
			q.After = evs[len(evs)-1].Seq
		}
		if len(kept) > n || lo == 0 {
			more := len(kept) > n
			kept = kept[max(0, len(kept)-n):]
			slices.Reverse(kept)
			return kept, more, nil
		}
	}
}

// verifyChain walks the whole hash chain and shows its report above the
// newest events.
func (c *Console) verifyChain(w http.ResponseWriter, r *http.Request, a *access) error {
	v := &auditView{base: c.base(r, a, "Audit log", "audit"), Types: eventTypes,
		HeadSeq: strings.TrimSpace(r.PostFormValue("head_seq")), HeadHash: strings.TrimSpace(r.PostFormValue("head_hash"))}
	log, ok := c.m.Store().(lapse.AuditLog)
	if !ok {
		return c.showAudit(w, r, v, nil)
	}
	if a.who.Tenant != "" {
		// The chain runs through every tenant's events.
		return &pageError{http.StatusForbidden, "Refused: the whole log",
			"Verifying the chain reads every tenant's events; an operator of the whole platform can run it."}
	}
	var (
		headSeq  int64
		headHash []byte
		err      error
	)
	if v.HeadSeq != "" || v.HeadHash != "" {
		headSeq, err = strconv.ParseInt(v.HeadSeq, 10, 64)
		if err == nil {
			headHash, err = hex.DecodeString(v.HeadHash)
		}
		if err != nil || headSeq <= 0 || len(headHash) != 32 {
			return &pageError{http.StatusBadRequest, "Invalid head", "A noted head is a record number and its SHA-256 hash in hex (64 characters); leave both empty to verify without one."}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := lapse.VerifyChain(ctx, log, headSeq, headHash)
	if err != nil {
		return err
	}
	v.Chain = &chainView{ChainReport: rep, Head: hex.EncodeToString(rep.HeadHash), Took: time.Since(start).Round(time.Millisecond)}
	q := url.Values{}
	if !rep.OK() {
		// Show the log from just after the broken record, so that it is
		// in view, marked.
		v.Broken = rep.BrokenAt
		v.Chain.Why = strings.TrimPrefix(rep.Problem, fmt.Sprintf("record %d: ", rep.BrokenAt))
		v.Chain.Link = Prefix + "audit?before=" + strconv.FormatInt(rep.BrokenAt+1, 10) + "&broken=" + strconv.FormatInt(rep.BrokenAt, 10)
		q.Set("before", strconv.FormatInt(rep.BrokenAt+4, 10))
	}
	return c.showAudit(w, r, v, q)
}
