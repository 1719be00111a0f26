#!/usr/bin/env bash
# Runs the measurements of docs/benchmarks.md on loopback and prints their
# tables: the load run through a real Caddy (cmd/handoff-bench) against a
# bare Caddy and oauth2-proxy, the engine's Go benchmarks, the handler
# through Caddy's routes in process, and the memory
# and disk a pending flow takes.
#
# Environment: DURATION (2s) and ROUNDS (7) of each timed load run,
# WORKERS (16) concurrent connections, and MANY_WORKERS (64) for the second
# measurement of starts and verify, SAMPLES (300) timed sign-ins per store,
# FULL=1 to add the 1M-flow memory run, the 100k-flow disk runs and the
# log's 1M-flow run (several more minutes).
#
# On a machine of two or more CPUs, the servers run on the upper half of
# them and the load generator on the lower half, so that neither takes CPU
# time from the other; PIN=0 lets them share all CPUs.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
OAUTH2_PROXY=github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n== %s\n' "$*" >&2; }

step "building Caddy with the module, and $OAUTH2_PROXY"
make -s build
GOBIN="$work/bin" GOFLAGS=-buildvcs=false $GO install "$OAUTH2_PROXY"

$GO build -o "$work/bin/handoff-bench" ./cmd/handoff-bench
load=("$work/bin/handoff-bench")
cpus=$(nproc)
if [[ "${PIN:-1}" != 0 && $cpus -ge 2 ]] && command -v taskset >/dev/null; then
	half=$((cpus / 2))
	load=(taskset --cpu-list "0-$((half - 1))" "$work/bin/handoff-bench"
		-server-cpus "$half-$((cpus - 1))")
fi

step "load through Caddy on loopback"
echo "### Load through Caddy"
echo
"${load[@]}" -caddy bin/caddy -oauth2-proxy "$work/bin/oauth2-proxy" \
	-duration "${DURATION:-2s}" -rounds "${ROUNDS:-7}" -workers "${WORKERS:-16}" \
	-many-workers "${MANY_WORKERS:-64}" -samples "${SAMPLES:-300}"

# gobench runs Go benchmarks and keeps their result lines.
gobench() { $GO test -run '^$' -timeout 60m "$@" | grep '^Benchmark' || true; }

step "engine in process"
echo
echo "### Engine in process (memory store)"
echo
echo '```'
gobench -bench '^Benchmark(PassThrough|PassThroughBare|Start|Verify)$' -benchtime 20000x ./flow/
echo '```'

step "pass-through through Caddy's routes, in process"
echo
echo "### Pass-through through Caddy's routes, in process"
echo
echo '```'
gobench -bench '^BenchmarkCaddyPassThrough(|Bare|Vars|Proxied|ProxiedBare)$' -benchtime 100000x \
	./caddymodule/
echo '```'

memory=(10000 100000)
disk=(10000)
if [[ -n "${FULL:-}" ]]; then
	memory+=(1000000)
	disk+=(100000)
fi

step "memory and disk per pending flow"
echo
echo "### Per pending oauth flow"
echo
echo "| store | flows | per flow |"
echo "|---|---:|---|"
for n in "${memory[@]}"; do
	gobench -bench '^BenchmarkPendingFlowMemory$' -benchtime "${n}x" ./flow/ |
		awk -v n="$n" '{print "| memory (heap) | " n " | " $5 " B |"}'
done
# diskrows runs the storage store's disk benchmarks that match $1 with $2
# flows, a row each.
diskrows() {
	gobench -bench "$1" -benchtime "${2}x" ./caddymodule/ |
		awk -v n="$2" '{split($1, name, "[/-]")
			printf "| storage, %s (disk) | %s | %.4g files, %s B written, %s B allocated, %s B of heap |\n",
				name[2], n, $9, $5, $7, $11}'
}
for n in "${disk[@]}"; do
	diskrows '^BenchmarkStoragePendingFlowDisk$' "$n"
done
if [[ -n "${FULL:-}" ]]; then
	# The log alone at a million flows: the file layout would take hours.
	diskrows '^BenchmarkStoragePendingFlowDisk$/^log$' 1000000
fi
