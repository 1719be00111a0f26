#!/usr/bin/env bash
# Runs Caddyfile.example: makes the demo's link secret once, prints how to
# try a handoff, and starts Caddy in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p .demo
if [ ! -s .demo/link.secret ]; then
	./bin/caddy handoff keygen > .demo/link.secret
	chmod 600 .demo/link.secret
fi
export HANDOFF_LINK_SECRET="$(cat .demo/link.secret)"

cat <<'INFO'

caddy-bothandoff demo on http://localhost:8080

In another terminal, make a link as the bot would:

  HANDOFF_LINK_SECRET=$(cat .demo/link.secret) ./bin/caddy handoff link \
    --url http://localhost:8080/handoff --flow checkout \
    --channel demo --conversation demo-chat --user alice \
    --data '{"item":"Green tea","quantity":2}'

Open it in a browser, confirm the order, and paste the number here:

  HANDOFF_LINK_SECRET=$(cat .demo/link.secret) ./bin/caddy handoff verify \
    --url http://localhost:8080/handoff \
    --channel demo --conversation demo-chat --user alice --code NUMBER

INFO
exec ./bin/caddy run --config Caddyfile.example --adapter caddyfile
