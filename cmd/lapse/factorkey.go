package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/passkey"
	"github.com/lapsehq/lapse/totp"
)

// builtInFactors returns lapse's own TOTP factor over m's store, or nil
// (the factor routes then answer 404) when the store keeps no factors.
func builtInFactors(cfg *config.File, m *lapse.Manager, log *slog.Logger) (lapse.FactorService, error) {
	if _, ok := m.Store().(lapse.FactorStore); !ok {
		log.Info("this store keeps no factors: the built-in TOTP routes answer 404", "store", cfg.Store)
		return nil, nil
	}
	key, err := factorKey(cfg)
	if err != nil {
		return nil, err
	}
	return totp.New(totp.Config{Manager: m, Key: key})
}

// passkeys returns the passkey factor of cfg's passkeys section, over
// m's store, or nil (the passkey routes then answer 404) without one. The
// server sets no cookie of its own, so a step-up through its session
// routes goes by bearer token; a gateway or an app that owns the cookie
// passes its own StepUp.
func passkeys(cfg *config.File, m *lapse.Manager) (lapse.PasskeyService, error) {
	pk := cfg.Passkeys
	if pk == nil {
		return nil, nil
	}
	if _, ok := m.Store().(lapse.FactorStore); !ok {
		return nil, fmt.Errorf("%s: passkeys: the store %q keeps no factors", cfg.Path, cfg.Store)
	}
	svc, err := passkey.New(passkey.Config{Manager: m, RPID: pk.RPID, RPName: pk.RPName, Origins: pk.Origins, Timeout: pk.Timeout})
	if err != nil {
		return nil, fmt.Errorf("%s: passkeys: %w", cfg.Path, err)
	}
	return svc, nil
}

// factorKeyFile is where a generated factor key is kept, in the data
// directory.
const factorKeyFile = "factor.key"

// factorKey returns the key that seals TOTP secrets at rest, from the
// first of: LAPSE_FACTOR_KEY (base64), factor_key in the configuration,
// the factor.key file in the data directory, which is generated with
// permissions 0600 on the first start. It is never kept in the store, so
// a copy of the database alone opens no secret; set the key from a
// secret manager to keep it away from the data directory too. Changing it
// makes every enrolled factor fail to open.
func factorKey(cfg *config.File) ([]byte, error) {
	if v := os.Getenv("LAPSE_FACTOR_KEY"); v != "" {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil || len(k) != totp.KeySize {
			return nil, fmt.Errorf("LAPSE_FACTOR_KEY must be %d random bytes in base64 (make one with 'openssl rand -base64 %d')", totp.KeySize, totp.KeySize)
		}
		return k, nil
	}
	if cfg.FactorKey != nil {
		return cfg.FactorKey, nil
	}
	path := filepath.Join(cfg.DataDir, factorKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		info, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if info.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s is readable by other users (%v); run 'chmod 600 %s'", path, info.Mode().Perm(), path)
		}
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != totp.KeySize {
			return nil, fmt.Errorf("%s does not hold a %d-byte key in base64; restore it from a backup (deleting it loses every enrolled TOTP factor)", path, totp.KeySize)
		}
		return k, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	k := make([]byte, totp.KeySize)
	rand.Read(k) // never fails (Go 1.24+)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return nil, err
	}
	return k, nil
}
