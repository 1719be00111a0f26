// Package caddymodule is the Caddy adapter of caddy-bothandoff: the HTTP
// handler http.handlers.bot_handoff, its Caddyfile directive bot_handoff, its
// sub-modules (flows, signals, stores), metrics, and the caddy handoff
// command. The work itself is done by package flow.
package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler runs bot handoffs at the edge of a site: it checks the links a
// bot sends, runs the sign-in, payment or site task they ask for, shows the
// user a magic number, and signals the bot. Requests outside its prefix and
// outside its site flows' task paths pass through to the next handler, with
// any client-sent Handoff-* header removed.
//
// With the finish mode proxy, the request for the site's finish page carries
// these placeholders:
//
//	{http.handoff.magic_number}          the magic number, like 123456
//	{http.handoff.magic_number_grouped}  the same in groups: 123 456
//	{http.handoff.flow_id}               the flow's ID
//	{http.handoff.flow}                  the flow's configured name
type Handler struct {
	// Prefix is the path under which the handler serves links, returns
	// from providers, webhooks and the bot API. Default: /handoff.
	Prefix string `json:"prefix,omitempty"`

	// LinkKeys are the keys the bot signs links and API tokens with. At
	// least one is required; list two while rotating keys.
	LinkKeys []LinkKey `json:"link_keys,omitempty"`

	// Audience is what link and API tokens must name in aud. Default: the
	// origin each request came to, followed by the prefix, like
	// https://example.com/handoff. Set it when TLS ends before Caddy or
	// the site answers to several names.
	Audience string `json:"audience,omitempty"`

	// Issuer, if set, is what tokens must name in iss: the bot's ID.
	Issuer string `json:"issuer,omitempty"`

	// MaxLinkTTL is the longest a link may live, from iat to exp.
	// Default: 15m.
	MaxLinkTTL caddy.Duration `json:"max_link_ttl,omitempty"`

	// StateKey is the master secret that seals tokens and results at rest
	// and binds browsers, at least 32 bytes; it may be {env.*} or {file.*}.
	// Default: a key made once and kept in Caddy's storage, shared by every
	// instance that shares the storage.
	StateKey string `json:"state_key,omitempty"`

	// StoreRaw is where flows are kept: storage (Caddy's configured
	// storage; survives restarts and reloads), memory, or redis.
	// Default: storage.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=http.handlers.bot_handoff.stores inline_key=backend"`

	// MagicNumber configures the numbers users paste into the chat.
	MagicNumber MagicNumber `json:"magic_number,omitzero"`

	// Deliver is what signals carry: status (the bot calls the verify API
	// with the number the user pastes) or full (the number and the result
	// go to the bot, which checks the number itself). Default: status.
	Deliver string `json:"deliver,omitempty"`

	// Finish is how the magic number is shown. Default: builtin.
	Finish Finish `json:"finish,omitzero"`

	// Pages brands the pages users see, and may replace them.
	Pages Pages `json:"pages,omitzero"`

	// FlowsRaw are the flows links may name: site, oauth, stripe.
	FlowsRaw []json.RawMessage `json:"flows,omitempty" caddy:"namespace=http.handlers.bot_handoff.flows inline_key=kind"`

	// SignalsRaw tell the bot when a flow completes, fails or expires:
	// webhook, bot_state.
	SignalsRaw []json.RawMessage `json:"signals,omitempty" caddy:"namespace=http.handlers.bot_handoff.signals inline_key=signal"`

	// MaxDeliveryAge is how long a signal delivery is retried before it is
	// given up, logged and kept for the operator. Default: 24h.
	MaxDeliveryAge caddy.Duration `json:"max_delivery_age,omitempty"`

	// Retention is how long the status of a finished flow stays readable by
	// the bot API. Default: 24h.
	Retention caddy.Duration `json:"retention,omitempty"`

	// RateLimit bounds how fast clients open links and call verify.
	RateLimit RateLimit `json:"rate_limit,omitzero"`

	// TrustedChannels are channel IDs whose embedded web views the channel
	// itself binds to the signed-in user. Flows from these channels complete
	// without a magic number, and the bot verifies with an empty code.
	// RISK: the number is what proves that the person who finished in the
	// browser is the person in the chat; without it, anyone who opens the
	// link completes the flow for the user it names. Only list a channel
	// whose links cannot be opened by anyone else. Default: none; off.
	TrustedChannels []string `json:"trusted_channels,omitempty"`

	// LogIDs adds user and conversation IDs to log lines. They identify
	// people, so they are left out unless the operator needs them.
	LogIDs bool `json:"log_ids,omitempty"`

	// InsecureTestClock lets the bot API move the handler's clock forward,
	// so tests can expire flows without waiting. Never for production: any
	// holder of the bot key could expire every flow.
	InsecureTestClock bool `json:"insecure_test_clock,omitempty"`

	engine *flow.Engine
	store  StoreModule
	flows  flow.Store // the store's part for this handler
	cancel context.CancelFunc
	logger *zap.Logger
}

// MagicNumber configures the magic numbers.
type MagicNumber struct {
	// Digits is the number's length, 6 to 12. Default: 6.
	Digits int `json:"digits,omitempty"`
	// TTL is how long a number lives after the flow completes. Default: 10m.
	TTL caddy.Duration `json:"ttl,omitempty"`
	// MaxAttempts is how many wrong numbers fail the flow. Default: 5.
	MaxAttempts int `json:"max_attempts,omitempty"`
}

// Finish configures the finish page.
type Finish struct {
	// Mode is builtin (the handler's page), template (the builtin page
	// replaced by the file at Template) or proxy (a page of the site behind,
	// at Path, which receives the number in the Handoff-Magic-Number
	// request header and the {http.handoff.*} placeholders).
	// Default: builtin.
	Mode string `json:"mode,omitempty"`
	// Template is the html/template file for mode template.
	Template string `json:"template,omitempty"`
	// Path is the site's page for mode proxy.
	Path string `json:"path,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bot_handoff",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision loads the sub-modules, resolves secrets, and starts the worker
// that delivers signals and expires flows.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()

	cfg, err := h.engineConfig(ctx)
	if err != nil {
		return err
	}
	h.engine, err = flow.New(*cfg)
	if err != nil {
		return fmt.Errorf("configuring handoff engine: %w", err)
	}
	registerOutbox(ctx, h.engine, h.namespace())
	addRunning(h)

	run, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go h.engine.Run(run)
	return nil
}

// Validate checks the configuration beyond what Provision needed.
func (h *Handler) Validate() error {
	if h.engine == nil {
		return fmt.Errorf("handler not provisioned")
	}
	return nil
}

// ServeHTTP hands the request to the engine.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return h.engine.ServeHTTP(w, r, next.ServeHTTP)
}

// Cleanup stops the worker; Caddy cleans up the sub-modules, which close
// their stores.
func (h *Handler) Cleanup() error {
	removeRunning(h)
	if h.cancel != nil {
		h.cancel()
	}
	return nil
}

// slogger returns the module's logger for the engine.
func slogger(ctx caddy.Context) *slog.Logger { return ctx.Slogger() }

// setVar publishes a handoff value to the request's placeholders.
func setVar(r *http.Request, name, value string) {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.handoff."+name, value)
	}
}

// durationOr returns d, or def if d is zero.
func durationOr(d caddy.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return time.Duration(d)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
