# The two commands that do everything on a fresh machine:
#   make demo   build atoll and start the playground cluster with the demo workload
#   make test   install what the tests need (as root) and run every test

GO      ?= go
BIN     := bin/atoll
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X atoll.dev/atoll/internal/version.Version=$(VERSION)

# Debian packages the tests use: ip(8) for the playground's namespaces and
# links, etcdctl to check that the real etcd client works against atoll,
# etcd-server as the benchmark's standalone peer; iptables for the pods'
# masquerading and ports, the standard CNI plugins for named networks, gpg
# for signatures made by GnuPG; systemd, booted as PID 1 of a container
# made from the host's own files, for the systemd service backend's tests
# (and its systemd-notify for both backends').
TEST_PACKAGES := iproute2 etcd-client etcd-server iptables containernetworking-plugins gpg systemd

.PHONY: build demo test test-deps lint bench clean

# Static and without cgo: one file that runs on any Linux machine, and one
# whose read-only pages the daemon may release after start-up.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/atoll

demo: build
	./scripts/demo.sh $(BIN)

test-deps:
	@if [ "$$(id -u)" = 0 ]; then \
		missing=""; \
		for p in $(TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		fi; \
	else \
		echo "not root: skipping package installs; tests that need root will skip"; \
	fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

test: test-deps lint
	$(GO) test -count=1 -timeout 40m ./...

bench: build
	go run ./bench -atoll $(BIN)

clean:
	rm -rf bin
