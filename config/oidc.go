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
	c := client{issuer: &o.Issuer, clientID: &o.ClientID, redirectURL: &o.RedirectURL, scopes: &o.Scopes,
		assurance: &o.Assurance, secretEnv: &o.SecretEnv, secretFile: &o.SecretFile}
	p.fields(n, path, func(key string, v *yaml.Node) bool {
		kp := join(path, key)
		switch key {
		case "subject_claim":
			o.SubjectClaim = p.str(v, kp)
		case "tenant_claim":
			o.TenantClaim = p.str(v, kp)
		default:
			return p.clientKey(c, key, kp, v) || p.oidcMore(o, key, kp, v)
		}
		return true
	})
	p.checkSecret(c, path)
	return o
}

// client points to the fields of a client at an identity provider, which
// the oidc and console.oidc sections share.
type client struct {
	issuer, clientID, redirectURL, secretEnv, secretFile *string
	scopes                                               *[]string
	assurance                                            *oidc.Assurance
}

// clientKey reads the keys of a client, and reports whether key is one.
func (p *parser) clientKey(c client, key, kp string, v *yaml.Node) bool {
	switch key {
	case "issuer":
		*c.issuer = p.str(v, kp)
	case "client_id":
		*c.clientID = p.str(v, kp)
	case "client_secret_env":
		if *c.secretEnv = p.str(v, kp); !validEnvName(*c.secretEnv) {
			p.errorf(v, kp, "%q is not an environment variable name (letters, digits and _)", *c.secretEnv)
		}
	case "client_secret_file":
		*c.secretFile = p.str(v, kp)
	case "redirect_url":
		*c.redirectURL = p.str(v, kp)
	case "scopes":
		*c.scopes = p.strs(v, kp)
	case "acr":
		c.assurance.ACR = p.levels(v, kp)
	case "amr":
		c.assurance.AMR = p.levels(v, kp)
	default:
		return false
	}
	return true
}

// checkSecret requires one source of the client secret of the section
// at path.
func (p *parser) checkSecret(c client, path string) {
	if (*c.secretEnv == "") == (*c.secretFile == "") {
		p.errs = append(p.errs, &Error{File: p.file, Line: p.lines[path], Key: path, Msg: "set exactly one of client_secret_env and client_secret_file: the client secret is never written in this file"})
	}
}

// oidcMore reads the oidc keys that oidc leaves to it.
func (p *parser) oidcMore(o *OIDC, key, kp string, v *yaml.Node) bool {
	switch key {
	case "tier":
		o.Tier = p.str(v, kp)
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
