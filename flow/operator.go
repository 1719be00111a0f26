package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// OutboxEntry is what an operator sees of a delivery: never the event.
type OutboxEntry struct {
	ID        string    `json:"id"`
	Signal    string    `json:"signal"`
	Type      string    `json:"type"`
	Flow      string    `json:"flow"`
	FlowID    string    `json:"flowId"`
	Created   time.Time `json:"created"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError,omitempty"`
	// Due is the next attempt; for a dead delivery, when it is dropped.
	Due  time.Time `json:"due"`
	Dead bool      `json:"dead"`
}

// Outbox lists up to limit pending deliveries, then up to limit given up.
func (e *Engine) Outbox(ctx context.Context, limit int) ([]OutboxEntry, error) {
	var out []OutboxEntry
	for _, prefix := range []string{keyDelivery, keyDead} {
		timers, _, err := e.store.Timers(ctx, prefix, limit)
		if err != nil {
			return nil, fmt.Errorf("listing outbox: %w", err)
		}
		for _, t := range timers {
			d, _, err := e.loadDelivery(ctx, t.Key)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, OutboxEntry{
				ID: d.ID, Signal: signalKind(d.Signal), Type: d.Type, Flow: d.Flow, FlowID: d.FlowID,
				Created: d.Created, Attempts: d.Attempts, LastError: d.LastError,
				Due: t.Due, Dead: prefix == keyDead,
			})
		}
	}
	return out, nil
}

func (e *Engine) loadDelivery(ctx context.Context, key string) (*Delivery, uint64, error) {
	ent, err := e.store.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	var d Delivery
	if err := json.Unmarshal(ent.Value, &d); err != nil {
		return nil, 0, fmt.Errorf("decoding delivery: %w", err)
	}
	return &d, ent.Rev, nil
}

// RetryNow makes the delivery with the given ID due now, or every delivery
// if id is empty; a delivery given up is brought back with a fresh age. It
// returns how many deliveries it moved.
func (e *Engine) RetryNow(ctx context.Context, id string) (int, error) {
	entries, err := e.Outbox(ctx, 10_000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, en := range entries {
		if id != "" && en.ID != id {
			continue
		}
		if err := e.retryNow(ctx, en); err != nil {
			return n, err
		}
		n++
	}
	e.kick()
	return n, nil
}

func (e *Engine) retryNow(ctx context.Context, en OutboxEntry) error {
	now := e.now()
	if !en.Dead {
		return e.store.Apply(ctx, Schedule(keyDelivery+en.ID, now))
	}

	dead := keyDead + en.ID
	d, rev, err := e.loadDelivery(ctx, dead)
	if err != nil {
		return fmt.Errorf("reading dead delivery: %w", err)
	}
	d.Created, d.LastError = now, strings.TrimSpace(d.LastError+" (replayed)")
	val, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encoding delivery: %w", err)
	}
	live := keyDelivery + en.ID
	return e.store.Apply(ctx, Delete(dead, rev), Unschedule(dead),
		Create(live, val, 0), Schedule(live, now))
}
