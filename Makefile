# StatusMonitor: every command lives here; CI runs the same targets.
# On a fresh machine `make run` and `make test` install what they need.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CARGO        ?= cargo
# The wasm-bindgen CLI must match the wasm-bindgen crate in Cargo.lock exactly.
WBG_VERSION  := $(shell awk '/^name = "wasm-bindgen"$$/ {getline; gsub(/"/, "", $$3); print $$3}' Cargo.lock)
TOOLS        ?= $(HOME)/.cache/statusmonitor/tools
WBG          := $(TOOLS)/wasm-bindgen-$(WBG_VERSION)/bin/wasm-bindgen
WASM         := target/wasm32-unknown-unknown/wasm-release/ui.wasm
PKG_STAGE    := target/pkg-stage
PKG          := assets/pkg
LISTEN       ?= 0.0.0.0:8420
DATA_DIR     ?= ./data
FUZZ_SECONDS ?= 120
# The OpenAPI validator the server's tests run (`openapi_document_passes_a_validator`).
OSV_VERSION  := 0.9.0
OSV          := $(TOOLS)/openapi-spec-validator-$(OSV_VERSION)
SMTPD_VERSION := 1.4.6
SMTPD        := $(TOOLS)/aiosmtpd-$(SMTPD_VERSION)
SOAK_MINUTES ?= 30

.PHONY: help setup setup-openapi setup-smtp setup-browser setup-ecosystem setup-systemd setup-disktools setup-engine setup-cross setup-agents setup-shellcheck agents bundle build run test lint e2e check bench soak fuzz setup-fuzz dist clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install the build tools: wasm target, wasm-bindgen CLI at the lockfile's version
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@if [ ! -x "$(WBG)" ]; then \
	  echo "installing wasm-bindgen-cli $(WBG_VERSION) into $(TOOLS) (once, about 2 minutes)"; \
	  $(CARGO) install --quiet --locked wasm-bindgen-cli --version $(WBG_VERSION) --root $(TOOLS)/wasm-bindgen-$(WBG_VERSION) \
	  || $(CARGO) install --quiet wasm-bindgen-cli --version $(WBG_VERSION) --root $(TOOLS)/wasm-bindgen-$(WBG_VERSION); \
	fi

setup-browser: ## Install Chromium and Node packages for the browser tests
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@cd e2e && { [ -d node_modules/playwright-core ] && [ -d node_modules/axe-core ] || npm ci --no-audit --no-fund --loglevel=error; }

setup-openapi: ## openapi-spec-validator (PyPI) in a venv in the tools cache, for the OpenAPI test
	@[ -x "$(OSV)/bin/openapi-spec-validator" ] || { \
	  echo "installing openapi-spec-validator $(OSV_VERSION) into $(OSV)"; \
	  python3 -m venv "$(OSV)" && "$(OSV)/bin/pip" install --quiet --disable-pip-version-check "openapi-spec-validator==$(OSV_VERSION)"; }

setup-smtp: ## aiosmtpd (PyPI) in a venv in the tools cache: the real SMTP server of the email-channel test
	@[ -x "$(SMTPD)/bin/python" ] && "$(SMTPD)/bin/python" -c 'import aiosmtpd' 2>/dev/null || { \
	  echo "installing aiosmtpd $(SMTPD_VERSION) into $(SMTPD)"; \
	  python3 -m venv "$(SMTPD)" && "$(SMTPD)/bin/pip" install --quiet --disable-pip-version-check "aiosmtpd==$(SMTPD_VERSION)"; }

setup-ecosystem: ## Install VictoriaMetrics and promtool (Debian packages) for the integration tests
	@[ -x /usr/bin/victoria-metrics ] && [ -x /usr/bin/promtool ] \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends victoria-metrics prometheus >/dev/null; }

bundle: setup ## Build the client bundle (wasm + JS) into assets/pkg
	$(CARGO) rustc -p ui --lib --crate-type cdylib --target wasm32-unknown-unknown \
	  --features hydrate --profile wasm-release
	@rm -rf $(PKG_STAGE) && mkdir -p $(PKG_STAGE)
	$(WBG) --target web --no-typescript --remove-name-section --remove-producers-section --out-name ui --out-dir $(PKG_STAGE) $(WASM)
	@# Copy only what changed (so the server does not relink for nothing), drop what is gone.
	@mkdir -p $(PKG)
	@cd $(PKG_STAGE) && find . -type f | while read -r f; do \
	  cmp -s "$$f" "$(CURDIR)/$(PKG)/$$f" || { mkdir -p "$$(dirname "$(CURDIR)/$(PKG)/$$f")"; cp "$$f" "$(CURDIR)/$(PKG)/$$f"; }; done
	@cd $(PKG) && find . -type f | while read -r f; do [ -e "$(CURDIR)/$(PKG_STAGE)/$$f" ] || rm -f "$$f"; done
	@find $(PKG) -type d -empty -delete
	@ls -l $(PKG)/ui.js $(PKG)/ui_bg.wasm | awk '{print "  bundle:", $$5, "bytes", $$9}'

build: bundle agents ## Release build of the server (with the static agents it serves) and the agent
	$(CARGO) build --release -p server -p agent

setup-agents: ## C cross compilers (Debian) for the static agents; the Rust targets are added by `make agents`
	@{ command -v musl-gcc && command -v aarch64-linux-gnu-gcc; } >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null; } \
	  || echo "setup-agents: cannot install musl-tools and gcc-aarch64-linux-gnu; the server will carry fewer agents"
	@if rustup target list --installed | grep -qx armv7-unknown-linux-musleabihf && ! command -v arm-linux-gnueabihf-gcc >/dev/null; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-arm-linux-gnueabihf libc6-dev-armhf-cross >/dev/null \
	  || echo "setup-agents: cannot install gcc-arm-linux-gnueabihf; no armv7 agent"; fi

agents: setup-agents ## Static, stripped Linux agents (x86_64, aarch64, armv7 where the toolchain exists) into target/agents, which the server embeds; never fails
	CARGO_TARGET_DIR=target AGENTS_DIR=target/agents agent/scripts/cross.sh agents

run: build ## Build everything and start the server (data in ./data, port 8420)
	exec target/release/statusmonitor --listen $(LISTEN) --data-dir $(DATA_DIR)

setup-shellcheck: ## shellcheck (Debian), which the tests run on the agent installer (/install.sh)
	@command -v shellcheck >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; }

setup-systemd: ## systemd-analyze, which the tests use to verify the unit files
	@command -v systemd-analyze >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; }

setup-disktools: ## mkfs.ext4, mount and df, which the agent's disk test uses (as root) on a loop-mounted image
	@{ command -v mkfs.ext4 && command -v mount && command -v df; } >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends e2fsprogs mount coreutils >/dev/null; }

setup-engine: ## Podman (and runc, for nested containers) and a busybox image built locally, for the agent's real-engine test
	@{ command -v podman && command -v runc && test -x /bin/busybox; } >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc busybox-static >/dev/null; }
	@podman image exists localhost/statusmonitor-busybox:latest || { \
	  d=$$(mktemp -d) && mkdir -p $$d/bin && cp /bin/busybox $$d/bin/ && \
	  for t in sh sleep true; do ln -s busybox $$d/bin/$$t; done && \
	  tar -C $$d -cf $$d.tar . && podman import -q $$d.tar localhost/statusmonitor-busybox:latest >/dev/null \
	  || echo "setup-engine: podman cannot import an image here; the real-engine test will say it is skipped"; \
	  rm -rf $$d $$d.tar; }

test: bundle agents setup-browser setup-ecosystem setup-systemd setup-disktools setup-shellcheck setup-openapi setup-smtp setup-engine ## Run every test: unit, integration, end-to-end in Chromium
	@# cargo-nextest (on every machine of this kind; .config/nextest.toml): a
	@# hung test is killed and named; plain `cargo test` where it is missing.
	@if command -v cargo-nextest >/dev/null; then $(CARGO) nextest run --workspace; \
	  else $(CARGO) test --workspace; fi
	$(MAKE) --no-print-directory e2e

e2e: build setup-browser ## End-to-end tests in headless Chromium against the release binaries
	cd e2e && node --test --test-reporter=spec --test-concurrency=1 tests/

lint: bundle ## The house rules CI enforces: rustfmt, clippy -D warnings (native, all targets, and the wasm client)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p ui --target wasm32-unknown-unknown --features hydrate -- -D warnings

check: lint setup-cross ## lint, and the agent for Windows and macOS
	CARGO_TARGET_DIR=target agent/scripts/cross.sh check

setup-cross: ## Targets and C tools for the agent's cross builds (Windows, macOS check; static musl)
	@for t in x86_64-pc-windows-gnu x86_64-apple-darwin x86_64-unknown-linux-musl; do \
	  rustup target list --installed | grep -qx $$t || rustup target add $$t; done
	@command -v x86_64-w64-mingw32-gcc >/dev/null && command -v clang >/dev/null && command -v musl-gcc >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-mingw-w64-x86-64 clang musl-tools >/dev/null; }

bench: build ## Benchmarks; each prints its figures and method (STATUSMONITOR_BENCH_QUICK=1 for a short run)
	$(CARGO) bench -p storage --bench tsdb
	$(CARGO) bench -p server --bench http
	$(CARGO) bench -p server --bench startup
	$(CARGO) bench -p server --bench checks
	agent/bench/footprint.sh target/release/statusmonitor-agent

soak: build ## Soak run, SOAK_MINUTES (30): 1,000 agents, 20 viewers, 5 history clients, random SIGKILLs; checks nothing acked is lost
	SOAK_MINUTES=$(SOAK_MINUTES) $(CARGO) bench -p server --bench soak

setup-fuzz: ## A nightly toolchain and cargo-fuzz (into the tools cache), for `make fuzz`
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@[ -x "$(TOOLS)/cargo-fuzz/bin/cargo-fuzz" ] || $(CARGO) install --quiet --locked cargo-fuzz --root $(TOOLS)/cargo-fuzz

fuzz: setup-fuzz ## Fuzz the storage decoders (blocks and rows, catalog records) with libFuzzer, FUZZ_SECONDS (120) each
	cd storage && for t in chunk_decoder catalog_record; do \
	  PATH="$(TOOLS)/cargo-fuzz/bin:$$PATH" cargo +nightly fuzz run $$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536; done

dist: build setup-cross ## Release binaries, systemd units and the Dockerfile into dist/ (the agent also static, musl)
	@mkdir -p dist
	cp target/release/statusmonitor target/release/statusmonitor-agent dist/
	cp packaging/systemd/statusmonitor.service packaging/systemd/statusmonitor-agent.service Dockerfile dist/
	CARGO_TARGET_DIR=target agent/scripts/cross.sh dist
	@for f in target/agents/statusmonitor-agent-linux-*; do [ -e "$$f" ] && cp "$$f" dist/; done; true
	@ls -l dist

clean: ## Remove build output (not ./data)
	$(CARGO) clean
	rm -rf $(PKG) dist e2e/node_modules e2e/artifacts
