package caddymodule

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// subparser parses one subdirective, the dispenser at its name.
type subparser = func(*caddyfile.Dispenser) error

// parseBlock walks a directive's block, handing each subdirective to its
// parser, and refuses unknown and repeated subdirectives with their line.
func parseBlock(d *caddyfile.Dispenser, parsers map[string]func(*caddyfile.Dispenser) error) error {
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		parse, ok := parsers[name]
		if !ok {
			return d.Errf("unrecognized subdirective %q", name)
		}
		if seen[name] {
			return d.Errf("subdirective %q given twice", name)
		}
		seen[name] = true
		if err := parse(d); err != nil {
			return err
		}
	}
	return nil
}

// oneArg reads exactly one argument.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.AllArgs(dst) {
		return d.ArgErr()
	}
	return nil
}

// durationArg reads one duration argument.
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	var s string
	if !d.AllArgs(&s) {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("bad duration %q: %v", s, err)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// intArg reads one integer argument.
func intArg(d *caddyfile.Dispenser, dst *int) error {
	var s string
	if !d.AllArgs(&s) {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return d.Errf("bad number %q", s)
	}
	*dst = n
	return nil
}
