package flow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// webhookSeenTTL is how long a provider's event ID is remembered, beyond
// the few days providers retry a webhook.
const webhookSeenTTL = 7 * 24 * time.Hour

// serveWebhook handles {prefix}/webhook/{name}: the provider checks the
// signature and reads the event; the engine applies it to the flow once.
func (e *Engine) serveWebhook(w http.ResponseWriter, r *http.Request, name string) {
	began := time.Now()
	fc, ok := e.flows[name]
	recv, isRecv := fc.Provider.(WebhookReceiver)
	if !ok || !isRecv {
		apiError(w, http.StatusNotFound, "not_found", "no webhook here", nil)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		apiError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST", nil)
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		e.apiErr(w, r, "", err)
		return
	}
	ev, err := recv.Webhook(r.Context(), r, body)
	if err != nil {
		e.apiErr(w, r, "", err)
		return
	}
	if err := e.applyWebhook(r, name, ev); err != nil {
		e.apiErr(w, r, "", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"received": true})
	e.obs.Duration("webhook", name, time.Since(began))
}

// applyWebhook settles the flow a webhook event names, once per event ID.
// A retried event, or one for a flow that is gone, is acknowledged, so the
// provider stops sending it.
func (e *Engine) applyWebhook(r *http.Request, name string, ev *WebhookEvent) error {
	if ev == nil || ev.Handle == "" || ev.Settle == nil {
		return nil
	}
	ctx := r.Context()
	seen := keyWebhook + b64(e.keys.MAC("webhook", name, ev.ID)[:18])
	if _, err := e.store.Get(ctx, seen); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("reading webhook mark: %w", err)
	}

	h, err := ParseHandle(ev.Handle)
	if err != nil {
		return err
	}
	rec, err := e.load(ctx, h)
	switch {
	case errors.Is(err, ErrNoFlow) || errors.Is(err, ErrSuperseded):
		e.log.Info("webhook for a flow that is gone", slog.String("flow", name))
		e.settleGone(ctx, name, h, ev, err)
	case err != nil:
		return err
	default:
		if err := e.settleWebhook(r, rec, ev); err != nil {
			return err
		}
	}

	// Marked once handled, so a provider's retry of it changes nothing.
	err = e.store.Apply(ctx, Create(seen, []byte{1}, webhookSeenTTL))
	if err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("marking webhook: %w", err)
	}
	return nil
}

func (e *Engine) settleWebhook(r *http.Request, rec *Record, ev *WebhookEvent) error {
	f, err := e.view(rec, r)
	if err != nil {
		return err
	}
	f.Origin = e.publicOrigin(r)
	out, err := ev.Settle(r.Context(), f)
	if err != nil || out == nil {
		return err
	}
	_, _, err = e.settle(r.Context(), rec.Handle(), out, false)
	if errors.Is(err, ErrExpired) {
		// The flow ran out before the event came; the provider is told
		// all is well, so it stops retrying, and the bot was told of the
		// expiry.
		e.log.Warn("webhook for an expired flow", slog.String("flow", rec.Flow),
			slog.String("flow_id", rec.ID))
		return nil
	}
	return err
}

// settleGone shows the provider an event for a flow that is gone, replaced
// by a newer link or past its retention, so that it can report what the
// event settles nowhere, like a payment made in an old tab. The flow has
// only its ID, handle, name and a final status; the outcome is dropped.
func (e *Engine) settleGone(ctx context.Context, name string, h Handle, ev *WebhookEvent,
	why error) {
	status := StatusExpired
	if errors.Is(why, ErrSuperseded) {
		status = StatusSuperseded
	}
	f := &Flow{ID: h.ID, Handle: h.String(), Name: name, Status: status, Prefix: e.prefix}
	if _, err := ev.Settle(ctx, f); err != nil {
		e.log.Debug("settling webhook for a flow that is gone", slog.String("flow", name),
			slog.String("error", err.Error()))
	}
}
