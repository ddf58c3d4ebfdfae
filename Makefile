# pgguard — see README.md.
GO      ?= go
BIN     := bin/pgguard
PKGS    := ./...

.PHONY: all build demo test vet fmt-check bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/pgguard

# A throwaway PostgreSQL, pgguard in front of it, and a psql session and a
# sample migration through it.
demo: build
	$(GO) run ./cmd/demo --pgguard $(BIN)

# Everything CI runs: formatting, vet, and every test (real PostgreSQL,
# real clients) with the race detector. Go benchmarks run once each so
# they keep working.
test: fmt-check vet
	$(GO) test -race -count=1 $(PKGS)
	$(GO) test -run '^$$' -bench . -benchtime 1x $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
