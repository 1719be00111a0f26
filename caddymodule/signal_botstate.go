package caddymodule

import (
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/bothandoff/caddy-bothandoff/flow"
	"github.com/bothandoff/caddy-bothandoff/flow/botstate"
)

func init() {
	caddy.RegisterModule(BotStateSignal{})
}

// BotStateSignal writes every event into the bot's state through the Bot
// Framework State REST API v3, under one property of the data, keeping the
// bot's other keys. The bot reads it on the user's next turn. A delivery
// that fails is retried with backoff; a state record that would pass the
// API's 32 KB limit is given up at once and logged.
type BotStateSignal struct {
	// Endpoint is the State API's base URL; requests go to
	// {endpoint}/v3/botstate/... It must be https, or http to a loopback
	// address. Required.
	Endpoint string `json:"endpoint"`
	// AppID is the bot's Microsoft app ID. Required; may be {env.NAME}.
	AppID string `json:"app_id"`
	// AppPassword is the bot's app password (client secret). Required;
	// use {env.NAME} or {file.PATH}.
	AppPassword string `json:"app_password"`
	// TokenURL is where the app ID and password are exchanged for a
	// bearer token (OAuth client credentials). It must be https, or http
	// to a loopback address. Default:
	// https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token
	TokenURL string `json:"token_url,omitempty"`
	// Scope is the OAuth scope asked for.
	// Default: https://api.botframework.com/.default
	Scope string `json:"scope,omitempty"`
	// Property is the key of the bot's data that holds the newest event.
	// Default: handoff.
	Property string `json:"property,omitempty"`
	// Data is the state record written: private (the user's data in the
	// conversation), user (the user's data across conversations) or
	// conversation (shared by every user of the conversation). In shared
	// records the property holds the newest event of any conversation or
	// user. Default: private.
	Data string `json:"data,omitempty"`

	signal *botstate.Signal
}

// CaddyModule returns the Caddy module information.
func (BotStateSignal) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bot_handoff.signals.bot_state",
		New: func() caddy.Module { return new(BotStateSignal) },
	}
}

// Provision resolves the credentials and sets the signal up.
func (s *BotStateSignal) Provision(caddy.Context) error {
	id, err := resolveSecret(s.AppID)
	if err != nil {
		return fmt.Errorf("bot_state app_id: %w", err)
	}
	password, err := resolveSecret(s.AppPassword)
	if err != nil {
		return fmt.Errorf("bot_state app_password: %w", err)
	}
	s.signal, err = botstate.New(botstate.Config{
		Endpoint:    s.Endpoint,
		AppID:       string(id),
		AppPassword: string(password),
		TokenURL:    s.TokenURL,
		Scope:       s.Scope,
		Property:    s.Property,
		Data:        botstate.Data(s.Data),
	})
	return err
}

// Signal implements SignalModule.
func (s *BotStateSignal) Signal() flow.Signal { return s.signal }

// UnmarshalCaddyfile sets up the signal from Caddyfile tokens. Syntax:
//
//	signal bot_state {
//		endpoint URL
//		app_id ID
//		app_password SECRET
//		token_url URL
//		scope SCOPE
//		property NAME
//		data private|user|conversation
//	}
func (s *BotStateSignal) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // signal
	var kind string
	if !d.AllArgs(&kind) {
		return d.ArgErr()
	}
	str := func(dst *string) func(*caddyfile.Dispenser) error {
		return func(d *caddyfile.Dispenser) error { return oneArg(d, dst) }
	}
	return parseBlock(d, map[string]func(*caddyfile.Dispenser) error{
		"endpoint":     str(&s.Endpoint),
		"app_id":       str(&s.AppID),
		"app_password": str(&s.AppPassword),
		"token_url":    str(&s.TokenURL),
		"scope":        str(&s.Scope),
		"property":     str(&s.Property),
		"data":         s.parseData,
	})
}

func (s *BotStateSignal) parseData(d *caddyfile.Dispenser) error {
	if err := oneArg(d, &s.Data); err != nil {
		return err
	}
	switch botstate.Data(s.Data) {
	case botstate.PrivateData, botstate.UserData, botstate.ConversationData:
		return nil
	}
	return d.Errf("data must be private, user or conversation, not %q", s.Data)
}

// Interface guards
var (
	_ SignalModule          = (*BotStateSignal)(nil)
	_ caddy.Provisioner     = (*BotStateSignal)(nil)
	_ caddyfile.Unmarshaler = (*BotStateSignal)(nil)
)
