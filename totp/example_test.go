package totp_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/lapsetest"
	"github.com/lapsehq/lapse/sqlite"
	"github.com/lapsehq/lapse/totp"
	pqtotp "github.com/pquerna/otp/totp"
)

// A subject enrols an authenticator app, confirms it with a first code,
// and later steps a session up with the next code; the same code is
// refused the second time.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "lapse-example-")
	defer os.RemoveAll(dir)
	store, _ := sqlite.Open(filepath.Join(dir, "lapse.db"))
	defer store.Close()
	clock := lapsetest.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	m, _ := lapse.New(lapse.Config{Store: store, Policy: lapsetest.Policy(), Clock: clock})

	key := make([]byte, totp.KeySize) // keep it outside the store, and back it up
	rand.Read(key)
	svc, err := totp.New(totp.Config{Manager: m, Key: key, Issuer: "Acme"})
	if err != nil {
		panic(err)
	}

	tok, sess, _ := m.Create(ctx, lapse.CreateParams{Subject: "alice", AMR: []string{"pwd"}})
	e, _ := svc.EnrolTOTP(ctx, sess, lapse.TOTPParams{Account: "alice@example.com"})
	// The user scans e.URI (e.QRCode is a PNG of it) and types the code.
	first, _ := pqtotp.GenerateCode(e.Secret, clock.Now())
	recovery, _ := svc.ConfirmTOTP(ctx, sess, first)
	fmt.Println("recovery codes:", len(recovery))

	clock.Advance(totp.Period)
	next, _ := pqtotp.GenerateCode(e.Secret, clock.Now())
	_, stepped, err := lapse.StepUpWithFactor(ctx, m, svc, tok.Reveal(), next, lapse.ActorSubject)
	fmt.Println("stepped up:", stepped.AAL, stepped.AMR, err)

	other, _, _ := m.Create(ctx, lapse.CreateParams{Subject: "alice"})
	_, _, err = lapse.StepUpWithFactor(ctx, m, svc, other.Reveal(), next, lapse.ActorSubject)
	fmt.Println("replayed:", lapse.ErrorCode(err))
	// Output:
	// recovery codes: 10
	// stepped up: 2 [pwd otp] <nil>
	// replayed: code_reused
}
