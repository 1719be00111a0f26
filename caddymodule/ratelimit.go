package caddymodule

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/bothandoff/caddy-bothandoff/flow"
)

// RateLimit bounds how fast clients open links and call the verify API, per
// Caddy instance. Each limit is N/DURATION, like 30/1m, or "off". Client IPs
// are Caddy's client_ip, which honours the server's trusted_proxies.
type RateLimit struct {
	// StartPerIP bounds link openings per client IP. Default: 30/1m.
	StartPerIP string `json:"start_per_ip,omitempty"`
	// StartPerFlow bounds flow starts per flow name, across clients; it
	// protects the identity provider or checkout behind. Default: 600/1m.
	StartPerFlow string `json:"start_per_flow,omitempty"`
	// VerifyPerIP bounds verify calls per client IP. Default: 600/1m.
	VerifyPerIP string `json:"verify_per_ip,omitempty"`
}

func (rl RateLimit) limits() (flow.Limits, error) {
	var l flow.Limits
	for _, f := range []struct {
		name string
		val  string
		dst  *flow.Rate
	}{
		{"start_per_ip", rl.StartPerIP, &l.StartPerIP},
		{"start_per_flow", rl.StartPerFlow, &l.StartPerFlow},
		{"verify_per_ip", rl.VerifyPerIP, &l.VerifyPerIP},
	} {
		r, err := parseRate(f.val)
		if err != nil {
			return l, fmt.Errorf("%s: %w", f.name, err)
		}
		*f.dst = r
	}
	return l, nil
}

// parseRate reads N/DURATION, "off", or "" for the default.
func parseRate(s string) (flow.Rate, error) {
	switch s {
	case "":
		return flow.Rate{}, nil
	case "off":
		return flow.Rate{N: -1}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count <= 0 {
		return flow.Rate{}, fmt.Errorf("rate %q must be N/DURATION, like 30/1m, or off", s)
	}
	d, err := caddy.ParseDuration(per)
	if err != nil || d <= 0 {
		return flow.Rate{}, fmt.Errorf("rate %q has a bad period", s)
	}
	return flow.Rate{N: count, Per: d}, nil
}

// clientIP returns the client's IP as Caddy determined it.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	return r.RemoteAddr
}

// parseRateLimit reads:
//
//	rate_limit {
//		start_per_ip N/DURATION|off
//		start_per_flow N/DURATION|off
//		verify_per_ip N/DURATION|off
//	}
func (h *Handler) parseRateLimit(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	rl := &h.RateLimit
	rate := func(dst *string) func(*caddyfile.Dispenser) error {
		return func(d *caddyfile.Dispenser) error {
			if err := oneArg(d, dst); err != nil {
				return err
			}
			if _, err := parseRate(*dst); err != nil {
				return d.Err(err.Error())
			}
			return nil
		}
	}
	return parseBlock(d, map[string]func(*caddyfile.Dispenser) error{
		"start_per_ip":   rate(&rl.StartPerIP),
		"start_per_flow": rate(&rl.StartPerFlow),
		"verify_per_ip":  rate(&rl.VerifyPerIP),
	})
}
