package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lapsehq/lapse/compliance"
	"github.com/lapsehq/lapse/config"
)

const auditPolicyUsage = `Usage: lapse audit policy --config FILE [--profile NAME]... [flags]
       lapse audit policy --list [--profile NAME]... [--format json]

Checks every tier of the configuration's session policy, and every tenant's
effective version of it, against compliance profiles. Without --profile,
each tier is checked against the profiles named under its "profiles:" key,
as lapse serve does at start-up.

Exit status: 0 compliant, 1 a rule failed (a SHOULD rule too with --strict),
2 a usage or configuration error.

Flags:
`

// runAuditPolicy runs "lapse audit policy" with the arguments after those
// two words. It prints the findings to stdout and problems to stderr, and
// returns the exit status: 0 when the policy complies, 1 when an error
// rule fails (or any rule, with --strict), 2 on a usage or configuration
// error. --list prints the profiles and their rules and returns 0.
func runAuditPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lapse audit policy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), auditPolicyUsage)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\nProfiles: %s\n", strings.Join(compliance.Names(), ", "))
	}
	configPath := fs.String("config", "", "YAML configuration `file` whose policy to audit")
	var names auditProfileFlag
	fs.Var(&names, "profile", "compliance profile `name` to audit against; repeat or separate with commas")
	format := fs.String("format", "table", "output `format`: table or json")
	strict := fs.Bool("strict", false, "fail on SHOULD rules (warnings) too")
	list := fs.Bool("list", false, "list the profiles and their rules instead of auditing")
	params := auditParamFlag{}
	fs.Var(params, "param", "set a profile parameter, as `name=duration` (e.g. hipaa.idle=10m); repeatable")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "lapse audit policy: "+format+"\n", a...)
		fmt.Fprintln(stderr, "Run 'lapse audit policy --help' for usage.")
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *format != "table" && *format != "json" {
		return usageErr("--format must be table or json, not %q", *format)
	}
	var profiles []compliance.Profile
	for _, name := range names {
		p, ok := compliance.Lookup(name)
		if !ok {
			return usageErr("%v", &compliance.UnknownProfileError{Name: name})
		}
		if !slices.ContainsFunc(profiles, func(q compliance.Profile) bool { return q.Name == name }) {
			profiles = append(profiles, p)
		}
	}
	if *list {
		if len(profiles) == 0 {
			profiles = compliance.Profiles()
		}
		if *format == "json" {
			return writeAuditJSON(stdout, stderr, auditProfileListing(profiles))
		}
		writeAuditProfiles(stdout, profiles)
		return 0
	}
	if *configPath == "" {
		return usageErr("--config is required")
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "lapse audit policy: invalid configuration:\n  %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return 2
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(stderr, "lapse audit policy: %v\n", err)
		return 2
	}
	var opts []compliance.Option
	for name, d := range params {
		opts = append(opts, compliance.WithParam(name, d))
	}
	var reports []compliance.Report
	if len(profiles) > 0 {
		if msg := unusedAuditParam(params, profiles); msg != "" {
			return usageErr("%s", msg)
		}
		for _, p := range profiles {
			reports = append(reports, compliance.Audit(cfg.Policy, p, opts...))
		}
	} else {
		reports, err = compliance.AuditAttached(cfg.Policy, opts...)
		if err != nil {
			fmt.Fprintf(stderr, "lapse audit policy: %s: %v\n", *configPath, err)
			return 2
		}
		if len(reports) == 0 {
			return usageErr("no --profile given and no tier in %s names a profile under \"profiles:\"", *configPath)
		}
		for _, r := range reports {
			p, _ := compliance.Lookup(r.Profile)
			profiles = append(profiles, p)
		}
		if msg := unusedAuditParam(params, profiles); msg != "" {
			return usageErr("%s", msg)
		}
	}
	for _, r := range reports {
		if r.Err != nil { // config.Load validated the policy; this is a bug
			fmt.Fprintf(stderr, "lapse audit policy: %s: %v\n", *configPath, r.Err)
			return 2
		}
	}
	code := 0
	for _, r := range reports {
		if r.Failed(*strict) {
			code = 1
		}
	}
	if *format == "json" {
		if c := writeAuditJSON(stdout, stderr, auditJSON(*configPath, *strict, reports)); c != 0 {
			return c
		}
		return code
	}
	writeAudit(stdout, *configPath, *strict, reports, profiles)
	return code
}

// auditProfileFlag is a repeatable flag of comma-separated profile names.
type auditProfileFlag []string

func (l *auditProfileFlag) String() string { return strings.Join(*l, ",") }

func (l *auditProfileFlag) Set(s string) error {
	for name := range strings.SplitSeq(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			*l = append(*l, name)
		}
	}
	return nil
}

// auditParamFlag is a repeatable flag of name=duration profile parameters.
type auditParamFlag map[string]time.Duration

func (p auditParamFlag) String() string {
	var parts []string
	for k, v := range p {
		parts = append(parts, k+"="+compliance.FormatDuration(v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (p auditParamFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("%q is not name=duration", s)
	}
	known := false
	for _, prof := range compliance.Profiles() {
		if _, ok := prof.Param(name); ok {
			known = true
		}
	}
	if !known {
		return fmt.Errorf("no profile has a parameter %q", name)
	}
	d, err := time.ParseDuration(strings.TrimSpace(value))
	if err != nil || d <= 0 {
		return fmt.Errorf("%s: %q is not a positive duration such as 10m or 8h", name, value)
	}
	p[name] = d
	return nil
}

// unusedAuditParam reports a parameter none of the profiles uses, which is
// most likely a mistake the auditor would want to hear about.
func unusedAuditParam(params auditParamFlag, profiles []compliance.Profile) string {
	for name := range params {
		used := slices.ContainsFunc(profiles, func(p compliance.Profile) bool { _, ok := p.Param(name); return ok })
		if !used {
			return fmt.Sprintf("--param %s is not used by the profiles audited", name)
		}
	}
	return ""
}

func writeAuditJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "lapse audit policy: %v\n", err)
		return 2
	}
	return 0
}

// auditOutput is the JSON shape of an audit.
type auditOutput struct {
	Config    string        `json:"config"`
	Strict    bool          `json:"strict"`
	Compliant bool          `json:"compliant"`
	Reports   []auditReport `json:"reports"`
}

type auditReport struct {
	compliance.Report
	Compliant bool         `json:"compliant"`
	Summary   auditSummary `json:"summary"`
}

type auditSummary struct {
	Passed   int `json:"passed"`
	Failed   int `json:"failed"`
	Warnings int `json:"warnings"`
}

func auditJSON(path string, strict bool, reports []compliance.Report) auditOutput {
	out := auditOutput{Config: path, Strict: strict, Compliant: true, Reports: []auditReport{}}
	for _, r := range reports {
		p, f, w := r.Count()
		ok := !r.Failed(strict)
		out.Compliant = out.Compliant && ok
		out.Reports = append(out.Reports, auditReport{Report: r, Compliant: ok, Summary: auditSummary{p, f, w}})
	}
	return out
}

// writeAudit prints the reports as aligned tables an auditor can read.
func writeAudit(w io.Writer, path string, strict bool, reports []compliance.Report, profiles []compliance.Profile) {
	fmt.Fprintf(w, "Policy audit of %s", path)
	if strict {
		fmt.Fprint(w, " (strict: SHOULD rules count as failures)")
	}
	fmt.Fprintln(w)
	var failing []string
	for i, r := range reports {
		fmt.Fprintf(w, "\nProfile %s: %s\n", r.Profile, r.Title)
		if len(r.Params) > 0 {
			var ps []string
			for k, v := range r.Params {
				ps = append(ps, k+"="+v)
			}
			slices.Sort(ps)
			fmt.Fprintf(w, "Parameters: %s\n", strings.Join(ps, ", "))
		}
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "STATUS\tTIER\tTENANT\tRULE\tSEVERITY\tCONFIGURED\tREQUIRED\tSOURCE")
		for _, f := range r.Findings {
			tier, tenant := f.Tier, f.Tenant
			if f.Scope == compliance.ScopeEngine {
				tier = "(engine)"
			}
			if tenant == "" {
				tenant = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", strings.ToUpper(f.Status()), tier, tenant, f.Rule, f.Severity, f.Configured, f.Required, f.Source)
		}
		tw.Flush()

		passed, failed, warned := r.Count()
		verdict := "COMPLIANT"
		if r.Failed(strict) {
			verdict = "NOT COMPLIANT"
			failing = append(failing, r.Profile)
		}
		fmt.Fprintf(w, "\nResult: %s: %d failed, %d warnings, %d passed\n", verdict, failed, warned, passed)
		seen := map[string]bool{}
		for _, f := range r.Findings {
			if f.Pass || seen[f.Rule] {
				continue
			}
			if !seen[""] {
				fmt.Fprintln(w, "Rules not met:")
				seen[""] = true
			}
			seen[f.Rule] = true
			fmt.Fprintf(w, "  %s %s: %s (%s)\n", strings.ToUpper(f.Status()), f.Rule, f.Text, f.Source)
		}
		if n := len(profiles[i].NotChecked); n > 0 {
			fmt.Fprintf(w, "Not shown by a configuration: %d parts of the standard; see 'lapse audit policy --list --profile %s'.\n", n, r.Profile)
		}
	}
	if len(reports) > 1 {
		if len(failing) > 0 {
			fmt.Fprintf(w, "\nOverall: NOT COMPLIANT with %s\n", strings.Join(failing, ", "))
		} else {
			fmt.Fprintln(w, "\nOverall: COMPLIANT with every profile audited")
		}
	}
}

// writeAuditProfiles prints each profile with its rules, parameters and what
// it cannot check.
func writeAuditProfiles(w io.Writer, profiles []compliance.Profile) {
	for i, p := range profiles {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s: %s\n", p.Name, p.Title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  RULE\tSEVERITY\tCHECKS\tSOURCE\tREQUIREMENT")
		for _, r := range p.Rules {
			checks := r.Key
			if r.Scope == compliance.ScopeEngine {
				checks = "(engine)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.ID, r.Severity, checks, r.Source, r.Text)
		}
		tw.Flush()
		if len(p.Params) > 0 {
			fmt.Fprintln(w, "  Parameters:")
			for _, pa := range p.Params {
				def := "not declared"
				if pa.Default > 0 {
					def = compliance.FormatDuration(pa.Default)
				}
				fmt.Fprintf(w, "    --param %s=DURATION (default %s): %s\n", pa.Name, def, pa.Text)
			}
		}
		fmt.Fprintln(w, "  Not shown by a configuration:")
		for _, s := range p.NotChecked {
			fmt.Fprintf(w, "    - %s\n", s)
		}
	}
}

// auditProfileJSON is the JSON shape of a listed profile.
type auditProfileJSON struct {
	Name       string           `json:"name"`
	Title      string           `json:"title"`
	Rules      []auditRuleJSON  `json:"rules"`
	Params     []auditParamJSON `json:"params"`
	NotChecked []string         `json:"not_checked"`
}

type auditRuleJSON struct {
	ID       string              `json:"id"`
	Severity compliance.Severity `json:"severity"`
	Scope    compliance.Scope    `json:"scope"`
	Key      string              `json:"key,omitempty"`
	Source   string              `json:"source"`
	Text     string              `json:"text"`
}

type auditParamJSON struct {
	Name    string `json:"name"`
	Default string `json:"default,omitempty"`
	Text    string `json:"text"`
}

func auditProfileListing(profiles []compliance.Profile) []auditProfileJSON {
	out := []auditProfileJSON{}
	for _, p := range profiles {
		pj := auditProfileJSON{Name: p.Name, Title: p.Title, Rules: []auditRuleJSON{}, Params: []auditParamJSON{}, NotChecked: p.NotChecked}
		for _, r := range p.Rules {
			pj.Rules = append(pj.Rules, auditRuleJSON{r.ID, r.Severity, r.Scope, r.Key, r.Source, r.Text})
		}
		for _, pa := range p.Params {
			d := ""
			if pa.Default > 0 {
				d = compliance.FormatDuration(pa.Default)
			}
			pj.Params = append(pj.Params, auditParamJSON{pa.Name, d, pa.Text})
		}
		out = append(out, pj)
	}
	return out
}
