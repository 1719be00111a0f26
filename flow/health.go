package flow

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Health is the handler's health, as {prefix}/healthz reports it.
type Health struct {
	Status string `json:"status"`
	Store  string `json:"store"`
	// Outbox counts deliveries waiting, and how long the oldest has waited.
	Outbox OutboxHealth `json:"outbox"`
}

// OutboxHealth describes the deliveries waiting in the outbox.
type OutboxHealth struct {
	// Pending counts deliveries not yet made.
	Pending int `json:"pending"`
	// OverdueSeconds is how long the most overdue attempt has been due; it
	// grows when no worker makes attempts.
	OverdueSeconds float64 `json:"overdueSeconds"`
	// Dead counts deliveries given up and kept for the operator.
	Dead int `json:"dead"`
}

// healthProbeKey is read to check the store; it never exists.
const healthProbeKey = "h/probe"

// Health checks the store and reads the outbox. The status is "ok", or
// "unavailable" when the store cannot be read.
func (e *Engine) Health(ctx context.Context) Health {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()

	h := Health{Status: "ok", Store: "ok"}
	if _, err := e.store.Get(ctx, healthProbeKey); err != nil && !errors.Is(err, ErrNotFound) {
		h.Status, h.Store = "unavailable", "unavailable"
		return h
	}

	oldest, n, err := e.store.Timers(ctx, keyDelivery, 1)
	if err != nil {
		h.Status, h.Store = "unavailable", "unavailable"
		return h
	}
	h.Outbox.Pending = n
	if len(oldest) > 0 {
		h.Outbox.OverdueSeconds = max(0, e.now().Sub(oldest[0].Due).Seconds())
	}
	if _, dead, err := e.store.Timers(ctx, keyDead, 0); err == nil {
		h.Outbox.Dead = dead
	}
	return h
}

func (e *Engine) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := e.Health(r.Context())
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}
