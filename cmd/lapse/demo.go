package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/demo"
	"github.com/lapsehq/lapse/loopback"
)

// demoListen is where the demo listens by default: not lapse serve's
// 127.0.0.1:8080, so that the two run side by side.
const demoListen = "127.0.0.1:8090"

// flagSet reports whether the command line set the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// runDemo starts the demo SaaS app on loopback, with the embedded store
// unless --store names another:
//
//	lapse demo [--listen 127.0.0.1:8090] [--data-dir DIR] [--store URL] [--idle 2m] ...
//
// It prints its URL, the demo users and the admin API key, and serves
// until ctx is done. Without --listen it takes a free port when 8090 is
// taken. Without --data-dir the store lives in a temporary directory
// removed on exit.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lapse demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := demo.DefaultTimeouts()
	listen := fs.String("listen", demoListen, "loopback `address` to listen on (without it, a free port if the default is taken; port 0 picks a free one)")
	dataDir := fs.String("data-dir", "", "`directory` for the store (default: a temporary directory, removed on exit)")
	storeURL := fs.String("store", "", "a redis://, redis+cluster:// or postgres:// `URL` to keep the sessions in, instead of the embedded store")
	t := d
	fs.DurationVar(&t.Idle, "idle", d.Idle, "standard tier: idle timeout")
	fs.DurationVar(&t.Warn, "warn", d.Warn, "standard tier: warn this long before the session ends")
	fs.DurationVar(&t.Absolute, "absolute", d.Absolute, "standard tier: absolute timeout")
	fs.DurationVar(&t.RemindAfter, "remind", d.RemindAfter, "suggest signing out after this long signed in (0: never)")
	fs.DurationVar(&t.SensitiveIdle, "sensitive-idle", d.SensitiveIdle, "sensitive tier: idle timeout")
	fs.DurationVar(&t.SensitiveWarn, "sensitive-warn", d.SensitiveWarn, "sensitive tier: warning lead")
	fs.DurationVar(&t.SensitiveAbsolute, "sensitive-absolute", d.SensitiveAbsolute, "sensitive tier: absolute timeout")
	fs.DurationVar(&t.AuthAge, "auth-age", d.AuthAge, "billing and the sensitive tier: how old the second factor may be")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: lapse demo [flags]\n\nStarts Acme Workspace, a demo SaaS app that uses lapse, on loopback.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "lapse demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if _, err := t.Policy(); err != nil {
		fmt.Fprintf(stderr, "lapse demo: these timeouts do not make a valid policy:\n%s\n", indent(err.Error()))
		return 2
	}
	if host, _, err := net.SplitHostPort(*listen); err != nil || !loopback.Host(host) {
		fmt.Fprintf(stderr, "lapse demo: --listen must be a loopback address such as 127.0.0.1:8080: the demo's cookie is not Secure\n")
		return 2
	}
	dir := *dataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "lapse-demo-")
		if err != nil {
			fmt.Fprintf(stderr, "lapse demo: %v\n", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintf(stderr, "lapse demo: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := demo.Config{DataDir: dir, Timeouts: t, Logger: log}
	if *storeURL != "" {
		st, err := openStore(ctx, lapse.SecretURL(*storeURL), dir)
		if err != nil {
			fmt.Fprintf(stderr, "lapse demo: %v\n", err)
			return 1
		}
		defer st.Close()
		cfg.Store = st
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil && !flagSet(fs, "listen") {
		if free, ferr := net.Listen("tcp", "127.0.0.1:0"); ferr == nil {
			fmt.Fprintf(stdout, "%s is taken (%v); the demo takes a free port instead.\n", *listen, err)
			ln, err = free, nil
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "lapse demo: %v\n", err)
		return 1
	}
	// Passkeys are offered on localhost: browsers refuse them on an IP
	// address.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	cfg.Origin = "http://localhost:" + port
	app, err := demo.New(cfg)
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "lapse demo: %v\n", err)
		return 1
	}
	defer app.Close()
	bg, stopBG := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { app.Run(bg); close(done) }()
	defer func() { stopBG(); <-done }()

	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "Acme Workspace, the lapse demo, is running on %s\n\n", url)
	fmt.Fprintln(stdout, "Sign in as one of (password \"demo\"):")
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	for _, u := range demo.Users {
		note := ""
		switch {
		case u.Tier == "sensitive":
			note = "needs an authenticator app code at sign-in"
		case u.Operator:
			note = "operator console at /admin"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s tier\t%s\n", u.Email, u.Role, u.Tier, note)
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nBilling asks for a second factor: the first visit sets one up, an authenticator app (TOTP, with a QR code) or a passkey.")
	fmt.Fprintf(stdout, "Passkeys work at %s: browsers offer them on a name, not on 127.0.0.1.\n", cfg.Origin)
	fmt.Fprintf(stdout, "Standard tier: signed out after %s idle (warned %s before), %s at most.\n", t.Idle, t.Warn, t.Absolute)
	fmt.Fprintf(stdout, "Sensitive tier: %s idle (warned %s before), %s at most; billing asks for the code again after %s.\n",
		t.SensitiveIdle, t.SensitiveWarn, t.SensitiveAbsolute, t.AuthAge)
	fmt.Fprintf(stdout, "Admin API: ada's sessions, then revoke them as an administrator and watch her tab say so:\n"+
		"  curl -H 'Authorization: Bearer %[1]s' %[2]s/lapse/v1/subjects/ada@example.com/sessions\n"+
		"  curl -X DELETE -H 'Authorization: Bearer %[1]s' '%[2]s/lapse/v1/subjects/ada@example.com/sessions?reason=admin'\n", app.APIKey(), url)
	fmt.Fprintf(stdout, "Operator page of the app: %s/admin (as olga). lapse's own console is part of lapse serve, at /console/.\n", url)
	if *dataDir == "" {
		fmt.Fprintf(stdout, "Data in %s (removed on exit). Stop with Ctrl-C.\n", dir)
	} else {
		fmt.Fprintf(stdout, "Data in %s. Stop with Ctrl-C.\n", dir)
	}

	srv := &http.Server{
		Handler:           app.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second, // the event streams lift it for themselves
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "lapse demo: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	stopBG() // ends the event streams, so that Shutdown need not wait for them
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "lapse demo: %v\n", err)
		return 1
	}
	return 0
}
