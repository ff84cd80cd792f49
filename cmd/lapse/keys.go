package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
)

const keysUsage = `usage:
  lapse keys create [--data-dir DIR | --config FILE | --store URL] --name NAME --scope S [--scope S ...] [--tenant T] [--expires 720h]
  lapse keys list   [--data-dir DIR | --config FILE | --store URL]
  lapse keys revoke [--data-dir DIR | --config FILE | --store URL] ID...
scopes: sessions:verify sessions:write sessions:admin factors:admin audit:read metrics:read keys:admin console
`

// actorCLI is the actor of the key events lapse keys records: whoever
// can run it holds the store's files or credentials.
const actorCLI = "cli"

// scopeFlags collects --scope, repeated or comma-separated.
type scopeFlags []lapse.Scope

func (s *scopeFlags) String() string { return fmt.Sprint(*s) }
func (s *scopeFlags) Set(v string) error {
	for f := range strings.SplitSeq(v, ",") {
		*s = append(*s, lapse.Scope(strings.TrimSpace(f)))
	}
	return nil
}

// runKeys creates, lists and revokes API keys in the store.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	fs := flag.NewFlagSet("lapse keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := addDataFlags(fs)
	var spec lapse.KeySpec
	var scopes scopeFlags
	fs.StringVar(&spec.Name, "name", "", "the key's name (who holds it)")
	fs.Var(&scopes, "scope", "a scope the key holds; repeat or separate with commas")
	fs.StringVar(&spec.Tenant, "tenant", "", "bind the key to this tenant")
	expires := fs.Duration("expires", 0, "the key stops working this long from now (default never)")
	ids, err := parseMixed(fs, args[1:])
	if err != nil {
		return 2
	}
	st, err := data.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "lapse keys: %v\n", err)
		return 2
	}
	defer st.Close()
	m, err := lapse.New(lapse.Config{Store: st, Policy: config.DefaultPolicy()})
	if err == nil {
		var ring *lapse.Keyring
		if ring, err = lapse.NewKeyring(m); err == nil {
			spec.Scopes = scopes
			if *expires > 0 {
				spec.ExpiresAt = time.Now().Add(*expires)
			}
			return keysCommand(ctx, ring, args[0], spec, ids, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "lapse keys: %v\n", err)
	return 1
}

// parseMixed parses args with fs, where arguments and flags may come in
// any order (it parses on past each argument), and returns the
// arguments.
func parseMixed(fs *flag.FlagSet, args []string) ([]string, error) {
	var out []string
	for rest := args; ; rest = fs.Args()[1:] {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return out, nil
		}
		out = append(out, fs.Arg(0))
	}
}

func keysCommand(ctx context.Context, ring *lapse.Keyring, cmd string, spec lapse.KeySpec, ids []string, stdout, stderr io.Writer) int {
	switch cmd {
	case "create":
		key, k, err := ring.Create(ctx, spec, actorCLI, "")
		if err != nil {
			fmt.Fprintf(stderr, "lapse keys create: %s\n", lapse.ErrorMessage(err))
			return 1
		}
		fmt.Fprintf(stdout, "Created API key %s (%s). It is shown this once; lapse keeps only its hash:\n\n    %s\n\n", k.ID, k.Name, key)
		return 0
	case "revoke":
		if len(ids) == 0 {
			fmt.Fprint(stderr, "lapse keys revoke: give the ids of the keys to revoke\n"+keysUsage)
			return 2
		}
		for _, id := range ids {
			if _, err := ring.Revoke(ctx, id, actorCLI, ""); err != nil {
				fmt.Fprintf(stderr, "lapse keys revoke %s: %s\n", id, lapse.ErrorMessage(err))
				return 1
			}
			fmt.Fprintf(stdout, "revoked %s; every node refuses it within the propagation bound\n", id)
		}
		return 0
	}
	ks, err := ring.Keys(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "lapse keys list: %s\n", lapse.ErrorMessage(err))
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tTENANT\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	for _, k := range ks {
		scopes := make([]string, len(k.Scopes))
		for i, s := range k.Scopes {
			scopes[i] = string(s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(scopes, ","), orDash(k.Tenant),
			when(k.CreatedAt), when(k.ExpiresAt), when(k.LastUsedAt), when(k.RevokedAt))
	}
	tw.Flush()
	return 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
