// Package loopback tells whether an address, or a request, is on the
// loopback interface: where lapse's development modes (a session cookie
// without Secure for plain HTTP, the demo) are allowed, and nowhere else.
package loopback

import (
	"net"
	"net/http"
	"strings"
)

// Host reports whether hostport names the loopback interface: the host
// "localhost" in any case, or a loopback IP address (127.0.0.0/8, ::1),
// with or without a port, an IPv6 address with or without brackets.
func Host(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if len(host) > 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PlainRequest reports whether r came over plain HTTP to a loopback host
// from a loopback address. The Host header alone is the client's to
// choose, so the peer's address must be loopback too.
func PlainRequest(r *http.Request) bool {
	return r.TLS == nil && Host(r.Host) && Host(r.RemoteAddr)
}
