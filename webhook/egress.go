package webhook

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// Deliveries go only where a receiver on the internet may be. The
// address is checked when the connection is made, after name
// resolution (net.Dialer.ControlContext), so a name that resolves to a
// public address when the URL is checked and to an internal one when it
// is dialled (DNS rebinding) is refused all the same; and no redirect is
// followed, so a receiver cannot send lapse on to an internal address.

// metadata are the addresses of cloud instance-metadata services, which
// hand out credentials. They are refused even inside an allowed network.
var metadata = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack, DigitalOcean...
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("168.63.129.16"),   // Azure WireServer
	netip.MustParseAddr("192.0.0.192"),     // Oracle Cloud
}

// special are ranges no receiver on the internet has (IANA's special
// purpose registries), beside those netip.Addr's methods name.
var special = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "a \"this network\" address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
	{netip.MustParsePrefix("::/96"), "an IPv4-compatible or unspecified address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local NAT64 address"},
	{netip.MustParsePrefix("100::/64"), "a discard address"},
	{netip.MustParsePrefix("2001::/23"), "an IETF protocol address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
}

// refused says why a delivery may not connect to addr, or returns "" if
// it may. allow names private networks that receivers may be in; an
// address is refused if it is a metadata service's, or, outside allow,
// if it is loopback, private, link-local, multicast, unspecified or of
// another range no internet host has. An IPv4 address carried in IPv6
// (mapped, NAT64, 6to4) is judged as the IPv4 address it carries.
func refused(addr netip.Addr, allow []netip.Prefix) string {
	addr = embedded(addr.WithZone(""))
	for _, m := range metadata {
		if addr == m {
			return "a cloud metadata address"
		}
	}
	for _, p := range allow {
		if p.Contains(addr) {
			return ""
		}
	}
	switch {
	case addr.IsLoopback():
		return "a loopback address"
	case addr.IsPrivate():
		return "a private address"
	case addr.IsLinkLocalUnicast(), addr.IsLinkLocalMulticast():
		return "a link-local address"
	case addr.IsUnspecified():
		return "the unspecified address"
	case addr.IsMulticast():
		return "a multicast address"
	}
	for _, s := range special {
		if s.prefix.Contains(addr) {
			return s.what
		}
	}
	return ""
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// embedded returns the IPv4 address an IPv6 address carries (mapped,
// NAT64 well-known prefix, 6to4), or addr itself.
func embedded(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	b := addr.As16()
	switch {
	case nat64.Contains(addr):
		return netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(addr):
		return netip.AddrFrom4([4]byte(b[2:6]))
	}
	return addr
}

// refusedError is the error of a connection the egress rules refused.
type refusedError struct {
	addr netip.Addr
	why  string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s (allow its network with webhook_allow_networks if the receiver is on premises)", e.addr, e.why)
}

// control checks, at connect time, the address a delivery is about to
// connect to.
func control(allow []netip.Prefix) func(context.Context, string, string, syscall.RawConn) error {
	return func(_ context.Context, _, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("refused to connect to %q: not an IP address and port", address)
		}
		if why := refused(ap.Addr(), allow); why != "" {
			return &refusedError{addr: ap.Addr(), why: why}
		}
		return nil
	}
}

// newClient returns the client deliveries are sent with: connections
// checked by control, no proxy (lapse could not check where a proxy
// connects), no redirect followed, and a 10 s timeout.
func newClient(allow []netip.Prefix) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, ControlContext: control(allow)}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.DialContext = dialer.DialContext
	// Keep a connection for each request that may be in flight to an
	// endpoint, so that a burst does not open and close one per event.
	transport.MaxIdleConnsPerHost = perEndpoint
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: transport,
		// A 3xx is the receiver's answer, and a failed delivery: following
		// it would send the signed event wherever the receiver says.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
