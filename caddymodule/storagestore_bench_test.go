package caddymodule

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

// BenchmarkStorageStore measures the file-per-key layout; the log's
// figures come from flow/logstore's BenchmarkStore.
func BenchmarkStorageStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B, now func() time.Time) flow.Store {
		return newStorageStore(&certmagic.FileStorage{Path: b.TempDir()}, "bot_handoff/bench", now)
	})
}

// BenchmarkStorageBytesPerFlow reports the disk a pending flow takes in the
// file system storage, in each layout: the bytes of its files, and the
// blocks the file system gives them. Run it with -benchtime 1x.
func BenchmarkStorageBytesPerFlow(b *testing.B) {
	const n = 2_000
	for _, layout := range storageLayouts {
		b.Run(layout+"/"+storetest.Count(n), func(b *testing.B) {
			bytesPerFlow(b, layout, n)
		})
	}
}

// bytesPerFlow fills a store of the layout with n pending flows and reports
// their disk usage.
func bytesPerFlow(b *testing.B, layout string, n int) {
	for range b.N {
		dir := b.TempDir()
		st := storageLayout(b, dir, layout, nil)
		storetest.Fill(b, st, 0, n, time.Now())
		_, size, blocks, err := diskUsage(dir)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(size)/float64(n), "B/flow")
		b.ReportMetric(float64(blocks)/float64(n), "disk-B/flow")
	}
}

// BenchmarkFileCreate times what the store's local file path does for every
// key it writes, without the store: a temporary file created, written,
// closed and renamed into place. It measures the file system under the
// test's temporary directory; set TMPDIR to measure another.
func BenchmarkFileCreate(b *testing.B) {
	dir := b.TempDir()
	value := make([]byte, 800) // a pending flow's record
	i := 0
	for b.Loop() {
		f, err := os.CreateTemp(dir, "put-*")
		if err != nil {
			b.Fatal(err)
		}
		_, err = f.Write(value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(dir, "k"+strconv.Itoa(i)))
		}
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkStorageClaimIdle times what the worker does every second when
// nothing is due: a Claim over the timer queue while n flows wait for their
// expiry, through the local file path and through the storage's own List.
func BenchmarkStorageClaimIdle(b *testing.B) {
	const n = 5_000
	now := time.Now()
	for _, kind := range []string{"local", "storage"} {
		b.Run(kind+"/"+storetest.Count(n), func(b *testing.B) {
			var st certmagic.Storage = &certmagic.FileStorage{Path: b.TempDir()}
			if kind == "storage" {
				st = otherStorage{st}
			}
			s := newStorageStore(st, "bot_handoff/bench", func() time.Time { return now })
			storetest.Fill(b, s, 0, n, now)
			for b.Loop() {
				keys, err := s.Claim(b.Context(), now, time.Minute, 32)
				if err != nil || len(keys) != 0 {
					b.Fatalf("claimed %q, %v; want nothing due", keys, err)
				}
			}
		})
	}
}

// BenchmarkMoveFilesIntoLog times the move of pending flows from a file
// per key into the log, which the first start after an upgrade makes
// before it serves.
func BenchmarkMoveFilesIntoLog(b *testing.B) {
	const n = 5_000
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		files := newStorageStore(&certmagic.FileStorage{Path: dir}, "bot_handoff/bench", nil)
		storetest.Fill(b, files, 0, n, time.Now())
		db := storageLayout(b, dir, "log", nil)
		b.StartTimer()

		moved, err := moveFlows(context.Background(), files.dump, db, time.Now())
		if err != nil || moved != 2*n {
			b.Fatalf("moved %d values, %v; want %d", moved, err, 2*n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(n*b.N), "µs/flow")
}
