package caddymodule

import (
	"context"
	"fmt"

	"github.com/caddyserver/certmagic"
)

// storageWriter is how the storage store writes and locks: through Caddy's
// storage as it is, or, for the local file system, through a faster path
// that keeps the same files.
type storageWriter interface {
	// put stores value at key; del removes key, if there.
	put(ctx context.Context, key string, value []byte) error
	del(ctx context.Context, key string) error
	// lock takes the cross-process locks of keys, which hash to the given
	// in-process stripes (both sorted), and returns their release.
	lock(ctx context.Context, keys []string, stripes []int) (func(), error)
	// list returns the keys directly under dir, files and directories, in
	// no particular order; an error wrapping fs.ErrNotExist if dir is not
	// there.
	list(ctx context.Context, dir string) ([]string, error)
	// flush makes the writes made so far durable.
	flush() error
	// close releases what the writer holds open.
	close() error
}

// storageWriterFor returns the fast path for a local file storage where the
// platform has one, and Caddy's storage itself otherwise.
func storageWriterFor(st certmagic.Storage, base string) storageWriter {
	if fs, ok := st.(*certmagic.FileStorage); ok {
		if w := newFileWriter(fs, base); w != nil {
			return w
		}
	}
	return caddyWriter{st: st, base: base}
}

// caddyWriter writes through certmagic.Storage: each write synced by the
// storage, each key locked by the storage's own locks.
type caddyWriter struct {
	st   certmagic.Storage
	base string
}

func (c caddyWriter) put(ctx context.Context, key string, value []byte) error {
	return c.st.Store(ctx, key, value)
}

func (c caddyWriter) del(ctx context.Context, key string) error {
	return ignoreMissing(c.st.Delete(ctx, key))
}

func (c caddyWriter) list(ctx context.Context, dir string) ([]string, error) {
	return c.st.List(ctx, dir, false)
}

func (c caddyWriter) flush() error { return nil }
func (c caddyWriter) close() error { return nil }

func (c caddyWriter) lock(ctx context.Context, keys []string, _ []int) (func(), error) {
	var held []string
	release := func() {
		for _, name := range held {
			_ = c.st.Unlock(context.WithoutCancel(ctx), name)
		}
	}
	for _, k := range keys {
		name := c.base + "/" + escKey(k)
		if err := c.st.Lock(ctx, name); err != nil {
			release()
			return nil, fmt.Errorf("locking %s: %w", k, err)
		}
		held = append(held, name)
	}
	return release, nil
}
