//go:build !unix && !windows

package logstore

import (
	"os"
	"time"
)

// lockFile opens the lock file without locking it: this platform has no
// file locks, so nothing stops a second process.
func lockFile(path string, _ time.Duration) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
}

// syncDir does nothing on this platform.
func syncDir(string) error { return nil }
