package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lapsehq/lapse"
	"github.com/lapsehq/lapse/config"
)

// dataFlags are the flags of commands that read lapse's data directly.
type dataFlags struct {
	config, dataDir, store *string
}

func addDataFlags(fs *flag.FlagSet) dataFlags {
	return dataFlags{
		config:  fs.String("config", "", "lapse's configuration `file`, to find its data directory"),
		dataDir: fs.String("data-dir", "", "lapse's data `directory` (default from --config, or ./lapse-data)"),
		store:   fs.String("store", "", "the store `URL` when it is not the embedded one (default from --config)"),
	}
}

// open opens the store the flags name. SQLite lets these tools read, and
// replay webhooks, while lapse serve runs on the same directory.
func (d dataFlags) open(ctx context.Context) (backend, error) {
	_, st, err := d.openWith(ctx)
	return st, err
}

// openWith opens the store the flags name, and returns it with the
// configuration the flags make.
func (d dataFlags) openWith(ctx context.Context) (*config.File, backend, error) {
	cfg := config.Default()
	if *d.config != "" {
		var err error
		if cfg, err = config.Load(*d.config); err != nil {
			return nil, nil, err
		}
	}
	if *d.dataDir != "" {
		cfg.DataDir = *d.dataDir
	}
	if *d.store != "" {
		cfg.Store = lapse.SecretURL(*d.store)
	}
	if cfg.Store == "" || cfg.Store == "sqlite" {
		path := filepath.Join(cfg.DataDir, "lapse.db")
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("no lapse database at %s (use --data-dir, --store or --config)", path)
		}
	}
	st, err := openStore(ctx, cfg.Store, cfg.DataDir)
	return cfg, st, err
}
