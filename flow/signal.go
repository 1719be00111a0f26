package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Event types, as the bot receives them.
const (
	EventCompleted = "handoff.completed"
	EventFailed    = "handoff.failed"
	EventExpired   = "handoff.expired"
)

// An Event tells the bot what became of a flow. Every signal carries the
// same JSON.
type Event struct {
	Type      string    `json:"type"`
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"createdAt"`
	FlowID    string    `json:"flowId"`
	Flow      string    `json:"flow"`
	Kind      string    `json:"kind"`
	Status    Status    `json:"status"`
	// Error is the failure reason of a failed flow, as a short code.
	Error string `json:"error,omitempty"`
	Ref   Ref    `json:"ref"`
	// MagicNumber and Result are set only when the handler delivers in full.
	MagicNumber string          `json:"magicNumber,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
}

// A Signal delivers events to the bot. A delivery that fails is retried
// with backoff until it succeeds or grows too old, so Deliver must be safe to
// repeat: the event's ID is the same on every attempt.
type Signal interface {
	// ID names the signal and its target, stably across restarts, like
	// "webhook https://bot.example.com/api/handoff".
	ID() string
	// Kind names the signal type for metrics: "webhook", "bot_state".
	Kind() string
	// Deliver sends ev; an error means it may not have arrived.
	Deliver(ctx context.Context, ev *Event) error
}

// RetryAfterError is a delivery failure whose receiver asked to be retried
// no sooner than After.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// ParseRetryAfter reads a Retry-After header value, in seconds or as an
// HTTP date, as a delay from now. It reports false if v is neither.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// ErrPermanent marks a delivery failure no retry can fix, such as a payload
// the receiver can never accept. Such a delivery is given up at once.
var ErrPermanent = errors.New("flow: permanent delivery failure")

// newEvent returns an event of type typ for rec, as of now.
func (e *Engine) newEvent(typ string, rec *Record, now time.Time) *Event {
	return &Event{
		Type:      typ,
		ID:        randomString(e.rand, 16),
		CreatedAt: now.UTC(),
		FlowID:    rec.ID,
		Flow:      rec.Flow,
		Kind:      rec.Kind,
		Status:    rec.Status,
		Error:     rec.Error,
		Ref:       rec.Ref,
	}
}
