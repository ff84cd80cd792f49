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
  lapse operators create  [--data-dir DIR | --config FILE | --store URL] --name NAME --role viewer|operator|admin [--tenant T] < password
  lapse operators list    [--data-dir DIR | --config FILE | --store URL]
  lapse operators disable [--data-dir DIR | --config FILE | --store URL] NAME
  lapse operators passwd  [--data-dir DIR | --config FILE | --store URL] NAME < password
The password is read from standard input (its first line), never from the command line.
`

// runOperators creates, lists, disables and sets the passwords of the
// console's named operators, in the store. Changes are recorded with the
// actor "cli", as lapse keys records its own.
func runOperators(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || !strings.Contains(" create list disable passwd ", " "+args[0]+" ") {
		fmt.Fprint(stderr, operatorsUsage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("lapse operators "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := addDataFlags(fs)
	var n console.NewOperator
	fs.StringVar(&n.Name, "name", "", "the operator's sign-in name")
	role := fs.String("role", "", "viewer, operator or admin")
	fs.StringVar(&n.Tenant, "tenant", "", "bind the operator to this tenant")
	names, err := parseMixed(fs, args[1:])
	if err != nil {
		return 2
	}
	n.Role = console.Role(*role)
	if (cmd == "disable" || cmd == "passwd") != (len(names) == 1) {
		fmt.Fprint(stderr, operatorsUsage)
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
		err = operatorsCommand(ctx, cfg, m, cmd, n, names, stdin, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "lapse operators %s: %s\n", cmd, lapse.ErrorMessage(err))
		return 1
	}
	return 0
}

func operatorsCommand(ctx context.Context, cfg *config.File, m *lapse.Manager, cmd string, n console.NewOperator, names []string, stdin io.Reader, stdout io.Writer) error {
	ops, ok := m.Store().(lapse.OperatorStore)
	if !ok {
		return fmt.Errorf("the store %q keeps no operators", cfg.Store)
	}
	switch cmd {
	case "create":
		return createOperator(ctx, cfg, m, n, stdin, stdout)
	case "list":
		return listOperators(ctx, ops, stdout)
	}
	o, err := ops.OperatorByName(ctx, names[0])
	if err != nil {
		return err
	}
	if cmd == "disable" {
		if o.Disabled() {
			fmt.Fprintf(stdout, "%s was disabled already, at %s\n", o.Name, o.DisabledAt.UTC().Format(time.RFC3339))
			return nil
		}
		o.DisabledAt = m.Clock().Now()
	} else {
		pw, err := readPassword(stdin)
		if err == nil {
			err = console.SetPassword(o, pw)
		}
		if err != nil {
			return err
		}
	}
	ended, err := console.ChangeOperator(ctx, m, o, actorCLI)
	if err != nil {
		return err
	}
	what := map[string]string{"disable": "disabled", "passwd": "set the password of"}[cmd]
	fmt.Fprintf(stdout, "%s %s (%s); ended %d open console session(s)\n", what, o.Name, o.ID, ended)
	return nil
}

func createOperator(ctx context.Context, cfg *config.File, m *lapse.Manager, n console.NewOperator, stdin io.Reader, stdout io.Writer) error {
	key, err := factorKey(cfg)
	if err != nil {
		return err
	}
	factors, err := totp.New(totp.Config{Manager: m, Key: key, Issuer: console.Issuer})
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
	fmt.Fprintf(stdout, `Created operator %s (%s), role %s%s.
Add this key to their authenticator app; it is shown this once:

    %s

    secret: %s

Recovery codes, each good for one sign-in in place of a code:

    %s
`, o.Name, o.ID, o.Role, tenantNote(o.Tenant), enr.TOTP.URI, enr.TOTP.Secret, strings.Join(enr.RecoveryCodes, "\n    "))
	return nil
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
