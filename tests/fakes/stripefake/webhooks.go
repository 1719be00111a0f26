package stripefake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"
)

// APIVersion is the API version of the fake's events.
const APIVersion = "2025-08-27.basil"

// Event is an event as Stripe posts it to a webhook endpoint. Its session
// is a snapshot taken when the event happened, with the payment intent as
// an ID.
type Event struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	APIVersion string `json:"api_version"`
	Created    int64  `json:"created"`
	Livemode   bool   `json:"livemode"`
	Type       string `json:"type"`
	Data       struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
	PendingWebhooks int `json:"pending_webhooks"`

	// Session is the ID of the event's session.
	Session string `json:"-"`
}

// emit records an event about a session; the caller holds s.mu.
func (s *Server) emit(typ string, cs *session) {
	ev := Event{
		ID: "evt_" + randomID(12), Object: "event", APIVersion: APIVersion,
		Created: s.now().Unix(), Livemode: s.live, Type: typ, PendingWebhooks: 1,
		Session: cs.id,
	}
	ev.Data.Object, _ = json.Marshal(s.sessionJSON(cs, false))
	s.events = append(s.events, ev)
}

// Events returns the events so far, oldest first; with types, only those.
func (s *Server) Events(types ...string) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireDue()
	var out []Event
	for _, ev := range s.events {
		if len(types) == 0 || slices.Contains(types, ev.Type) {
			out = append(out, ev)
		}
	}
	return out
}

// LastEvent returns the newest event of a type about a session.
func (s *Server) LastEvent(typ, session string) (Event, error) {
	evs := s.Events(typ)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Session == session {
			return evs[i], nil
		}
	}
	return Event{}, fmt.Errorf("stripefake: no %s event for %s", typ, session)
}

// Body returns the JSON Stripe posts for an event.
func (ev Event) Body() []byte {
	b, _ := json.Marshal(ev)
	return b
}

// Sign returns the Stripe-Signature header for body, signed with secret
// at a time.
func Sign(body []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
		Payload: body, Secret: secret, Timestamp: at,
	}).Header
}

// Send posts an event to a webhook endpoint as Stripe does, signed with
// the fake's secret and clock, and returns the answer's status.
func (s *Server) Send(ctx context.Context, url string, ev Event) (int, error) {
	body := ev.Body()
	s.mu.Lock()
	header := Sign(body, s.cfg.WebhookSecret, s.now())
	s.mu.Unlock()
	return s.Post(ctx, url, body, header)
}

// Post posts a body with a Stripe-Signature header, which may be forged
// or empty, and returns the answer's status.
func (s *Server) Post(ctx context.Context, url string, body []byte, signature string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	if signature != "" {
		req.Header.Set("Stripe-Signature", signature)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}
