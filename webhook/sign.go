// Package webhook delivers lapse's events to HTTP endpoints, signed as the
// Standard Webhooks specification describes (webhook-id,
// webhook-timestamp, webhook-signature: v1,base64(HMAC-SHA256)), at least
// once, with exponential backoff and jitter, and a dead-letter list an
// operator can replay.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts a Standard Webhooks secret; the rest is base64.
const SecretPrefix = "whsec_"

// ParseSecret returns the key of a "whsec_..." secret.
func ParseSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, errors.New(`a webhook secret starts with "whsec_" followed by base64`)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) < 24 {
		return nil, errors.New("a webhook secret's key must be base64 of at least 24 bytes")
	}
	return key, nil
}

// NewSecret returns a fresh "whsec_" secret with a 32-byte key.
func NewSecret() string {
	key := make([]byte, 32)
	rand.Read(key)
	return SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// Sign returns the webhook-signature header value for a message.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery's headers and body against key, as a receiver
// does: one of the space-separated v1 signatures must match (compared in
// constant time), and the timestamp must be within tolerance of now.
func Verify(key []byte, id, timestamp, signatures string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook-timestamp is not a Unix time")
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return errors.New("webhook-timestamp is too far from now")
	}
	want := Sign(key, id, ts, body)
	for _, sig := range strings.Fields(signatures) {
		if hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no webhook-signature matches")
}
