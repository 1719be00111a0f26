package payment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/stripe/stripe-go/v82"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// maxAnswer bounds an answer of the Stripe API. A Checkout Session with its
// payment intent is a few kilobytes.
const maxAnswer = 1 << 20

// newClient returns a Stripe client for cfg. Its answers are read through a
// size limit, and it logs nothing: the library would log answers raw, so
// the provider logs its own, redacted, errors instead.
func newClient(cfg Config) *stripe.Client {
	hc := &http.Client{Timeout: DefaultTimeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = limitTransport{next: next}

	bc := &stripe.BackendConfig{
		HTTPClient:    hc,
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull},
	}
	if cfg.APIURL != "" {
		bc.URL = stripe.String(cfg.APIURL)
	}
	return stripe.NewClient(cfg.SecretKey, stripe.WithBackends(stripe.NewBackendsWithConfig(bc)))
}

// limitTransport caps the body of every answer at maxAnswer bytes.
type limitTransport struct{ next http.RoundTripper }

func (t limitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = limitBody{Reader: http.MaxBytesReader(nil, resp.Body, maxAnswer), c: resp.Body}
	return resp, nil
}

type limitBody struct {
	io.Reader
	c io.Closer
}

func (b limitBody) Close() error { return b.c.Close() }

// stripeError turns the error of a Stripe call into one that is safe to
// log. Stripe's error answers keep their type, code, parameter and request
// ID, but not their message, which may echo what was sent, nor the rest of
// the error object, which may hold a payment intent's client secret. Other
// errors of the library may quote the answer's body, so only errors of the
// network and the context are kept.
func stripeError(what string, err error) error {
	var se *stripe.Error
	var mb *http.MaxBytesError
	var ue *url.Error
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%s: %w: stripe %s (code %q, param %q, status %d, request %s)",
			what, flow.ErrProvider, se.Type, se.Code, se.Param, se.HTTPStatusCode, se.RequestID)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", what, err)
	case errors.As(err, &mb):
		return fmt.Errorf("%s: %w: answer larger than %d bytes", what, flow.ErrProvider, mb.Limit)
	case errors.As(err, &ue):
		return fmt.Errorf("%s: %w: %s %s: %w", what, flow.ErrProvider, ue.Op, redactURL(ue.URL), ue.Err)
	}
	return fmt.Errorf("%s: %w: unreadable answer from Stripe", what, flow.ErrProvider)
}

// redactURL keeps the scheme, host and path of a URL for a log line.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(bad URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
