package httpapi

import (
	"net/http"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/problem"
)

// Key is the JSON form of an API key: never its secret or hash.
type Key struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Scopes     []lapse.Scope `json:"scopes"`
	Tenant     string        `json:"tenant"`
	CreatedAt  string        `json:"created_at"`
	ExpiresAt  *string       `json:"expires_at"`
	LastUsedAt *string       `json:"last_used_at"`
	RevokedAt  *string       `json:"revoked_at"`
}

// NewKey returns the JSON form of k.
func NewKey(k *lapse.APIKey) Key {
	opt := func(t time.Time) *string {
		if t.IsZero() {
			return nil
		}
		return new(formatTime(t))
	}
	return Key{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Tenant: k.Tenant, CreatedAt: formatTime(k.CreatedAt),
		ExpiresAt: opt(k.ExpiresAt), LastUsedAt: opt(k.LastUsedAt), RevokedAt: opt(k.RevokedAt)}
}

type keysResponse struct {
	Keys []Key `json:"keys"`
}

type createKeyRequest struct {
	Name      string        `json:"name"`
	Scopes    []lapse.Scope `json:"scopes"`
	Tenant    string        `json:"tenant"`
	ExpiresIn Duration      `json:"expires_in"`
}

type createKeyResponse struct {
	// Secret is the key itself, shown this once.
	Secret string `json:"key"`
	Key    Key    `json:"api_key"`
}

// keyring returns the server's keyring, answering 404 if it has none.
func (s *Server) keyringOr404(w http.ResponseWriter, r *http.Request) *lapse.Keyring {
	if s.keyring == nil {
		s.writeProblem(w, r, problem.CodeNotFound, "this server keeps no API keys in its store", nil)
	}
	return s.keyring
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	ring := s.keyringOr404(w, r)
	if ring == nil {
		return
	}
	ks, err := ring.Keys(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := keysResponse{Keys: make([]Key, 0, len(ks))}
	for _, k := range ks {
		out.Keys = append(out.Keys, NewKey(k))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	ring := s.keyringOr404(w, r)
	if ring == nil {
		return
	}
	var req createKeyRequest
	if !s.decode(w, r, &req) {
		return
	}
	spec := lapse.KeySpec{Name: req.Name, Scopes: req.Scopes, Tenant: req.Tenant}
	if req.ExpiresIn > 0 {
		spec.ExpiresAt = s.m.Clock().Now().Add(time.Duration(req.ExpiresIn))
	}
	secret, k, err := ring.Create(r.Context(), spec, actor(r), clientIP(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, createKeyResponse{Secret: secret, Key: NewKey(k)})
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	ring := s.keyringOr404(w, r)
	if ring == nil {
		return
	}
	k, err := ring.Key(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, NewKey(k))
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	ring := s.keyringOr404(w, r)
	if ring == nil {
		return
	}
	k, err := ring.Revoke(r.Context(), r.PathValue("id"), actor(r), clientIP(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, NewKey(k))
}
