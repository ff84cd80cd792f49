package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/console"
	"github.com/lapsehq/lapse/password"
	"github.com/lapsehq/lapse/totp"
)

const operatorsUsage = `usage:
  lapse operators create     [--data-dir DIR | --config FILE | --store URL] --name NAME --role viewer|operator|admin [--tenant T] < password
  lapse operators list       [--data-dir DIR | --config FILE | --store URL]
  lapse operators set        [--data-dir DIR | --config FILE | --store URL] NAME [--role viewer|operator|admin] [--tenant T | --platform]
  lapse operators disable    [--data-dir DIR | --config FILE | --store URL] NAME
  lapse operators enable     [--data-dir DIR | --config FILE | --store URL] NAME
  lapse operators passwd     [--data-dir DIR | --config FILE | --store URL] NAME < password
  lapse operators reset-totp [--data-dir DIR | --config FILE | --store URL] NAME
The password is read from standard input (its first line), never from the command line.
set changes the role, the tenant, or both; --platform removes the tenant binding.
Every change but create ends the operator's open console sessions at once.
`

// operatorsDone says, for each subcommand that changes the operator it
// names, what it did.
var operatorsDone = map[string]string{
	"set": "changed", "disable": "disabled", "enable": "enabled",
	"passwd": "set the password of", "reset-totp": "reset the TOTP factor of",
}

// operatorFlags are the flags of lapse operators besides the data flags.
type operatorFlags struct {
	name, role, tenant string
	platform           bool
	given              map[string]bool // the flags on the command line
}

// runOperators creates, lists and changes the console's named operators,
// in the store. Changes are recorded with the actor "cli", as lapse keys
// records its own.
func runOperators(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && operatorsDone[args[0]] == "") {
		fmt.Fprint(stderr, operatorsUsage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("lapse operators "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := addDataFlags(fs)
	var f operatorFlags
	fs.StringVar(&f.name, "name", "", "the operator's sign-in name (create)")
	fs.StringVar(&f.role, "role", "", "viewer, operator or admin (create, set)")
	fs.StringVar(&f.tenant, "tenant", "", "bind the operator to this tenant (create, set)")
	fs.BoolVar(&f.platform, "platform", false, "bind the operator to no tenant: the whole platform (set)")
	names, err := parseMixed(fs, args[1:])
	if err != nil {
		return 2
	}
	f.given = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.given[fl.Name] = true })
	if msg := f.check(cmd, names); msg != "" {
		fmt.Fprintf(stderr, "lapse operators %s: %s\n%s", cmd, msg, operatorsUsage)
		return 2
	}
	cfg, st, err := data.openWith(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "lapse operators: %v\n", err)
		return 2
	}
	defer st.Close()
	m, err := lapse.New(lapse.Config{Store: st, Policy: config.DefaultPolicy()})
	if err == nil {
		err = operatorsCommand(ctx, cfg, m, cmd, f, names, stdin, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "lapse operators %s: %s\n", cmd, lapse.ErrorMessage(err))
		return 1
	}
	return 0
}

// check returns what is wrong with the arguments of cmd, or "".
func (f operatorFlags) check(cmd string, names []string) string {
	switch {
	case (operatorsDone[cmd] != "") != (len(names) == 1):
		return "give the name of one operator, or none for create and list"
	case f.platform && cmd != "set":
		return "--platform is for set"
	case f.platform && f.given["tenant"]:
		return "give --tenant or --platform, not both"
	case cmd == "set" && !f.given["role"] && !f.given["tenant"] && !f.platform:
		return "give --role, --tenant or --platform"
	}
	return ""
}

func operatorsCommand(ctx context.Context, cfg *config.File, m *lapse.Manager, cmd string, f operatorFlags, names []string, stdin io.Reader, stdout io.Writer) error {
	ops, ok := m.Store().(lapse.OperatorStore)
	if !ok {
		return fmt.Errorf("the store %q keeps no operators", cfg.Store)
	}
	switch cmd {
	case "create":
		n := console.NewOperator{Name: f.name, Role: console.Role(f.role), Tenant: f.tenant}
		return createOperator(ctx, cfg, m, n, stdin, stdout)
	case "list":
		return listOperators(ctx, ops, stdout)
	}
	o, err := ops.OperatorByName(ctx, names[0])
	if err != nil {
		return err
	}
	if cmd == "reset-totp" {
		return resetTOTP(ctx, cfg, m, o, stdout)
	}
	ch, same, err := f.change(cmd, o, m.Clock().Now(), stdin)
	if same != "" || err != nil {
		fmt.Fprint(stdout, same)
		return err
	}
	// Only what cmd changes is written: a change another process makes
	// meanwhile (a disable while this sets a password) holds.
	o, ended, err := console.ChangeOperator(ctx, m, o.ID, ch, actorCLI)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s (%s)", operatorsDone[cmd], o.Name, o.ID)
	if cmd == "set" {
		fmt.Fprintf(stdout, ": role %s%s", o.Role, tenantNote(o.Tenant))
	}
	fmt.Fprintf(stdout, "; ended %d open console session(s)\n", ended)
	return nil
}

// change is the change cmd asks for to o, at now. It returns what to
// print instead when there is nothing to change.
func (f operatorFlags) change(cmd string, o *lapse.Operator, now time.Time, stdin io.Reader) (lapse.OperatorChange, string, error) {
	var ch lapse.OperatorChange
	switch cmd {
	case "set":
		if f.given["role"] {
			ch.Role = &f.role
		}
		if f.given["tenant"] || f.platform {
			ch.Tenant = &f.tenant
		}
	case "disable":
		if o.Disabled() {
			return ch, fmt.Sprintf("%s was disabled already, at %s\n", o.Name, o.DisabledAt.UTC().Format(time.RFC3339)), nil
		}
		ch.DisabledAt = &now
	case "enable":
		if !o.Disabled() {
			return ch, fmt.Sprintf("%s is enabled already\n", o.Name), nil
		}
		ch.DisabledAt = &time.Time{}
	case "passwd":
		pw, err := readPassword(stdin)
		if err != nil {
			return ch, "", err
		}
		return ch, "", console.SetPassword(&ch, pw)
	}
	return ch, "", nil
}

func createOperator(ctx context.Context, cfg *config.File, m *lapse.Manager, n console.NewOperator, stdin io.Reader, stdout io.Writer) error {
	factors, err := operatorFactors(cfg, m)
	if err != nil {
		return err
	}
	if n.Password, err = readPassword(stdin); err != nil {
		return err
	}
	o, enr, err := console.CreateOperator(ctx, m, factors, n, actorCLI)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Created operator %s (%s), role %s%s.\n", o.Name, o.ID, o.Role, tenantNote(o.Tenant))
	printEnrolment(stdout, enr)
	return nil
}

// resetTOTP enrols a new TOTP factor and recovery codes for o in place
// of the old ones, and prints them once.
func resetTOTP(ctx context.Context, cfg *config.File, m *lapse.Manager, o *lapse.Operator, stdout io.Writer) error {
	factors, err := operatorFactors(cfg, m)
	if err != nil {
		return err
	}
	enr, ended, err := console.ResetTOTP(ctx, m, factors, o, actorCLI)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s (%s); ended %d open console session(s); the old key and recovery codes no longer work.\n",
		operatorsDone["reset-totp"], o.Name, o.ID, ended)
	printEnrolment(stdout, enr)
	return nil
}

// operatorFactors is the TOTP service that enrols operators, under the
// factor key lapse serve uses.
func operatorFactors(cfg *config.File, m *lapse.Manager) (*totp.Service, error) {
	key, err := factorKey(cfg)
	if err != nil {
		return nil, err
	}
	return totp.New(totp.Config{Manager: m, Key: key, Issuer: console.Issuer})
}

// printEnrolment prints what an operator needs besides their password,
// the one time it is shown.
func printEnrolment(stdout io.Writer, enr *console.Enrolment) {
	fmt.Fprintf(stdout, `Add this key to their authenticator app; it is shown this once:

    %s

    secret: %s

Recovery codes, each good for one sign-in in place of a code:

    %s
`, enr.TOTP.URI, enr.TOTP.Secret, strings.Join(enr.RecoveryCodes, "\n    "))
}

func tenantNote(t string) string {
	if t == "" {
		return ""
	}
	return ", tenant " + t
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, password.MaxLength+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("give the password on standard input (e.g. from a password manager), not on the command line")
	}
	return line, nil
}

func listOperators(ctx context.Context, ops lapse.OperatorStore, stdout io.Writer) error {
	all, err := ops.Operators(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tTENANT\tCREATED\tDISABLED")
	for _, o := range all {
		disabled := "-"
		if o.Disabled() {
			disabled = o.DisabledAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.Name, o.Role, orDash(o.Tenant), o.CreatedAt.UTC().Format(time.RFC3339), disabled)
	}
	return tw.Flush()
}
