package probe

import (
	"fmt"
	"time"
)

// Status is the outcome of one check.
type Status string

// The outcomes of a check.
const (
	Pass  Status = "pass"  // the target behaved as required
	Fail  Status = "fail"  // the target did not; Detail says how
	Skip  Status = "skip"  // the check does not apply or was not selected; Detail says why
	Error Status = "error" // the check could not be completed; Detail says why
)

// Report is the outcome of one probe run. It is what --format json prints.
type Report struct {
	Target   string    `json:"target"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Checks   []Result  `json:"checks"`
}

// Result is the outcome of one check. WSTG names the OWASP Web Security Testing Guide
// test it follows and ASVS the requirements it tests, as "v<version>-<id>". Evidence
// lines show tokens only redacted. Timeout checks fill Timeline with the sessions they
// watched, Expected with the window the policy allows and Measured with the bracket in
// which the session was seen to end.
type Result struct {
	ID       string    `json:"id"`
	Status   Status    `json:"status"`
	WSTG     string    `json:"wstg"`
	ASVS     []string  `json:"asvs"`
	Detail   string    `json:"detail"`
	Evidence []string  `json:"evidence"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Timeline []Lane    `json:"timeline,omitempty"`
	Expected *Window   `json:"expected,omitempty"`
	Measured *Window   `json:"measured,omitempty"`
}

// Lane is one session watched by a timeout check: when its clock started (sign-in or
// last activity) and what each later request found.
type Lane struct {
	Label string    `json:"label"`
	Start time.Time `json:"start"`
	Marks []Mark    `json:"marks"`
}

// Mark is one request in a [Lane], After seconds past the lane's start. Accepted
// reports whether the target still treated the session as signed in.
type Mark struct {
	After    float64 `json:"after_s"`
	Accepted bool    `json:"accepted"`
}

// Window is a span of seconds, such as idle timeout ± tolerance. A zero Max means
// unbounded: the session was still accepted at Min.
type Window struct {
	Min float64 `json:"min_s"`
	Max float64 `json:"max_s,omitempty"`
}

// String formats the window as "1.5s–2s" or "≥ 2.5s".
func (w Window) String() string {
	if w.Max == 0 {
		return fmt.Sprintf("> %s", secs(w.Min))
	}
	return fmt.Sprintf("%s–%s", secs(w.Min), secs(w.Max))
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

func window(lo, hi time.Duration) *Window {
	return &Window{Min: lo.Seconds(), Max: hi.Seconds()}
}

// Failed reports whether any check failed or could not be completed.
func (r *Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail || c.Status == Error {
			return true
		}
	}
	return false
}

// Count returns how many checks ended with status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == s {
			n++
		}
	}
	return n
}
