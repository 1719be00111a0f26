package flow

import (
	"context"
	"errors"
	"time"
)

// expire handles a flow's timer: a pending flow past its deadline, or a
// completed flow whose number was not verified in time, expires and the bot
// is told. A timer that fires early is set again; a final flow drops it.
func (e *Engine) expire(ctx context.Context, conv string) error {
	fkey := flowKey(conv)
	_, err := e.update(ctx, conv, func(rec *Record, now time.Time) (txn, error) {
		var due time.Time
		switch rec.Status {
		case StatusPending:
			due = rec.Deadline
		case StatusCompleted:
			due = rec.CodeExpires
		default:
			return txn{ops: []Op{Unschedule(fkey)}}, nil
		}
		if now.Before(due) {
			return txn{ops: []Op{Schedule(fkey, due)}}, nil
		}
		return e.expireNow(rec, now, nil), nil
	})
	if errors.Is(err, ErrNoFlow) {
		return e.store.Apply(ctx, Unschedule(fkey))
	}
	return err
}

// expireNow moves rec to expired, wiping its secrets, and tells the bot;
// the txn returns result to the caller.
func (e *Engine) expireNow(rec *Record, now time.Time, result error) txn {
	rec.Status, rec.Waiting = StatusExpired, false
	rec.wipe()
	return txn{
		write:  true,
		ops:    []Op{Unschedule(flowKey(rec.Conv))},
		events: []*Event{e.newEvent(EventExpired, rec, now)},
		result: result,
	}
}
