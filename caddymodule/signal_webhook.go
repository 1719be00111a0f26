package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/webhook"
)

func init() {
	caddy.RegisterModule(WebhookSignal{})
}

// WebhookSignal posts every event to the bot's URL as JSON, with the
// Handoff-Signature header (t=UNIX,v1=HEX, an HMAC-SHA256 of the timestamp,
// a dot and the body) and the Handoff-Delivery header (the event ID). A
// delivery that fails is retried with backoff until the bot answers 2xx.
type WebhookSignal struct {
	// URL receives the events.
	URL string `json:"url"`
	// Secret signs the events, at least 32 bytes taken as raw bytes; use
	// {env.NAME} or {file.PATH}.
	Secret string `json:"secret"`

	signal *webhook.Signal
}

// CaddyModule returns the Caddy module information.
func (WebhookSignal) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bot_handoff.signals.webhook",
		New: func() caddy.Module { return new(WebhookSignal) },
	}
}

// Provision resolves the secret.
func (s *WebhookSignal) Provision(caddy.Context) error {
	secret, err := resolveSecret(s.Secret)
	if err != nil {
		return err
	}
	s.signal, err = webhook.New(s.URL, secret, nil, nil)
	return err
}

// Signal implements SignalModule.
func (s *WebhookSignal) Signal() flow.Signal { return s.signal }

// UnmarshalCaddyfile sets up the signal from Caddyfile tokens. Syntax:
//
//	signal webhook URL {
//		secret SECRET
//	}
func (s *WebhookSignal) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // signal
	var kind string
	if !d.AllArgs(&kind, &s.URL) {
		return d.ArgErr()
	}
	return parseBlock(d, map[string]func(*caddyfile.Dispenser) error{
		"secret": func(d *caddyfile.Dispenser) error { return oneArg(d, &s.Secret) },
	})
}

// Interface guards
var (
	_ SignalModule          = (*WebhookSignal)(nil)
	_ caddy.Provisioner     = (*WebhookSignal)(nil)
	_ caddyfile.Unmarshaler = (*WebhookSignal)(nil)
)
