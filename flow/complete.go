package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// serveReturn handles the browser coming back from a provider: the OAuth
// callback, or the payment return. The flow is found from the request and
// must be held by this browser before the provider looks at anything else.
func (e *Engine) serveReturn(w http.ResponseWriter, r *http.Request, next Next) {
	began := time.Now()
	rec, err := e.heldFlow(r, returnHandle(r))
	if err != nil {
		e.pageErr(w, r, err)
		return
	}
	if rec.Status != StatusPending {
		e.settledReturn(w, r, next, rec)
		return
	}
	// A reload of the return of a waiting flow rechecks what the first
	// return kept: its code is spent.
	if e.recheck(w, r, next, rec) {
		return
	}

	ret, ok := e.flows[rec.Flow].Provider.(Returner)
	if !ok {
		e.pageErr(w, r, fmt.Errorf("%w: flow %q takes no return", ErrBadRequest, rec.Flow))
		return
	}
	f, err := e.view(rec, r)
	if err != nil {
		e.pageErr(w, r, err)
		return
	}
	f.Origin = e.publicOrigin(r)

	// The browser may leave while the provider is asked, as a reload during
	// the code exchange does: what the provider answers is recorded all the
	// same, since the provider may have spent the code by then.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), returnTimeout)
	defer cancel()
	out, err := ret.Return(ctx, f, r)
	e.obs.Duration("provider", rec.Flow, time.Since(began))
	if err != nil {
		e.pageErr(w, r, fmt.Errorf("%s return: %w", rec.Kind, err))
		return
	}
	if out.Contested && out.Failure != "" {
		e.contestedReturn(ctx, w, r, next, rec, out)
		return
	}
	e.finishFlow(ctx, w, r, next, rec, out)
	e.obs.Duration("return", rec.Flow, time.Since(began))
}

// Timing of returns.
const (
	// returnTimeout bounds a return's work with the provider and the store
	// once the browser has gone.
	returnTimeout = time.Minute
	// contestWait bounds how long a contested return waits for another
	// return of its flow: that one's exchange and checks take a few seconds
	// at most.
	contestWait = 10 * time.Second
	// contestPoll is how often a contested return reads the flow meanwhile.
	contestPoll = 100 * time.Millisecond
)

// contestedReturn handles a failure that another return of the same flow may
// have caused: a doubled callback whose code the other request, perhaps on
// another instance, redeemed first. It waits for the flow to leave pending
// and then shows the flow as it stands, as to a browser that comes back to
// the finish page. A flow still pending after the wait fails with the
// outcome; if the browser leaves during the wait, nothing is settled.
func (e *Engine) contestedReturn(ctx context.Context, w http.ResponseWriter, r *http.Request,
	next Next, seen *Record, out *Outcome) {
	rec, err := e.awaitSettled(r.Context(), seen)
	switch {
	case r.Context().Err() != nil:
		// No one is left to answer; the other return or expiry settles
		// the flow.
	case err != nil:
		e.pageErr(w, r, err)
	case rec.ID != seen.ID:
		e.pageErr(w, r, ErrSuperseded)
	case rec.Status != StatusPending:
		// Not a replay, which settledReturn refuses: this request held
		// the browser while the flow was pending. A reload abandoned the
		// page that had the number, so the browser learns that it was
		// shown (and that a new link gets another), or sees the failure.
		e.showFlow(w, r, next, rec)
	default:
		e.finishFlow(ctx, w, r, next, rec, out)
	}
}

// awaitSettled reads the flow of seen every contestPoll until it leaves
// pending or is replaced, for at most contestWait or until ctx ends. It
// returns the record as last read.
func (e *Engine) awaitSettled(ctx context.Context, seen *Record) (*Record, error) {
	ctx, cancel := context.WithTimeout(ctx, e.contestWait)
	defer cancel()
	tick := time.NewTicker(e.contestPoll)
	defer tick.Stop()

	rec := seen
	for rec.ID == seen.ID && rec.Status == StatusPending {
		select {
		case <-ctx.Done():
			return rec, nil
		case <-tick.C:
		}
		next, err := e.read(ctx, flowKey(seen.Conv))
		if ctx.Err() != nil {
			return rec, nil
		}
		if err != nil {
			return nil, err
		}
		rec = next
	}
	return rec, nil
}

// settledReturn answers a return for a flow that already left pending. A
// payment its webhook settled before the browser came back still has its
// number to show; a completed flow whose number was shown is a replayed
// return (a callback URL from the history, or an attacker's copy) and is
// refused.
func (e *Engine) settledReturn(w http.ResponseWriter, r *http.Request, next Next, rec *Record) {
	if rec.Status == StatusCompleted && len(rec.Display) == 0 {
		e.pageErr(w, r, fmt.Errorf("%w: return replayed", ErrFinished))
		return
	}
	e.showFlow(w, r, next, rec)
}

// returnHandle reads the flow's handle from a return: the flow parameter, or
// the first two dot-separated parts of OAuth's state.
func returnHandle(r *http.Request) string {
	q := r.URL.Query()
	if h := q.Get("flow"); h != "" {
		return h
	}
	parts := strings.SplitN(q.Get("state"), ".", 3)
	if len(parts) < 2 {
		return ""
	}
	return parts[0] + "." + parts[1]
}

// heldFlow returns the flow a handle names, if this browser holds it.
func (e *Engine) heldFlow(r *http.Request, handle string) (*Record, error) {
	h, err := ParseHandle(handle)
	if err != nil {
		return nil, err
	}
	rec, err := e.load(r.Context(), h)
	if err != nil {
		return nil, err
	}
	if !e.bound(rec, browserToken(r)) {
		return nil, ErrNotBound
	}
	return rec, nil
}

// serveFinish shows where a flow the browser holds stands: the number once
// it completed, a waiting page while a payment settles. A waiting flow whose
// provider is a Rechecker is checked again first.
func (e *Engine) serveFinish(w http.ResponseWriter, r *http.Request, next Next) {
	rec, err := e.heldFlow(r, r.URL.Query().Get("h"))
	if err != nil {
		e.pageErr(w, r, err)
		return
	}
	if e.recheck(w, r, next, rec) {
		return
	}
	e.showFlow(w, r, next, rec)
}

// recheck asks the provider of a pending, waiting flow for its outcome
// again, and settles it as a return does. It reports whether it answered
// the browser; it does not when the flow is not waiting, its provider is no
// Rechecker, or the provider has nothing to recheck. Two browsers rechecking
// at once settle the flow once: the record's compare-and-set makes the
// second see the flow as the first left it.
func (e *Engine) recheck(w http.ResponseWriter, r *http.Request, next Next, rec *Record) bool {
	rc, ok := e.flows[rec.Flow].Provider.(Rechecker)
	if !ok || rec.Status != StatusPending || !rec.Waiting {
		return false
	}
	f, err := e.view(rec, r)
	if err != nil {
		e.pageErr(w, r, err)
		return true
	}
	f.Origin = e.publicOrigin(r)

	// As with a return, what the provider answers is recorded even if the
	// browser leaves meanwhile.
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), returnTimeout)
	defer cancel()
	out, err := rc.Recheck(ctx, f)
	e.obs.Duration("provider", rec.Flow, time.Since(began))
	switch {
	case errors.Is(err, ErrProviderUnavailable):
		e.log.Debug("provider still unavailable for a waiting flow",
			slog.String("flow", rec.Flow), slog.String("error", err.Error()))
		e.showFlow(w, r, next, rec)
	case err != nil:
		e.pageErr(w, r, fmt.Errorf("%s recheck: %w", rec.Kind, err))
	case out == nil:
		return false
	default:
		e.finishFlow(ctx, w, r, next, rec, out)
	}
	return true
}

// finishFlow applies a provider's outcome to seen, the flow as the request
// read it, and shows the result to the browser that is present.
func (e *Engine) finishFlow(ctx context.Context, w http.ResponseWriter, r *http.Request,
	next Next, seen *Record, out *Outcome) {
	rec, code, err := e.settleFrom(ctx, seen.Handle(), seen, out, true)
	if err != nil {
		e.pageErr(w, r, err)
		return
	}
	if code != "" {
		_ = e.showCode(w, r, next, rec, code)
		return
	}
	e.showFlow(w, r, next, rec)
}

// showFlow shows the page for a flow's status to the browser holding it.
func (e *Engine) showFlow(w http.ResponseWriter, r *http.Request, next Next, rec *Record) {
	if rec.Status == StatusPending {
		d := e.pageData(r, "in_progress")
		if rec.Waiting {
			d = e.pageData(r, "pending."+rec.Kind)
			d.Kind, d.Refresh = "pending", 5
		}
		_ = e.render(w, r, http.StatusOK, PageMessage, d)
		return
	}
	if rec.Status != StatusCompleted {
		e.pageStatus(w, r, rec)
		return
	}
	if rec.NoNumber {
		e.page(w, r, http.StatusOK, "done")
		return
	}

	rec, code, err := e.takeDisplay(r.Context(), rec.Handle())
	if err != nil {
		e.pageErr(w, r, err)
		return
	}
	if code == "" {
		e.page(w, r, http.StatusOK, "shown")
		return
	}
	_ = e.showCode(w, r, next, rec, code)
}

// pageStatus shows the page for a flow in a final status.
func (e *Engine) pageStatus(w http.ResponseWriter, r *http.Request, rec *Record) {
	switch {
	case rec.Status == StatusFailed && rec.Error == "access_denied":
		e.page(w, r, http.StatusForbidden, "declined")
	case rec.Status == StatusFailed && rec.Error == "cancelled":
		e.page(w, r, http.StatusOK, "cancelled")
	case rec.Status == StatusFailed && upstreamFailures[rec.Error]:
		e.page(w, r, http.StatusBadGateway, "failed")
	case rec.Status == StatusFailed:
		// A failure the user or the site reported is an answer, not an
		// error of this request.
		e.page(w, r, http.StatusOK, "failed")
	case rec.Status == StatusExpired:
		e.page(w, r, http.StatusGone, "expired")
	case rec.Status == StatusSuperseded || rec.Status == StatusCancelled:
		e.page(w, r, http.StatusGone, "superseded")
	default:
		e.page(w, r, http.StatusConflict, "finished")
	}
}

// upstreamFailures are the failure codes that mean a provider misbehaved:
// their pages answer 502. Other failures were the user's or the site's.
var upstreamFailures = map[string]bool{
	"exchange_failed": true, "invalid_id_token": true, "userinfo_failed": true,
	"provider_error": true, "server_error": true, "temporarily_unavailable": true,
	"session_mismatch": true, "amount_mismatch": true, "site_error": true,
}

// settle applies a provider's outcome to the pending flow h names, exactly
// once: a second outcome for a flow that already left pending changes
// nothing. With show set, a completion returns the magic number for the page
// now being sent instead of keeping it for a later display.
func (e *Engine) settle(ctx context.Context, h Handle, out *Outcome, show bool) (*Record,
	string, error) {
	return e.settleFrom(ctx, h, nil, out, show)
}

// settleFrom is settle starting from seen, the flow as the caller read it,
// if not nil.
func (e *Engine) settleFrom(ctx context.Context, h Handle, seen *Record, out *Outcome,
	show bool) (*Record, string, error) {
	var code string
	rec, err := e.updateFrom(ctx, h.Conv, seen, func(rec *Record, now time.Time) (txn, error) {
		code = ""
		if rec.ID != h.ID {
			return txn{}, ErrSuperseded
		}
		if rec.Status != StatusPending {
			return txn{}, nil
		}
		if !now.Before(rec.Deadline) {
			// Past its deadline the flow is over, even if the worker has
			// not got to it yet.
			return e.expireNow(rec, now, ErrExpired), nil
		}
		if out.State != nil {
			sealed, err := e.seal(out.State, "state", rec.ID)
			if err != nil {
				return txn{}, err
			}
			rec.State = sealed
		}

		switch {
		case out.Failure != "":
			return e.fail(rec, failureCode(out.Failure), now), nil
		case out.Waiting:
			rec.Waiting = true
			return txn{write: true}, nil
		}
		var t txn
		var err error
		code, t, err = e.complete(rec, out.Result, show, now)
		return t, err
	})
	return rec, code, err
}

// complete moves rec to completed with a fresh magic number.
func (e *Engine) complete(rec *Record, result json.RawMessage, show bool,
	now time.Time) (string, txn, error) {
	var code string
	var err error
	if rec.NoNumber = e.trusted[rec.Ref.ChannelID]; !rec.NoNumber {
		if code, err = NewCode(e.rand, e.digits); err != nil {
			return "", txn{}, err
		}
	}
	if len(result) == 0 {
		result = json.RawMessage("{}")
	}
	if rec.Result, err = e.seal(result, "result", rec.ID); err != nil {
		return "", txn{}, err
	}
	if !show && !rec.NoNumber {
		if rec.Display, err = e.seal([]byte(code), "display", rec.ID); err != nil {
			return "", txn{}, err
		}
	}

	rec.Status, rec.Waiting, rec.State = StatusCompleted, false, nil
	rec.CodeMAC, rec.Digits = e.codeMAC(rec.ID, code), len(code)
	rec.CodeExpires = now.Add(e.codeTTL)

	ev := e.newEvent(EventCompleted, rec, now)
	ev.MagicNumber, ev.Result = code, result
	return code, txn{
		write:  true,
		ops:    []Op{Schedule(flowKey(rec.Conv), rec.CodeExpires)},
		events: []*Event{ev},
	}, nil
}

// fail moves rec to failed with reason, wiping its secrets, and tells the
// bot.
func (e *Engine) fail(rec *Record, reason string, now time.Time) txn {
	rec.Status, rec.Error, rec.Waiting = StatusFailed, reason, false
	rec.wipe()
	return txn{
		write:  true,
		ops:    []Op{Unschedule(flowKey(rec.Conv))},
		events: []*Event{e.newEvent(EventFailed, rec, now)},
	}
}

// wipe drops every secret a record holds.
func (r *Record) wipe() {
	r.State, r.Display, r.Result, r.CodeMAC = nil, nil, nil, nil
}

// failureCode keeps a provider's failure code if it is a short code, so no
// provider text reaches the bot or the logs.
func failureCode(s string) string {
	if failurePattern.MatchString(s) {
		return s
	}
	return "provider_error"
}

// takeDisplay returns the magic number kept for display, once: the number
// is removed from the record as it is shown.
func (e *Engine) takeDisplay(ctx context.Context, h Handle) (*Record, string, error) {
	var code string
	rec, err := e.update(ctx, h.Conv, func(rec *Record, _ time.Time) (txn, error) {
		code = ""
		if rec.ID != h.ID {
			return txn{}, ErrSuperseded
		}
		if rec.Status != StatusCompleted || len(rec.Display) == 0 {
			return txn{}, nil
		}
		b, err := e.keys.Open(rec.Display, "display:"+rec.ID)
		if err != nil {
			return txn{}, fmt.Errorf("opening number: %w", err)
		}
		code, rec.Display = string(b), nil
		return txn{write: true}, nil
	})
	return rec, code, err
}
