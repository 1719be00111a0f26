package logstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/logstore"
)

// FuzzOpen opens a store whose only segment holds arbitrary bytes after
// the magic: Open either fails or gives a store that takes writes and
// opens again with them.
func FuzzOpen(f *testing.F) {
	seed := f.TempDir()
	st, err := logstore.Open(seed, logstore.Options{})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	_ = st.Apply(ctx, flow.Create("f/a", []byte("value"), time.Hour),
		flow.Schedule("f/a", time.Unix(1e9, 0)))
	_ = st.Apply(ctx, flow.Delete("f/a", 0), flow.Unschedule("f/a"))
	_ = st.Close()
	whole, err := os.ReadFile(filepath.Join(seed, "0000000000000001.log"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(whole)
	f.Add(whole[:len(whole)-1])
	f.Add([]byte("bot_handoff log1\xff\xff\xff\xff"))

	f.Fuzz(func(t *testing.T, log []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "0000000000000001.log"), log, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := logstore.Open(dir, logstore.Options{LockTimeout: time.Second})
		if err != nil {
			return
		}
		err = st.Apply(ctx, flow.Create("f/fuzz", []byte("x"), 0))
		if err != nil && !errors.Is(err, flow.ErrConflict) {
			t.Fatalf("a write after opening: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		st, err = logstore.Open(dir, logstore.Options{LockTimeout: time.Second})
		if err != nil {
			t.Fatalf("reopening what opened: %v", err)
		}
		_ = st.Close()
	})
}
