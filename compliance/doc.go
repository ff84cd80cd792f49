// Package compliance audits a lapse session policy against published
// standards: NIST SP 800-63B (revisions 3 and 4), PCI DSS v4.0, the HIPAA
// Security Rule's automatic logoff, and OWASP ASVS 4.0.3 and 5.0.0.
//
// A [Profile] is a named list of [Rule] values, each citing the document
// and section it comes from. SHALL and MUST become [SeverityError] rules,
// SHOULD becomes [SeverityWarning]. Most rules read one effective
// [lapse.Tier]; structural rules read the [Engine] facts instead: how the
// session engine behaves whatever the configuration says (the absolute
// deadline is fixed at creation, activity slides only the idle deadline,
// tokens carry 208 random bits and are stored only as hashes).
//
// [Audit] checks every tier of a policy, and every tenant's effective
// version of it, against one profile and returns a [Report]. [Enforce]
// audits each tier against the profiles named in its Profiles field, so
// that lapse serve can refuse to start with a policy that breaks one.
//
// A configuration shows only part of any standard: what each profile
// cannot check is listed in its NotChecked field and in
// docs/compliance.md.
package compliance
