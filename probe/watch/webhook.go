package watch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/lapsehq/lapse/probe"
	"github.com/lapsehq/lapse/webhook"
)

// Failure is the JSON body a Watcher posts to its webhook after a failing run: the checks
// that failed or could not complete, or the error that kept the run from starting.
type Failure struct {
	Type     string         `json:"type"` // always "probe.failed"
	Target   string         `json:"target"`
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Error    string         `json:"error,omitempty"`
	Checks   []probe.Result `json:"checks"`
}

// post sends a Failure with the id, timestamp and signature headers of the Standard
// Webhooks specification, signed with lapse's own webhook signing.
func (w *Watcher) post(ctx context.Context, target string, rep *probe.Report, runErr error) error {
	f := Failure{Type: "probe.failed", Target: target, Checks: []probe.Result{}, Finished: time.Now()}
	if runErr != nil {
		f.Error, f.Started = runErr.Error(), f.Finished
	} else {
		f.Started, f.Finished = rep.Started, rep.Finished
		for _, c := range rep.Checks {
			if c.Status == probe.Fail || c.Status == probe.Error {
				f.Checks = append(f.Checks, c)
			}
		}
	}
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.Webhook, bytes.NewReader(body))
	if err != nil {
		return err
	}
	id, now := "msg_"+rand.Text(), time.Now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", webhook.Sign(w.cfg.WebhookKey, id, now, body))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}
