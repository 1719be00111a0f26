package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/memstore"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
}

// MemoryStore keeps flows in this process's memory: fast, but flows are lost
// on restart and reload, and not shared with other instances. For tests and
// single instances that can afford that.
type MemoryStore struct {
	keys []string
}

// memoryStores keeps one memory store per configuration across reloads, so
// a reload does not drop the flows of a running handler.
var memoryStores = caddy.NewUsagePool()

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bot_handoff.stores.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// Store implements StoreModule: it takes the process's memory store of the
// namespace, making it the first time.
func (m *MemoryStore) Store(namespace string) (flow.Store, error) {
	val, _, err := memoryStores.LoadOrNew(namespace, func() (caddy.Destructor, error) {
		return pooledStore{memstore.New(nil)}, nil
	})
	if err != nil {
		return nil, err
	}
	m.keys = append(m.keys, namespace)
	return val.(pooledStore).Store, nil
}

// Cleanup releases the stores this module took.
func (m *MemoryStore) Cleanup() error {
	for _, k := range m.keys {
		if _, err := memoryStores.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// UnmarshalCaddyfile reads "store memory"; it takes no options.
func (m *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // memory
	if d.NextArg() || d.NextBlock(d.Nesting()) {
		return d.Err("store memory takes no options")
	}
	return nil
}

type pooledStore struct{ *memstore.Store }

func (pooledStore) Destruct() error { return nil }

// Interface guards
var (
	_ StoreModule           = (*MemoryStore)(nil)
	_ caddy.CleanerUpper    = (*MemoryStore)(nil)
	_ caddyfile.Unmarshaler = (*MemoryStore)(nil)
)
