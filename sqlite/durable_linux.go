package sqlite

import (
	"os"
	"syscall"
)

// fdatasync flushes f's data and what is needed to read it back (its
// size), as SQLite's own sync does on Linux.
func fdatasync(f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		for {
			if serr = syscall.Fdatasync(int(fd)); serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
