package probe

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"unicode/utf8"
)

// redact shows a secret as a short prefix, its length and the start of its SHA-256, so
// two reports can be compared without either revealing the secret.
func redact(v string) string {
	sum := sha256.Sum256([]byte(v))
	prefix := v[:min(4, len(v)/4)]
	if !utf8.ValidString(prefix) {
		prefix = ""
	}
	return fmt.Sprintf("%s…[%d chars, sha256 %x]", prefix, len(v), sum[:4])
}

// credential is one thing a sign-in produced that may get a session accepted on its own:
// a cookie, all cookies together, a bearer token or a refresh token.
type credential struct {
	label   string
	cookies []*http.Cookie
	token   string
	refresh string
}

// String names the credential with its value redacted.
func (cr credential) String() string {
	switch {
	case cr.refresh != "":
		return cr.label + " " + redact(cr.refresh)
	case cr.token != "":
		return cr.label + " " + redact(cr.token)
	case len(cr.cookies) == 1:
		return cr.label + " " + redact(cr.cookies[0].Value)
	}
	return cr.label
}

// holder returns a new session that holds only this credential.
func (cr credential) holder() *session {
	return &session{cookies: slices.Clone(cr.cookies), token: cr.token, refresh: cr.refresh}
}

// credentials returns what the signed-in session s holds that is accepted on its own:
// each cookie and the bearer token that the authenticated URL accepts alone (all cookies
// together when no cookie is accepted alone), and the refresh token when the target has
// a refresh request. The refresh token is not tried, since trying may rotate it.
func (c *client) credentials(ctx context.Context, s *session) ([]credential, error) {
	var all []credential
	for _, ck := range s.cookies {
		all = append(all, credential{label: "cookie " + ck.Name, cookies: []*http.Cookie{ck}})
	}
	if s.token != "" {
		all = append(all, credential{label: "bearer token", token: s.token})
	}
	var working []credential
	for _, cr := range all {
		ok, _, err := c.accepted(ctx, cr.holder())
		if err != nil {
			return nil, err
		}
		if ok {
			working = append(working, cr)
		}
	}
	if len(working) == 0 && len(s.cookies) > 0 {
		working = append(working, credential{label: "all cookies together", cookies: slices.Clone(s.cookies)})
	}
	if s.refresh != "" && c.t.Refresh != nil {
		working = append(working, credential{label: "refresh token", refresh: s.refresh})
	}
	return working, nil
}

// replay reports whether cr alone still gets a session accepted: directly for cookies
// and tokens; through the refresh request and then the authenticated URL for a refresh
// token. It returns the session that replayed cr, holding any rotated refresh token.
func (c *client) replay(ctx context.Context, cr credential) (*session, bool, error) {
	h := cr.holder()
	if cr.refresh != "" {
		if err := c.refresh(ctx, h); err != nil {
			if errors.Is(err, errStatus) {
				return h, false, nil
			}
			return h, false, err
		}
	}
	ok, _, err := c.accepted(ctx, h)
	return h, ok, err
}
