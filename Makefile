# Flotilla: `make run` starts a one-node fleet, `make test` runs every test.
GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
WASM_ENV := GOOS=wasip1 GOARCH=wasm
EXAMPLES := examples/hello/hello-v1.wasm examples/hello/hello-v2.wasm examples/batch/batch.wasm \
            examples/frontend/frontend.wasm examples/backend/backend.wasm

.PHONY: build run test bench examples cross vet clean

build:
	CGO_ENABLED=0 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/flotilla ./cmd/flotilla

# One process: embedded NATS, control plane and a local agent.
run: build examples
	$(BIN)/flotilla up

examples: $(EXAMPLES)

examples/hello/hello-v1.wasm: $(wildcard examples/hello/*.go wasmrt/guest/*.go)
	$(WASM_ENV) $(GO) build -o $@ ./examples/hello
examples/hello/hello-v2.wasm: $(wildcard examples/hello/*.go wasmrt/guest/*.go)
	$(WASM_ENV) $(GO) build -ldflags '-X main.version=2' -o $@ ./examples/hello
examples/batch/batch.wasm: $(wildcard examples/batch/*.go)
	$(WASM_ENV) $(GO) build -o $@ ./examples/batch
examples/frontend/frontend.wasm: $(wildcard examples/frontend/*.go wasmrt/guest/*.go wasmrt/guest/flotillahttp/*.go)
	$(WASM_ENV) $(GO) build -o $@ ./examples/frontend
examples/backend/backend.wasm: $(wildcard examples/backend/*.go wasmrt/guest/*.go)
	$(WASM_ENV) $(GO) build -o $@ ./examples/backend

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1)
	$(GO) vet ./...

test: vet examples
	$(GO) test -count=1 -timeout 20m ./...

# Benchmarks only; figures go to docs/benchmarks.md.
bench: examples
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

# Static binaries for Raspberry Pi and other ARM boards.
cross:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/flotilla-linux-arm64 ./cmd/flotilla
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/flotilla-linux-armv7 ./cmd/flotilla

clean:
	rm -rf $(BIN) $(EXAMPLES)
