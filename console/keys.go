package console

import (
	"net/http"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/throttle"
)

type keysView struct {
	base
	Keys []*lapse.APIKey
}

// keysPage lists the API keys, for an admin: a platform admin sees every
// key, an admin bound to a tenant that tenant's keys (the keyring
// filters by the request's tenant).
func (c *Console) keysPage(w http.ResponseWriter, r *http.Request, a *access) error {
	ks, err := c.ring.Keys(r.Context())
	if err != nil {
		return err
	}
	v := &keysView{base: c.base(r, a, "API keys", "keys"), Keys: ks}
	v.Notice = notice(r.URL.Query())
	c.render(w, http.StatusOK, "keys", v)
	return nil
}

// revokeKey revokes a key, attributed to the admin, from their address.
// Another tenant's key answers as an unknown one. A key revoked already
// changes nothing and records nothing.
func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, a *access) error {
	ip := ""
	if client := throttle.ClientAddr(r, c.trusted); client.IsValid() {
		ip = client.String()
	}
	_, err := c.ring.Revoke(r.Context(), r.PathValue("id"), a.who.Actor, ip)
	if lapse.ErrorCode(err) == lapse.CodeKeyNotFound {
		return errNotFound
	} else if err != nil {
		return err
	}
	http.Redirect(w, r, withNotice(Prefix+"keys", "key_revoked", 1), http.StatusSeeOther)
	return nil
}
