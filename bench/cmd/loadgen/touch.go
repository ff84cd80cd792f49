package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// activeTier is the tier loadgen adds to the servers it starts for the
// activity-write measurement: its touch interval (a twentieth of the idle
// timeout) is touchEvery, so that a verify of a session last written
// more than that before writes its activity again, and its warning comes
// before its idle deadline as the default tier's does, so that the write
// moves the same index entries.
const activeTier = "loadgen-active"

const (
	activeIdle = 20 * time.Second
	activeWarn = activeIdle / 15
	touchEvery = activeIdle / 20
	// touchGap is how long after its last reply a session is verified
	// again: past touchEvery, whatever the server's clock read meanwhile.
	touchGap = touchEvery + 50*time.Millisecond
)

// touchReport measures activity writes over HTTP on each lapse target
// with a store and prints them.
func touchReport(targets []*target, o options) error {
	fmt.Printf("\nactivity writes over HTTP (POST /v1/sessions/verify, each verify %v after the session's last: every one writes its activity durably before it answers; a connection with no session due creates one), %v each:\n",
		touchGap, o.touchDuration)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tconnections\twrites/s\trequests/s\tcreates\tp50\tp99\tserver CPU/req\terrors\t")
	for _, t := range targets {
		if t.store == "" || t.cacheSize < 0 {
			continue
		}
		res, writes, creates, err := t.touchFor(o.touchDuration, o.concurrency)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%d\t%s\t%s\t%s\t%d\t\n", t.name, o.concurrency, float64(writes)/res.elapsed.Seconds(), res.rate(),
			creates, ms(res.pct(50)), ms(res.pct(99)), perReq(res.cpu, res.n), res.errors)
	}
	return tw.Flush()
}

// touchFor measures activity writes with c connections for d. Each
// connection keeps its own sessions of activeTier and verifies the one
// whose turn it is only touchGap after its last reply; while none is due
// it creates one more instead. A warm-up of two touch gaps first grows
// every connection's sessions to what its rate needs. It returns the
// measured requests, how many of them were verifies that wrote activity
// (whose reply's last_active_at moved) and how many were creates.
func (t *target) touchFor(d time.Duration, c int) (res *result, writes, creates int64, err error) {
	type due struct {
		tok  string
		last []byte // last_active_at in the last reply
		at   time.Time
	}
	queues := make([][]due, c)
	var wrote, created, subject atomic.Int64
	seq := sessionSeq.Add(1<<30) - 1<<30 // subjects no other measurement takes
	pass := func(stop time.Time) func(w int, cl *client) (outcome, error) {
		return func(w int, cl *client) (outcome, error) {
			if time.Now().After(stop) {
				return done, nil
			}
			q := queues[w]
			if len(q) == 0 || time.Since(q[0].at) < touchGap {
				body := fmt.Sprintf(`{"subject":"loadgen-%d","tier":%q,"amr":["pwd"]}`, seq+subject.Add(1), activeTier)
				status, reply, err := cl.do(t.request("POST", "/v1/sessions", body), true)
				if tok := field(reply, "token"); err == nil && status == http.StatusCreated && tok != nil {
					queues[w] = append(q, due{string(tok), field(reply, "last_active_at"), time.Now()})
					created.Add(1)
				}
				return check(status, http.StatusCreated, err)
			}
			s := q[0]
			status, reply, err := cl.do(t.request("POST", "/v1/sessions/verify", `{"token":"`+s.tok+`"}`), true)
			if last := field(reply, "last_active_at"); last != nil && !bytes.Equal(last, s.last) {
				wrote.Add(1)
				s.last = last
			}
			s.at = time.Now()
			queues[w] = append(q[1:], s)
			return check(status, http.StatusOK, err)
		}
	}
	if res = t.run(c, pass(time.Now().Add(2*touchGap))); res.err != nil {
		return nil, 0, 0, res.err
	}
	wrote.Store(0)
	created.Store(0)
	before := snap([]*target{t}, nil)
	res = t.run(c, pass(time.Now().Add(d)))
	after := snap([]*target{t}, nil)
	res.setServer(before.srv[0], after.srv[0])
	return res, wrote.Load(), created.Load(), res.err
}

// field returns the string value of the first "name" in a JSON reply,
// nil if there is none: enough for lapse's replies, where a name is not
// repeated before the one wanted, and cheap beside a full decode on a
// client that shares the machine with the server.
func field(reply []byte, name string) []byte {
	key := []byte(`"` + name + `":"`)
	i := bytes.Index(reply, key)
	if i < 0 {
		return nil
	}
	v := reply[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return bytes.Clone(v[:j])
}
