#!/usr/bin/env bash
# Installs what the tests and the demo need on a fresh Debian machine:
# Chromium for the browser tests, redis-server for the cluster store, and
# Node.js with the example bot's npm packages for its end-to-end test.
# Safe to run again; it installs only what is missing.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)

if [ ${#need[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "installing ${need[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

go mod download

# The Node.js example bot's packages, as its package-lock.json pins them.
bot="$(dirname "$0")/../examples/node-bot"
if [ ! -f "$bot/node_modules/.package-lock.json" ] ||
	[ "$bot/package-lock.json" -nt "$bot/node_modules/.package-lock.json" ]; then
	npm ci --prefix "$bot" --no-audit --no-fund
fi
