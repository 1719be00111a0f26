package caddymodule

import (
	"context"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

func init() {
	caddy.RegisterModule(StorageStore{})
}

// StorageStore keeps flows in Caddy's configured storage, the file system
// unless the operator chose another, under bot_handoff/. Flows survive
// restarts and reloads, and instances sharing the storage share the flows.
type StorageStore struct {
	// SweepInterval is how often values past their lifetime are removed.
	// Default: 10m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	storage certmagic.Storage
	ctx     context.Context
	cancel  context.CancelFunc
	stores  []*storageStore
}

// CaddyModule returns the Caddy module information.
func (StorageStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bot_handoff.stores.storage",
		New: func() caddy.Module { return new(StorageStore) },
	}
}

// Provision takes Caddy's storage.
func (s *StorageStore) Provision(ctx caddy.Context) error {
	s.storage = ctx.Storage()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return nil
}

// Store implements StoreModule, and starts the sweeper of the namespace.
func (s *StorageStore) Store(namespace string) (flow.Store, error) {
	st := newStorageStore(s.storage, "bot_handoff/"+namespace, nil)
	s.stores = append(s.stores, st)
	go s.sweepEvery(st, durationOr(s.SweepInterval, 10*time.Minute))
	return st, nil
}

func (s *StorageStore) sweepEvery(st *storageStore, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			_ = st.sweep(s.ctx)
		}
	}
}

// Cleanup stops the sweepers and closes the stores' files.
func (s *StorageStore) Cleanup() error {
	if s.cancel != nil {
		s.cancel()
	}
	for _, st := range s.stores {
		_ = st.w.close()
	}
	return nil
}

// UnmarshalCaddyfile reads "store storage", optionally with a block:
//
//	store storage {
//		sweep_interval DURATION
//	}
func (s *StorageStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // storage
	if d.NextArg() {
		return d.ArgErr()
	}
	return parseBlock(d, map[string]func(*caddyfile.Dispenser) error{
		"sweep_interval": func(d *caddyfile.Dispenser) error { return durationArg(d, &s.SweepInterval) },
	})
}

// Interface guards
var (
	_ StoreModule           = (*StorageStore)(nil)
	_ caddy.Provisioner     = (*StorageStore)(nil)
	_ caddy.CleanerUpper    = (*StorageStore)(nil)
	_ caddyfile.Unmarshaler = (*StorageStore)(nil)
)
