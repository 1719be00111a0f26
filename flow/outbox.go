package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Outbox timing.
const (
	// pollInterval is how often the worker looks for due work when nothing
	// wakes it sooner.
	pollInterval = time.Second
	// claimLease is how long a claimed key is hidden from other workers.
	claimLease = time.Minute
	// claimBatch is how many keys a worker claims at once.
	claimBatch = 32
	// deliverTimeout bounds one delivery attempt.
	deliverTimeout = 20 * time.Second
	// deadRetention is how long a given-up delivery is kept for the operator.
	deadRetention = 7 * 24 * time.Hour
	// backoffBase and backoffCap shape the retry delays: 2s, 4s, 8s … 10m.
	backoffBase = 2 * time.Second
	backoffCap  = 10 * time.Minute
	// retryAfterCap bounds how long a receiver may ask us to wait.
	retryAfterCap = time.Hour
	// workers is how many keys one engine works on at once.
	workers = 4
)

// keyDead is the prefix of deliveries given up, kept for the operator.
const keyDead = "x/"

// A Delivery is one event on its way to one signal: the outbox entry.
type Delivery struct {
	ID       string    `json:"id"`
	Signal   string    `json:"signal"`
	Type     string    `json:"type"`
	Flow     string    `json:"flow"`
	FlowID   string    `json:"flowId"`
	Created  time.Time `json:"created"`
	Attempts int       `json:"attempts"`
	// LastError is why the last attempt failed, without any secret.
	LastError string `json:"lastError,omitempty"`
	// Event is the sealed event JSON.
	Event []byte `json:"event"`
}

// deliveryOps returns the ops that queue ev for every signal.
func (e *Engine) deliveryOps(ev *Event, now time.Time) ([]Op, error) {
	// Only a full delivery of a completion carries the number and result;
	// they stay sealed at rest.
	if e.deliver != DeliverFull || ev.Type != EventCompleted {
		ev.MagicNumber, ev.Result = "", nil
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding event: %w", err)
	}

	var ops []Op
	for id := range e.signals {
		d := Delivery{
			ID: randomString(e.rand, 16), Signal: id, Type: ev.Type,
			Flow: ev.Flow, FlowID: ev.FlowID, Created: now,
		}
		if d.Event, err = e.keys.Seal(e.rand, body, "delivery:"+d.ID); err != nil {
			return nil, fmt.Errorf("sealing event: %w", err)
		}
		val, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("encoding delivery: %w", err)
		}
		key := keyDelivery + d.ID
		ops = append(ops, Create(key, val, 0), Schedule(key, now))
	}
	return ops, nil
}

// Run works the outbox and the flow timers until ctx is done: it delivers
// queued events and expires abandoned flows. Several engines, in one process
// or many, may run at once on one store.
func (e *Engine) Run(ctx context.Context) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()

	for {
		e.work(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-e.wake:
		}
	}
}

// Work delivers the events and expires the flows that are due now, then
// returns. Run calls it in a loop; tests and operators may call it directly.
func (e *Engine) Work(ctx context.Context) { e.work(ctx) }

// work claims due keys and handles them, a few at a time, until none is due.
func (e *Engine) work(ctx context.Context) {
	for ctx.Err() == nil {
		keys, err := e.store.Claim(ctx, e.now(), claimLease, claimBatch)
		if err != nil {
			if ctx.Err() == nil && e.claimWarn.Allow() {
				e.log.Warn("claiming due work", slog.String("error", err.Error()))
			}
			return
		}
		if len(keys) == 0 {
			return
		}

		var wg sync.WaitGroup
		sem := make(chan struct{}, workers)
		for _, key := range keys {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				e.handleDue(ctx, key)
			}()
		}
		wg.Wait()
	}
}

func (e *Engine) handleDue(ctx context.Context, key string) {
	var err error
	switch {
	case strings.HasPrefix(key, keyDelivery):
		err = e.attempt(ctx, key)
	case strings.HasPrefix(key, keyFlow):
		err = e.expire(ctx, strings.TrimPrefix(key, keyFlow))
	case strings.HasPrefix(key, keyDead):
		err = e.store.Apply(ctx, Delete(key, 0), Unschedule(key))
	default:
		err = e.store.Apply(ctx, Unschedule(key))
	}
	if err != nil && ctx.Err() == nil {
		// The claim's lease brings the key back; nothing is lost.
		e.log.Warn("handling due work", slog.String("key_kind", key[:2]),
			slog.String("error", err.Error()))
	}
}

// attempt makes one delivery attempt for the delivery at key.
func (e *Engine) attempt(ctx context.Context, key string) error {
	ent, err := e.store.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return e.store.Apply(ctx, Unschedule(key))
	}
	if err != nil {
		return fmt.Errorf("reading delivery: %w", err)
	}
	var d Delivery
	if err := json.Unmarshal(ent.Value, &d); err != nil {
		return e.bury(ctx, key, ent.Rev, &d, fmt.Errorf("decoding delivery: %w", err))
	}

	sig, ok := e.signals[d.Signal]
	if !ok {
		// Another handler sharing the store may have the signal, or a
		// reload may bring it back; it is given up only with age.
		d.Attempts++
		return e.retry(ctx, key, ent.Rev, &d, unknownSignal(d.Signal), errSignalUnknown)
	}
	ev, err := e.openEvent(&d)
	if err != nil {
		return e.bury(ctx, key, ent.Rev, &d, err)
	}

	dctx, cancel := context.WithTimeout(ctx, deliverTimeout)
	err = sig.Deliver(dctx, ev)
	cancel()
	d.Attempts++
	if err == nil {
		e.obs.Delivery(sig.Kind(), "delivered")
		e.log.Info("event delivered", slog.String("signal", sig.Kind()),
			slog.String("event", d.Type), slog.String("flow_id", d.FlowID),
			slog.Int("attempts", d.Attempts))
		return e.store.Apply(ctx, Delete(key, ent.Rev), Unschedule(key))
	}
	return e.retry(ctx, key, ent.Rev, &d, sig, err)
}

func (e *Engine) openEvent(d *Delivery) (*Event, error) {
	body, err := e.keys.Open(d.Event, "delivery:"+d.ID)
	if err != nil {
		return nil, fmt.Errorf("opening event: %w", err)
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("decoding event: %w", err)
	}
	return &ev, nil
}

// retry reschedules a failed delivery with backoff, or buries it once it is
// older than the maximum age or failed for good.
func (e *Engine) retry(ctx context.Context, key string, rev uint64, d *Delivery, sig Signal,
	cause error) error {
	d.LastError = cause.Error()
	now := e.now()
	if errors.Is(cause, ErrPermanent) || now.Sub(d.Created) >= e.maxAge {
		return e.bury(ctx, key, rev, d, cause)
	}

	delay := backoff(d.Attempts)
	var ra *RetryAfterError
	if errors.As(cause, &ra) && ra.After > delay {
		delay = min(ra.After, retryAfterCap)
	}
	val, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encoding delivery: %w", err)
	}
	if err := e.store.Apply(ctx, Update(key, rev, val, 0), Schedule(key, now.Add(delay))); err != nil {
		return fmt.Errorf("rescheduling delivery: %w", err)
	}

	e.obs.Delivery(sig.Kind(), "retried")
	e.log.Warn("delivery failed; will retry", slog.String("signal", sig.Kind()),
		slog.String("event", d.Type), slog.String("flow_id", d.FlowID),
		slog.Int("attempts", d.Attempts), slog.Duration("retry_in", delay),
		slog.String("error", d.LastError))
	return nil
}

// bury gives a delivery up: it is logged at error level, counted, and moved
// under the dead prefix where the operator can see and replay it.
func (e *Engine) bury(ctx context.Context, key string, rev uint64, d *Delivery, cause error) error {
	d.LastError = cause.Error()
	e.obs.Delivery(signalKind(d.Signal), "failed")
	e.log.Error("delivery given up", slog.String("signal", signalKind(d.Signal)),
		slog.String("event", d.Type), slog.String("flow_id", d.FlowID),
		slog.Int("attempts", d.Attempts), slog.String("error", d.LastError))

	val, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encoding delivery: %w", err)
	}
	dead := keyDead + strings.TrimPrefix(key, keyDelivery)
	return e.store.Apply(ctx,
		Delete(key, rev), Unschedule(key),
		Create(dead, val, deadRetention), Schedule(dead, e.now().Add(deadRetention)))
}

var errSignalUnknown = errors.New("signal not configured in this handler")

// unknownSignal stands for a signal a delivery names that this engine lacks.
type unknownSignal string

func (u unknownSignal) ID() string                            { return string(u) }
func (u unknownSignal) Kind() string                          { return signalKind(string(u)) }
func (u unknownSignal) Deliver(context.Context, *Event) error { return errSignalUnknown }

// signalKind is the type part of a signal ID, for metrics.
func signalKind(id string) string {
	kind, _, _ := strings.Cut(id, " ")
	return kind
}

// backoff returns the delay before attempt n+1: exponential, capped, with
// jitter so that many failed deliveries do not retry in step.
func backoff(attempts int) time.Duration {
	d := backoffCap
	if attempts < 20 {
		d = min(backoffBase<<max(attempts-1, 0), backoffCap)
	}
	jitter := time.Duration(rand.Int64N(int64(d) / 5))
	return d - d/10 + jitter
}
