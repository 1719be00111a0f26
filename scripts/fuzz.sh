#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each: a duration ("60s", the default,
# for "make fuzz") or a count of inputs ("5000x", for "make test").
#
# A target fails when the fuzzer finds an input that fails it: the input is
# written to the package's testdata/fuzz and "go test ./..." replays it from
# then on. The fuzzer can also end with "context deadline exceeded" when a
# duration runs out while a worker on a loaded machine is mid-input, without
# having found anything; such a run is repeated once. A count has no deadline.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-60s}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# fuzz_once runs one target and shows its output only when it fails.
fuzz_once() {
	local pkg=$1 target=$2
	if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1; then
		return 0
	fi
	cat "$log" >&2
	return 1
}

# deadline_only tells a fuzzer that ran out of time apart from a finding.
deadline_only() {
	grep -q 'context deadline exceeded' "$log" &&
		! grep -q 'Failing input written to' "$log" &&
		! grep -q '^panic:' "$log"
}

for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null |
		sed 's/^func //' | sort -u || true)
	for target in $targets; do
		echo "fuzzing $pkg $target for $fuzztime"
		if fuzz_once "$pkg" "$target"; then
			continue
		fi
		if deadline_only; then
			echo "$target ran out of time without a finding; running it again" >&2
			fuzz_once "$pkg" "$target" && continue
		fi
		echo "FAIL: $pkg $target" >&2
		exit 1
	done
done
