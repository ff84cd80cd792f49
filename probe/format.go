package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report as a terminal summary: a line per check, the evidence of
// checks that did not pass, and a count. verbose adds the evidence of every check.
// Control characters in any field are written as escapes.
func (r *Report) WriteText(w io.Writer, verbose bool) error {
	r = r.printable()
	fmt.Fprintf(w, "lapse probe: %s (%s, took %s)\n\n", r.Target, r.Started.Format(time.RFC3339), r.Finished.Sub(r.Started).Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.ToUpper(string(c.Status)), c.ID, c.WSTG, c.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range r.Checks {
		if len(c.Evidence) == 0 || (!verbose && (c.Status == Pass || c.Status == Skip)) {
			continue
		}
		fmt.Fprintf(w, "\n%s (%s):\n", c.ID, strings.Join(c.ASVS, ", "))
		for _, e := range c.Evidence {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	_, err := fmt.Fprintf(w, "\n%d checks: %d pass, %d fail, %d skip, %d error\n",
		len(r.Checks), r.Count(Pass), r.Count(Fail), r.Count(Skip), r.Count(Error))
	return err
}
