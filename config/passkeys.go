package config

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lapsehq/lapse/passkey"
)

// Passkeys is the passkeys section: the relying party that passkeys are
// registered with and the origins allowed to use them.
//
//	passkeys:
//	  rp_id: example.com                  # the domain the passkeys belong to
//	  rp_name: Example                    # shown by authenticators; default rp_id
//	  origins: [https://app.example.com]  # pages allowed to run the ceremonies
//	  timeout: 5m                         # how long a challenge lives
type Passkeys struct {
	RPID    string
	RPName  string
	Origins []string
	// Timeout is how long a ceremony's challenge lives; 0 means
	// passkey.DefaultTimeout.
	Timeout time.Duration
}

// passkeys reads the passkeys section; every error names its key and line.
func (p *parser) passkeys(n *yaml.Node, path string) *Passkeys {
	pk := &Passkeys{}
	var rpID, origins *yaml.Node
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		kp := join(path, key)
		switch key {
		case "rp_id":
			pk.RPID, rpID = p.str(v, kp), v
		case "rp_name":
			pk.RPName = p.str(v, kp)
		case "origins":
			pk.Origins, origins = p.strs(v, kp), v
		case "timeout":
			if pk.Timeout = p.duration(v, kp); pk.Timeout != 0 && (pk.Timeout < 30*time.Second || pk.Timeout > 10*time.Minute) {
				p.errorf(v, kp, "must be between 30s and 10m (WebAuthn recommends 5m to 10m when user verification is required)")
			}
		default:
			return false
		}
		return true
	})
	if n.Kind != yaml.MappingNode || !p.relyingParty(n, path, pk, rpID, origins) {
		return nil
	}
	return pk
}

// relyingParty checks the section's rp_id and origins, at their nodes
// (nil when the key is missing), and reports whether they are usable.
func (p *parser) relyingParty(n *yaml.Node, path string, pk *Passkeys, rpID, origins *yaml.Node) bool {
	if rpID == nil {
		p.errorf(n, join(path, "rp_id"), "is required: the domain the passkeys belong to, such as example.com")
		return false
	}
	if err := passkey.CheckRPID(pk.RPID); err != nil {
		p.errorf(rpID, join(path, "rp_id"), "%q %v", pk.RPID, err)
		return false
	}
	if origins == nil || len(pk.Origins) == 0 {
		p.errorf(n, join(path, "origins"), "is required: the origins of the pages that use passkeys, such as [https://app.%s]", pk.RPID)
		return false
	}
	ok := true
	for i, o := range pk.Origins {
		at := origins
		if len(origins.Content) == len(pk.Origins) {
			at = origins.Content[i]
		}
		if err := passkey.CheckOrigin(pk.RPID, o); err != nil {
			p.errorf(at, fmt.Sprintf("%s.origins[%d]", path, i), "%q %v", o, err)
			ok = false
		}
	}
	return ok
}
