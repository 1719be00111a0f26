package caddymodule

import (
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

func BenchmarkStorageStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B, now func() time.Time) flow.Store {
		return newStorageStore(&certmagic.FileStorage{Path: b.TempDir()}, "bot_handoff/bench", now)
	})
}

// BenchmarkStorageBytesPerFlow reports the disk a pending flow takes in the
// file system storage: the bytes of its files, and the blocks the file
// system gives them. Run it with -benchtime 1x.
func BenchmarkStorageBytesPerFlow(b *testing.B) {
	const n = 2_000
	b.Run(storetest.Count(n), func(b *testing.B) {
		for range b.N {
			dir := b.TempDir()
			st := newStorageStore(&certmagic.FileStorage{Path: dir}, "bot_handoff/bench", nil)
			storetest.Fill(b, st, 0, n, time.Now())
			size, blocks := diskUsage(b, dir)
			b.ReportMetric(float64(size)/n, "B/flow")
			b.ReportMetric(float64(blocks)/n, "disk-B/flow")
		}
	})
}

// diskUsage sums the sizes and the allocated blocks of the files and
// directories under dir.
func diskUsage(b *testing.B, dir string) (size, blocks int64) {
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !d.IsDir() {
			size += info.Size()
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			blocks += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return size, blocks
}
