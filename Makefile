# yubin — see README.md.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN      := bin/yubin
FUZZTIME ?= 5s

.PHONY: all build run test test-deps vet fuzz bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/yubin

# Serves the single-node example: SMTP on 127.0.0.1:2525, state in ./run/single.
run: build
	mkdir -p run/single
	MAIL_CONFIG=$(CURDIR)/examples/single $(BIN) serve

test-deps:
	./scripts/test-deps.sh

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^third_party/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Every test: unit, table, integration with real peers, and short fuzz runs.
test: test-deps vet build
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz

fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

bench: build test-deps
	./scripts/bench.sh

clean:
	rm -rf bin run
