// Command lapse is the session authority's one binary: it serves the API
// and runs the operator's and auditor's tools.
//
//	lapse serve [--config FILE] [--listen ADDR] [--data-dir DIR]
//	lapse demo [flags]
//	lapse probe TARGET.yaml [flags]
//	lapse audit policy --config FILE --profile NAME [flags]
//	lapse audit log | verify [flags]
//	lapse webhooks dead | replay [flags]
//	lapse version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `lapse: a session authority for SaaS platforms

Usage:
  lapse serve [--config FILE] [--listen ADDR] [--data-dir DIR]
                               serve the session API (embedded store by default)
  lapse demo                   a small SaaS app that shows lapse from the user's side
  lapse probe TARGET.yaml      test a web app's session expiry from the outside
  lapse audit policy           check the policy against a compliance profile
  lapse audit log | verify     read the audit log; verify its hash chain
  lapse webhooks dead | replay inspect and replay dead-lettered webhook deliveries
  lapse keys create | list | revoke
                               manage the API keys: scopes, tenant, expiry
  lapse operators create | list | set | disable | enable | passwd | reset-totp
                               manage the console's named operators
  lapse version                print the version

Run 'lapse COMMAND --help' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a command and returns the exit status: 0 success,
// 1 a finding or failure, 2 a usage or configuration error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "demo":
		return runDemo(ctx, args[1:], stdout, stderr)
	case "probe":
		return runProbe(ctx, args[1:], stdout, stderr)
	case "audit":
		return runAudit(ctx, args[1:], stdout, stderr)
	case "webhooks":
		return runWebhooks(ctx, args[1:], stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], stdout, stderr)
	case "operators":
		return runOperators(ctx, args[1:], os.Stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "lapse", version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "lapse: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "policy":
			return runAuditPolicy(ctx, args[1:], stdout, stderr)
		case "log":
			return runAuditLog(ctx, args[1:], stdout, stderr)
		case "verify":
			return runAuditVerify(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, `usage:
  lapse audit policy --config FILE --profile NAME [--format table|json] [--strict] [--list]
  lapse audit log    [--data-dir DIR] [--subject S] [--tenant T] [--session ID] [--type T,..] [--since T] [--until T] [--format table|json]
  lapse audit verify [--data-dir DIR] [--head SEQ:HASH]
`)
	return 2
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
