# pgguard — see README.md.
GO      ?= go
BIN     ?= bin/pgguard
PKGS    := ./...

# Stamped into the binary (`pgguard version`). The Dockerfile runs `make
# build` with VERSION and COMMIT passed in, so images carry the same flags.
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DATE    := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)

# The container image `make image` builds (see Dockerfile; needs Docker).
IMAGE   ?= ghcr.io/pgguard/pgguard

.PHONY: all build image demo demo-sizes test vet fmt-check bench bench-lockqueue clean npm-deps tools-deps fuzz-wire

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/pgguard

image:
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE):$(VERSION) .

# A throwaway PostgreSQL, pgguard in front of it, and a psql session and a
# sample migration through it.
demo: build
	$(GO) run ./cmd/demo --pgguard $(BIN)

# A migration refused in UAT because of production's size: one pgguard in
# front of a 10-row uat and a 300,000-row production (sizes_from), then
# pgguard sizes export and lint --sizes on the same file.
demo-sizes: build
	$(GO) run ./cmd/demo --pgguard $(BIN) --sizes

# pgguard against a direct connection and PgBouncer on a throwaway
# PostgreSQL with pgbench; writes bench/results/<date>-<machine>.md. Pass
# flags with BENCHFLAGS, e.g. BENCHFLAGS="--duration 2s --clients 8".
bench: build
	$(GO) run ./bench --pgguard $(BIN) $(BENCHFLAGS)

# A migration beside application traffic while a long transaction holds a
# lock on its table: pgbench's transactions over 500 ms, the slowest, the
# clients aborted and how the migration ended, with pgguard's policy as
# before (blanket lock_timeout) and as now (lock_timeout for DDL, a look at
# the lock queue), the application straight to PostgreSQL and through
# pgguard; writes bench/results/<date>-lockqueue.md. BLOCKER= chooses what
# the long transaction holds (read, rowlock, share, cursor, cursorhold;
# about 2.5 minutes each); by default all of them (about 12 minutes).
BLOCKER ?= all
bench-lockqueue: build
	$(GO) run ./bench/lockqueue --pgguard $(BIN) --blocker $(BLOCKER) $(BENCHFLAGS)

# Everything CI runs: formatting, vet, and every test (real PostgreSQL,
# real clients, the differential wire tests) with the race detector. Go
# benchmarks run once each so they keep working. Everything is built once,
# in race mode; go test prints each package as it finishes.
test: fmt-check vet npm-deps tools-deps
	@echo "== compiling in race mode (a few minutes on a fresh machine: pg_query's C parser) =="
	$(GO) build -race ./...
	@echo "== tests (each package prints one line when it is done) =="
	$(GO) test -race -count=1 $(PKGS)
	@echo "== benchmarks, once each (the packages that have them) =="
	$(GO) test -race -run '^$$' -bench . -benchtime 1x $$(grep -rl --include='*_test.go' '^func Benchmark' . | xargs -n1 dirname | sort -u)

# The differential wire test for longer than make test runs it: sessions
# played straight to PostgreSQL and through pgguard must get the same
# answers. SESSIONS and SEED choose the run; a failure prints its replay.
SESSIONS ?= 20000
SEED     ?= $(shell date +%s)
fuzz-wire:
	PGGUARD_WIRE_SESSIONS=$(SESSIONS) PGGUARD_WIRE_SEED=$(SEED) PGGUARD_WIRE_MAX_FAILURES=20 \
		$(GO) test -race -count=1 -timeout 60m -run TestWireDiff -v ./internal/suites/wiretest/

# sequelize-cli and node-postgres for the end-to-end tests (internal/suites/e2e).
E2E_NODE := internal/suites/e2e/testdata/sequelize
npm-deps: $(E2E_NODE)/node_modules/.package-lock.json
$(E2E_NODE)/node_modules/.package-lock.json: $(E2E_NODE)/package.json $(E2E_NODE)/package-lock.json
	npm ci --prefix $(E2E_NODE) --no-audit --no-fund

# knex, node-pg-migrate and TypeORM for the migration-tool tests (internal/suites/tools).
TOOLS_NODE := internal/suites/tools/testdata/node
npm-deps: $(TOOLS_NODE)/node_modules/.package-lock.json
$(TOOLS_NODE)/node_modules/.package-lock.json: $(TOOLS_NODE)/package.json $(TOOLS_NODE)/package-lock.json
	npm ci --prefix $(TOOLS_NODE) --no-audit --no-fund

# golang-migrate's CLI with its postgres driver for internal/suites/tools, from the
# Go module proxy (a minute to build the first time).
MIGRATE_VERSION := v4.18.3
MIGRATE_BIN     := internal/suites/tools/testdata/bin/migrate
tools-deps: $(MIGRATE_BIN)
$(MIGRATE_BIN):
	GOBIN=$(CURDIR)/$(dir $(MIGRATE_BIN)) $(GO) install -tags postgres github.com/golang-migrate/migrate/v4/cmd/migrate@$(MIGRATE_VERSION)

# node-postgres for the real-driver tests (internal/suites/drivers).
DRIVERS_NODE := internal/suites/drivers/testdata/node
npm-deps: $(DRIVERS_NODE)/node_modules/.package-lock.json
$(DRIVERS_NODE)/node_modules/.package-lock.json: $(DRIVERS_NODE)/package.json $(DRIVERS_NODE)/package-lock.json
	npm ci --prefix $(DRIVERS_NODE) --no-audit --no-fund

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
