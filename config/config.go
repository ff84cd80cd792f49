// Package config reads lapse's YAML configuration file: the server's
// settings and the session policy. Every error names the file, the line,
// the key and what is wrong with it.
package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lapsehq/lapse"
	"go.yaml.in/yaml/v3"
)

// File is a loaded configuration. Fields the file leaves out keep the
// values of [Default].
type File struct {
	// Path is the file it came from, "" for the built-in default.
	Path string
	// Listen is the address lapse serve listens on.
	Listen string
	// DataDir holds the embedded store and the admin key's hash.
	DataDir string
	// Store is where sessions live: "sqlite" (the embedded default, in
	// DataDir) or a URL such as redis://host:6379/0 or
	// postgres://host/lapse. It prints redacted.
	Store lapse.SecretURL
	// Policy is the validated session policy.
	Policy *lapse.Policy
	// Retention is how long ended sessions are kept before they are
	// purged (their events stay in the audit log); negative keeps them.
	Retention time.Duration
	// SweepInterval is the pause between expiry sweeps.
	SweepInterval time.Duration
	// PropagationBound is, with a store shared between nodes, how long
	// after a change on another node a node's cache may still answer as
	// if it had not happened (lapse.Config.PropagationBound).
	PropagationBound time.Duration
	// Webhooks are the endpoints that receive events.
	Webhooks []Webhook
	// WebhookRetry sets delivery retries.
	WebhookRetry Retry
	// WebhookAllowNetworks are private networks (CIDR prefixes) webhook
	// receivers may be in, for receivers on premises; without them a
	// delivery refuses loopback, private, link-local and other internal
	// addresses (see webhook.Config.AllowNetworks).
	WebhookAllowNetworks []netip.Prefix
	// TrustedProxies are the networks of the reverse proxies in front of
	// lapse: a request from one of them is attributed to the client
	// address it forwarded (X-Forwarded-For), for the sign-in throttle
	// and the address of console sessions. Empty trusts no header.
	TrustedProxies []netip.Prefix
	// CacheMemory bounds the verify cache by the memory its sessions
	// take, in bytes (lapse.Config.CacheMemory), given as cache_memory
	// with a unit such as 256MB or 1GiB ([ParseSize]).
	CacheMemory int64
	// EventStreams caps the session event streams (GET
	// /v1/session/events) this node holds open.
	EventStreams StreamLimits
	// TokenGuessing sets the watch for token guessing (docs/signals.md):
	// the token_guessing section.
	TokenGuessing TokenGuessing
	// FactorKey seals the secrets of the built-in TOTP factor at rest:
	// FactorKeySize bytes, given in base64 as factor_key. nil leaves it to
	// lapse serve: the LAPSE_FACTOR_KEY environment variable, or a key it
	// generates in DataDir. Never the store.
	FactorKey []byte
	// Passkeys is the relying party of the passkey factor (the passkeys
	// section); nil leaves passkeys off.
	Passkeys *Passkeys
	// ForwardAuth configures lapse as the gateway of a reverse proxy; nil
	// when the file has no forward_auth section.
	ForwardAuth *ForwardAuth
	// OIDC configures sign-in through an identity provider; nil when the
	// file has no oidc section.
	OIDC *OIDC
	// Console configures the web console; nil when the file has no
	// console section.
	Console *Console
}

// FactorKeySize is the size of factor_key (an AES-256 key).
const FactorKeySize = 32

// Webhook is an endpoint that receives events, signed with Secret (a
// Standard Webhooks "whsec_" secret, given in the file or, better, in the
// environment variable SecretEnv).
type Webhook struct {
	Name      string
	URL       lapse.SecretURL
	Secret    string
	SecretEnv string
	Events    []lapse.EventType
	// Key is the YAML key path of the entry, for error messages.
	Key string
}

// TokenGuessing is the token_guessing section: how many tokens that
// name no session one source (PerSource, per_source_per_minute) and all
// together (Overall, overall_per_minute) may send in a minute, and how
// long a source over its limit is refused (BlockFor, block_for). Zero
// values are the defaults of throttle.GuessConfig (30, 1000, 10m).
type TokenGuessing struct {
	PerSource int
	Overall   int
	BlockFor  time.Duration
}

// StreamLimits caps the event streams one node holds open: PerSession
// for one session, PerNode in all. Zero values are the defaults of
// [DefaultStreamLimits].
type StreamLimits struct {
	PerSession int
	PerNode    int
}

// DefaultStreamLimits are the stream caps without a setting: a browser
// holds one stream per session (its tabs share it), so four leave room
// for a reconnection that overlaps a stream not yet noticed gone; ten
// thousand streams take a few hundred megabytes and as many file
// descriptors.
var DefaultStreamLimits = StreamLimits{PerSession: 4, PerNode: 10_000}

// Retry configures webhook delivery retries; zero values are defaults.
type Retry struct {
	Base, Max time.Duration
	Attempts  int
}

// EventTypes lists every event type a webhook may ask for.
var EventTypes = []lapse.EventType{lapse.EventCreated, lapse.EventExtended, lapse.EventSteppedUp,
	lapse.EventRotated, lapse.EventExpired, lapse.EventRevoked, lapse.EventExpiringSoon, lapse.EventKeyRejected,
	lapse.EventDeviceBound, lapse.EventTheftSuspected,
	lapse.EventClientChanged, lapse.EventNewDevice, lapse.EventTokenReused, lapse.EventTokenGuessing,
	lapse.EventKeyCreated, lapse.EventKeyRevoked,
	lapse.EventOperatorSignedIn, lapse.EventOperatorSignedOut, lapse.EventOperatorSignInFailed, lapse.EventOperatorChanged}

// MaxFileSize caps a configuration file.
const MaxFileSize = 1 << 20

// Default returns the configuration lapse serve uses without a file: an
// embedded store in ./lapse-data on loopback, and two tiers.
func Default() *File {
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		panic("config: built-in default policy is invalid: " + err.Error())
	}
	return &File{Listen: "127.0.0.1:8080", DataDir: "lapse-data", Store: "sqlite", Policy: p,
		Retention: 30 * 24 * time.Hour, SweepInterval: 200 * time.Millisecond, PropagationBound: lapse.DefaultPropagationBound,
		EventStreams: DefaultStreamLimits, CacheMemory: DefaultCacheMemory}
}

// DefaultCacheMemory is the verify cache's bound without cache_memory:
// about 28,000 sessions in its map and a million more in its cold tier,
// so that lapse serve with a million sessions on SQLite serves them all
// from memory and stays under 512 MB (docs/architecture.md).
const DefaultCacheMemory = 192 << 20

// Bounds of cache_memory.
const (
	minCacheMemory = 1 << 20
	maxCacheMemory = 1 << 40
)

// sizeUnits are the units ParseSize reads, by suffix.
var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseSize reads a size in bytes: a whole number followed by one of the
// units B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers
// of 1024), such as 256MB or 1GiB; a space may come between them, and a
// number alone is bytes. It fails on anything else, a negative size or
// one past 2^62 bytes.
func ParseSize(s string) (int64, error) {
	num, factor := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, factor = strings.TrimSpace(n), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || num == "" || num[0] == '+' || n > (1<<62)/factor {
		return 0, fmt.Errorf("%q is not a size such as 256MB or 1GiB", s)
	}
	return n * factor, nil
}

// DefaultPolicy is the policy used without a config file: a standard tier
// within NIST SP 800-63B-4 AAL2's limits and a sensitive tier that needs
// a recent second factor.
func DefaultPolicy() *lapse.Policy {
	return &lapse.Policy{
		DefaultTier: "standard",
		Tiers: map[string]lapse.Tier{
			"standard": {IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour, WarnBefore: 2 * time.Minute},
			"sensitive": {IdleTimeout: 5 * time.Minute, AbsoluteTimeout: time.Hour, WarnBefore: time.Minute,
				RequireAAL: 2, MaxAuthAge: 15 * time.Minute, MaxSessions: 3},
		},
	}
}

// Load reads and validates the file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Error is one problem in a configuration file.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted path, such as tiers.standard.idle_timeout
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Parse reads a configuration from data; name is the file name to put in
// errors. It returns every problem it finds, joined; each is an [*Error].
func Parse(name string, data []byte) (*File, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}
	}
	f := Default()
	f.Path = name
	f.Policy = &lapse.Policy{}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty config
		return nil, &Error{File: name, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	p := &parser{file: name, lines: map[string]int{}}
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		p.file0(f, root.Content[0])
	} else if root.Kind != 0 {
		p.errorf(&root, "", "the file must hold a YAML mapping")
	}
	p.defaultTier(f.Policy)
	if len(p.errs) == 0 {
		var pe *lapse.PolicyError
		if err := f.Policy.Validate(); errors.As(err, &pe) {
			for _, fe := range pe.Problems {
				p.errs = append(p.errs, &Error{File: name, Line: p.line(fe.Path), Key: fe.Path, Msg: fe.Message})
			}
		}
		p.checkOIDC(f)
		p.checkConsole(f)
		p.checkForwardAuth(f)
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return f, nil
}

// defaultTierName is the tier a file's default_tier defaults to when it
// declares several tiers, one of them by this name.
const defaultTierName = "standard"

// defaultTier fills in a default_tier the file leaves out. A file
// without tiers gets the built-in ones (its tenant settings stay); one
// with tiers gets its only tier, or else the one named defaultTierName.
// Otherwise it is an error that says what to add, at the line of tiers.
func (p *parser) defaultTier(pol *lapse.Policy) {
	if pol.DefaultTier != "" {
		return
	}
	if len(pol.Tiers) == 0 {
		d := DefaultPolicy()
		pol.DefaultTier, pol.Tiers = d.DefaultTier, d.Tiers
		return
	}
	names := slices.Sorted(maps.Keys(pol.Tiers))
	switch {
	case len(names) == 1:
		pol.DefaultTier = names[0]
	case slices.Contains(names, defaultTierName):
		pol.DefaultTier = defaultTierName
	default:
		p.errs = append(p.errs, &Error{File: p.file, Line: p.lines["tiers"], Key: "default_tier",
			Msg: fmt.Sprintf("is required with several tiers and none named %q: add a top-level line such as \"default_tier: %s\" to say which tier a session gets when it names none (one of %s)",
				defaultTierName, names[0], strings.Join(names, ", "))})
	}
}

type parser struct {
	file  string
	errs  []error
	lines map[string]int // key path -> line, for the policy's own errors
}

func (p *parser) errorf(n *yaml.Node, key, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// line finds the line of key or of its nearest parent.
func (p *parser) line(key string) int {
	for ; key != ""; key = key[:max(0, strings.LastIndexByte(key, '.'))] {
		if l, ok := p.lines[key]; ok {
			return l
		}
		if !strings.Contains(key, ".") {
			break
		}
	}
	return 0
}

// fields walks a mapping node, calling set for each key; keys set does
// not know are errors.
func (p *parser) fields(n *yaml.Node, path string, set func(key string, v *yaml.Node) bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "must be a mapping")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		full := join(path, k.Value)
		p.lines[full] = k.Line
		if seen[k.Value] {
			p.errorf(k, full, "is set twice")
			continue
		}
		seen[k.Value] = true
		if !set(k.Value, v) {
			p.errorf(k, full, "is not a known key")
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (p *parser) file0(f *File, n *yaml.Node) {
	p.fields(n, "", func(key string, v *yaml.Node) bool {
		switch key {
		case "listen":
			f.Listen = p.str(v, key)
		case "data_dir":
			f.DataDir = p.str(v, key)
		case "store":
			f.Store = lapse.SecretURL(p.str(v, key))
		case "default_tier":
			f.Policy.DefaultTier = p.str(v, key)
		case "allow_undeclared_tenants":
			f.Policy.AllowUndeclaredTenants = p.boolean(v, key)
		case "tiers":
			f.Policy.Tiers, f.Policy.Bounds = p.tiers(v, key)
		case "tenants":
			f.Policy.Tenants = p.tenants(v, key)
		default:
			return p.timing(f, key, v) || p.section(f, key, v)
		}
		return true
	})
}

// timing reads the top-level keys that set how often and how long
// background work runs, and how much memory the verify cache takes, and
// reports whether key is one.
func (p *parser) timing(f *File, key string, v *yaml.Node) bool {
	switch key {
	case "retention":
		if s, ok := p.scalar(v, key, "a duration such as 720h, or -1s to keep ended sessions"); ok && strings.HasPrefix(s, "-") {
			f.Retention = -1 // kept forever
		} else if f.Retention = p.duration(v, key); f.Retention == 0 {
			p.errorf(v, key, "must be positive, or negative (such as -1s) to keep ended sessions forever")
		}
	case "sweep_interval":
		if f.SweepInterval = p.duration(v, key); f.SweepInterval < 10*time.Millisecond || f.SweepInterval > time.Minute {
			p.errorf(v, key, "must be between 10ms and 1m")
		}
	case "cache_memory":
		f.CacheMemory = p.cacheMemory(v, key, f.CacheMemory)
	case "propagation_bound":
		if f.PropagationBound = p.duration(v, key); f.PropagationBound < 10*time.Millisecond || f.PropagationBound > time.Minute {
			p.errorf(v, key, "must be between 10ms and 1m")
		}
	default:
		return false
	}
	return true
}

// cacheMemory reads cache_memory, or returns old after an error.
func (p *parser) cacheMemory(v *yaml.Node, key string, old int64) int64 {
	s, ok := p.scalar(v, key, "a size such as 256MB or 1GiB")
	if !ok {
		return old
	}
	n, err := ParseSize(s)
	if err != nil {
		p.errorf(v, key, "%v", err)
		return old
	}
	if n < minCacheMemory || n > maxCacheMemory {
		p.errorf(v, key, "%s is out of range (1MiB to 1TiB)", s)
		return old
	}
	return n
}

// section reads the top-level keys of file0 that hold a section of
// their own, and the keys of docs/security.md; it reports false for a
// key it does not know.
func (p *parser) section(f *File, key string, v *yaml.Node) bool {
	switch key {
	case "webhooks":
		f.Webhooks = p.webhooks(v, key)
	case "webhook_retry":
		f.WebhookRetry = p.retry(v, key)
	case "factor_key":
		f.FactorKey = p.factorKey(v, key)
	case "passkeys":
		f.Passkeys = p.passkeys(v, key)
	case "forward_auth":
		f.ForwardAuth = p.forwardAuth(v, key)
	case "oidc":
		f.OIDC = p.oidc(v, key)
	case "console":
		f.Console = p.consoleSection(v, key)
	default:
		return p.securityKey(f, key, v)
	}
	return true
}

// securityKey reads the keys of docs/security.md, and reports whether
// key is one.
func (p *parser) securityKey(f *File, key string, v *yaml.Node) bool {
	switch key {
	case "webhook_allow_networks":
		f.WebhookAllowNetworks = p.networks(v, key)
	case "trusted_proxies":
		f.TrustedProxies = p.networks(v, key)
	case "event_streams":
		f.EventStreams = p.streams(v, key)
	case "token_guessing":
		f.TokenGuessing = p.tokenGuessing(v, key)
	default:
		return false
	}
	return true
}

func (p *parser) tiers(n *yaml.Node, path string) (map[string]lapse.Tier, map[string]lapse.Bounds) {
	tiers, bounds := map[string]lapse.Tier{}, map[string]lapse.Bounds{}
	p.fields(n, path, func(name string, v *yaml.Node) bool {
		var t lapse.Tier
		tp := join(path, name)
		p.fields(v, tp, func(key string, v *yaml.Node) bool {
			kp := join(tp, key)
			switch key {
			case "idle_timeout":
				t.IdleTimeout = p.duration(v, kp)
			case "absolute_timeout":
				t.AbsoluteTimeout = p.duration(v, kp)
			case "warn_before":
				t.WarnBefore = p.duration(v, kp)
			case "require_aal":
				t.RequireAAL = p.integer(v, kp)
			case "max_auth_age":
				t.MaxAuthAge = p.duration(v, kp)
			case "max_sessions":
				t.MaxSessions = p.integer(v, kp)
			case "remind_after":
				t.RemindAfter = p.duration(v, kp)
			case "client_drift":
				t.ClientDrift = lapse.DriftAction(p.str(v, kp))
			case "drift_prefix_v4":
				t.DriftPrefixV4 = p.integer(v, kp)
			case "drift_prefix_v6":
				t.DriftPrefixV6 = p.integer(v, kp)
			case "on_token_reuse":
				t.OnTokenReuse = lapse.ReuseAction(p.str(v, kp))
			case "new_device_window":
				t.NewDeviceWindow = p.duration(v, kp)
			case "profiles":
				t.Profiles = p.strs(v, kp)
			case "tenant_bounds":
				bounds[name] = p.bounds(v, kp)
			default:
				return p.deviceKey(&t, key, v, kp)
			}
			return true
		})
		tiers[name] = t
		return true
	})
	return tiers, bounds
}

// deviceKey reads a tier's device binding keys (docs/device-binding.md)
// into t, and reports whether key is one. Their values are checked by
// [lapse.Policy.Validate].
func (p *parser) deviceKey(t *lapse.Tier, key string, v *yaml.Node, kp string) bool {
	switch key {
	case "device_binding":
		t.DeviceBinding = lapse.DeviceBindingMode(p.str(v, kp))
	case "on_theft":
		t.OnTheft = lapse.TheftAction(p.str(v, kp))
	case "bind_grace":
		t.BindGrace = p.duration(v, kp)
	case "bound_cookie_lifetime":
		t.BoundCookieLifetime = p.duration(v, kp)
	default:
		return false
	}
	return true
}

func (p *parser) bounds(n *yaml.Node, path string) lapse.Bounds {
	var b lapse.Bounds
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		kp := join(path, key)
		switch key {
		case "idle_timeout":
			b.IdleTimeout = p.duration(v, kp)
		case "absolute_timeout":
			b.AbsoluteTimeout = p.duration(v, kp)
		case "max_auth_age":
			b.MaxAuthAge = p.duration(v, kp)
		case "max_sessions":
			b.MaxSessions = p.integer(v, kp)
		case "require_aal":
			b.RequireAAL = p.integer(v, kp)
		default:
			return false
		}
		return true
	})
	return b
}

func (p *parser) tenants(n *yaml.Node, path string) map[string]map[string]lapse.TierOverride {
	out := map[string]map[string]lapse.TierOverride{}
	p.fields(n, path, func(tenant string, v *yaml.Node) bool {
		tp := join(path, tenant)
		out[tenant] = map[string]lapse.TierOverride{}
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			return true // a tenant declared with no overrides
		}
		p.fields(v, tp, func(key string, v *yaml.Node) bool {
			if key != "tiers" {
				return false
			}
			p.fields(v, join(tp, key), func(tier string, v *yaml.Node) bool {
				out[tenant][tier] = p.override(v, join(join(tp, key), tier))
				return true
			})
			return true
		})
		return true
	})
	return out
}

func (p *parser) override(n *yaml.Node, path string) lapse.TierOverride {
	var o lapse.TierOverride
	dur := func(v *yaml.Node, kp string) *time.Duration { d := p.duration(v, kp); return &d }
	num := func(v *yaml.Node, kp string) *int { i := p.integer(v, kp); return &i }
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		kp := join(path, key)
		switch key {
		case "idle_timeout":
			o.IdleTimeout = dur(v, kp)
		case "absolute_timeout":
			o.AbsoluteTimeout = dur(v, kp)
		case "warn_before":
			o.WarnBefore = dur(v, kp)
		case "max_auth_age":
			o.MaxAuthAge = dur(v, kp)
		case "remind_after":
			o.RemindAfter = dur(v, kp)
		case "require_aal":
			o.RequireAAL = num(v, kp)
		case "max_sessions":
			o.MaxSessions = num(v, kp)
		default:
			return false
		}
		return true
	})
	return o
}

func (p *parser) scalar(n *yaml.Node, key, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, key, "must be %s", what)
		return "", false
	}
	return n.Value, true
}

func (p *parser) str(n *yaml.Node, key string) string {
	s, _ := p.scalar(n, key, "a string")
	return s
}

func (p *parser) strs(n *yaml.Node, key string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, key, "must be a list of strings")
		return nil
	}
	var out []string
	for _, c := range n.Content {
		if s, ok := p.scalar(c, key, "a list of strings"); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) boolean(n *yaml.Node, key string) bool {
	s, ok := p.scalar(n, key, "true or false")
	if !ok {
		return false
	}
	switch s {
	case "true":
		return true
	case "false":
		return false
	}
	p.errorf(n, key, "%q is not true or false", s)
	return false
}

func (p *parser) integer(n *yaml.Node, key string) int {
	s, ok := p.scalar(n, key, "a whole number")
	if !ok {
		return 0
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i > 1_000_000 {
		p.errorf(n, key, "%q is not a whole number between 0 and 1000000", s)
		return 0
	}
	return i
}

func (p *parser) duration(n *yaml.Node, key string) time.Duration {
	s, ok := p.scalar(n, key, "a duration such as 90s, 15m or 12h")
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.errorf(n, key, "%q is not a duration (use Go syntax such as 90s, 15m or 12h)", s)
		return 0
	}
	if d < 0 || d > 366*24*time.Hour {
		p.errorf(n, key, "%s is out of range (0 to 366 days)", s)
		return 0
	}
	return d
}

func (p *parser) webhooks(n *yaml.Node, path string) []Webhook {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, path, "must be a list of endpoints")
		return nil
	}
	var out []Webhook
	names := map[string]bool{}
	for i, item := range n.Content {
		w := p.webhook(item, fmt.Sprintf("%s[%d]", path, i))
		switch {
		case !validName(w.Name):
			p.errorf(item, w.Key+".name", "is required: 1-64 letters, digits, '-' or '_'")
		case names[w.Name]:
			p.errorf(item, w.Key+".name", "%q names two endpoints", w.Name)
		}
		names[w.Name] = true
		if w.URL == "" {
			p.errorf(item, w.Key+".url", "is required")
		}
		if (w.Secret == "") == (w.SecretEnv == "") {
			p.errorf(item, w.Key, "set exactly one of secret and secret_env")
		}
		out = append(out, w)
	}
	return out
}

// webhook reads one endpoint of the webhooks list, at key path key.
func (p *parser) webhook(n *yaml.Node, key string) Webhook {
	w := Webhook{Key: key}
	p.fields(n, key, func(field string, v *yaml.Node) bool {
		kp := join(key, field)
		switch field {
		case "name":
			w.Name = p.str(v, kp)
		case "url":
			w.URL = lapse.SecretURL(p.str(v, kp))
			if u, err := url.Parse(w.URL.Reveal()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.errorf(v, kp, "%q is not an http(s) URL", w.URL) // redacted
			}
		case "secret":
			w.Secret = p.str(v, kp)
		case "secret_env":
			w.SecretEnv = p.str(v, kp)
		case "events":
			for _, t := range p.strs(v, kp) {
				if !slices.Contains(EventTypes, lapse.EventType(t)) {
					p.errorf(v, kp, "%q is not an event type", t)
				}
				w.Events = append(w.Events, lapse.EventType(t))
			}
		default:
			return false
		}
		return true
	})
	return w
}

func (p *parser) retry(n *yaml.Node, path string) Retry {
	var r Retry
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		kp := join(path, key)
		switch key {
		case "base":
			r.Base = p.duration(v, kp)
		case "max":
			r.Max = p.duration(v, kp)
		case "attempts":
			r.Attempts = p.integer(v, kp)
		default:
			return false
		}
		return true
	})
	return r
}

// networks reads a list of CIDR prefixes, such as [10.20.0.0/16, fd00::/8].
func (p *parser) networks(n *yaml.Node, key string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range p.strs(n, key) {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			p.errorf(n, key, "%q is not a network in CIDR notation, such as 10.20.0.0/16 or fd00::/8", s)
			continue
		}
		if pfx != pfx.Masked() {
			p.errorf(n, key, "%q has bits set past its prefix length; did you mean %s?", s, pfx.Masked())
			continue
		}
		out = append(out, pfx)
	}
	return out
}

func (p *parser) tokenGuessing(n *yaml.Node, path string) TokenGuessing {
	var g TokenGuessing
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		kp := join(path, key)
		switch key {
		case "per_source_per_minute":
			g.PerSource = p.integer(v, kp)
		case "overall_per_minute":
			g.Overall = p.integer(v, kp)
		case "block_for":
			g.BlockFor = p.duration(v, kp)
		default:
			return false
		}
		return true
	})
	return g
}

func (p *parser) streams(n *yaml.Node, path string) StreamLimits {
	l := DefaultStreamLimits
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		kp := join(path, key)
		var dst *int
		switch key {
		case "per_session":
			dst = &l.PerSession
		case "per_node":
			dst = &l.PerNode
		default:
			return false
		}
		before := len(p.errs)
		if *dst = p.integer(v, kp); *dst < 1 && len(p.errs) == before {
			p.errorf(v, kp, "must be at least 1")
		}
		return true
	})
	if l.PerSession > l.PerNode {
		p.errorf(n, path, "per_session (%d) is more than per_node (%d)", l.PerSession, l.PerNode)
	}
	return l
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// factorKey reads a base64 key of FactorKeySize bytes. Its errors never
// repeat the value.
func (p *parser) factorKey(n *yaml.Node, key string) []byte {
	s, ok := p.scalar(n, key, "a key in base64")
	if !ok {
		return nil
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(k) != FactorKeySize {
		p.errorf(n, key, "must be %d random bytes in base64 (make one with 'openssl rand -base64 %d')", FactorKeySize, FactorKeySize)
		return nil
	}
	return k
}
