package feed_test

import (
	"context"
	"testing"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/feed"
	"github.com/lapsehq/lapse/lapsetest"
)

func TestSubscriberGetsItsSessionsEventsOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, _, st := lapsetest.NewManager(t, lapse.Config{})
	_, old, _ := m.Create(ctx, lapse.CreateParams{Subject: "before"}) // history is not replayed
	f := feed.New(st, 5*time.Millisecond)
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	<-f.Ready()
	tok, mine, _ := m.Create(ctx, lapse.CreateParams{Subject: "alice"})
	sub := f.Subscribe(mine.ID)
	other := f.Subscribe(old.ID)
	m.Create(ctx, lapse.CreateParams{Subject: "bob"})
	m.Revoke(ctx, tok.Reveal())
	for got := false; !got; {
		select {
		case ev := <-sub.C:
			if ev.SessionID != mine.ID {
				t.Fatalf("got %s for %s, want only %s's events", ev.Type, ev.SessionID, mine.ID)
			}
			got = ev.Type == lapse.EventRevoked
		case <-time.After(10 * time.Second):
			t.Fatal("no session.revoked within 10s")
		}
	}
	select {
	case ev := <-other.C:
		t.Fatalf("a subscriber got another session's event %s", ev.Type)
	default:
	}
	sub.Close()
	sub.Close()
	cancel()
	<-done
	if _, open := <-other.C; open {
		t.Error("stopping the feed did not close subscriptions")
	}
}
