package redis

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Timeouts used unless the URL sets its own: short enough that a call to
// an unreachable Redis fails in seconds, long enough for a busy one.
const (
	dialTimeout = time.Second
	ioTimeout   = time.Second
	poolTimeout = time.Second
)

// newClient returns a client for a redis://, rediss://, redis+cluster://
// or rediss+cluster:// URL.
func newClient(raw string) (goredis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("want redis://host:port or redis+cluster://host:port,host:port")
	}
	switch scheme {
	case "redis", "rediss":
		o, err := goredis.ParseURL(raw)
		if err != nil {
			return nil, withoutURL(err)
		}
		o.DialTimeout = orDefault(o.DialTimeout, dialTimeout)
		o.ReadTimeout = orDefault(o.ReadTimeout, ioTimeout)
		o.WriteTimeout = orDefault(o.WriteTimeout, ioTimeout)
		o.PoolTimeout = orDefault(o.PoolTimeout, poolTimeout)
		o.MaxRetries = noRetries
		if o.DialerRetries == 0 {
			o.DialerRetries = 1
		}
		o.ContextTimeoutEnabled = true
		return goredis.NewClient(o), nil
	case "redis+cluster", "rediss+cluster":
		u, err := clusterURL(strings.TrimSuffix(scheme, "+cluster"), rest)
		if err != nil {
			return nil, err
		}
		o, err := goredis.ParseClusterURL(u)
		if err != nil {
			return nil, withoutURL(err)
		}
		o.DialTimeout = orDefault(o.DialTimeout, dialTimeout)
		o.ReadTimeout = orDefault(o.ReadTimeout, ioTimeout)
		o.WriteTimeout = orDefault(o.WriteTimeout, ioTimeout)
		if o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
			// A lagging replica could refill a node's cache with a session
			// another node has just revoked.
			return nil, errors.New("read_only, route_by_latency and route_randomly would read from replicas; lapse reads from masters only")
		}
		o.PoolTimeout = orDefault(o.PoolTimeout, poolTimeout)
		o.MaxRetries = noRetries
		if o.DialerRetries == 0 {
			o.DialerRetries = 1
		}
		o.ContextTimeoutEnabled = true
		return goredis.NewClusterClient(o), nil
	}
	return nil, fmt.Errorf("unknown scheme %q: want redis, rediss, redis+cluster or rediss+cluster", scheme)
}

// withoutURL drops the URL a *url.Error quotes whole, password and all,
// and keeps what is wrong with it.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// clusterURL rewrites "user:pass@h1:p1,h2:p2/?q" as go-redis's cluster
// URL form "scheme://user:pass@h1:p1?addr=h2:p2&q".
func clusterURL(scheme, rest string) (string, error) {
	rest, query, _ := strings.Cut(rest, "?")
	rest = strings.TrimSuffix(rest, "/")
	if strings.Contains(rest, "/") {
		return "", errors.New("a cluster URL has no database number: Redis Cluster has only database 0")
	}
	userinfo := ""
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		userinfo, rest = rest[:i+1], rest[i+1:]
	}
	hosts := strings.Split(rest, ",")
	if len(hosts) == 0 || hosts[0] == "" {
		return "", errors.New("a cluster URL names at least one host:port")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", err
	}
	for _, h := range hosts[1:] {
		if h == "" {
			return "", errors.New("empty host in cluster URL")
		}
		q.Add("addr", h)
	}
	u := scheme + "://" + userinfo + hosts[0]
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u, nil
}

// noRetries turns off go-redis's resending of a command after a read
// timeout: a change script whose first run succeeded would run again and
// report a conflict (or nothing changed) for what it just did. A failed
// call is a store_unavailable the caller can retry; a timed-out write
// then finds the change made.
const noRetries = -1

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
