package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// HeaderSignature is the header Stripe signs webhooks in.
const HeaderSignature = "Stripe-Signature"

// settles reports whether an event of type t may settle a flow.
func settles(t stripe.EventType) bool {
	switch t {
	case stripe.EventTypeCheckoutSessionCompleted,
		stripe.EventTypeCheckoutSessionAsyncPaymentSucceeded,
		stripe.EventTypeCheckoutSessionAsyncPaymentFailed,
		stripe.EventTypeCheckoutSessionExpired:
		return true
	}
	return false
}

// Webhook implements flow.WebhookReceiver. It checks the signature and the
// mode, and names the flow of a Checkout Session event; settling it
// retrieves the session from Stripe and judges it as the return does, so
// that the event's order and timing do not matter. Events of no interest,
// and sessions of other flows or made elsewhere, are acknowledged.
func (s *Stripe) Webhook(_ context.Context, r *http.Request,
	body []byte) (*flow.WebhookEvent, error) {
	ev, err := s.verify(r.Header.Get(HeaderSignature), body)
	if err != nil {
		return nil, err
	}
	if ev.ID == "" {
		return nil, fmt.Errorf("%w: event without an ID", flow.ErrBadRequest)
	}
	if ev.Livemode != s.live {
		return nil, fmt.Errorf("%w: %w: %s event at a %s key",
			flow.ErrBadRequest, ErrWrongMode, mode(ev.Livemode), mode(s.live))
	}
	if !settles(ev.Type) {
		return nil, nil
	}

	var sess stripe.CheckoutSession
	if ev.Data == nil || json.Unmarshal(ev.Data.Raw, &sess) != nil || sess.ID == "" {
		return nil, fmt.Errorf("%w: %s event without a checkout session", flow.ErrBadRequest, ev.Type)
	}
	handle := sess.Metadata[metaHandle]
	if handle == "" || sess.Metadata[metaFlow] != s.name {
		return nil, nil
	}
	return &flow.WebhookEvent{
		ID:     ev.ID,
		Handle: handle,
		Settle: func(ctx context.Context, f *flow.Flow) (*flow.Outcome, error) {
			return s.settle(ctx, f, ev.Type, &sess)
		},
	}, nil
}

// verify checks a webhook's signature with the endpoint's secret, and its
// signed timestamp against the tolerance in both directions: Stripe's
// library only refuses old ones, by the wall clock.
func (s *Stripe) verify(header string, body []byte) (*stripe.Event, error) {
	ev, err := webhook.ConstructEventWithOptions(body, header, s.whsec, webhook.ConstructEventOptions{
		IgnoreTolerance: true,
		// Only a few stable fields of a session are read, so an endpoint
		// set to another API version than the library's is accepted.
		IgnoreAPIVersionMismatch: true,
	})
	switch {
	case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader),
		errors.Is(err, webhook.ErrNoValidSignature):
		return nil, fmt.Errorf("%w: %w: %w", flow.ErrBadRequest, ErrBadSignature, err)
	case err != nil:
		return nil, fmt.Errorf("%w: reading event: %w", flow.ErrBadRequest, err)
	}

	at, err := signedAt(header)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %w", flow.ErrBadRequest, ErrBadSignature, err)
	}
	if skew := s.now().Sub(at); skew > s.tolerance || skew < -s.tolerance {
		return nil, fmt.Errorf("%w: %w: signed %s from now", flow.ErrBadRequest, ErrStaleWebhook,
			skew.Round(time.Second))
	}
	return &ev, nil
}

// signedAt reads the timestamp of a Stripe-Signature header, which the
// signature covers. A header with more than one is refused.
func signedAt(header string) (time.Time, error) {
	var at string
	for part := range strings.SplitSeq(header, ",") {
		if v, ok := strings.CutPrefix(part, "t="); ok {
			if at != "" {
				return time.Time{}, errors.New("more than one timestamp")
			}
			at = v
		}
	}
	sec, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("malformed timestamp")
	}
	return time.Unix(sec, 0), nil
}

// settle judges the flow's session after an event about sess. An event
// about an older session of the flow, one that expired and was replaced,
// changes nothing, nor does one for a session still open or expired: while
// the flow lives, the user may open the link again for a new session.
func (s *Stripe) settle(ctx context.Context, f *flow.Flow, typ stripe.EventType,
	sess *stripe.CheckoutSession) (*flow.Outcome, error) {
	if f.Status != flow.StatusPending {
		if f.Status != flow.StatusCompleted && f.Status != flow.StatusVerified {
			s.alarm(f, typ, sess, "the flow has ended")
		}
		return nil, nil
	}
	st, err := readState(f.State)
	if err != nil {
		return nil, err
	}
	if st.Session != sess.ID {
		s.alarm(f, typ, sess, "the session was replaced")
		return nil, nil
	}

	cur, err := s.retrieve(ctx, sess.ID)
	if err != nil {
		return nil, err
	}
	out, err := s.judge(f, cur)
	if errors.Is(err, errNotSettled) {
		return nil, nil
	}
	return out, err
}

// alarm logs a payment Stripe reports for the flow that cannot settle it,
// for the reason why: the money was taken but the bot is not told of it,
// so the operator must refund or fulfil the order by hand. A failed flow
// may have failed after completing (too many wrong numbers); the log says
// which status it has.
func (s *Stripe) alarm(f *flow.Flow, typ stripe.EventType, sess *stripe.CheckoutSession,
	why string) {
	if sess.PaymentStatus != stripe.CheckoutSessionPaymentStatusPaid ||
		sess.ClientReferenceID != f.ID {
		s.log.Debug("event settles nothing", "flow", f.Name, "flow_id", f.ID,
			"event", string(typ), "why", why)
		return
	}
	s.log.Error("payment settles no flow; refund or fulfil it by hand", "why", why,
		"flow", f.Name, "flow_id", f.ID, "status", string(f.Status),
		"session", sess.ID, "event", string(typ))
}
