package caddymodule

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/caddyserver/certmagic"
	"golang.org/x/sys/unix"
)

// fileWriter is the storage store's path on a local file system under
// Linux. It writes the same files certmagic.FileStorage does, but:
//
//   - a write is a temporary file renamed into place, not synced on its
//     own; flush makes every write so far durable with one syncfs(2),
//     shared by the requests that wait for it (a group commit);
//   - locks are flock(2) on one file per stripe, taken and released by the
//     kernel, so a crashed process leaves no stale lock behind.
//
// Instances sharing the directory on one machine lock each other out as
// certmagic's lock files do; flock is not relied on across network file
// systems, where Caddy's own file locking is advisory too.
type fileWriter struct {
	root  string
	locks string
	tmp   string
	dirFD int

	mu    sync.Mutex
	files map[int]*os.File

	sync groupSync
}

// newFileWriter returns the fast path for fs, or nil if its directory
// cannot be opened.
func newFileWriter(fs *certmagic.FileStorage, base string) storageWriter {
	locks := filepath.Join(fs.Path, filepath.FromSlash(base), "locks")
	tmp := filepath.Join(fs.Path, filepath.FromSlash(base), "tmp")
	for _, d := range []string{locks, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil
		}
	}
	dir, err := unix.Open(fs.Path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	w := &fileWriter{root: fs.Path, locks: locks, tmp: tmp, dirFD: dir, files: map[int]*os.File{}}
	w.sync.do = func() error { return unix.Syncfs(w.dirFD) }
	return w
}

func (w *fileWriter) filename(key string) string {
	return filepath.Join(w.root, filepath.FromSlash(key))
}

func (w *fileWriter) put(_ context.Context, key string, value []byte) error {
	name := w.filename(key)
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	// The temporary file lives apart, so that no listing of the store's
	// directories sees it half-written.
	f, err := os.CreateTemp(w.tmp, "put-*")
	if err != nil {
		return err
	}
	_, err = f.Write(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), name)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

func (w *fileWriter) del(_ context.Context, key string) error {
	return ignoreMissing(os.RemoveAll(w.filename(key)))
}

// list reads dir once. certmagic's List, built on filepath.Walk, reads and
// sorts every subdirectory too before it skips it, which for the timer
// queue means every queue entry of every minute on each claim.
func (w *fileWriter) list(_ context.Context, dir string) ([]string, error) {
	f, err := os.Open(w.filename(dir))
	if err != nil {
		return nil, err
	}
	defer f.Close()

	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(names))
	for i, name := range names {
		keys[i] = path.Join(dir, name)
	}
	return keys, nil
}

func (w *fileWriter) flush() error { return w.sync.wait() }

func (w *fileWriter) lock(_ context.Context, _ []string, stripes []int) (func(), error) {
	var held []*os.File
	release := func() {
		for _, f := range held {
			_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		}
	}
	for _, i := range stripes {
		f, err := w.lockFile(i)
		if err == nil {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("locking stripe %d: %w", i, err)
		}
		held = append(held, f)
	}
	return release, nil
}

func (w *fileWriter) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, f := range w.files {
		_ = f.Close()
		delete(w.files, i)
	}
	return unix.Close(w.dirFD)
}

// lockFile returns the open lock file of a stripe, opening it once.
func (w *fileWriter) lockFile(i int) (*os.File, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f, ok := w.files[i]; ok {
		return f, nil
	}
	f, err := os.OpenFile(filepath.Join(w.locks, strconv.Itoa(i)+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	w.files[i] = f
	return f, nil
}
