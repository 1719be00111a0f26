package caddymodule

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/payment"
)

func init() {
	caddy.RegisterModule(StripeFlow{})
}

// Bounds of a payment flow's ttl.
const (
	// defaultPaymentTTL leaves the user time to pay and outlives the
	// Checkout Session, which Stripe keeps open at least 30 minutes.
	defaultPaymentTTL = time.Hour
	minPaymentTTL     = 35 * time.Minute
	maxPaymentTTL     = 24 * time.Hour
)

// StripeFlow takes a payment with Stripe Checkout. The link's data names
// the amount (in minor units), the currency, a description and the bot's
// order ID. The Checkout Session is made when the user clicks; the payment
// is confirmed with Stripe when the browser returns and when Stripe's
// webhook arrives at {prefix}/webhook/NAME, whichever comes first.
type StripeFlow struct {
	FlowCommon
	// SecretKey is the Stripe API key: a secret key (sk_test_..., sk_live_...)
	// or a restricted key (rk_test_..., rk_live_...) that may write Checkout
	// Sessions. A test key takes only test-mode events, a live key only
	// live ones. Use {env.NAME} or {file.PATH}.
	SecretKey string `json:"secret_key"`
	// WebhookSecret is the signing secret (whsec_...) of the webhook
	// endpoint {prefix}/webhook/NAME, as the Stripe dashboard shows it. Use
	// {env.NAME} or {file.PATH}.
	WebhookSecret string `json:"webhook_secret"`
	// APIURL replaces the base URL of the Stripe API, for tests against a
	// fake; the secret key is sent there. Default: https://api.stripe.com.
	APIURL string `json:"api_url,omitempty"`

	provider *payment.Stripe
}

// CaddyModule returns the Caddy module information.
func (StripeFlow) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bot_handoff.flows.stripe",
		New: func() caddy.Module { return new(StripeFlow) },
	}
}

// Provision resolves the secrets and sets the ttl's default: 1h, which a
// payment flow needs at least 35m of, so that the Checkout Session ends
// before the flow.
func (s *StripeFlow) Provision(ctx caddy.Context) error {
	if err := s.checkName("payment"); err != nil {
		return err
	}
	if err := s.checkTTL(); err != nil {
		return err
	}
	key, err := resolveSecret(s.SecretKey)
	if err != nil {
		return fmt.Errorf("payment flow %q: secret_key: %w", s.Name, err)
	}
	whsec, err := resolveSecret(s.WebhookSecret)
	if err != nil {
		return fmt.Errorf("payment flow %q: webhook_secret: %w", s.Name, err)
	}
	if s.APIURL != "" {
		ctx.Logger().Warn("api_url sends this flow's Stripe calls, with its secret key, "+
			"elsewhere than Stripe; for tests only", zap.String("flow", s.Name),
			zap.String("api_url", s.APIURL))
	}

	s.provider, err = payment.New(payment.Config{
		Name: s.Name, SecretKey: string(key), WebhookSecret: string(whsec), APIURL: s.APIURL,
		Logger: ctx.Slogger(),
	})
	if err != nil {
		return fmt.Errorf("payment flow %q: %w", s.Name, err)
	}
	return nil
}

func (s *StripeFlow) checkTTL() error {
	if s.TTL == 0 {
		s.TTL = caddy.Duration(defaultPaymentTTL)
	}
	if ttl := time.Duration(s.TTL); ttl < minPaymentTTL || ttl > maxPaymentTTL {
		return fmt.Errorf("payment flow %q: ttl must be %v to %v: Stripe keeps a Checkout "+
			"Session open 30 minutes to 24 hours, and it must end before the flow",
			s.Name, minPaymentTTL, maxPaymentTTL)
	}
	return nil
}

// FlowConfig implements FlowModule.
func (s *StripeFlow) FlowConfig() flow.FlowConfig { return s.flowConfig(s.provider) }

// UnmarshalCaddyfile sets up the flow from Caddyfile tokens. Syntax:
//
//	payment NAME stripe {
//		secret_key KEY
//		webhook_secret SECRET
//		api_url URL
//		ttl DURATION
//		enabled true|false
//	}
func (s *StripeFlow) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // payment
	var provider string
	if !d.AllArgs(&s.Name, &provider) {
		return d.ArgErr()
	}
	if provider != "stripe" {
		return d.Errf("payment provider must be stripe, not %q", provider)
	}
	return parseBlock(d, s.commonParsers(map[string]func(*caddyfile.Dispenser) error{
		"secret_key":     func(d *caddyfile.Dispenser) error { return oneArg(d, &s.SecretKey) },
		"webhook_secret": func(d *caddyfile.Dispenser) error { return oneArg(d, &s.WebhookSecret) },
		"api_url":        func(d *caddyfile.Dispenser) error { return oneArg(d, &s.APIURL) },
	}))
}

// Interface guards
var (
	_ FlowModule            = (*StripeFlow)(nil)
	_ caddy.Provisioner     = (*StripeFlow)(nil)
	_ caddyfile.Unmarshaler = (*StripeFlow)(nil)
)
