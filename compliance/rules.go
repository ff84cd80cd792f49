package compliance

import (
	"fmt"
	"time"
)

// This file holds the built-in profiles. Numbers and wording come from
// the standards' own texts as collected in reference/standards.md; a rule
// states its source so an auditor can check it without reading the code.

const (
	day = 24 * time.Hour

	nist4Doc = "NIST SP 800-63B-4"
	nist3Doc = "NIST SP 800-63B"
	pciDoc   = "PCI DSS v4.0.1"
	hipaaDoc = "45 CFR"
	asvs4Doc = "OWASP ASVS 4.0.3"
	asvs5Doc = "OWASP ASVS 5.0.0"
)

// Parameter names.
const (
	// ParamHIPAAIdle is the HIPAA "predetermined time of inactivity".
	ParamHIPAAIdle = "hipaa.idle"
	// ParamASVS5Idle is the inactivity timeout an organisation's ASVS 5
	// risk analysis settled on (7.1.1, 7.3.1).
	ParamASVS5Idle = "asvs-5.idle"
	// ParamASVS5Absolute is the absolute session lifetime an
	// organisation's ASVS 5 risk analysis settled on (7.1.1, 7.3.2).
	ParamASVS5Absolute = "asvs-5.absolute"
)

// HIPAADefaultIdle is the default of [ParamHIPAAIdle]. HIPAA names no
// number; 15 minutes is the figure the neighbouring rules converge on:
// PCI DSS 8.2.8, NIST SP 800-63B AAL3, FedRAMP AC-11, CIS Controls 4.3,
// the Australian ISM, and Tenable's HIPAA audit file (900000 ms).
const HIPAADefaultIdle = 15 * time.Minute

func tierRule(id string, sev Severity, key, source, text string, check func(Input) Outcome) Rule {
	return Rule{ID: id, Severity: sev, Scope: ScopeTier, Key: key, Source: source, Text: text, Check: check}
}

// engineRule is a structural rule: it passes when the fact holds.
func engineRule(id string, sev Severity, source, text string, fact func(Engine) bool) Rule {
	return Rule{ID: id, Severity: sev, Scope: ScopeEngine, Source: source, Text: text,
		Check: func(in Input) Outcome {
			ok := fact(in.Engine)
			return Outcome{Configured: yesNo(ok), Required: "yes", Pass: ok}
		}}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// atMost passes when got is set and no longer than limit.
func atMost(got, limit time.Duration) Outcome {
	return Outcome{Configured: FormatDuration(got), Required: "at most " + FormatDuration(limit), Pass: got > 0 && got <= limit}
}

func idleMax(sev Severity, limit time.Duration, source, text string) Rule {
	return tierRule("idle-max", sev, "idle_timeout", source, text,
		func(in Input) Outcome { return atMost(in.Tier.IdleTimeout, limit) })
}

func absoluteMax(sev Severity, limit time.Duration, source, text string) Rule {
	return tierRule("absolute-max", sev, "absolute_timeout", source, text,
		func(in Input) Outcome { return atMost(in.Tier.AbsoluteTimeout, limit) })
}

func absoluteSet(source, text string) Rule {
	return tierRule("absolute-set", SeverityError, "absolute_timeout", source, text,
		func(in Input) Outcome {
			d := in.Tier.AbsoluteTimeout
			return Outcome{Configured: FormatDuration(d), Required: "set", Pass: d > 0}
		})
}

// aalMin passes when the tier refuses sessions authenticated below aal.
func aalMin(aal int, source, text string) Rule {
	return tierRule("aal-min", SeverityError, "require_aal", source, text,
		func(in Input) Outcome {
			got := max(in.Tier.RequireAAL, 1)
			return Outcome{Configured: fmt.Sprintf("AAL%d", got), Required: fmt.Sprintf("at least AAL%d", aal), Pass: got >= aal}
		})
}

func tokenEntropy(bits int, source, text string) Rule {
	return Rule{ID: "token-entropy", Severity: SeverityError, Scope: ScopeEngine, Source: source, Text: text,
		Check: func(in Input) Outcome {
			e := in.Engine
			got := fmt.Sprintf("%d bits from %s", e.TokenBits, e.TokenGenerator)
			if !e.TokenCSPRNG {
				got += " (not a CSPRNG)"
			}
			return Outcome{Configured: got, Required: fmt.Sprintf("at least %d bits from a CSPRNG", bits), Pass: e.TokenCSPRNG && e.TokenBits >= bits}
		}}
}

// The NIST SP 800-63B-4 profiles (final, July 2025).
func nist4(aal int) Profile {
	src := func(sec string) string { return nist4Doc + " " + sec }
	p := Profile{
		Name:  fmt.Sprintf("nist-800-63b-4-aal%d", aal),
		Title: fmt.Sprintf("NIST SP 800-63B-4 (July 2025), AAL%d", aal),
	}
	reauth := fmt.Sprintf("§2.%d.3", aal)
	p.Rules = append(p.Rules,
		absoluteSet(src(reauth), "A definite overall (absolute) timeout is established for every session."))
	switch aal {
	case 1:
		p.Rules = append(p.Rules,
			absoluteMax(SeverityWarning, 30*day, src("§2.1.3"), "The overall timeout SHOULD be no more than 30 days."))
	case 2:
		p.Rules = append(p.Rules,
			absoluteMax(SeverityWarning, 24*time.Hour, src("§2.2.3"), "The overall timeout SHOULD be no more than 24 hours."),
			idleMax(SeverityWarning, time.Hour, src("§2.2.3"), "The inactivity timeout SHOULD be no more than 1 hour."),
			aalMin(2, src("§2.2.1"), "AAL2 SHALL use multi-factor authentication: the tier refuses sessions authenticated below AAL2."))
	case 3:
		p.Rules = append(p.Rules,
			absoluteMax(SeverityError, 12*time.Hour, src("§2.3.3"), "The overall timeout SHALL be no more than 12 hours."),
			idleMax(SeverityWarning, 15*time.Minute, src("§2.3.3"), "The inactivity timeout SHOULD be no more than 15 minutes."),
			aalMin(3, src("§2.3.1"), "AAL3 SHALL use a hardware-based, phishing-resistant authenticator: the tier refuses sessions authenticated below AAL3."))
	}
	p.Rules = append(p.Rules,
		engineRule("absolute-fixed", SeverityError, src("§2.1.3, §5.2"),
			"Activity never extends the overall timeout; it runs from authentication or the last reauthentication.",
			func(e Engine) bool { return e.AbsoluteFixed }),
		engineRule("activity-resets-idle", SeverityError, src("§5.2"),
			"Session activity SHALL reset the inactivity timeout.",
			func(e Engine) bool { return e.ActivityResetsIdle }),
		engineRule("reauth-resets-both", SeverityError, src("§5.2"),
			"Successful reauthentication SHALL reset both the inactivity and the overall timeout.",
			func(e Engine) bool { return e.ReauthResetsBoth }),
		engineRule("timeout-terminates", SeverityError, src("§5.2, §5.1"),
			"When either timeout expires the session SHALL be terminated; its secret is not accepted after that.",
			func(e Engine) bool { return e.ServerSideExpiry }),
		engineRule("logout-invalidates", SeverityError, src("§5.1"),
			"Session secrets SHALL be erased or invalidated by the session subject when the subscriber logs out.",
			func(e Engine) bool { return e.LogoutInvalidates }),
		engineRule("token-per-authentication", SeverityError, src("§5.1"),
			"The session secret SHALL be generated by the session host in direct response to an authentication event.",
			func(e Engine) bool { return e.NewTokenPerAuthentication }),
		tokenEntropy(64, src("§5.1, §3.2.12"),
			"Session secrets SHALL be at least 64 bits long, from an approved random bit generator of at least 112-bit strength."),
	)
	p.NotChecked = []string{
		"§2." + fmt.Sprint(aal) + ".1-2: which authenticators are used; lapse only enforces the AAL the platform declares when it creates a session.",
		"§5.1.1: cookie attributes (Secure, HttpOnly, __Host- prefix, SameSite): set by the HTTP layer, checked by `lapse probe`.",
		"§5.1: CSRF protection, no fallback to http, no Local Storage, session secrets non-persistent on the client (SHOULD).",
		"§5.1: \"remember my browser\" cookies used instead of authentication.",
		"§5.2: that the agency documents its limits in a system security plan.",
		"§5.3: session monitoring (MAY).",
		"Engine facts: reauthentication is a new session; the platform must revoke the old one itself (Manager.Revoke).",
	}
	if aal == 3 {
		p.NotChecked = append(p.NotChecked, "§2.3.3: that reauthentication at AAL3 repeats the full AAL3 authentication with intent.")
	}
	return p
}

// The NIST SP 800-63B revision 3 profiles (June 2017, errata 2020).
func nist3(aal int) Profile {
	src := func(sec string) string { return nist3Doc + " rev 3 " + sec }
	p := Profile{
		Name:  fmt.Sprintf("nist-800-63b-3-aal%d", aal),
		Title: fmt.Sprintf("NIST SP 800-63B revision 3 (2017), AAL%d", aal),
	}
	switch aal {
	case 1:
		p.Rules = append(p.Rules,
			absoluteMax(SeverityWarning, 30*day, src("§4.1.3"), "Reauthentication SHOULD be repeated at least once per 30 days, regardless of activity."))
	case 2:
		p.Rules = append(p.Rules,
			absoluteMax(SeverityError, 12*time.Hour, src("§4.2.3"), "Reauthentication SHALL be repeated at least once per 12 hours, regardless of activity."),
			idleMax(SeverityError, 30*time.Minute, src("§4.2.3"), "Reauthentication SHALL follow any period of inactivity lasting 30 minutes or longer."),
			aalMin(2, src("§4.2.1"), "AAL2 requires two distinct authentication factors: the tier refuses sessions authenticated below AAL2."))
	case 3:
		p.Rules = append(p.Rules,
			absoluteMax(SeverityError, 12*time.Hour, src("§4.3.3"), "Reauthentication SHALL be repeated at least once per 12 hours, regardless of activity."),
			idleMax(SeverityError, 15*time.Minute, src("§4.3.3"), "Reauthentication SHALL follow any period of inactivity lasting 15 minutes or longer."),
			aalMin(3, src("§4.3.1"), "AAL3 requires a hardware-based authenticator: the tier refuses sessions authenticated below AAL3."))
	}
	p.Rules = append(p.Rules,
		engineRule("absolute-fixed", SeverityError, src("§7.2"),
			"A session SHALL NOT be extended past the AAL's time limit by presenting the session secret alone.",
			func(e Engine) bool { return e.AbsoluteFixed }),
		engineRule("timeout-terminates", SeverityError, src("§7.1"),
			"Session secrets SHALL time out and not be accepted after the times specified for the AAL.",
			func(e Engine) bool { return e.ServerSideExpiry }),
		engineRule("logout-invalidates", SeverityError, src("§7.1"),
			"Session secrets SHALL be erased or invalidated by the session subject when the subscriber logs out.",
			func(e Engine) bool { return e.LogoutInvalidates }),
		engineRule("token-per-authentication", SeverityError, src("§7.1"),
			"The session secret SHALL be generated by the session host in direct response to an authentication event.",
			func(e Engine) bool { return e.NewTokenPerAuthentication }),
		tokenEntropy(64, src("§7.1"),
			"Session secrets SHALL come from an approved random bit generator and contain at least 64 bits of entropy."),
	)
	p.NotChecked = []string{
		"§4." + fmt.Sprint(aal) + ".1-2: which authenticators are used; lapse only enforces the AAL the platform declares.",
		"Table 7-1: which factors a reauthentication presents.",
		"§7.1.1: cookie attributes (Secure, minimal hosts and paths, HttpOnly): checked by `lapse probe`, not by a configuration.",
		"§7.1: CSRF protection, no fallback to http, no Local Storage.",
		"§7.2: session secrets non-persistent across an application restart on the client.",
		"§7.2.1: federated max_age / auth_time handling.",
	}
	return p
}

// The PCI DSS v4.0.1 profile, for sessions of users with access to the
// cardholder data environment.
func pciDSS4() Profile {
	return Profile{
		Name:  "pci-dss-4",
		Title: "PCI DSS v4.0.1, user sessions with access to the cardholder data environment",
		Rules: []Rule{
			idleMax(SeverityError, 15*time.Minute, pciDoc+" Req. 8.2.8 (PCI SSC FAQ 1147)",
				"A session idle for more than 15 minutes requires the user to re-authenticate."),
			engineRule("timeout-terminates", SeverityError, pciDoc+" Req. 8.2.8",
				"The idle timeout is enforced server-side: an idle session is ended and can only be replaced by authenticating again.",
				func(e Engine) bool { return e.ServerSideExpiry }),
			aalMin(2, pciDoc+" Req. 8.4.2 (secondary sources)",
				"MFA for all non-console access into the CDE: the tier refuses sessions authenticated below AAL2."),
		},
		NotChecked: []string{
			"No absolute session lifetime: PCI DSS sets none.",
			"Req. 8.4.2 exempts accounts authenticated only with phishing-resistant factors; its exact v4.0 / v4.0.1 wording is taken from secondary sources.",
			"Req. 8.3.4 lockout after 10 failed attempts, 8.2.6 inactive accounts, 8.5.1 MFA not replayable: the identity provider's job.",
			"Requirement 8 covers personnel and administrators with access to the CDE, not consumer (cardholder) accounts: attach the profile only to such tiers.",
			"Session-token entropy and cookie attributes: no specific PCI DSS requirement found (see Req. 6.2.4 in general).",
		},
	}
}

// The HIPAA Security Rule profile.
func hipaa() Profile {
	return Profile{
		Name:  "hipaa",
		Title: "HIPAA Security Rule, automatic logoff (addressable)",
		Rules: []Rule{
			tierRule("idle-max", SeverityError, "idle_timeout", hipaaDoc+" 164.312(a)(2)(iii)",
				"Automatic logoff: electronic sessions end after the predetermined time of inactivity (parameter hipaa.idle).",
				func(in Input) Outcome { return atMost(in.Tier.IdleTimeout, in.Param(ParamHIPAAIdle)) }),
			engineRule("timeout-terminates", SeverityError, hipaaDoc+" 164.312(a)(2)(iii)",
				"The logoff terminates the session on the server, not only a screen lock in the browser.",
				func(e Engine) bool { return e.ServerSideExpiry }),
		},
		Params: []Param{{
			Name:    ParamHIPAAIdle,
			Default: HIPAADefaultIdle,
			Text:    "the predetermined time of inactivity; HIPAA names no number, 15m matches PCI DSS 8.2.8, NIST AAL3, FedRAMP AC-11 and CIS 4.3",
		}},
		NotChecked: []string{
			"Automatic logoff is addressable: an entity may document an equivalent alternative instead; the audit only checks the value you predetermine.",
			"164.312(d) person or entity authentication: the identity provider's job; the rule mandates no MFA (a 2025 proposed rule would; not final).",
			"164.312(b) audit controls: lapse records every session change in its audit log, which this audit does not read.",
		},
	}
}

// The OWASP ASVS 4.0.3 V3 profiles.
func asvs4(level int) Profile {
	src := func(id string) string { return asvs4Doc + " " + id }
	p := Profile{
		Name:  fmt.Sprintf("asvs-4-l%d", level),
		Title: fmt.Sprintf("OWASP ASVS 4.0.3 V3 session management, level %d", level),
	}
	switch level {
	case 1:
		p.Rules = append(p.Rules,
			absoluteMax(SeverityError, 30*day, src("3.3.2"), "Re-authentication occurs at least every 30 days, even while the session is used."))
	case 2:
		p.Rules = append(p.Rules,
			absoluteMax(SeverityError, 12*time.Hour, src("3.3.2"), "Re-authentication occurs at least every 12 hours, even while the session is used."),
			idleMax(SeverityError, 30*time.Minute, src("3.3.2"), "Re-authentication occurs after 30 minutes of inactivity."))
	case 3:
		p.Rules = append(p.Rules,
			absoluteMax(SeverityError, 12*time.Hour, src("3.3.2"), "Re-authentication occurs at least every 12 hours, even while the session is used."),
			idleMax(SeverityError, 15*time.Minute, src("3.3.2"), "Re-authentication occurs after 15 minutes of inactivity."),
			aalMin(2, src("3.3.2"), "Level 3 re-authentication is \"with 2FA\": the tier refuses sessions authenticated below AAL2."))
	}
	p.Rules = append(p.Rules,
		engineRule("absolute-fixed", SeverityError, src("3.3.2"),
			"Re-authentication occurs periodically both when actively used and after an idle period: activity never extends the absolute deadline.",
			func(e Engine) bool { return e.AbsoluteFixed }),
		engineRule("token-per-authentication", SeverityError, src("3.2.1"),
			"A new session token is generated on user authentication.",
			func(e Engine) bool { return e.NewTokenPerAuthentication }),
		tokenEntropy(64, src("3.2.2"), "Session tokens possess at least 64 bits of entropy."),
		engineRule("logout-invalidates", SeverityError, src("3.3.1"),
			"Logout and expiration invalidate the session token on the server.",
			func(e Engine) bool { return e.LogoutInvalidates && e.ServerSideExpiry }),
	)
	if level >= 2 {
		p.Rules = append(p.Rules,
			engineRule("token-csprng", SeverityError, src("3.2.4"),
				"Session tokens are generated using approved cryptographic algorithms (a CSPRNG).",
				func(e Engine) bool { return e.TokenCSPRNG }))
	}
	p.NotChecked = []string{
		"3.1.1 token never in URLs, 3.2.3 browser storage, 3.4.1-3.4.5 cookie attributes: checked by `lapse probe`.",
		"3.7.1 re-authentication before sensitive transactions: the application asks for it per call (VerifyOptions.MaxAuthAge / RequireAAL).",
	}
	if level >= 2 {
		p.NotChecked = append(p.NotChecked,
			"3.3.3 terminate other sessions after a password change and 3.3.4 view and log out sessions: offered by the API, used by the application.",
			"3.5.1-3.5.3 OAuth and stateless tokens: lapse issues reference tokens only.")
	}
	if level == 3 {
		p.NotChecked = append(p.NotChecked, "3.6.1-3.6.2 federated maximum authentication age (max_age / auth_time).")
	}
	return p
}

// The OWASP ASVS 5.0.0 profiles. ASVS 5 names no timeout values (V7.1:
// "it is not feasible to define universal boundaries and limits"), so
// these rules check what a configuration can show: that the timeouts
// exist, that they stay within the values the organisation documented
// (given as parameters), and, as warnings, where they deviate from NIST.
func asvs5(level int) Profile {
	src := func(id string) string { return asvs5Doc + " " + id }
	p := Profile{
		Name:  fmt.Sprintf("asvs-5-l%d", level),
		Title: fmt.Sprintf("OWASP ASVS 5.0.0 session management, level %d", level),
	}
	if level >= 2 {
		nistAAL, nistIdle, nistAbs := 2, time.Hour, 24*time.Hour
		if level == 3 {
			nistAAL, nistIdle, nistAbs = 3, 15*time.Minute, 12*time.Hour
		}
		p.Params = []Param{
			{Name: ParamASVS5Idle, Text: "the inactivity timeout your documented risk analysis settled on (7.1.1); unset, only its existence is checked"},
			{Name: ParamASVS5Absolute, Text: "the absolute session lifetime your documented risk analysis settled on (7.1.1); unset, only its existence is checked"},
		}
		p.Rules = append(p.Rules,
			tierRule("idle-set", SeverityError, "idle_timeout", src("7.3.1"),
				"An inactivity timeout enforces re-authentication: shorter than the absolute lifetime, and within the documented value if given (asvs-5.idle).",
				func(in Input) Outcome {
					t := in.Tier
					o := Outcome{Configured: FormatDuration(t.IdleTimeout), Required: "shorter than absolute_timeout " + FormatDuration(t.AbsoluteTimeout),
						Pass: t.IdleTimeout > 0 && t.IdleTimeout < t.AbsoluteTimeout}
					if d := in.Param(ParamASVS5Idle); d > 0 {
						o.Required += ", at most " + FormatDuration(d)
						o.Pass = o.Pass && t.IdleTimeout <= d
					}
					return o
				}),
			tierRule("absolute-set", SeverityError, "absolute_timeout", src("7.3.2"),
				"An absolute maximum session lifetime enforces re-authentication, within the documented value if given (asvs-5.absolute).",
				func(in Input) Outcome {
					t := in.Tier
					o := Outcome{Configured: FormatDuration(t.AbsoluteTimeout), Required: "set", Pass: t.AbsoluteTimeout > 0}
					if d := in.Param(ParamASVS5Absolute); d > 0 {
						o.Required = "at most " + FormatDuration(d)
						o.Pass = o.Pass && t.AbsoluteTimeout <= d
					}
					return o
				}),
			tierRule("idle-nist", SeverityWarning, "idle_timeout", src("7.1.1")+fmt.Sprintf(" (NIST SP 800-63B-4 §2.%d.3)", nistAAL),
				fmt.Sprintf("An inactivity timeout longer than NIST AAL%d's %s is a deviation that needs documented justification.", nistAAL, FormatDuration(nistIdle)),
				func(in Input) Outcome { return atMost(in.Tier.IdleTimeout, nistIdle) }),
			tierRule("absolute-nist", SeverityWarning, "absolute_timeout", src("7.1.1")+fmt.Sprintf(" (NIST SP 800-63B-4 §2.%d.3)", nistAAL),
				fmt.Sprintf("An absolute lifetime longer than NIST AAL%d's %s is a deviation that needs documented justification.", nistAAL, FormatDuration(nistAbs)),
				func(in Input) Outcome { return atMost(in.Tier.AbsoluteTimeout, nistAbs) }),
			engineRule("absolute-fixed", SeverityError, src("7.3.2"),
				"The absolute lifetime holds regardless of activity: activity never extends it.",
				func(e Engine) bool { return e.AbsoluteFixed }),
		)
		if level == 2 {
			p.Rules = append(p.Rules,
				aalMin(2, src("6.3.3"), "Access requires multi-factor authentication: the tier refuses sessions authenticated below AAL2."))
		} else {
			p.Rules = append(p.Rules,
				aalMin(3, src("6.3.3"), "Level 3 requires a hardware-based, phishing-resistant factor: the tier refuses sessions authenticated below AAL3."))
		}
	}
	p.Rules = append(p.Rules,
		engineRule("backend-verification", SeverityError, src("7.2.1"),
			"Session tokens are verified by a trusted backend service, which decides expiry.",
			func(e Engine) bool { return e.ServerSideExpiry }),
		tokenEntropy(128, src("7.2.3, 11.5.1"), "Reference tokens are unique, from a CSPRNG, with at least 128 bits of entropy."),
		engineRule("token-per-authentication", SeverityError, src("7.2.4"),
			"A new session token is generated on every authentication, re-authentication included.",
			func(e Engine) bool { return e.NewTokenPerAuthentication }),
		engineRule("logout-invalidates", SeverityError, src("7.4.1"),
			"After logout or expiration the session cannot be used again: it is invalidated on the backend.",
			func(e Engine) bool { return e.LogoutInvalidates && e.ServerSideExpiry }),
	)
	if level >= 2 {
		p.Rules = append(p.Rules,
			engineRule("token-not-logged", SeverityError, src("16.2.5"),
				"Session tokens reach logs only hashed or masked.",
				func(e Engine) bool { return e.TokenRedacted }),
			engineRule("token-hashed-at-rest", SeverityWarning, src("16.2.5, by extension"),
				"The session store keeps only token hashes: 16.2.5 asks this of logs, and a store holding tokens leaks live sessions the same way.",
				func(e Engine) bool { return e.TokenHashedAtRest }))
	}
	p.NotChecked = []string{
		"ASVS 5 sets no timeout values; the organisation's documented values can be given as parameters.",
		"7.2.4 also asks that the previous token is terminated on re-authentication: the platform must revoke the old session.",
		"7.4.2 end sessions when an account is disabled: the platform calls the revoke API.",
		"3.3.x cookie attributes, 3.4.1 HSTS, 3.5.x CSRF, 14.2.1 token not in URLs: checked by `lapse probe`.",
	}
	if level >= 2 {
		p.NotChecked = append(p.NotChecked,
			"7.1.1-7.1.3 the documentation itself: risk analysis, concurrent-session policy (the configured max_sessions is its value), SSO coordination.",
			"7.4.3-7.4.5, 7.5.1-7.5.2: terminate other sessions, admin termination, re-authentication before changing authentication attributes: offered by the API, used by the application.",
			"6.3.3: which authenticators are used; lapse only enforces the AAL the platform declares.")
	}
	if level == 3 {
		p.NotChecked = append(p.NotChecked, "7.5.3 step-up before highly sensitive operations: requested per call (VerifyOptions.RequireAAL / MaxAuthAge).")
	}
	return p
}
