package config

import (
	"errors"
	"fmt"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/oidc"
	"go.yaml.in/yaml/v3"
)

// OIDC is the oidc section: sign-in through an identity provider
// (package oidc).
type OIDC struct {
	// Config is the relying party's configuration; lapse serve adds its
	// Manager, ClientSecret, Requirement and Logger.
	oidc.Config
	// SecretEnv names the environment variable, and SecretFile the file,
	// that holds the client secret: exactly one is set.
	SecretEnv, SecretFile string
}

func (p *parser) oidc(n *yaml.Node, path string) *OIDC {
	o := &OIDC{}
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		kp := join(path, key)
		switch key {
		case "issuer":
			o.Issuer = p.str(v, kp)
		case "client_id":
			o.ClientID = p.str(v, kp)
		case "client_secret_env":
			if o.SecretEnv = p.str(v, kp); !validEnvName(o.SecretEnv) {
				p.errorf(v, kp, "%q is not an environment variable name (letters, digits and _)", o.SecretEnv)
			}
		case "client_secret_file":
			o.SecretFile = p.str(v, kp)
		case "redirect_url":
			o.RedirectURL = p.str(v, kp)
		case "scopes":
			o.Scopes = p.strs(v, kp)
		case "subject_claim":
			o.SubjectClaim = p.str(v, kp)
		case "tenant_claim":
			o.TenantClaim = p.str(v, kp)
		default:
			return p.oidcMore(o, key, kp, v)
		}
		return true
	})
	if (o.SecretEnv == "") == (o.SecretFile == "") {
		p.errs = append(p.errs, &Error{File: p.file, Line: p.lines[path], Key: path, Msg: "set exactly one of client_secret_env and client_secret_file: the client secret is never written in this file"})
	}
	return o
}

// oidcMore reads the oidc keys that oidc leaves to it.
func (p *parser) oidcMore(o *OIDC, key, kp string, v *yaml.Node) bool {
	switch key {
	case "tier":
		o.Tier = p.str(v, kp)
	case "acr":
		o.Assurance.ACR = p.levels(v, kp)
	case "amr":
		o.Assurance.AMR = p.levels(v, kp)
	case "app_origins":
		o.AppOrigins = p.strs(v, kp)
		for i, item := range v.Content {
			p.lines[fmt.Sprintf("%s[%d]", kp, i)] = item.Line
		}
	case "cookie":
		o.Cookie = p.str(v, kp)
	case "end_session":
		o.EndSession = p.boolean(v, kp)
	case "post_logout_redirect_url":
		o.PostLogoutRedirectURL = p.str(v, kp)
	default:
		return false
	}
	return true
}

// levels reads a mapping of values to assurance levels.
func (p *parser) levels(n *yaml.Node, path string) map[string]int {
	out := map[string]int{}
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		out[key] = p.integer(v, join(path, key))
		return true
	})
	return out
}

// checkOIDC adds the oidc section's problems and, with a forward_auth
// section, makes the two agree: one session cookie, and a signed-out or
// step-up navigation sent to the identity provider unless forward_auth
// names its own pages.
func (p *parser) checkOIDC(f *File) {
	o := f.OIDC
	if o == nil {
		return
	}
	if fa := f.ForwardAuth; fa != nil {
		switch {
		case o.Cookie == "":
			o.Cookie = fa.Cookie
		case fa.Cookie == "":
			fa.Cookie = o.Cookie
		case fa.Cookie != o.Cookie:
			p.errs = append(p.errs, &Error{File: p.file, Line: p.line("oidc.cookie"), Key: "oidc.cookie",
				Msg: fmt.Sprintf("%q differs from forward_auth.cookie %q: the gateway reads the cookie sign-in sets, so they are one (leave one out)", o.Cookie, fa.Cookie)})
		}
		if fa.SignInURL == "" {
			fa.SignInURL = oidc.Prefix + "/login"
		}
		if fa.StepUpURL == "" {
			fa.StepUpURL = oidc.Prefix + "/stepup"
		}
	}
	var pe *lapse.PolicyError
	if err := o.Validate(f.Policy); errors.As(err, &pe) {
		for _, fe := range pe.Problems {
			p.errs = append(p.errs, &Error{File: p.file, Line: p.line(fe.Path), Key: fe.Path, Msg: fe.Message})
		}
	}
}
