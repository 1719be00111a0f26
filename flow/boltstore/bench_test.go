package boltstore_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/boltstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B, now func() time.Time) flow.Store {
		path := filepath.Join(b.TempDir(), "store.db")
		st, err := boltstore.Open(path, boltstore.Options{Now: now})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return st
	})
}
