package caddymodule

import (
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/logstore"
	"github.com/bothandoff/caddy-bothandoff/flow/oauth"
)

// The benchmarks here run the engine in process on the storage store over
// Caddy's file storage in a temporary directory, with rate limits off.

const benchAudience = "https://example.com/handoff"

var benchSecret = []byte("0123456789abcdef0123456789abcdef-bench")

// storageEngine returns an engine with an oauth flow on a storage store in
// dir, and a signer for its links.
func storageEngine(b *testing.B, dir, layout string) (*flow.Engine, flow.Signer, time.Time) {
	b.Helper()
	now := time.Now().Truncate(time.Second)
	clock := func() time.Time { return now }
	key, _ := flow.SecretKey("", benchSecret)
	v, err := flow.NewVerifier(flow.VerifierConfig{Keys: []flow.LinkKey{key}, Now: clock})
	if err != nil {
		b.Fatal(err)
	}
	kr, _ := flow.NewKeyring([]byte("state-key-state-key-state-key-32"))
	idp, err := oauth.New(oauth.Config{
		AuthURL: "https://idp.example.com/authorize", TokenURL: "https://idp.example.com/token",
		ClientID: "client", ClientSecret: "secret", Scopes: []string{"openid", "profile", "email"},
	})
	if err != nil {
		b.Fatal(err)
	}
	st := storageLayout(b, dir, layout, clock)
	off := flow.Rate{N: -1}
	e, err := flow.New(flow.Config{
		Audience: benchAudience, Verifier: v, Store: st, Keys: kr, Now: clock,
		Flows:  map[string]flow.FlowConfig{"idp": {Provider: idp}},
		Limits: flow.Limits{StartPerIP: off, StartPerFlow: off, VerifyPerIP: off},
	})
	if err != nil {
		b.Fatal(err)
	}
	signer, _ := flow.SecretSigner("", benchSecret)
	return e, signer, now
}

// benchStart posts a fresh link of the oauth flow for user i.
func benchStart(e *flow.Engine, s flow.Signer, now time.Time, i int) (int, error) {
	tok, err := s.SignLink(flow.Link{Flow: "idp", Audience: benchAudience, Now: now,
		TTL: 10 * time.Minute, Ref: flow.Ref{
			ChannelID: "msteams", ServiceURL: "https://smba.trafficmanager.net/emea/",
			Conversation: flow.Conversation{ID: fmt.Sprintf("a:1Xj7Lk3bench%032d", i),
				TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"},
			User: flow.Account{ID: fmt.Sprintf("29:1Gh5bench%040d", i), Name: "Jane Doe"},
		}, Data: map[string]any{"loginHint": "jane.doe@example.com"}})
	if err != nil {
		return 0, err
	}
	r := httptest.NewRequest(http.MethodPost, "https://example.com/handoff/start",
		strings.NewReader(url.Values{"t": {tok}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "https://example.com")
	w := httptest.NewRecorder()
	err = e.ServeHTTP(w, r, func(http.ResponseWriter, *http.Request) error { return nil })
	return w.Code, err
}

// startAll opens b.N flows with workers concurrent starts.
func startAll(b *testing.B, e *flow.Engine, s flow.Signer, now time.Time, workers int) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
				code, err := benchStart(e, s, now, i)
				if err != nil || code != http.StatusSeeOther {
					b.Errorf("start: %d %v", code, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// storageLayouts are the storage store's two layouts on the local file
// system: the log, and a file per key (shared).
var storageLayouts = []string{"log", "files"}

// storageLayout opens the storage store in dir, in one of storageLayouts.
func storageLayout(b *testing.B, dir, layout string, now func() time.Time) flow.Store {
	b.Helper()
	if layout == "files" {
		return newStorageStore(&certmagic.FileStorage{Path: dir}, "bot_handoff/bench", now)
	}
	l, err := logstore.Open(filepath.Join(dir, logDir), logstore.Options{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	return l
}

// BenchmarkStorageStart opens flows of an oauth flow on the storage store
// from 16 concurrent clients; the time per op includes signing the link.
func BenchmarkStorageStart(b *testing.B) {
	for _, layout := range storageLayouts {
		b.Run(layout, func(b *testing.B) {
			e, s, now := storageEngine(b, b.TempDir(), layout)
			b.ResetTimer()
			startAll(b, e, s, now, 16)
		})
	}
}

// BenchmarkStoragePendingFlowDisk opens b.N oauth flows on the storage
// store and reports the bytes they take on disk per flow: as written
// (file sizes) and as allocated by the file system (blocks), locks
// excluded, and the live heap they add (the log keeps its flows in memory
// too). Run it with -benchtime 10000x and 100000x.
func BenchmarkStoragePendingFlowDisk(b *testing.B) {
	for _, layout := range storageLayouts {
		b.Run(layout, func(b *testing.B) {
			dir := b.TempDir()
			e, s, now := storageEngine(b, dir, layout)
			heap := liveHeap()
			b.ResetTimer()
			startAll(b, e, s, now, 8)
			b.StopTimer()
			// The file layout keeps nothing in memory: a difference below
			// zero is other memory freed meanwhile.
			heap = max(0, liveHeap()-heap)

			files, size, blocks, err := diskUsage(dir)
			if err != nil {
				b.Fatal(err)
			}
			n := float64(b.N)
			b.ReportMetric(float64(files)/n, "files/flow")
			b.ReportMetric(float64(size)/n, "B/flow")
			b.ReportMetric(float64(blocks)/n, "disk-B/flow")
			b.ReportMetric(float64(heap)/n, "heap-B/flow")
		})
	}
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// diskUsage counts the files under root, their bytes, and the bytes the
// file system allocated for them and their directories.
func diskUsage(root string) (files, size, blocks int64, err error) {
	err = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			blocks += st.Blocks * 512
		}
		if !d.IsDir() {
			files++
			size += info.Size()
		}
		return nil
	})
	return files, size, blocks, err
}
