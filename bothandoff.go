// Package bothandoff plugs the bot_handoff HTTP handler into Caddy. Build a
// Caddy with it by
//
//	xcaddy build --with github.com/bothandoff/caddy-bothandoff
//
// or import it for its side effects in a Caddy main package.
package bothandoff

import (
	// Registers http.handlers.bot_handoff, its sub-modules, its Caddyfile
	// directive and the caddy handoff command.
	_ "github.com/bothandoff/caddy-bothandoff/caddymodule"
)
