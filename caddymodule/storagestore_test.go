package caddymodule

import (
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/storetest"
)

func TestStorageStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) flow.Store {
		return newStorageStore(&certmagic.FileStorage{Path: t.TempDir()}, "bot_handoff/test", now)
	})
}
