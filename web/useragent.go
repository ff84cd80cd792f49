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
	var d Device
	for _, b := range browsers {
		if i := strings.Index(ua, b.token); i >= 0 {
			d.Browser = b.name
			if v := major(ua[i+len(b.token):]); v != "" && b.name != "curl" && b.name != "Wget" {
				d.Browser += " " + v
			}
			break
		}
	}
	if d.Browser == "" && strings.Contains(ua, "Safari/") {
		d.Browser = "Safari"
		if i := strings.Index(ua, "Version/"); i >= 0 {
			if v := major(ua[i+len("Version/"):]); v != "" {
				d.Browser += " " + v
			}
		}
	}
	switch {
	case strings.Contains(ua, "iPhone") || strings.Contains(ua, "iPod"):
		d.OS, d.Mobile = "iOS", true
	case strings.Contains(ua, "iPad"):
		d.OS, d.Mobile = "iPadOS", true
	case strings.Contains(ua, "Android"):
		d.OS, d.Mobile = "Android", true
		if i := strings.Index(ua, "Android "); i >= 0 {
			if v := major(ua[i+len("Android "):]); v != "" {
				d.OS += " " + v
			}
		}
	case strings.Contains(ua, "CrOS"):
		d.OS = "ChromeOS"
	case strings.Contains(ua, "Windows NT 6.1"):
		d.OS = "Windows 7"
	case strings.Contains(ua, "Windows"):
		d.OS = "Windows" // 10 and 11 both say NT 10.0
	case strings.Contains(ua, "Macintosh") || strings.Contains(ua, "Mac OS X"):
		d.OS = "macOS" // the version is frozen at 10_15_7
	case strings.Contains(ua, "Linux"):
		d.OS = "Linux"
	}
	if strings.Contains(ua, "Mobile") && !d.Mobile && d.OS != "" {
		d.Mobile = true
	}
	return d
}

// major returns the leading digits of s: the major version.
func major(s string) string {
	n := 0
	for n < len(s) && n < 6 && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return s[:n]
}
