// Package web is lapse's browser side, embedded in the binary: the
// browser client (lapse-client.js, a plain ES module, with its
// TypeScript declarations) and the end-user pages, "Your sessions" and
// the signed-out page.
//
// The client talks to lapse's browser routes (/v1/session, served by the
// httpapi package); the pages read the request's session through a
// function the app gives them, so they work behind the middleware
// package or any other authentication. See docs/browser.md.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static/lapse-client.js static/lapse-client.d.ts static/lapse-pages.css static/lapse-start.js
//go:embed static/lapse-passkey.js static/lapse-passkey.d.ts
var static embed.FS

// ClientJS returns the source of lapse-client.js, for a site that
// vendors the client rather than loading it from lapse.
func ClientJS() []byte {
	b, _ := static.ReadFile("static/lapse-client.js")
	return b
}

type asset struct {
	body  []byte
	etag  string
	ctype string
}

var assets = func() map[string]asset {
	types := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".ts":  "text/plain; charset=utf-8",
		".css": "text/css; charset=utf-8",
	}
	out := map[string]asset{}
	entries, _ := static.ReadDir("static")
	for _, e := range entries {
		b, _ := static.ReadFile("static/" + e.Name())
		sum := sha256.Sum256(b)
		out[e.Name()] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: types[path.Ext(e.Name())]}
	}
	return out
}()

// Assets returns a handler that serves the client's files by base name:
// lapse-client.js, lapse-client.d.ts, lapse-pages.css (the pages'
// default style), lapse-start.js (the client started for an app behind
// the forward-auth gateway, docs/proxy.md), and lapse-passkey.js with its
// lapse-passkey.d.ts (the passkey ceremonies). Mount it under a prefix
// with [http.StripPrefix]:
//
//	mux.Handle("/lapse/web/", http.StripPrefix("/lapse/web/", web.Assets()))
//
// Files are served with an ETag and "Cache-Control: no-cache", so a
// browser revalidates and picks up a new version at once.
func Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		a, ok := assets[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
