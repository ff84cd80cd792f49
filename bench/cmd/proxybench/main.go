// Command proxybench measures what lapse's forward-auth gateway costs
// behind nginx: nginx proxying to a static upstream alone (the baseline:
// docs/proxy/nginx.conf with its auth_request line turned off) against
// the same with auth_request to lapse (docs/proxy/nginx.conf as it is),
// both running at once, measured in interleaved rounds so that both see
// the same machine. It prints each round and the throughput ratio and
// the latency lapse adds at p50 and p99, from the medians of the rounds.
//
//	go build -o /tmp/lapse ./cmd/lapse && go run ./bench/cmd/proxybench -lapse /tmp/lapse
//
// It needs nginx (Debian: nginx-light) and lapse's binary; it sends
// traffic only to loopback.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lapsehq/lapse/forwardauth/proxytest"
)

const (
	apiKey   = "lpk_bench_key_that_is_long_enough_for_lapse_0123456789"
	proxyKey = "proxy-key-of-the-benchmark-0123456789abcdef"
)

// lapseConfig: one tier; the gateway with the rules of the example.
const lapseConfig = `
default_tier: standard
tiers:
  standard: {idle_timeout: 30m, absolute_timeout: 12h, warn_before: 2m}
forward_auth:
  cookie: lapse
  proxy_key_env: LAPSE_PROXY_KEY
  rules:
    - path: /healthz
      access: public
    - path: /api/poll
      activity: none
    - path: /billing/
      require_aal: 2
      max_auth_age: 15m
`

func main() {
	lapseBin := flag.String("lapse", "", "lapse binary (required)")
	conf := flag.String("conf", "docs/proxy/nginx.conf", "the nginx site config of the docs")
	duration := flag.Duration("duration", 5*time.Second, "length of one round")
	rounds := flag.Int("rounds", 5, "rounds of each, interleaved")
	concurrency := flag.Int("concurrency", 32, "requests in flight")
	sessions := flag.Int("sessions", 64, "sessions the requests use, round robin")
	flag.Parse()
	if *lapseBin == "" {
		fmt.Fprintln(os.Stderr, "proxybench: -lapse is required")
		os.Exit(2)
	}
	if err := run(*lapseBin, *conf, *duration, *rounds, *concurrency, *sessions); err != nil {
		fmt.Fprintln(os.Stderr, "proxybench:", err)
		os.Exit(1)
	}
}

func run(lapseBin, conf string, duration time.Duration, rounds, concurrency, nSessions int) error {
	dir, err := os.MkdirTemp("", "proxybench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lapseURL, stop, err := startLapse(lapseBin, dir)
	if err != nil {
		return err
	}
	defer stop()
	tokens, err := createSessions(lapseURL, nSessions)
	if err != nil {
		return err
	}
	upstream, err := proxytest.FreeAddr()
	if err != nil {
		return err
	}
	// The static upstream: an nginx server answering from memory.
	static := fmt.Sprintf("server { listen %s; location / { default_type application/json; return 200 '{\"ok\":true}'; } }", upstream)
	vars := proxytest.Vars{Lapse: strings.TrimPrefix(lapseURL, "http://"), App: upstream, ProxyKey: proxyKey}
	for _, d := range []string{"base", "auth"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	baseVars := vars
	baseVars.HTTP = static
	baseVars.Replace = []string{"auth_request /.lapse-auth;", "auth_request off;"}
	base, err := proxytest.StartNginx(conf, filepath.Join(dir, "base"), baseVars)
	if err != nil {
		return err
	}
	defer base.Stop()
	auth, err := proxytest.StartNginx(conf, filepath.Join(dir, "auth"), vars)
	if err != nil {
		return err
	}
	defer auth.Stop()

	fmt.Printf("nginx %s, GOMAXPROCS %d, %d cores, concurrency %d, %d sessions, %d rounds of %s each, interleaved\n",
		nginxVersion(), runtime.GOMAXPROCS(0), runtime.NumCPU(), concurrency, nSessions, rounds, duration)
	targets := []target{{"nginx alone", base.URL + "/docs/1"}, {"nginx + lapse", auth.URL + "/docs/1"}}
	for _, tg := range targets { // warm up, and check that each answers 200
		if _, err := load(tg.url, tokens, concurrency, time.Second); err != nil {
			return fmt.Errorf("%s: %w", tg.name, err)
		}
	}
	// Throughput with many requests in flight; latency one request at a
	// time, so that it is the cost of the path and not of a queue.
	through := measure(targets, tokens, concurrency, duration, rounds, "throughput")
	latency := measure(targets, tokens, 1, duration, rounds, "latency")
	if through == nil || latency == nil {
		return errors.New("a target did not answer 200")
	}
	b, a := median(through[0]), median(through[1])
	lb, la := median(latency[0]), median(latency[1])
	fmt.Printf("\nmedians of the rounds\n")
	fmt.Printf("  throughput (concurrency %d): nginx alone %.0f req/s, nginx + lapse %.0f req/s: ratio %.2f (goal >= 0.5)\n",
		concurrency, b.rps, a.rps, a.rps/b.rps)
	fmt.Printf("  latency (one at a time):    nginx alone p50 %.3f ms p99 %.3f ms, nginx + lapse p50 %.3f ms p99 %.3f ms\n",
		ms(lb.p50), ms(lb.p99), ms(la.p50), ms(la.p99))
	fmt.Printf("  added by lapse: p50 %+.3f ms (goal <= +0.3 ms), p99 %+.3f ms\n", ms(la.p50-lb.p50), ms(la.p99-lb.p99))
	return nil
}

type target struct {
	name string
	url  string
}

// measure runs rounds of each target in turn and returns each target's
// results, or nil after printing the first error.
func measure(targets []target, tokens []string, concurrency int, d time.Duration, rounds int, what string) [][]result {
	out := make([][]result, len(targets))
	for r := 0; r < rounds; r++ {
		for i, tg := range targets {
			res, err := load(tg.url, tokens, concurrency, d)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: %v\n", tg.name, err)
				return nil
			}
			out[i] = append(out[i], res)
			fmt.Printf("%-10s round %d  %-14s %8.0f req/s  p50 %6.3f ms  p99 %6.3f ms\n", what, r+1, tg.name, res.rps, ms(res.p50), ms(res.p99))
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type result struct {
	rps      float64
	p50, p99 time.Duration
}

// median takes each figure's median over the rounds.
func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return result{
		rps: pick(func(r result) float64 { return r.rps }),
		p50: time.Duration(pick(func(r result) float64 { return float64(r.p50) })),
		p99: time.Duration(pick(func(r result) float64 { return float64(r.p99) })),
	}
}

// load sends GETs with the sessions' cookies from concurrency workers for
// d and measures each; any answer but 200 is an error.
func load(url string, tokens []string, concurrency int, d time.Duration) (result, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var (
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			var err error
			for i := w; ctx.Err() == nil; i += concurrency {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Cookie", "lapse="+tokens[i%len(tokens)])
				req.Header.Set("Accept", "application/json")
				t0 := time.Now()
				resp, rerr := client.Do(req)
				if rerr != nil {
					break
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
					break
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			if first == nil {
				first = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return result{}, first
	}
	if len(all) == 0 {
		return result{}, errors.New("no request succeeded")
	}
	slices.Sort(all)
	return result{rps: float64(len(all)) / elapsed.Seconds(), p50: all[len(all)/2], p99: all[len(all)*99/100]}, nil
}

func startLapse(bin, dir string) (string, func(), error) {
	cfg := filepath.Join(dir, "lapse.yaml")
	if err := os.WriteFile(cfg, []byte(lapseConfig), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "lapse-data"), "--config", cfg)
	cmd.Env = append(os.Environ(), "LAPSE_API_KEY="+apiKey, "LAPSE_PROXY_KEY="+proxyKey)
	u, err := proxytest.Listening(cmd)
	stop := func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	if err != nil {
		if cmd.Process != nil {
			stop()
		}
		return "", nil, err
	}
	return u, stop, nil
}

func createSessions(lapseURL string, n int) ([]string, error) {
	var out []string
	for i := 0; i < n; i++ {
		body := fmt.Sprintf(`{"subject":"user%d","aal":1,"amr":["pwd"]}`, i)
		req, _ := http.NewRequest("POST", lapseURL+"/v1/sessions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		var r struct{ Token string }
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || r.Token == "" {
			return nil, fmt.Errorf("creating a session: %d %v", resp.StatusCode, err)
		}
		out = append(out, r.Token)
	}
	return out, nil
}

func nginxVersion() string {
	out, _ := exec.Command("nginx", "-v").CombinedOutput()
	return strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
}
