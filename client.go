package lapse

import (
	"cmp"
	"context"
	"net/netip"
	"strings"
)

// Client is the client that presents a token, as the door that received
// the request saw it: its address and its User-Agent. The doors (the
// API, the middleware, the forward-auth gateway) put it into the request's
// context with [WithClient]; [Manager.Create] records it with a new
// session and every later use of the session is compared with it.
type Client struct {
	IP        netip.Addr
	UserAgent string
}

type clientKey struct{}

// WithClient returns a copy of ctx that carries c, for the manager's
// drift, reuse and guessing checks. A context without one is a client
// lapse knows nothing about: nothing is compared or counted.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientFrom returns the client ctx carries, and false if it carries none.
func ClientFrom(ctx context.Context) (Client, bool) {
	c, ok := ctx.Value(clientKey{}).(Client)
	return c, ok
}

// Device is what lapse recognises a browser by: its family, its major
// version and its platform, read from the User-Agent header. It holds
// nothing the platform does not already send: no identifier is stored in
// the browser for it. Unknown parts are empty.
type Device struct {
	Browser  string // "Chrome", "Firefox", "Safari", "Edge", "Opera", "Samsung Internet", or ""
	Major    string // the browser's major version, such as "131"
	Platform string // "Windows", "macOS", "iOS", "Android", "ChromeOS", "Linux", or ""
}

// String describes d in plain words, such as "Firefox 133 on Windows".
func (d Device) String() string {
	b := d.Browser
	if b == "" {
		b = "An unknown browser"
	} else if d.Major != "" {
		b += " " + d.Major
	}
	if d.Platform != "" {
		b += " on " + d.Platform
	}
	return b
}

// browsers are the User-Agent tokens of browser families, most specific
// first: Edge and Opera also say Chrome, Chrome also says Safari.
var browsers = []struct{ token, name string }{
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"},
	{"OPR/", "Opera"}, {"SamsungBrowser/", "Samsung Internet"},
	{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"}, {"Chrome/", "Chrome"},
	{"Version/", "Safari"}, // Safari puts its version after Version/
}

// platforms are the User-Agent tokens of platforms, most specific first:
// Android says Linux, iOS says "like Mac OS X".
var platforms = []struct{ token, name string }{
	{"iPhone", "iOS"}, {"iPad", "iOS"}, {"Android", "Android"}, {"CrOS", "ChromeOS"},
	{"Windows", "Windows"}, {"Macintosh", "macOS"}, {"Linux", "Linux"},
}

// ParseUserAgent reads the browser family, major version and platform
// from a User-Agent header. It never fails: what it does not recognise
// is left empty.
func ParseUserAgent(ua string) Device {
	var d Device
	for _, b := range browsers {
		if i := strings.Index(ua, b.token); i >= 0 {
			if b.name == "Safari" && !strings.Contains(ua, "Safari/") {
				continue
			}
			d.Browser, d.Major = b.name, major(ua[i+len(b.token):])
			break
		}
	}
	for _, p := range platforms {
		if strings.Contains(ua, p.token) {
			d.Platform = p.name
			break
		}
	}
	return d
}

// major returns the leading digits of v, at most 6 of them.
func major(v string) string {
	n := 0
	for n < len(v) && n < 6 && v[n] >= '0' && v[n] <= '9' {
		n++
	}
	return v[:n]
}

// Drift says how a client differs from the one a session was created by.
type Drift struct {
	Network  bool // its address is outside the session's network prefix
	Browser  bool // another browser family or major version
	Platform bool // another platform
}

// Any reports whether the client differs at all.
func (d Drift) Any() bool { return d.Network || d.Browser || d.Platform }

// Reasons of client drift, on a [EventClientChanged] and on the
// step_up_required error of a tier that asks for a step-up.
const (
	ReasonNetworkChanged  Reason = "network_changed"
	ReasonBrowserChanged  Reason = "browser_changed"
	ReasonPlatformChanged Reason = "platform_changed"
)

// Reason names the weightiest difference: platform, then browser, then
// network; "" for none.
func (d Drift) Reason() Reason {
	switch {
	case d.Platform:
		return ReasonPlatformChanged
	case d.Browser:
		return ReasonBrowserChanged
	case d.Network:
		return ReasonNetworkChanged
	}
	return ""
}

// Default network prefixes of [Tier.DriftPrefixV4] and [Tier.DriftPrefixV6].
const (
	DefaultDriftPrefixV4 = 24
	DefaultDriftPrefixV6 = 48
)

// Drift compares c with the client s was created by (or last stepped up
// from). It is cheap on the common path: an identical User-Agent is not
// parsed, the session's address is parsed once as it enters the
// manager's cache, and addresses are compared as prefixes without
// allocating. A
// side lapse knows nothing about (no address, no User-Agent) does not
// differ.
func (s *Session) Drift(c Client) Drift {
	var d Drift
	if c.IP.IsValid() && s.IP != "" {
		ip := s.addr
		if !ip.IsValid() {
			ip, _ = netip.ParseAddr(s.IP)
		}
		if ip.IsValid() {
			d.Network = !sameNetwork(ip.Unmap(), c.IP.Unmap(), s.Policy)
		}
	}
	if c.UserAgent != s.UserAgent && c.UserAgent != "" && s.UserAgent != "" {
		was, now := ParseUserAgent(s.UserAgent), ParseUserAgent(c.UserAgent)
		d.Browser = was.Browser != now.Browser || was.Major != now.Major
		d.Platform = was.Platform != now.Platform
	}
	return d
}

// sameNetwork reports whether a and b are in one network of t's prefix
// lengths (another address family is another network).
func sameNetwork(a, b netip.Addr, t Tier) bool {
	if a == b {
		return true
	}
	if a.Is4() != b.Is4() {
		return false
	}
	bits := t.networkBits(a)
	pa, err1 := a.Prefix(bits)
	pb, err2 := b.Prefix(bits)
	return err1 == nil && err2 == nil && pa == pb
}

// DeviceClass is what [Manager.Create] compares to tell a new device: the
// device read from the User-Agent and the network of the address, at the
// tier's prefix lengths.
type DeviceClass struct {
	Device
	Network netip.Prefix
}

// deviceClass returns the DeviceClass of ip and ua under t.
func deviceClass(ip, ua string, t Tier) DeviceClass {
	k := DeviceClass{Device: ParseUserAgent(ua)}
	if a, err := netip.ParseAddr(ip); err == nil {
		a = a.Unmap()
		k.Network, _ = a.Prefix(t.networkBits(a))
	}
	return k
}

// networkBits returns the prefix length of a's network under t.
func (t Tier) networkBits(a netip.Addr) int {
	if a.Is4() {
		return cmp.Or(t.DriftPrefixV4, DefaultDriftPrefixV4)
	}
	return cmp.Or(t.DriftPrefixV6, DefaultDriftPrefixV6)
}
