// Command caddy is Caddy with its standard modules and the bot_handoff
// handler.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/bothandoff/caddy-bothandoff"
)

func main() {
	caddycmd.Main()
}
