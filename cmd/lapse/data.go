package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lapsehq/lapse/config"
	"github.com/lapsehq/lapse/sqlite"
)

// dataFlags are the flags of commands that read lapse's data directly.
type dataFlags struct {
	config, dataDir *string
}

func addDataFlags(fs *flag.FlagSet) dataFlags {
	return dataFlags{
		config:  fs.String("config", "", "lapse's configuration `file`, to find its data directory"),
		dataDir: fs.String("data-dir", "", "lapse's data `directory` (default from --config, or ./lapse-data)"),
	}
}

// open opens the embedded store of the data directory the flags name.
// SQLite lets these tools read, and replay webhooks, while lapse serve
// runs on the same directory.
func (d dataFlags) open() (*sqlite.Store, error) {
	dir := config.Default().DataDir
	if *d.config != "" {
		cfg, err := config.Load(*d.config)
		if err != nil {
			return nil, err
		}
		dir = cfg.DataDir
	}
	if *d.dataDir != "" {
		dir = *d.dataDir
	}
	path := filepath.Join(dir, "lapse.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no lapse database at %s (use --data-dir or --config)", path)
	}
	return sqlite.Open(path)
}
