package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

const webhooksUsage = `usage:
  lapse webhooks dead   [--data-dir DIR | --config FILE]         list dead-lettered deliveries
  lapse webhooks replay [--data-dir DIR | --config FILE] (--all | ID...)  deliver them again
`

// runWebhooks inspects and replays dead-lettered webhook deliveries.
func runWebhooks(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "dead" && args[0] != "replay") {
		fmt.Fprint(stderr, webhooksUsage)
		return 2
	}
	fs := flag.NewFlagSet("lapse webhooks "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := addDataFlags(fs)
	all := fs.Bool("all", false, "replay every dead delivery")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var ids []int64
	for _, a := range fs.Args() {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			fmt.Fprintf(stderr, "lapse webhooks: %q is not a delivery id\n", a)
			return 2
		}
		ids = append(ids, id)
	}
	if args[0] == "replay" && (*all == (len(ids) > 0)) {
		fmt.Fprint(stderr, "lapse webhooks replay: give delivery ids or --all\n"+webhooksUsage)
		return 2
	}
	st, err := data.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "lapse webhooks: %v\n", err)
		return 2
	}
	defer st.Close()
	if args[0] == "replay" {
		n, err := st.Replay(ctx, ids, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "lapse webhooks replay: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%d deliveries queued again; a running lapse serve sends them within a second\n", n)
		return 0
	}
	dead, err := st.Dead(ctx, 1000)
	if err != nil {
		fmt.Fprintf(stderr, "lapse webhooks dead: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENDPOINT\tEVENT\tTYPE\tSESSION\tATTEMPTS\tLAST TRY\tLAST ERROR")
	for _, d := range dead {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Endpoint, d.Event.ID, d.Event.Type, d.Event.SessionID,
			d.Attempts, d.UpdatedAt.Format(time.RFC3339), d.LastError)
	}
	tw.Flush()
	return 0
}
