package dbsc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"

	"github.com/lapsehq/lapse"
)

// The proofs are JWS compact serialisations verified with the standard
// library: two algorithms, one key type each, and a JWK of four members
// are less code than the options of a JOSE module, and nothing outside
// them (no "none", no HMAC with a public key as the secret, no key URL in
// the header) can be reached.

// MaxProofLen caps a Secure-Session-Response header; a proof with an
// RSA-4096 key is under 2 KiB.
const MaxProofLen = 8 << 10

// JWTType is the "typ" of every DBSC proof.
const JWTType = "dbsc+jwt"

// Algorithms lapse accepts, in the order it offers them.
var Algorithms = []string{"ES256", "RS256"}

// Proof is a verified DBSC proof: the challenge it answers, the key that
// signed it and, for a registration, the authorization value the server
// asked to be echoed.
type Proof struct {
	Alg           string
	Challenge     string
	Key           lapse.DeviceKey
	Authorization string
}

// errProof is the one answer to a proof lapse refuses; the message says
// what was wrong, the code is the same for every cause.
func errProof(msg string) error {
	return lapse.Errorf(lapse.CodeDeviceProofInvalid, "the device proof is not valid: %s", msg)
}

type header struct {
	Alg string          `json:"alg"`
	Typ string          `json:"typ"`
	JWK json.RawMessage `json:"jwk"`
}

type claims struct {
	JTI           string          `json:"jti"`
	Key           json.RawMessage `json:"key"`
	Authorization string          `json:"authorization"`
}

// split decodes the three parts of a compact JWS and checks the header.
func split(jwt string) (h header, c claims, signed, sig []byte, err error) {
	if len(jwt) > MaxProofLen {
		return h, c, nil, nil, errProof("too long")
	}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return h, c, nil, nil, errProof("not a compact JWS")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return h, c, nil, nil, errProof("not base64url")
	}
	if json.Unmarshal(hb, &h) != nil || json.Unmarshal(cb, &c) != nil {
		return h, c, nil, nil, errProof("header or claims are not JSON objects")
	}
	switch {
	case h.Typ != JWTType:
		return h, c, nil, nil, errProof(`typ is not "dbsc+jwt"`)
	case h.Alg != "ES256" && h.Alg != "RS256":
		return h, c, nil, nil, errProof("alg must be ES256 or RS256")
	case c.JTI == "":
		return h, c, nil, nil, errProof("no jti (the challenge)")
	}
	return h, c, []byte(parts[0] + "." + parts[1]), sig, nil
}

// ParseRegistration verifies a registration proof: signed by the key it
// carries (the claim "key", or the header's "jwk"), with alg that key's.
// It fails with [lapse.CodeDeviceProofInvalid].
func ParseRegistration(jwt string) (Proof, error) {
	h, c, signed, sig, err := split(jwt)
	if err != nil {
		return Proof{}, err
	}
	raw := c.Key
	if len(raw) == 0 {
		raw = h.JWK
	}
	key, err := ParseJWK(raw)
	if err != nil {
		return Proof{}, err
	}
	if err := verify(h.Alg, key, signed, sig); err != nil {
		return Proof{}, err
	}
	return Proof{Alg: h.Alg, Challenge: c.JTI, Key: key.DeviceKey, Authorization: c.Authorization}, nil
}

// ParseRefresh verifies a refresh proof against the registered key jwk.
// It fails with [lapse.CodeDeviceProofInvalid], also when another key signed it.
func ParseRefresh(jwt string, jwk []byte) (Proof, error) {
	h, c, signed, sig, err := split(jwt)
	if err != nil {
		return Proof{}, err
	}
	key, err := ParseJWK(jwk)
	if err != nil {
		return Proof{}, err
	}
	if err := verify(h.Alg, key, signed, sig); err != nil {
		return Proof{}, err
	}
	return Proof{Alg: h.Alg, Challenge: c.JTI, Key: key.DeviceKey}, nil
}

// PublicKey is a parsed JWK: the key, its algorithm and its
// [lapse.DeviceKey] (the canonical JWK and RFC 7638 thumbprint).
type PublicKey struct {
	lapse.DeviceKey
	Alg string
	EC  *ecdsa.PublicKey
	RSA *rsa.PublicKey
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// ParseJWK parses a public JWK: an EC key on P-256 (for ES256) or an RSA
// key of 2048 to 8192 bits (for RS256). Private members are ignored. It
// fails with [lapse.CodeDeviceProofInvalid].
func ParseJWK(raw []byte) (PublicKey, error) {
	var k jwk
	if len(raw) == 0 || json.Unmarshal(raw, &k) != nil {
		return PublicKey{}, errProof("no public key (a JWK)")
	}
	switch k.Kty {
	case "EC":
		return parseEC(k)
	case "RSA":
		return parseRSA(k)
	}
	return PublicKey{}, errProof("the key is neither EC nor RSA")
}

func parseEC(k jwk) (PublicKey, error) {
	x, err1 := base64.RawURLEncoding.DecodeString(k.X)
	y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
	if k.Crv != "P-256" || err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
		return PublicKey{}, errProof("an EC key must be on P-256 with 32-byte coordinates")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return PublicKey{}, errProof("the EC point is not on P-256")
	}
	canon := `{"crv":"P-256","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`
	return PublicKey{DeviceKey: deviceKey(canon), Alg: "ES256", EC: pub}, nil
}

func parseRSA(k jwk) (PublicKey, error) {
	n, err1 := base64.RawURLEncoding.DecodeString(k.N)
	e, err2 := base64.RawURLEncoding.DecodeString(k.E)
	if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 || len(n) == 0 || n[0] == 0 || e[0] == 0 {
		return PublicKey{}, errProof("an RSA key needs n and e, unpadded")
	}
	exp := int(new(big.Int).SetBytes(e).Int64())
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	if bits := pub.N.BitLen(); bits < 2048 || bits > 8192 || exp < 3 || exp%2 == 0 {
		return PublicKey{}, errProof("an RSA key must have 2048 to 8192 bits and an odd exponent")
	}
	canon := `{"e":"` + k.E + `","kty":"RSA","n":"` + k.N + `"}`
	return PublicKey{DeviceKey: deviceKey(canon), Alg: "RS256", RSA: pub}, nil
}

// deviceKey returns the key whose canonical JWK (RFC 7638: the required
// members, sorted, no spaces) is canon.
func deviceKey(canon string) lapse.DeviceKey {
	sum := sha256.Sum256([]byte(canon))
	return lapse.DeviceKey{Thumbprint: base64.RawURLEncoding.EncodeToString(sum[:]), JWK: json.RawMessage(canon)}
}

// verify checks sig over signed with key, which must be of alg's kind.
func verify(alg string, key PublicKey, signed, sig []byte) error {
	if alg != key.Alg {
		return errProof("alg does not match the key")
	}
	digest := sha256.Sum256(signed)
	ok := false
	if key.EC != nil {
		ok = len(sig) == 64 && ecdsa.Verify(key.EC, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
	} else {
		ok = rsa.VerifyPKCS1v15(key.RSA, crypto.SHA256, digest[:], sig) == nil
	}
	if !ok {
		return errProof("the signature does not verify")
	}
	return nil
}
