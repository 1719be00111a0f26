package memstore_test

import (
	"testing"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(_ *testing.T, now func() time.Time) flow.Store {
		return memstore.New(now)
	})
}
