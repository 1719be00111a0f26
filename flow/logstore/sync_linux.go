package logstore

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync makes f's written data durable: fdatasync(2), which skips the
// metadata that reading the data back does not need.
func datasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
