package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lapsehq/lapse/probe"
	"github.com/lapsehq/lapse/probe/watch"
	"github.com/lapsehq/lapse/webhook"
)

const probeUsage = `Usage: lapse probe TARGET.yaml [flags]
       lapse probe TARGET.yaml --watch [--every 1h] [--metrics-listen ADDR] [--webhook URL]

Signs in to the web application TARGET.yaml describes and tests its sessions
the way the OWASP WSTG session tests do: token-entropy, cookie-attributes,
fixation, logout-invalidates, idle-timeout, absolute-timeout,
password-change-revokes, concurrent-logout, cache-headers. Checks that wait
run at once, so a run lasts about as long as the longest timeout. ${NAME} in
the target file is read from the environment. See docs/probe.md.

Exit status: 0 every check passed or was skipped, 1 a check failed or could
not complete, 2 a bad target file, a usage error or an unreachable target.
With --watch it probes until interrupted and exits 0.

--webhook posts are signed as Standard Webhooks, as lapse's own events are,
with the secret in LAPSE_PROBE_WEBHOOK_SECRET ("whsec_" and base64).

Flags:
`

// runProbe runs "lapse probe" with the arguments after that word and returns the exit
// status (see probeUsage).
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lapse probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), probeUsage)
		fs.PrintDefaults()
	}
	format := fs.String("format", "text", "report `format`: text, json, junit or html")
	output := fs.String("output", "", "write the report to `file` instead of standard output")
	checks := fs.String("checks", "", "run only these checks, a comma-separated `list` of ids")
	verbose := fs.Bool("verbose", false, "text format: show the evidence of passing checks too")
	watching := fs.Bool("watch", false, "keep probing, every --every, until interrupted")
	every := fs.Duration("every", time.Hour, "with --watch: time from the start of one run to the next")
	listen := fs.String("metrics-listen", "localhost:9464", "with --watch: `address` to serve Prometheus metrics on, at /metrics")
	webhookURL := fs.String("webhook", "", "with --watch: `URL` to POST failing runs to as JSON")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "lapse probe: "+format+"\n", a...)
		return 2
	}
	if len(positional) != 1 {
		fs.Usage()
		return 2
	}
	if !slices.Contains([]string{"text", "json", "junit", "html"}, *format) {
		return fail("--format %q: want text, json, junit or html", *format)
	}
	if !*watching && (*webhookURL != "" || isSet(fs, "every") || isSet(fs, "metrics-listen")) {
		return fail("--every, --metrics-listen and --webhook need --watch")
	}
	if *every <= 0 {
		return fail("--every must be positive")
	}
	var webhookKey []byte
	if *webhookURL != "" {
		secret := os.Getenv("LAPSE_PROBE_WEBHOOK_SECRET")
		if secret == "" {
			return fail("--webhook signs its posts: set LAPSE_PROBE_WEBHOOK_SECRET to a Standard Webhooks secret (whsec_ and the base64 of 24 bytes or more)")
		}
		if webhookKey, err = webhook.ParseSecret(secret); err != nil {
			return fail("LAPSE_PROBE_WEBHOOK_SECRET: %v", err)
		}
	}
	path := positional[0]
	data, err := os.ReadFile(path)
	if err != nil {
		return fail("%v", err)
	}
	target, err := probe.ParseTarget(path, data, os.LookupEnv)
	if err != nil {
		return fail("%v", err)
	}
	opts := probe.Options{}
	if *checks != "" {
		opts.Checks = strings.Split(*checks, ",")
	}
	out := reportWriter{format: *format, output: *output, stdout: stdout, verbose: *verbose}
	if *watching {
		return watchProbe(ctx, target, opts, *every, *listen, hook{*webhookURL, webhookKey}, out, stderr)
	}
	stop := func() {}
	if isTerminal(stdout) {
		stop = showProgress(stdout, &opts)
	}
	rep, err := probe.Run(ctx, target, opts)
	stop()
	if err != nil {
		return fail("%s: %v", path, err)
	}
	if err := out.write(rep); err != nil {
		return fail("%v", err)
	}
	if rep.Failed() {
		return 1
	}
	return 0
}

// parseInterspersed parses flags that may come before and after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// reportWriter writes reports in the chosen format, to a file or to stdout.
type reportWriter struct {
	format, output string
	stdout         io.Writer
	verbose        bool
}

func (rw reportWriter) write(rep *probe.Report) error {
	w := rw.stdout
	if rw.output != "" {
		f, err := os.Create(rw.output)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	switch rw.format {
	case "json":
		return rep.WriteJSON(w)
	case "junit":
		return rep.WriteJUnit(w)
	case "html":
		return rep.WriteHTML(w)
	}
	return rep.WriteText(w, rw.verbose)
}

// hook is where --watch posts failing runs, and the key it signs them with.
type hook struct {
	url string
	key []byte
}

// watchProbe probes the target every interval, serving metrics on listen, until ctx ends.
func watchProbe(ctx context.Context, target *probe.Target, opts probe.Options, every time.Duration, listen string, hook hook, out reportWriter, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	reg := prometheus.NewRegistry()
	w, err := watch.New(watch.Config{
		Target: target, Options: opts, Every: every, Registry: reg, Webhook: hook.url, WebhookKey: hook.key, Logger: log,
		OnRun: func(rep *probe.Report, err error) {
			if err != nil {
				return // the watcher logs it
			}
			if err := out.write(rep); err != nil {
				log.Error("writing the report", "err", err)
			}
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "lapse probe: %v\n", err)
		return 2
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintf(stderr, "lapse probe: --metrics-listen: %v\n", err)
		return 2
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("watching", "target", target.Name, "every", every, "metrics", "http://"+ln.Addr().String()+"/metrics")
	err = w.Run(ctx)
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	if err != nil {
		fmt.Fprintf(stderr, "lapse probe: %v\n", err)
		return 2
	}
	return 0
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// showProgress makes opts report progress as one line on the terminal w, redrawn four
// times a second, and returns a function that stops and erases it.
func showProgress(w io.Writer, opts *probe.Options) (stop func()) {
	var mu sync.Mutex
	state := map[string]probe.Event{}
	opts.Progress = func(e probe.Event) {
		mu.Lock()
		defer mu.Unlock()
		if old, ok := state[e.Check]; ok && !e.Done && e.Until.Before(old.Until) {
			return // concurrent waits of one check: show the one that ends last
		}
		state[e.Check] = e
	}
	draw := func() {
		mu.Lock()
		defer mu.Unlock()
		done, parts := 0, []string(nil)
		for _, id := range slices.Sorted(maps.Keys(state)) {
			e := state[id]
			switch {
			case e.Done:
				done++
			case !e.Until.IsZero():
				parts = append(parts, fmt.Sprintf("%s: %s, %s left", id, e.Message, max(time.Until(e.Until), 0).Round(100*time.Millisecond)))
			default:
				parts = append(parts, id)
			}
		}
		line := fmt.Sprintf("probing: %d done · %s", done, strings.Join(parts, " · "))
		fmt.Fprintf(w, "\r\033[K%s", line)
	}
	ticker := time.NewTicker(250 * time.Millisecond)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-quit:
				return
			case <-ticker.C:
				draw()
			}
		}
	})
	return func() {
		ticker.Stop()
		close(quit)
		wg.Wait()
		fmt.Fprint(w, "\r\033[K")
	}
}
