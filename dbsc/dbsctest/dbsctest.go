// Package dbsctest is a DBSC client written from the draft, for tests: a
// software device key (ES256 or RS256) that signs registration and
// refresh proofs, and the parsing of the headers a server sends it.
package dbsctest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Key is a device key held in software.
type Key struct {
	alg string
	ec  *ecdsa.PrivateKey
	rsa *rsa.PrivateKey
}

// NewES256 returns a fresh P-256 key.
func NewES256() *Key {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return &Key{alg: "ES256", ec: k}
}

// NewRS256 returns a fresh 2048-bit RSA key.
func NewRS256() *Key {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return &Key{alg: "RS256", rsa: k}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// JWK returns the public key as a JWK object.
func (k *Key) JWK() map[string]string {
	if k.ec != nil {
		raw, err := k.ec.PublicKey.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		return map[string]string{"kty": "EC", "crv": "P-256", "x": b64(raw[1:33]), "y": b64(raw[33:])}
	}
	e := k.rsa.E
	eb := []byte{byte(e >> 16), byte(e >> 8), byte(e)}
	for len(eb) > 1 && eb[0] == 0 {
		eb = eb[1:]
	}
	return map[string]string{"kty": "RSA", "n": b64(k.rsa.N.Bytes()), "e": b64(eb)}
}

// Thumbprint returns the key's RFC 7638 thumbprint.
func (k *Key) Thumbprint() string {
	j := k.JWK()
	var canon string
	if j["kty"] == "EC" {
		canon = `{"crv":"P-256","kty":"EC","x":"` + j["x"] + `","y":"` + j["y"] + `"}`
	} else {
		canon = `{"e":"` + j["e"] + `","kty":"RSA","n":"` + j["n"] + `"}`
	}
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:])
}

// Sign returns a compact JWS of claims with header, signed by k.
func (k *Key) Sign(header, claims map[string]any) string {
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	signed := b64(hb) + "." + b64(cb)
	digest := sha256.Sum256([]byte(signed))
	var sig []byte
	if k.ec != nil {
		r, s, err := ecdsa.Sign(rand.Reader, k.ec, digest[:])
		if err != nil {
			panic(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	} else {
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k.rsa, crypto.SHA256, digest[:]); err != nil {
			panic(err)
		}
	}
	return signed + "." + b64(sig)
}

// Registration returns the registration proof over challenge, as the
// draft writes it: typ dbsc+jwt, the public key in the claim "key".
func (k *Key) Registration(challenge, aud string) string {
	return k.Sign(map[string]any{"alg": k.alg, "typ": "dbsc+jwt"},
		map[string]any{"jti": challenge, "aud": aud, "iat": 1, "key": k.JWK()})
}

// Refresh returns the refresh proof over challenge.
func (k *Key) Refresh(challenge string) string {
	return k.Sign(map[string]any{"alg": k.alg, "typ": "dbsc+jwt"}, map[string]any{"jti": challenge})
}

// Params returns the parameters of a structured-field header value such
// as Secure-Session-Registration's `(ES256);path="/r";challenge="c"`,
// with their string values unquoted, and the leading item.
func Params(v string) (item string, params map[string]string) {
	params = map[string]string{}
	parts := strings.Split(v, ";")
	for _, p := range parts[1:] {
		name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[name] = strings.Trim(val, `"`)
	}
	return strings.TrimSpace(parts[0]), params
}
