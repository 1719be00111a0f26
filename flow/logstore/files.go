package logstore

import (
	"cmp"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// A store's directory holds numbered log segments and snapshots, named by
// their numbers in hexadecimal:
//
//	0000000000000003.snap   the state as it was when segment 3 began
//	0000000000000003.log    the frames written since
//	0000000000000004.log
//	lock                    held by the process that has the store open
//
// The state is the newest snapshot with every segment of its number or
// higher replayed on it, in order; without a snapshot, every segment. A
// snapshot is written beside the segments and renamed into place once it
// is synced, and only then are the older files removed.
const (
	logExt   = ".log"
	snapExt  = ".snap"
	tmpExt   = ".tmp"
	lockName = "lock"
)

func segmentName(n uint64) string  { return fmt.Sprintf("%016x%s", n, logExt) }
func snapshotName(n uint64) string { return fmt.Sprintf("%016x%s", n, snapExt) }

// A listing is what a store's directory holds, in the order of numbers.
type listing struct {
	segments, snapshots []file
	temporary           []string
}

// A file is a numbered file of the store. Its name need not be the one
// the store gives it: a backup may be restored as 0.snap.
type file struct {
	n    uint64
	name string
}

// list reads the store's directory. Names it does not know are left alone.
func list(dir string) (listing, error) {
	var l listing
	ents, err := os.ReadDir(dir)
	if err != nil {
		return l, err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, tmpExt) {
			l.temporary = append(l.temporary, name)
			continue
		}
		ext := filepath.Ext(name)
		n, err := strconv.ParseUint(strings.TrimSuffix(name, ext), 16, 64)
		switch {
		case err != nil:
		case ext == logExt:
			l.segments = append(l.segments, file{n, name})
		case ext == snapExt:
			l.snapshots = append(l.snapshots, file{n, name})
		}
	}
	byNumber := func(a, b file) int { return cmp.Compare(a.n, b.n) }
	slices.SortFunc(l.segments, byNumber)
	slices.SortFunc(l.snapshots, byNumber)
	return l, nil
}

// removeBefore removes the segments and snapshots numbered below n, and
// temporary files, which a store that died while compacting leaves.
func removeBefore(dir string, n uint64) error {
	l, err := list(dir)
	if err != nil {
		return err
	}
	var errs []error
	remove := func(name string) {
		err := os.Remove(filepath.Join(dir, name))
		if err != nil && !errors.Is(err, iofs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, f := range slices.Concat(l.segments, l.snapshots) {
		if f.n < n {
			remove(f.name)
		}
	}
	for _, name := range l.temporary {
		remove(name)
	}
	return errors.Join(errs...)
}

// A segment is the log file the store appends to.
type segment struct {
	f *os.File
	n uint64
	// size is how much of the file the frames take; the file is longer,
	// zeros to allocated.
	size, allocated int64
}

// preallocate is how much a segment grows by when its frames reach its
// end.
const preallocate = 4 << 20

// createSegment creates segment n, durable with its magic before it is
// used.
func createSegment(dir string, n uint64) (*segment, error) {
	path := filepath.Join(dir, segmentName(n))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	g := &segment{f: f, n: n}
	err = g.append(magic)
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	return g, nil
}

// openSegment opens segment f to append to it after its first size bytes,
// cutting off whatever follows them: zeros, and a frame torn by a crash.
func openSegment(dir string, f file, size int64) (*segment, error) {
	path := filepath.Join(dir, f.name)
	fd, err := os.OpenFile(path, os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	if st, err := fd.Stat(); err == nil && st.Size() > size {
		err = fd.Truncate(size)
		if err == nil {
			err = datasync(fd)
		}
		if err != nil {
			_ = fd.Close()
			return nil, fmt.Errorf("cutting the torn end off %s: %w", path, err)
		}
	}
	return &segment{f: fd, n: f.n, size: size, allocated: size}, nil
}

// append writes p after the segment's frames and syncs it.
func (g *segment) append(p []byte) error {
	if end := g.size + int64(len(p)); end > g.allocated {
		if err := g.extend(end); err != nil {
			return err
		}
	}
	n, err := g.f.WriteAt(p, g.size)
	g.size += int64(n)
	if err != nil {
		return err
	}
	return datasync(g.f)
}

// extend writes zeros to the file past end, a multiple of preallocate.
// Zeros written, not a hole or an allocation without data, so that the
// appends after it change neither the file's size nor its extents, and a
// sync has only their data to write: a third cheaper on ext4.
func (g *segment) extend(end int64) error {
	to := (end/preallocate + 1) * preallocate
	zeros := make([]byte, 256<<10)
	for off := g.allocated; off < to; off += int64(len(zeros)) {
		if _, err := g.f.WriteAt(zeros[:min(int64(len(zeros)), to-off)], off); err != nil {
			return err
		}
	}
	g.allocated = to
	return nil
}

func (g *segment) close() error { return g.f.Close() }
