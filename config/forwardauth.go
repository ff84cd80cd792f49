package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/forwardauth"
	"go.yaml.in/yaml/v3"
)

// ForwardAuth is the forward_auth section: lapse as the gateway of a
// reverse proxy (package forwardauth).
type ForwardAuth struct {
	// Config is the gateway's configuration; lapse serve adds its
	// Manager, Logger and ProxyKey.
	forwardauth.Config
	// ProxyKeyEnv names the environment variable that holds the key a
	// proxy must send in X-Lapse-Proxy-Key; "" asks for none.
	ProxyKeyEnv string
	// ProxyAPIKeys: the proxy sends, in X-Lapse-Proxy-Key, an API key of
	// lapse keys that holds sessions:verify (and no tenant), or the key
	// of ProxyKeyEnv if that is set too.
	ProxyAPIKeys bool
}

func (p *parser) forwardAuth(n *yaml.Node, path string) *ForwardAuth {
	fa := &ForwardAuth{}
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		kp := join(path, key)
		switch key {
		case "cookie":
			fa.Cookie = p.str(v, kp)
		case "signin_url":
			fa.SignInURL = p.str(v, kp)
		case "stepup_url":
			fa.StepUpURL = p.str(v, kp)
		case "trusted_proxies":
			fa.TrustedProxies = p.prefixes(v, kp)
		case "proxy_key_env":
			fa.ProxyKeyEnv = p.str(v, kp)
			if !validEnvName(fa.ProxyKeyEnv) {
				p.errorf(v, kp, "%q is not an environment variable name (letters, digits and _)", fa.ProxyKeyEnv)
			}
		case "proxy_api_keys":
			fa.ProxyAPIKeys = p.boolean(v, kp)
		case "rules":
			fa.Rules = p.rules(v, kp)
		default:
			return false
		}
		return true
	})
	return fa
}

func (p *parser) rules(n *yaml.Node, path string) []forwardauth.Rule {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, path, "must be a list of rules")
		return nil
	}
	out := make([]forwardauth.Rule, 0, len(n.Content))
	for i, item := range n.Content {
		var rl forwardauth.Rule
		ip := fmt.Sprintf("%s[%d]", path, i)
		p.lines[ip] = item.Line
		p.fields(item, ip, func(key string, v *yaml.Node) bool {
			kp := join(ip, key)
			switch key {
			case "host":
				rl.Host = p.str(v, kp)
			case "path":
				rl.Path = p.str(v, kp)
			case "access":
				rl.Access = forwardauth.Access(p.str(v, kp))
			case "activity":
				rl.Activity = forwardauth.Activity(p.str(v, kp))
			case "require_aal":
				rl.RequireAAL = p.integer(v, kp)
			case "max_auth_age":
				rl.MaxAuthAge = p.duration(v, kp)
			case "tier":
				rl.Tier = p.str(v, kp)
			default:
				return false
			}
			return true
		})
		out = append(out, rl)
	}
	return out
}

// prefixes reads a list of IP addresses and CIDR prefixes.
func (p *parser) prefixes(n *yaml.Node, path string) []netip.Prefix {
	out := []netip.Prefix{}
	for _, s := range p.strs(n, path) {
		if pre, err := netip.ParsePrefix(s); err == nil {
			out = append(out, pre.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		} else {
			p.errorf(n, path, "%q is not an IP address or a CIDR prefix such as 10.0.0.0/8", s)
		}
	}
	return out
}

func validEnvName(s string) bool {
	if s == "" || len(s) > 128 || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_')
	}) < 0
}

// checkForwardAuth adds the forward_auth section's problems, once the
// policy its tier floors name is known.
func (p *parser) checkForwardAuth(f *File) {
	if f.ForwardAuth == nil {
		return
	}
	var pe *lapse.PolicyError
	if err := f.ForwardAuth.Validate(f.Policy); errors.As(err, &pe) {
		for _, fe := range pe.Problems {
			p.errs = append(p.errs, &Error{File: p.file, Line: p.line(fe.Path), Key: fe.Path, Msg: fe.Message})
		}
	}
}
