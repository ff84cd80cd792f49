package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
)

// runAuditLog prints audit records, filtered, as a table or JSON lines.
func runAuditLog(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lapse audit log", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := addDataFlags(fs)
	var q lapse.EventQuery
	fs.StringVar(&q.Subject, "subject", "", "only this subject's records")
	fs.StringVar(&q.Tenant, "tenant", "", "only this tenant's records")
	fs.StringVar(&q.SessionID, "session", "", "only this session's records")
	fs.StringVar(&q.Actor, "actor", "", "only the records of this actor, by id, not name (e.g. key:<id>, operator:<id>, api, system)")
	types := fs.String("type", "", "only these event types, comma-separated (e.g. session.revoked,session.expired)")
	since := fs.String("since", "", "records at or after this time (RFC 3339) or this long ago (e.g. 24h)")
	until := fs.String("until", "", "records before this time (RFC 3339) or this long ago")
	format := fs.String("format", "table", "table or json (one JSON object a line)")
	limit := fs.Int("limit", 0, "at most this many records (default all)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if q.Since, err = parseWhen(*since); err != nil {
		fmt.Fprintf(stderr, "lapse audit log: --since: %v\n", err)
		return 2
	}
	if q.Until, err = parseWhen(*until); err != nil {
		fmt.Fprintf(stderr, "lapse audit log: --until: %v\n", err)
		return 2
	}
	if *types != "" {
		for _, t := range strings.Split(*types, ",") {
			typ := lapse.EventType(strings.TrimSpace(t))
			if !slices.Contains(config.EventTypes, typ) {
				fmt.Fprintf(stderr, "lapse audit log: --type: %q is not an event type (such as session.revoked)\n", typ)
				return 2
			}
			q.Types = append(q.Types, typ)
		}
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintf(stderr, "lapse audit log: --format must be table or json\n")
		return 2
	}
	st, err := data.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "lapse audit log: %v\n", err)
		return 2
	}
	defer st.Close()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	if *format == "table" {
		fmt.Fprintln(tw, "SEQ\tTIME\tTYPE\tREASON\tSESSION\tSUBJECT\tTENANT\tTIER\tACTOR")
	}
	enc := json.NewEncoder(stdout)
	printed := 0
	for {
		q.Limit = 1000
		if *limit > 0 {
			q.Limit = min(1000, *limit-printed)
		}
		evs, err := st.QueryEvents(ctx, q)
		if err != nil {
			fmt.Fprintf(stderr, "lapse audit log: %v\n", err)
			return 1
		}
		for _, ev := range evs {
			if *format == "json" {
				enc.Encode(ev)
			} else {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, ev.Time.Format(time.RFC3339Nano), ev.Type,
					dash(string(ev.Reason)), ev.SessionID, ev.Subject, dash(ev.Tenant), ev.Tier, actorColumn(ev))
			}
		}
		printed += len(evs)
		if len(evs) < q.Limit || (*limit > 0 && printed >= *limit) {
			break
		}
		q.After = evs[len(evs)-1].Seq
	}
	tw.Flush()
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseWhen reads an RFC 3339 time or a duration ago.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
	}
	return t, nil
}

// runAuditVerify walks the audit chain and exits 1 at the first record
// altered, removed or reordered.
func runAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lapse audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := addDataFlags(fs)
	head := fs.String("head", "", "a head noted earlier, as SEQ:HASH, to detect a cut-off tail")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var (
		headSeq  int64
		headHash []byte
	)
	if *head != "" {
		seq, hash, ok := strings.Cut(*head, ":")
		var err1, err2 error
		headSeq, err1 = strconv.ParseInt(seq, 10, 64)
		headHash, err2 = hex.DecodeString(hash)
		if !ok || err1 != nil || err2 != nil || headSeq < 1 {
			fmt.Fprintln(stderr, "lapse audit verify: --head must be SEQ:HEXHASH as printed by an earlier verify")
			return 2
		}
	}
	st, err := data.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "lapse audit verify: %v\n", err)
		return 2
	}
	defer st.Close()
	rep, err := lapse.VerifyChain(ctx, st, headSeq, headHash)
	if err != nil {
		fmt.Fprintf(stderr, "lapse audit verify: %v\n", err)
		return 2
	}
	if !rep.OK() {
		fmt.Fprintf(stdout, "BROKEN: %s\n(records before %d are intact)\n", rep.Problem, rep.BrokenAt)
		return 1
	}
	fmt.Fprintf(stdout, "OK: %d records, chain intact\nhead %d:%x (note it elsewhere; pass it as --head later to detect a cut-off tail)\n",
		rep.Records, rep.HeadSeq, rep.HeadHash)
	return 0
}

// actorColumn is an event's actor as the table shows it: its id, and
// the name it had then in parentheses, "key:<id> (deploy bot)".
func actorColumn(ev lapse.Event) string {
	if ev.ActorName == "" {
		return dash(ev.Actor)
	}
	return ev.Actor + " (" + ev.ActorName + ")"
}
