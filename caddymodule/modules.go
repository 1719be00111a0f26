package caddymodule

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// FlowModule is a module in the http.handlers.bot_handoff.flows namespace:
// one configured flow that links may name.
type FlowModule interface {
	caddy.Module
	// FlowName is the name links give in their flow claim.
	FlowName() string
	// FlowConfig is the provisioned flow.
	FlowConfig() flow.FlowConfig
}

// SignalModule is a module in the http.handlers.bot_handoff.signals
// namespace: one way of telling the bot.
type SignalModule interface {
	caddy.Module
	Signal() flow.Signal
}

// StoreModule is a module in the http.handlers.bot_handoff.stores namespace:
// where flows and deliveries are kept.
type StoreModule interface {
	caddy.Module
	// Store returns the store for one handler, whose keys live apart from
	// those of other handlers under namespace.
	Store(namespace string) (flow.Store, error)
}
