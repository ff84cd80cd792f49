package web

import (
	"strings"
)

// Device is what a User-Agent string says about the browser and the
// operating system behind a session, enough for a person to recognise
// their own devices in a list.
//
// [ParseUserAgent] is a short hand-written matcher rather than a
// user-agent database: the list needs a label, not analytics; browsers
// now freeze most of the string (Chrome reports every Windows as
// "Windows NT 10.0", every Mac as "10_15_7", every Android device as
// "K"), so a database buys little beyond what is matched here; and it
// keeps lapse free of a dependency that must be updated to stay right.
// Anything it does not know becomes "Unknown browser" or an empty OS,
// never a guess.
type Device struct {
	// Browser is the browser's name and major version, such as
	// "Firefox 140", or a client such as "curl"; "" when unknown.
	Browser string
	// OS is the operating system, such as "Windows", "macOS",
	// "Android 14" or "iOS"; "" when unknown.
	OS string
	// Mobile reports a phone or a tablet.
	Mobile bool
}

// String describes the device for a person: "Firefox 140 on Windows",
// "Safari on iOS", "Unknown browser".
func (d Device) String() string {
	b := d.Browser
	if b == "" {
		b = "Unknown browser"
	}
	if d.OS == "" {
		return b
	}
	return b + " on " + d.OS
}

// browsers are matched in order: many browsers name others too (Edge
// says Chrome and Safari, Chrome says Safari), so the most specific
// token comes first.
var browsers = []struct{ token, name string }{
	{"Edg/", "Edge"},
	{"EdgA/", "Edge"},
	{"EdgiOS/", "Edge"},
	{"OPR/", "Opera"},
	{"SamsungBrowser/", "Samsung Internet"},
	{"Vivaldi/", "Vivaldi"},
	{"FxiOS/", "Firefox"},
	{"Firefox/", "Firefox"},
	{"CriOS/", "Chrome"},
	{"HeadlessChrome/", "Headless Chrome"},
	{"Chromium/", "Chromium"},
	{"Chrome/", "Chrome"},
	{"curl/", "curl"},
	{"Wget/", "Wget"},
	{"Go-http-client/", "Go HTTP client"},
	{"python-requests/", "Python requests"},
}

// ParseUserAgent describes the device behind a User-Agent string.
func ParseUserAgent(ua string) Device {
	d := Device{Browser: browserOf(ua)}
	for _, o := range systems {
		if o.match(ua) {
			d.OS, d.Mobile = o.name, o.mobile
			if o.version != "" {
				if v := versionAfter(ua, o.version); v != "" {
					d.OS += " " + v
				}
			}
			break
		}
	}
	if strings.Contains(ua, "Mobile") && d.OS != "" {
		d.Mobile = true
	}
	return d
}

// browserOf names the browser of ua, with its major version.
func browserOf(ua string) string {
	for _, b := range browsers {
		if i := strings.Index(ua, b.token); i >= 0 {
			if v := major(ua[i+len(b.token):]); v != "" && b.name != "curl" && b.name != "Wget" {
				return b.name + " " + v
			}
			return b.name
		}
	}
	if strings.Contains(ua, "Safari/") {
		if v := versionAfter(ua, "Version/"); v != "" {
			return "Safari " + v
		}
		return "Safari"
	}
	return ""
}

// system is an operating system as a User-Agent names it; the first of
// systems that matches wins.
type system struct {
	name    string
	mobile  bool
	tokens  []string // any of them
	version string   // the token its major version follows, if shown
}

func (o system) match(ua string) bool {
	for _, t := range o.tokens {
		if strings.Contains(ua, t) {
			return true
		}
	}
	return false
}

var systems = []system{
	{name: "iOS", mobile: true, tokens: []string{"iPhone", "iPod"}},
	{name: "iPadOS", mobile: true, tokens: []string{"iPad"}},
	{name: "Android", mobile: true, tokens: []string{"Android"}, version: "Android "},
	{name: "ChromeOS", tokens: []string{"CrOS"}},
	{name: "Windows 7", tokens: []string{"Windows NT 6.1"}},
	{name: "Windows", tokens: []string{"Windows"}},             // 10 and 11 both say NT 10.0
	{name: "macOS", tokens: []string{"Macintosh", "Mac OS X"}}, // the version is frozen at 10_15_7
	{name: "Linux", tokens: []string{"Linux"}},
}

// versionAfter returns the major version that follows token in ua.
func versionAfter(ua, token string) string {
	if i := strings.Index(ua, token); i >= 0 {
		return major(ua[i+len(token):])
	}
	return ""
}

// major returns the leading digits of s: the major version.
func major(s string) string {
	n := 0
	for n < len(s) && n < 6 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return s[:n]
}
