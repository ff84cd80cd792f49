package oidc

import (
	"html/template"
	"net/http"
	"net/url"
)

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign-in</title><link rel="stylesheet" href="/.lapse/web/lapse-pages.css"></head>
<body><main class="lapse-page"><h1>Sign-in</h1><p id="lapse-oidc-message">{{.Message}}</p>
<p><a href="{{.Retry}}">Sign in again</a></p></main></body></html>
`))

// page answers a sign-in that could not go on, with a link to start
// again towards rd.
func (rp *RP) page(w http.ResponseWriter, status int, msg, rd string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'")
	w.WriteHeader(status)
	pageTemplate.Execute(w, struct{ Message, Retry string }{msg, Prefix + "/login?rd=" + url.QueryEscape(rd)})
}
