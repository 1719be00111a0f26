package caddymodule

import (
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("bot_handoff", parseCaddyfile)
	// Before templates, and so before handle, route, respond, reverse_proxy
	// and file_server: the handler must see the bot's paths and the site
	// flows' task paths before anything answers them, and must wrap the
	// site's answers.
	httpcaddyfile.RegisterDirectiveOrder("bot_handoff", httpcaddyfile.Before, "templates")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// repeatable are the subdirectives that may be given more than once.
var repeatable = map[string]bool{
	"link_key": true, "site": true, "oauth": true, "payment": true, "signal": true,
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	bot_handoff {
//		prefix PATH
//		link_key secret SECRET [id KID]
//		link_key public_key PEM_FILE [id KID]
//		audience URL
//		issuer BOT_ID
//		max_link_ttl DURATION
//		state_key SECRET
//		store storage|memory|redis ... [{ ... }]
//		magic_number {
//			digits N
//			ttl DURATION
//			max_attempts N
//		}
//		deliver status|full
//		finish builtin|template FILE|proxy PATH
//		pages {
//			title TEXT
//			bot_name TEXT
//			logo URL
//			color RRGGBB
//			template continue|finish|message FILE
//		}
//		site NAME { ... }
//		oauth NAME { ... }
//		payment NAME PROVIDER { ... }
//		signal webhook URL { ... }
//		signal bot_state { ... }
//		rate_limit {
//			start_per_ip N/DURATION|off
//			start_per_flow N/DURATION|off
//			verify_per_ip N/DURATION|off
//		}
//		max_delivery_age DURATION
//		retention DURATION
//		trusted_channels CHANNEL...
//		log_ids
//		insecure_test_clock
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // bot_handoff
	if d.NextArg() {
		return d.ArgErr()
	}

	parsers := h.subdirectives()
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		parse, ok := parsers[name]
		if !ok {
			return d.Errf("unrecognized bot_handoff subdirective %q", name)
		}
		if seen[name] && !repeatable[name] {
			return d.Errf("subdirective %q given twice", name)
		}
		seen[name] = true
		if err := parse(d); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) subdirectives() map[string]func(*caddyfile.Dispenser) error {
	return map[string]func(*caddyfile.Dispenser) error{
		"prefix":       func(d *caddyfile.Dispenser) error { return oneArg(d, &h.Prefix) },
		"audience":     func(d *caddyfile.Dispenser) error { return oneArg(d, &h.Audience) },
		"issuer":       func(d *caddyfile.Dispenser) error { return oneArg(d, &h.Issuer) },
		"state_key":    func(d *caddyfile.Dispenser) error { return oneArg(d, &h.StateKey) },
		"max_link_ttl": func(d *caddyfile.Dispenser) error { return durationArg(d, &h.MaxLinkTTL) },
		"max_delivery_age": func(d *caddyfile.Dispenser) error {
			return durationArg(d, &h.MaxDeliveryAge)
		},
		"retention":    func(d *caddyfile.Dispenser) error { return durationArg(d, &h.Retention) },
		"deliver":      h.parseDeliver,
		"link_key":     h.parseLinkKey,
		"store":        h.parseStore,
		"magic_number": h.parseMagicNumber,
		"finish":       h.parseFinish,
		"pages":        h.parsePages,
		"site":         h.parseFlow("site"),
		"oauth":        h.parseFlow("oauth"),
		"payment":      h.parsePayment,
		"signal":       h.parseSignal,
		"rate_limit":   h.parseRateLimit,
		"trusted_channels": func(d *caddyfile.Dispenser) error {
			h.TrustedChannels = d.RemainingArgs()
			if len(h.TrustedChannels) == 0 {
				return d.ArgErr()
			}
			return nil
		},
		"log_ids":             boolFlag(&h.LogIDs),
		"insecure_test_clock": boolFlag(&h.InsecureTestClock),
	}
}

func boolFlag(dst *bool) func(*caddyfile.Dispenser) error {
	return func(d *caddyfile.Dispenser) error {
		if d.NextArg() {
			return d.ArgErr()
		}
		*dst = true
		return nil
	}
}

func (h *Handler) parseDeliver(d *caddyfile.Dispenser) error {
	if err := oneArg(d, &h.Deliver); err != nil {
		return err
	}
	if h.Deliver != "status" && h.Deliver != "full" {
		return d.Errf("deliver must be status or full, not %q", h.Deliver)
	}
	return nil
}

// parseLinkKey reads: link_key secret SECRET|public_key FILE [id KID]
func (h *Handler) parseLinkKey(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 && len(args) != 4 {
		return d.ArgErr()
	}
	var lk LinkKey
	switch args[0] {
	case "secret":
		lk.Secret = args[1]
	case "public_key":
		lk.PublicKey = args[1]
	case "jwks":
		return d.Err("link_key jwks is not supported yet; give a public_key PEM file")
	default:
		return d.Errf("link_key must be secret or public_key, not %q", args[0])
	}
	if len(args) == 4 {
		if args[2] != "id" {
			return d.Errf("expected id KID after the key, got %q", args[2])
		}
		lk.ID = args[3]
	}
	h.LinkKeys = append(h.LinkKeys, lk)
	return nil
}

// parseStore reads: store BACKEND ..., handing the rest to the store module.
func (h *Handler) parseStore(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	backend := d.Val()
	mod, err := unmarshalSub(d, "http.handlers.bot_handoff.stores."+backend)
	if err != nil {
		return err
	}
	h.StoreRaw = caddyconfig.JSONModuleObject(mod, "backend", backend, nil)
	return nil
}

func (h *Handler) parseMagicNumber(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	m := &h.MagicNumber
	return parseBlock(d, map[string]func(*caddyfile.Dispenser) error{
		"digits":       func(d *caddyfile.Dispenser) error { return intArg(d, &m.Digits) },
		"ttl":          func(d *caddyfile.Dispenser) error { return durationArg(d, &m.TTL) },
		"max_attempts": func(d *caddyfile.Dispenser) error { return intArg(d, &m.MaxAttempts) },
	})
}

// parseFinish reads: finish builtin | template FILE | proxy PATH
func (h *Handler) parseFinish(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	switch {
	case len(args) == 1 && args[0] == "builtin":
		h.Finish = Finish{Mode: "builtin"}
	case len(args) == 2 && args[0] == "template":
		h.Finish = Finish{Mode: "template", Template: args[1]}
	case len(args) == 2 && args[0] == "proxy":
		h.Finish = Finish{Mode: "proxy", Path: args[1]}
	default:
		return d.Err("finish takes builtin, template FILE or proxy PATH")
	}
	return nil
}

func (h *Handler) parsePages(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	p := &h.Pages
	seenTemplates := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "title":
			err = oneArg(d, &p.Title)
		case "bot_name":
			err = oneArg(d, &p.BotName)
		case "logo":
			err = oneArg(d, &p.Logo)
		case "color":
			// "#" starts a comment in a Caddyfile, so the colour may be
			// written without it: color c50f1f.
			err = oneArg(d, &p.Color)
			if err == nil && !strings.HasPrefix(p.Color, "#") {
				p.Color = "#" + p.Color
			}
		case "template":
			var page, file string
			if !d.AllArgs(&page, &file) {
				return d.ArgErr()
			}
			if seenTemplates[page] {
				return d.Errf("template for page %q given twice", page)
			}
			seenTemplates[page] = true
			if p.Templates == nil {
				p.Templates = map[string]string{}
			}
			p.Templates[page] = file
		default:
			return d.Errf("unrecognized pages subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseFlow returns the parser of a flow directive whose kind is its name.
func (h *Handler) parseFlow(kind string) func(*caddyfile.Dispenser) error {
	return func(d *caddyfile.Dispenser) error {
		mod, err := unmarshalSub(d, "http.handlers.bot_handoff.flows."+kind)
		if err != nil || flowDisabled(mod) {
			return err
		}
		h.FlowsRaw = append(h.FlowsRaw, caddyconfig.JSONModuleObject(mod, "kind", kind, nil))
		return nil
	}
}

// parsePayment reads: payment NAME PROVIDER { ... }, where the provider
// names the flow module, like stripe.
func (h *Handler) parsePayment(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return d.Err("payment takes a flow name and a provider, like: payment shop stripe")
	}
	d.Prev()
	d.Prev()
	return h.parseFlow(args[1])(d)
}

// parseSignal reads: signal TYPE ..., handing the rest to the signal module.
func (h *Handler) parseSignal(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	kind := d.Val()
	d.Prev()
	mod, err := unmarshalSub(d, "http.handlers.bot_handoff.signals."+kind)
	if err != nil {
		return err
	}
	h.SignalsRaw = append(h.SignalsRaw, caddyconfig.JSONModuleObject(mod, "signal", kind, nil))
	return nil
}

// unmarshalSub hands the current subdirective, from its first token, to
// the module with the given ID.
func unmarshalSub(d *caddyfile.Dispenser, id string) (caddyfile.Unmarshaler, error) {
	if _, err := caddy.GetModule(id); err != nil {
		return nil, d.Errf("unknown module %s", id)
	}
	return caddyfile.UnmarshalModule(d, id)
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
