package botkit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/bothandoff/caddy-bothandoff/flow/webhook"
)

// maxEventBody bounds a webhook body. Events with deliver full carry OAuth
// tokens and run to a few KB; 1 MiB leaves room for any site result.
const maxEventBody = 1 << 20

// Webhook is the bot's endpoint for the webhook signal. It checks each
// request's Handoff-Signature, decodes the event and passes it to Handle.
//
// Delivery is at least once: the handler retries until it gets a 2xx, so
// Handle may see an event again, always with the same ID, and should act
// once per ID. A Handle error answers 503 and the delivery is retried.
type Webhook struct {
	// Secret is the webhook secret of "signal webhook URL { secret ... }".
	Secret []byte
	// Handle acts on an event whose signature checked out.
	Handle func(ctx context.Context, ev *Event) error
	// Tolerance is how far the signature's timestamp may be from now.
	// Default: webhook.DefaultTolerance (5 minutes).
	Tolerance time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives refusals and Handle errors. Default: discard.
	Logger *slog.Logger
}

// ServeHTTP implements http.Handler.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if len(h.Secret) < webhook.MinSecretLen || h.Handle == nil {
		// An empty secret would let anyone sign events.
		h.logger().Error("handoff webhook has no secret or no Handle")
		http.Error(w, "not configured", http.StatusInternalServerError)
		return
	}
	ev, err := h.read(w, r)
	if err != nil {
		h.logger().Warn("handoff webhook refused", slog.String("error", err.Error()))
		status := http.StatusBadRequest
		if errors.Is(err, webhook.ErrSignature) || errors.Is(err, webhook.ErrTimestamp) ||
			errors.Is(err, webhook.ErrMalformed) {
			status = http.StatusUnauthorized
		}
		http.Error(w, http.StatusText(status), status)
		return
	}
	if err := h.Handle(r.Context(), ev); err != nil {
		h.logger().Error("handoff webhook not handled", slog.String("event", ev.ID),
			slog.String("error", err.Error()))
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// read reads the body, checks its signature and decodes the event.
func (h *Webhook) read(w http.ResponseWriter, r *http.Request) (*Event, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEventBody))
	if err != nil {
		return nil, err
	}
	now, tolerance := time.Now, h.Tolerance
	if h.Now != nil {
		now = h.Now
	}
	if tolerance <= 0 {
		tolerance = webhook.DefaultTolerance
	}
	err = webhook.Verify(h.Secret, r.Header.Get(webhook.HeaderSignature), body, now(), tolerance)
	if err != nil {
		return nil, err
	}
	ev, err := ParseEvent(body)
	if err != nil {
		return nil, err
	}
	if id := r.Header.Get(webhook.HeaderDelivery); id != "" && id != ev.ID {
		return nil, errors.New("delivery ID does not match the event")
	}
	return ev, nil
}

func (h *Webhook) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

var _ http.Handler = (*Webhook)(nil)
