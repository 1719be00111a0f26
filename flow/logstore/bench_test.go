package logstore_test

import (
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/logstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B, now func() time.Time) flow.Store {
		return open(b, b.TempDir(), logstore.Options{Now: now})
	})
}
