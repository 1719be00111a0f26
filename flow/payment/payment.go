// Package payment is the payment flow on Stripe Checkout.
//
// The Checkout Session is made when the user clicks the link, from the
// amount, currency, description and order ID the bot signed into the link's
// data. The payment is confirmed server-side: the browser's return to
// {prefix}/return only triggers a retrieval of the session from Stripe, and
// Stripe's webhook at {prefix}/webhook/{name} triggers the same retrieval.
// Whichever comes first settles the flow; the engine applies an outcome to a
// flow once.
package payment

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// Defaults of the provider's configuration.
const (
	// DefaultTolerance is how far a webhook's signed timestamp may be from
	// now, in either direction: the five minutes Stripe's libraries allow.
	DefaultTolerance = 5 * time.Minute
	// DefaultTimeout bounds one call to the Stripe API.
	DefaultTimeout = 15 * time.Second
)

// Config configures a Stripe provider.
type Config struct {
	// Name is the flow's configured name. Stripe sends an account's events
	// to every endpoint of the account; events for sessions of other flows
	// are acknowledged and left alone.
	Name string
	// SecretKey is the Stripe API key: a secret key (sk_test_, sk_live_) or
	// a restricted key (rk_test_, rk_live_) that may write Checkout
	// Sessions. Its mode decides which events and sessions are accepted.
	SecretKey string
	// WebhookSecret is the signing secret of the webhook endpoint, whsec_...
	WebhookSecret string
	// APIURL is the base URL of the Stripe API. Default:
	// https://api.stripe.com. Tests point it at a fake.
	APIURL string
	// HTTPClient makes the calls to Stripe. Default: a client with a
	// timeout of DefaultTimeout.
	HTTPClient *http.Client
	// Tolerance is how far a webhook's signed timestamp may be from now, in
	// either direction. Default: DefaultTolerance.
	Tolerance time.Duration
	// Now is the clock webhook timestamps and session lifetimes are taken
	// by. Default: time.Now.
	Now func() time.Time
	// Logger receives the provider's logs. Default: discard.
	Logger *slog.Logger
}

// Stripe is a flow.Provider that takes payments with Stripe Checkout. It is
// safe for concurrent use.
type Stripe struct {
	name      string
	live      bool
	client    *stripe.Client
	whsec     string
	tolerance time.Duration
	now       func() time.Time
	log       *slog.Logger
}

// New checks cfg and returns a provider.
func New(cfg Config) (*Stripe, error) {
	live, err := keyMode(cfg.SecretKey)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(cfg.WebhookSecret, "whsec_") {
		return nil, errors.New("webhook secret must be the endpoint's signing secret, whsec_...")
	}
	if cfg.APIURL != "" {
		if err := checkAPIURL(cfg.APIURL); err != nil {
			return nil, err
		}
	}

	s := &Stripe{
		name:      cfg.Name,
		live:      live,
		client:    newClient(cfg),
		whsec:     cfg.WebhookSecret,
		tolerance: cfg.Tolerance,
		now:       cfg.Now,
		log:       cfg.Logger,
	}
	if s.tolerance <= 0 {
		s.tolerance = DefaultTolerance
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Kind implements flow.Provider.
func (s *Stripe) Kind() string { return flow.KindPayment }

// Live reports whether the provider runs with a live key.
func (s *Stripe) Live() bool { return s.live }

// keyMode reports whether key is a live key, refusing anything that is not
// a secret or restricted key. The error never holds the key.
func keyMode(key string) (live bool, err error) {
	switch {
	case strings.HasPrefix(key, "sk_live_"), strings.HasPrefix(key, "rk_live_"):
		return true, nil
	case strings.HasPrefix(key, "sk_test_"), strings.HasPrefix(key, "rk_test_"):
		return false, nil
	case strings.HasPrefix(key, "pk_"):
		return false, errors.New("secret key is a publishable key (pk_); give the secret key")
	}
	return false, errors.New("secret key must start with sk_test_, sk_live_, rk_test_ or rk_live_")
}

func checkAPIURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("API URL %q must be an absolute http or https URL", s)
	}
	return nil
}

// mode names a mode for messages.
func mode(live bool) string {
	if live {
		return "live"
	}
	return "test"
}

// Interface guards
var (
	_ flow.Provider        = (*Stripe)(nil)
	_ flow.Returner        = (*Stripe)(nil)
	_ flow.WebhookReceiver = (*Stripe)(nil)
	_ flow.Validator       = (*Stripe)(nil)
)
