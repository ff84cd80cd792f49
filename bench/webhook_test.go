package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/sqlite"
	"github.com/lapsehq/lapse/webhook"
)

// webhookEvents is how many events each delivery run sends.
const webhookEvents = 5000

// BenchmarkWebhookDelivery measures how fast a burst of events reaches
// one endpoint on loopback: webhookEvents events in the log, then the
// time until the receiver has all of them (each signed, each outcome
// recorded in the store). The baseline, measured in the same run, is a
// plain loop of the same number of signed POSTs through the same kind of
// client, four at a time, recording nothing. The events/s metric is
// events delivered per second of one op.
func BenchmarkWebhookDelivery(b *testing.B) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	key, _ := webhook.ParseSecret(webhook.NewSecret())
	body := []byte(`{"type":"session.expired","timestamp":"2026-12-03T09:00:00Z","data":{"seq":1,"id":"evt_0000000000000000000000","type":"session.expired"}}`)

	b.Run("bare", func(b *testing.B) {
		client := &http.Client{Timeout: 10 * time.Second}
		for b.Loop() {
			var wg sync.WaitGroup
			work := make(chan int)
			for range 4 {
				wg.Go(func() {
					for i := range work {
						id := fmt.Sprint("evt_", i)
						req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
						req.Header.Set("webhook-id", id)
						req.Header.Set("webhook-signature", webhook.Sign(key, id, time.Now(), body))
						if resp, err := client.Do(req); err == nil {
							resp.Body.Close()
						}
					}
				})
			}
			for i := range webhookEvents {
				work <- i
			}
			close(work)
			wg.Wait()
		}
		b.ReportMetric(float64(webhookEvents*b.N)/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("lapse", func(b *testing.B) {
		ctx := context.Background()
		b.StopTimer()
		for range b.N {
			st, err := sqlite.Open(filepath.Join(b.TempDir(), "lapse.db"))
			if err != nil {
				b.Fatal(err)
			}
			clock := lapsetest.NewClock(time.Time{})
			m, err := lapse.New(lapse.Config{Store: st, Policy: lapsetest.Policy(), Clock: clock})
			if err != nil {
				b.Fatal(err)
			}
			d := webhook.New(webhook.Config{
				Endpoints: []webhook.Endpoint{{Name: "ops", URL: lapse.SecretURL(srv.URL), Key: key}},
				Log:       st, Queue: st, Every: 10 * time.Millisecond,
				// The receiver is on loopback, as an on-premises one may be.
				AllowNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			})
			if err := d.Tick(ctx); err != nil { // the endpoint's cursor: the present
				b.Fatal(err)
			}
			for i := range webhookEvents {
				if _, _, err := m.Create(ctx, lapse.CreateParams{Subject: fmt.Sprint("u", i)}); err != nil {
					b.Fatal(err)
				}
			}
			got.Store(0)
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			b.StartTimer()
			go func() { d.Run(runCtx); close(done) }()
			for got.Load() < webhookEvents {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			stop()
			<-done
			st.Close()
		}
		b.StartTimer()
		b.ReportMetric(float64(webhookEvents*b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
