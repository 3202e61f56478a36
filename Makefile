# binarc: build, test, lint and demo.
#
#   make deps    install MariaDB (apt, as root), versitygw, staticcheck, docker-compose
#   make build   bin/binarc
#   make demo    a bad DROP TABLE, found in ./demo-data/archive and undone
#                (installs only MariaDB and zstd: scripts/deps.sh --demo-only)
#   make test    lint, then every test with the race detector
#   make lint    gofmt, go vet, staticcheck, docker-compose config
#   make bench   go run ./bench $(BENCH_ARGS)
#   make chaos   the seeded fault campaign (SEED=…, DURATION=…, default 10m; SEMISYNC=1; BINLOG_FORMAT=MIXED)
#   make clean   remove bin/ and demo-data/

# Go is often installed in /usr/local/go without being on a root shell's
# PATH; mariadbd is in /usr/sbin. A Go already on PATH comes first.
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

BINARC_CACHE ?= $(HOME)/.cache/binarc
export BINARC_CACHE
STATICCHECK := $(BINARC_CACHE)/bin/staticcheck

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
GO_TEST_FLAGS ?= -race -count=1 -timeout 25m -parallel 3
# go test's full output is kept here; its package lines are repeated at the
# end, so the closing ok/FAIL lines show even after long test logs.
TEST_LOG := bin/go-test.log
BENCH_ARGS ?=

.PHONY: all deps demo-deps build demo test go-test lint bench chaos clean

all: build

deps:
	bash scripts/deps.sh --with-compose

build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/binarc ./cmd/binarc

demo-deps:
	bash scripts/deps.sh --demo-only

demo: demo-deps build
	bash scripts/demo.sh

# Lint runs first: it takes seconds, the tests take many minutes.
test: deps
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory go-test

go-test:
	@mkdir -p $(dir $(TEST_LOG))
	go version
	@rc=0; go test $(GO_TEST_FLAGS) ./... 2>&1 | tee $(TEST_LOG) || rc=$$?; \
	echo; echo "== go test summary (full output in $(TEST_LOG)) =="; \
	grep -E '^(ok|FAIL|--- FAIL|panic:)' $(TEST_LOG) || true; \
	if [[ $$rc == 0 ]]; then echo "== go test: PASS =="; else echo "== go test: FAIL (exit status $$rc) =="; fi; \
	exit $$rc

lint:
	@echo "gofmt -l ."; out="$$(gofmt -l .)"; \
	if [[ -n "$$out" ]]; then echo "gofmt: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	go vet ./...
	@if [[ ! -x "$(STATICCHECK)" ]]; then echo "lint: $(STATICCHECK) not found: run make deps" >&2; exit 1; fi
	$(STATICCHECK) ./...
	@if command -v docker-compose >/dev/null; then \
		echo "docker-compose config -q"; docker-compose config -q; \
	else \
		echo "lint: docker-compose not installed; skipping docker-compose config (make deps installs it)"; \
	fi
	@echo "lint: ok"

bench: deps
	go run ./bench $(BENCH_ARGS)

# A failing seed reruns the same schedule: make chaos SEED=<the report's seed>.
SEED ?= $(shell date +%s)
DURATION ?= 10m
CHAOS_DIR ?=
SEMISYNC ?=
BINLOG_FORMAT ?=
chaos: build
	go run ./chaos/cmd -seed $(SEED) -duration $(DURATION) -binarc bin/binarc $(if $(CHAOS_DIR),-dir $(CHAOS_DIR)) $(if $(SEMISYNC),-semi-sync) $(if $(BINLOG_FORMAT),-binlog-format $(BINLOG_FORMAT))

clean:
	rm -rf bin demo-data
