// Package flowtest holds helpers for tests of code that runs a flow.Engine.
package flowtest

import (
	"context"
	"errors"
	"sync"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// ErrDown is what a Recorder's deliveries return while it fails.
var ErrDown = errors.New("flowtest: the recorder is down")

// Recorder is a flow.Signal that keeps the events delivered to it. While
// SetFail is on, deliveries fail with ErrDown, as a bot's service that is
// down, and the engine's outbox retries them.
type Recorder struct {
	mu     sync.Mutex
	events []*flow.Event
	fail   bool
}

// ID implements flow.Signal.
func (r *Recorder) ID() string { return "recorder" }

// Kind implements flow.Signal.
func (r *Recorder) Kind() string { return "test" }

// Deliver implements flow.Signal.
func (r *Recorder) Deliver(_ context.Context, ev *flow.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return ErrDown
	}
	r.events = append(r.events, ev)
	return nil
}

// SetFail makes deliveries fail, or succeed again.
func (r *Recorder) SetFail(fail bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = fail
}

// Events returns the events delivered so far, in the order they arrived.
func (r *Recorder) Events() []*flow.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*flow.Event(nil), r.events...)
}
