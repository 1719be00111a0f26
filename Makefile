# caddy-bothandoff. "make demo" runs Caddyfile.example; "make test" runs
# every test. Both install what they need first.

GO       ?= go
BIN      := bin
CADDY    := $(BIN)/caddy
# The same flags xcaddy uses, so both builds share the build cache.
BUILD    := $(GO) build -trimpath -ldflags "-w -s" -tags nobadger,nomysql,nopgx

.PHONY: all build setup demo test unit integration vet fuzz fuzz-short bench clean

all: build

build:
	$(BUILD) -o $(CADDY) ./cmd/caddy

setup:
	./scripts/setup.sh

# Runs Caddyfile.example on http://localhost:8080 with a link secret made
# once in .demo/.
demo: build
	./scripts/demo.sh

# Every test: vet, unit, Caddyfile, fuzz seeds, integration against a real
# Caddy, browser tests in Chromium, the cluster store against redis-server.
test: setup vet
	$(GO) test -count=1 -timeout 15m ./...
	FUZZTIME=5000x ./scripts/fuzz.sh

unit: vet
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /tests)

integration: setup
	$(GO) test -count=1 -timeout 15m ./tests/...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

# Runs every fuzz target for FUZZTIME each (default 60s; a count such as
# 5000x also works).
fuzz:
	./scripts/fuzz.sh

# Measures pass-through, link start, verify, callback latency and memory per
# flow on loopback, against a bare Caddy and oauth2-proxy; prints the tables
# of docs/benchmarks.md. A few minutes; FULL=1 adds the largest runs.
bench:
	@./scripts/bench.sh

clean:
	rm -rf $(BIN) .demo
