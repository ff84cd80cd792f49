//go:build !linux

package sqlite

import "os"

// fdatasync flushes f (fsync; F_FULLFSYNC on macOS, as Go's Sync does).
func fdatasync(f *os.File) error { return f.Sync() }
