package logstore

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// lockFile takes an exclusive lock on the file at path, waiting up to
// timeout for another process to let go of it. Closing the returned file
// lets go of the lock.
func lockFile(path string, timeout time.Duration) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	flags := uint32(windows.LOCKFILE_EXCLUSIVE_LOCK | windows.LOCKFILE_FAIL_IMMEDIATELY)
	for {
		err := windows.LockFileEx(windows.Handle(f.Fd()), flags, 0, 1, 0, &windows.Overlapped{})
		if err == nil {
			return f, nil
		}
		busy := errors.Is(err, windows.ERROR_LOCK_VIOLATION)
		if !busy || time.Now().After(deadline) {
			_ = f.Close()
			if busy {
				err = ErrLocked
			}
			return nil, err
		}
		time.Sleep(lockRetry)
	}
}

// syncDir does nothing: Windows makes a directory's entries durable with
// the files'.
func syncDir(string) error { return nil }
