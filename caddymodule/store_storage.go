package caddymodule

import (
	"context"
	"log/slog"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

func init() {
	caddy.RegisterModule(StorageStore{})
}

// StorageStore keeps flows in Caddy's configured storage, the file system
// unless the operator chose another, under bot_handoff/. Flows survive
// restarts and reloads.
//
// On the local file system, each handler's flows are one log, kept in
// memory too, which one Caddy process holds at a time. In any other storage, and with
// shared, each key is a file of its own, and instances sharing the storage
// share the flows.
type StorageStore struct {
	// SweepInterval is how often values past their lifetime are removed.
	// Default: 10m.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	// Shared keeps a file per key on the local file system too, for Caddy
	// processes that share one storage directory, on one machine or over
	// a network file system. It is much slower than the log. Flows
	// move between the two layouts at the first start after the setting
	// changes; a reload cannot change it. Default: false.
	Shared bool `json:"shared,omitempty"`

	storage certmagic.Storage
	logger  *zap.Logger
	slog    *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	files   []*storageStore
	logs    []string
	layouts []string
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
	s.logger = ctx.Logger()
	s.slog = ctx.Slogger()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return nil
}

// Store implements StoreModule, and starts the sweeper of the namespace.
func (s *StorageStore) Store(namespace string) (flow.Store, error) {
	base := "bot_handoff/" + namespace
	every := durationOr(s.SweepInterval, 10*time.Minute)
	if fs, ok := s.storage.(*certmagic.FileStorage); ok && !s.Shared {
		l, err := s.openLog(fs, base)
		if err != nil {
			return nil, err
		}
		go s.sweepEvery(every, func(ctx context.Context) error {
			_, err := l.Sweep(ctx)
			return err
		})
		return l, nil
	}

	st := newStorageStore(s.storage, base, nil)
	s.files = append(s.files, st)
	if fs, ok := s.storage.(*certmagic.FileStorage); ok {
		if err := s.leaveLog(fs, st); err != nil {
			return nil, err
		}
	}
	go s.sweepEvery(every, st.sweep)
	return st, nil
}

// sweepEvery runs sweep every interval until the module is cleaned up; a
// failed sweep is logged, and the next one tries again.
func (s *StorageStore) sweepEvery(every time.Duration, sweep func(context.Context) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if err := sweep(s.ctx); err != nil && s.ctx.Err() == nil {
				s.logger.Warn("sweeping expired flows failed", zap.Error(err))
			}
		}
	}
}

// Cleanup stops the sweepers, closes the stores' files, and lets go of
// the logs, which close once no configuration of the process uses them.
func (s *StorageStore) Cleanup() error {
	if s.cancel != nil {
		s.cancel()
	}
	for _, st := range s.files {
		_ = st.w.close()
	}
	for _, path := range s.logs {
		_, _ = logs.Delete(path)
	}
	for _, dir := range s.layouts {
		_, _ = fileLayouts.Delete(dir)
	}
	return nil
}

// UnmarshalCaddyfile reads "store storage", optionally with a block:
//
//	store storage {
//		sweep_interval DURATION
//		shared
//	}
func (s *StorageStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // storage
	if d.NextArg() {
		return d.ArgErr()
	}
	return parseBlock(d, map[string]func(*caddyfile.Dispenser) error{
		"sweep_interval": func(d *caddyfile.Dispenser) error { return durationArg(d, &s.SweepInterval) },
		"shared": func(d *caddyfile.Dispenser) error {
			if d.NextArg() {
				return d.ArgErr()
			}
			s.Shared = true
			return nil
		},
	})
}

// Interface guards
var (
	_ StoreModule           = (*StorageStore)(nil)
	_ caddy.Provisioner     = (*StorageStore)(nil)
	_ caddy.CleanerUpper    = (*StorageStore)(nil)
	_ caddyfile.Unmarshaler = (*StorageStore)(nil)
)
