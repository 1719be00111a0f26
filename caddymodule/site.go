package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

func init() {
	caddy.RegisterModule(SiteFlow{})
}

// SiteFlow is a task on the site behind the handler. The user is sent to
// To; while the flow is open, requests under To reach the site with the
// Handoff-Flow-Id, Handoff-Channel-Id, Handoff-Conversation-Id,
// Handoff-User-Id and Handoff-Data headers; the site ends the flow by
// answering with a Handoff-Complete header: a JSON object (the result), or
// "failed", or "failed:CODE".
type SiteFlow struct {
	FlowCommon
	// To is the path of the task on the site, like /checkout. Requests to it
	// and below it belong to the flow.
	To string `json:"to"`

	site *flow.Site
}

// CaddyModule returns the Caddy module information.
func (SiteFlow) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.bot_handoff.flows.site",
		New: func() caddy.Module { return new(SiteFlow) },
	}
}

// Provision checks the task path.
func (s *SiteFlow) Provision(caddy.Context) error {
	if err := s.checkName("site"); err != nil {
		return err
	}
	s.site = &flow.Site{Path: s.To}
	return s.site.ValidatePath()
}

// FlowConfig implements FlowModule.
func (s *SiteFlow) FlowConfig() flow.FlowConfig { return s.flowConfig(s.site) }

// UnmarshalCaddyfile sets up the flow from Caddyfile tokens. Syntax:
//
//	site NAME {
//		to PATH
//		ttl DURATION
//		enabled true|false
//	}
func (s *SiteFlow) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // site
	if !d.AllArgs(&s.Name) {
		return d.ArgErr()
	}
	return parseBlock(d, s.commonParsers(map[string]func(*caddyfile.Dispenser) error{
		"to": func(d *caddyfile.Dispenser) error { return oneArg(d, &s.To) },
	}))
}

// Interface guards
var (
	_ FlowModule            = (*SiteFlow)(nil)
	_ caddy.Provisioner     = (*SiteFlow)(nil)
	_ caddyfile.Unmarshaler = (*SiteFlow)(nil)
)
