package flow

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Kinds of flows, as reported in events and metrics.
const (
	KindSite    = "site"
	KindOAuth   = "oauth"
	KindPayment = "payment"
)

// A Provider is what differs between flows: where the browser goes when the
// user opens a link, and how the result is checked when it comes back.
type Provider interface {
	// Kind returns the family of the flow: KindSite, KindOAuth, KindPayment.
	Kind() string

	// Begin is called when a browser opens a link, after the flow record is
	// bound to it, and again when the same browser opens the link once more.
	// It returns where to send the browser, and state to keep sealed.
	Begin(ctx context.Context, f *Flow) (*Step, error)
}

// An EarlyBeginner is a provider whose Begin for a new flow has no effect
// outside the flow (an OAuth provider builds an authorization URL; a payment
// provider, which makes a checkout session, is not one). The engine asks it
// before it stores a new flow, and stores the state it returns with the flow
// in one write rather than two.
type EarlyBeginner interface {
	Provider
	// BeginsEarly marks the provider; it does nothing.
	BeginsEarly()
}

// A Returner is a provider the browser comes back to, at {prefix}/callback
// (OAuth) or {prefix}/return (payment). The engine has already found the flow
// and checked that this browser holds it.
type Returner interface {
	Provider
	Return(ctx context.Context, f *Flow, r *http.Request) (*Outcome, error)
}

// A Rechecker is a provider that can settle a waiting flow again from the
// state it kept, without the browser's return: an OAuth provider whose code
// exchange succeeded but whose checks could not reach the provider keeps the
// token response and checks it once the provider is back.
//
// The engine calls Recheck when the browser holding a pending, waiting flow
// comes to {prefix}/finish, as the waiting page's refresh does, or to its
// return again (a reload of the callback, whose code is spent). An outcome
// is settled as a return's is. An error wrapping ErrProviderUnavailable
// shows the waiting page again; another error shows the error page and
// leaves the flow as it is. A nil outcome without an error means there is
// nothing to recheck: the engine goes on as if the provider were no
// Rechecker.
type Rechecker interface {
	Provider
	Recheck(ctx context.Context, f *Flow) (*Outcome, error)
}

// A WebhookReceiver is a provider whose service posts events to
// {prefix}/webhook/{name}. It checks the signature itself and returns the
// outcomes the event settles; an empty list acknowledges an event of no
// interest.
type WebhookReceiver interface {
	Provider
	Webhook(ctx context.Context, r *http.Request, body []byte) (*WebhookEvent, error)
}

// A Validator is a provider that checks the link's data before a flow starts,
// so a bad amount or scope fails at the click rather than at the provider.
type Validator interface {
	ValidateData(data json.RawMessage) error
}

// Flow is what a provider sees of a flow.
type Flow struct {
	// ID is the flow's ID, as the bot sees it.
	ID string
	// Handle locates the flow; providers carry it through OAuth state or a
	// payment reference and give it back.
	Handle string
	// Name is the configured flow name.
	Name string
	Ref  Ref
	// Data is the link's data object, or nil.
	Data json.RawMessage
	// State is the provider's state from an earlier step, opened.
	State []byte
	// Status is where the flow stands. A webhook may arrive for a flow that
	// already ended; its provider can tell so from here.
	Status Status
	// Deadline is when a pending flow expires, by the engine's clock, so
	// that a provider can end what it opens elsewhere no later.
	Deadline time.Time
	// Now is the engine's time when the provider was called; a provider
	// that sets deadlines on another clock (a payment service's) measures
	// the time left as Deadline - Now.
	Now time.Time
	// Origin is the scheme and host the browser used, like
	// "https://example.com"; Prefix is the handler's path prefix.
	Origin string
	Prefix string
}

// URL returns an absolute URL on the handler's origin under its prefix.
func (f *Flow) URL(path string) string { return f.Origin + f.Prefix + path }

// A Step tells the engine where to send the browser next.
type Step struct {
	// Redirect is the URL the browser is sent to with 303 See Other.
	Redirect string
	// State replaces the provider's sealed state when not nil.
	State []byte
}

// An Outcome is what a provider learned about a flow.
type Outcome struct {
	// Result is given to the bot once the magic number checks out.
	Result json.RawMessage
	// Failure, when set, fails the flow with this short code
	// (access_denied, payment_failed); it reaches the bot, so it must hold
	// no secret and no text from the provider beyond such a code.
	Failure string
	// Contested, with Failure, means the failure may be the work of another
	// return of the same flow, such as a doubled OAuth callback whose code the
	// other request, perhaps on another instance, redeemed first. The
	// engine then waits a few seconds for the flow to leave pending and
	// shows the browser the flow as it stands; it settles the failure only
	// if the flow is still pending after the wait.
	Contested bool
	// Waiting means the outcome is not known yet: the user sees a page that
	// says so and refreshes until it settles.
	Waiting bool
	// State replaces the provider's sealed state when not nil.
	State []byte
}

// A WebhookEvent is what a provider made of a webhook.
type WebhookEvent struct {
	// ID is the service's event ID; an event seen before is not applied
	// twice.
	ID string
	// Handle locates the flow the event settles; empty for none.
	Handle string
	// Settle checks the event against the flow's state and returns the
	// outcome, or nil if the event changes nothing. For a flow that is gone
	// (replaced by a newer link, or past its retention) it is called with
	// only the flow's ID, handle, name and a final status, so that the
	// provider can report an event that settles nothing; the outcome is
	// then dropped.
	Settle func(ctx context.Context, f *Flow) (*Outcome, error)
}
