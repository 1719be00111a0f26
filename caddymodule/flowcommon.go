package caddymodule

import (
	"fmt"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// FlowCommon holds the options every flow module has.
type FlowCommon struct {
	// Name is what links give in their flow claim: lower case letters,
	// digits, - and _.
	Name string `json:"name"`
	// TTL is how long the user has to finish once the link is opened.
	// Default: 30m.
	TTL caddy.Duration `json:"ttl,omitempty"`

	// disabled is set by "enabled false" in the Caddyfile; such a flow is
	// left out of the adapted configuration.
	disabled bool
}

// FlowName implements FlowModule.
func (c *FlowCommon) FlowName() string { return c.Name }

// checkName checks the flow's name at provision.
func (c *FlowCommon) checkName(kind string) error {
	if !flow.ValidFlowName(c.Name) {
		return fmt.Errorf("%s flow name %q must be lower case letters, digits, - and _", kind, c.Name)
	}
	return nil
}

// flowConfig returns the engine's view of the flow with provider p.
func (c *FlowCommon) flowConfig(p flow.Provider) flow.FlowConfig {
	return flow.FlowConfig{Provider: p, TTL: time.Duration(c.TTL)}
}

// commonParsers returns the parsers of the subdirectives every flow takes:
//
//	ttl DURATION
//	enabled true|false
//
// "enabled {$VAR:false}" leaves a flow out unless the environment turns it on
// when the Caddyfile is adapted.
func (c *FlowCommon) commonParsers(parsers map[string]subparser) map[string]subparser {
	parsers["ttl"] = func(d *caddyfile.Dispenser) error { return durationArg(d, &c.TTL) }
	parsers["enabled"] = func(d *caddyfile.Dispenser) error {
		var s string
		if err := oneArg(d, &s); err != nil {
			return err
		}
		on, err := strconv.ParseBool(s)
		if err != nil {
			return d.Errf("enabled must be true or false, not %q", s)
		}
		c.disabled = !on
		return nil
	}
	return parsers
}

// flowDisabled reports whether a parsed flow module asked to be left out.
func flowDisabled(mod any) bool {
	fc, ok := mod.(interface{ common() *FlowCommon })
	return ok && fc.common().disabled
}

func (c *FlowCommon) common() *FlowCommon { return c }
