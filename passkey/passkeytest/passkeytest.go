// Package passkeytest is the client side of the WebAuthn ceremonies for
// tests: a software authenticator that keeps ES256 (P-256) keys in
// memory and answers the options of navigator.credentials.create() and
// get() the way a browser and a platform authenticator would, from a
// given origin. It builds real responses (CBOR attestation objects,
// signed assertions), so the server side is tested against the bytes a
// browser sends, not a stub.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// Authenticator flags (WebAuthn §6.1).
const (
	flagUP = 0x01 // user present
	flagUV = 0x04 // user verified
	flagBE = 0x08 // backup eligible
	flagBS = 0x10 // backed up
	flagAT = 0x40 // attested credential data included
)

// Authenticator is a software authenticator seen through a browser at
// Origin. Set its fields before use; it is not safe for concurrent use.
type Authenticator struct {
	// Origin is the page's origin the browser reports in the client
	// data, such as "https://app.example.com".
	Origin string
	// Synced makes the credentials it creates synced passkeys: the
	// backup-eligible and backed-up flags set.
	Synced bool
	// SkipUserVerification answers without verifying the user (no UV
	// flag), as an authenticator without a PIN or biometric would.
	SkipUserVerification bool
	creds                []*credential
}

type credential struct {
	id      []byte
	rpID    string
	handle  []byte
	key     *ecdsa.PrivateKey
	counter uint32
	synced  bool
}

var b64 = base64.RawURLEncoding

// creationOptions is what Create reads of the creation options.
type creationOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Exclude []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
	} `json:"publicKey"`
}

// Create answers creation options (the JSON {"publicKey": ...} of a
// registration) with the JSON of a new PublicKeyCredential: a fresh
// P-256 key, attestation "none", its counter at 0. It fails, as a browser
// would, when it already holds an excluded credential.
func (a *Authenticator) Create(options []byte) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, err
	}
	for _, ex := range o.PublicKey.Exclude {
		if a.find(ex.ID) != nil {
			return nil, errors.New("passkeytest: InvalidStateError: the authenticator already holds an excluded credential")
		}
	}
	handle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &credential{id: make([]byte, 16), rpID: o.PublicKey.RP.ID, handle: handle, key: key, synced: a.Synced}
	rand.Read(c.id)
	a.creds = append(a.creds, c)
	return a.attest(c, o.PublicKey.Challenge)
}

// attest is the registration response for c to challenge.
func (a *Authenticator) attest(c *credential, challenge string) ([]byte, error) {
	pub, err := coseKey(&c.key.PublicKey)
	if err != nil {
		return nil, err
	}
	auth := a.authData(c, flagAT)
	auth = append(auth, make([]byte, 16)...) // AAGUID: all zero, no model said
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(c.id)))
	auth = append(append(auth, c.id...), pub...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(a.clientData("webauthn.create", challenge)),
			"attestationObject": b64.EncodeToString(att),
			"transports":        []string{"internal", "hybrid"},
		},
	})
}

// Again answers creation options with the credential it made last,
// ignoring the options' exclusions, as a faulty or hostile client could:
// the same credential registered a second time.
func (a *Authenticator) Again(options []byte) ([]byte, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, err
	}
	if len(a.creds) == 0 {
		return nil, errors.New("passkeytest: no credential made yet")
	}
	return a.attest(a.creds[len(a.creds)-1], o.PublicKey.Challenge)
}

// requestOptions is what Get reads of the request options.
type requestOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		Allow     []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

// Get answers request options (the JSON {"publicKey": ...} of an
// assertion) with the JSON of a PublicKeyCredential signed by the first
// credential it holds that the options allow, its counter one up.
func (a *Authenticator) Get(options []byte) ([]byte, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, err
	}
	var c *credential
	for _, al := range o.PublicKey.Allow {
		if c = a.find(al.ID); c != nil {
			break
		}
	}
	if c == nil || c.rpID != o.PublicKey.RPID {
		return nil, errors.New("passkeytest: NotAllowedError: no credential of this authenticator is allowed")
	}
	c.counter++
	auth := a.authData(c, 0)
	cd := a.clientData("webauthn.get", o.PublicKey.Challenge)
	sum := sha256.Sum256(cd)
	digest := sha256.Sum256(slices.Concat(auth, sum[:]))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.id), "rawId": b64.EncodeToString(c.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cd),
			"authenticatorData": b64.EncodeToString(auth),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(c.handle),
		},
	})
}

// SetCounter sets the signature counter of every credential it holds,
// as a copy of the key made earlier would have it; the next Get signs
// with n+1.
func (a *Authenticator) SetCounter(n uint32) {
	for _, c := range a.creds {
		c.counter = n
	}
}

func (a *Authenticator) find(id string) *credential {
	raw, err := b64.DecodeString(id)
	if err != nil {
		return nil
	}
	for _, c := range a.creds {
		if string(c.id) == string(raw) {
			return c
		}
	}
	return nil
}

// authData is the authenticator data's fixed part: the relying party
// id's hash, the flags (with extra), the counter.
func (a *Authenticator) authData(c *credential, extra byte) []byte {
	rp := sha256.Sum256([]byte(c.rpID))
	flags := flagUP | extra
	if !a.SkipUserVerification {
		flags |= flagUV
	}
	if c.synced {
		flags |= flagBE | flagBS
	}
	return binary.BigEndian.AppendUint32(append(rp[:], flags), c.counter)
}

// clientData is the client data JSON the browser would make.
func (a *Authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

// coseKey encodes a P-256 public key as a COSE_Key (RFC 9053): EC2,
// ES256, the curve and both coordinates.
func coseKey(k *ecdsa.PublicKey) ([]byte, error) {
	raw, err := k.Bytes() // 0x04 || x || y
	if err != nil {
		return nil, err
	}
	return webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: raw[1:33], -3: raw[33:65]})
}
