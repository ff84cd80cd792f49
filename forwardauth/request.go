package forwardauth

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// origin is the browser's request, as the proxy forwarded its
// description to lapse.
type origin struct {
	method string
	proto  string // "http" or "https"
	host   string // lower case, without port
	// authority is the host as the proxy forwarded it, port included, for
	// an absolute rd= URL.
	authority string
	// uri is the request target as the client sent it ("/a/b?q");
	// path is its cleaned path, as rules match it.
	uri, path string
	// navigate: a navigation, to be sent to a page (302) rather than
	// answered with a status: Sec-Fetch-Mode: navigate or, from a client
	// that sends no Sec-Fetch-Mode, an Accept that names text/html.
	navigate bool
	// document: a top-level navigation (Sec-Fetch-Mode: navigate and
	// Sec-Fetch-Dest: document), which only a person makes.
	document bool
	// prefetch: the browser fetches ahead of a navigation that may never
	// come (Sec-Purpose: prefetch).
	prefetch bool
	// preflight: a CORS preflight, which the browser sends by itself.
	preflight bool
}

// originalOf reads the original request from the headers the proxy sets:
// X-Forwarded-Method, -Proto, -Host and -Uri (Traefik, Caddy), or
// X-Original-Method and X-Original-URI (nginx), or X-Original-URL, the
// absolute URL (Kubernetes ingress-nginx). suffix is the original
// path when the proxy sent it as the rest of the endpoint's own path
// (Envoy's ext_authz), "" otherwise. It reports false when no original
// URI was sent, or it is not a request target.
func originalOf(r *http.Request, suffix string) (origin, bool) {
	h := r.Header
	o := origin{
		method: first(h.Get("X-Forwarded-Method"), h.Get("X-Original-Method")),
		uri:    first(h.Get("X-Forwarded-Uri"), h.Get("X-Original-Uri"), suffix),
		proto:  strings.ToLower(firstItem(h.Get("X-Forwarded-Proto"))),
		host:   firstItem(first(h.Get("X-Forwarded-Host"), r.Host)),
	}
	if o.uri == "" {
		o.fromURL(h.Get("X-Original-Url"))
	}
	if o.method == "" {
		o.method = http.MethodGet
		if suffix != "" {
			o.method = r.Method // Envoy sends the original method itself
		}
	}
	if o.proto != "http" {
		o.proto = "https"
	}
	o.authority = strings.ToLower(o.host)
	if host, _, err := net.SplitHostPort(o.host); err == nil {
		o.host = host
	}
	o.host = strings.ToLower(strings.TrimSuffix(strings.Trim(o.host, "[]"), "."))
	var ok bool
	if o.path, ok = cleanPath(o.uri); !ok {
		return o, false
	}
	mode, dest := h.Get("Sec-Fetch-Mode"), h.Get("Sec-Fetch-Dest")
	o.navigate = mode == "navigate" || (mode == "" && strings.Contains(h.Get("Accept"), "text/html"))
	o.document = mode == "navigate" && dest == "document"
	o.prefetch = strings.Contains(h.Get("Sec-Purpose"), "prefetch") || strings.Contains(h.Get("Purpose"), "prefetch")
	o.preflight = o.method == http.MethodOptions && h.Get("Access-Control-Request-Method") != ""
	return o, true
}

// fromURL takes the target, scheme and host of an absolute original URL.
func (o *origin) fromURL(raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return
	}
	o.uri, o.proto, o.host = u.RequestURI(), u.Scheme, u.Host
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// firstItem returns the first item of a comma-separated header value: the
// one the proxy nearest the client wrote.
func firstItem(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// localURI returns the original request target as a local path for rd=,
// or "/" when it is not one a browser can safely be sent back to.
func (o *origin) localURI() string {
	u := o.uri
	if !strings.HasPrefix(u, "/") {
		u = o.path // an absolute-form target: its path
	}
	if strings.HasPrefix(u, "//") || strings.HasPrefix(u, `/\`) || strings.ContainsAny(u, "\r\n\t") || len(u) > maxRedirectURI {
		return "/"
	}
	return u
}

// maxRedirectURI caps the original URI carried in rd=, so that the
// X-Lapse-Redirect header stays within a proxy's buffer for response
// headers (nginx's is 4 KiB by default).
const maxRedirectURI = 2048

// validHostHeader reports whether h is a host a redirect URL may name.
func validHostHeader(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}
