# berth: build, demo and tests. Everything a fresh Debian machine (as root) needs is installed by `make deps`.

CARGO_TARGET := x86_64-unknown-linux-gnu
BIN := target/release/berth
BUILT := target/$(CARGO_TARGET)/release/berth
DEMO_DIR ?= /tmp/berth-demo
APT_PACKAGES := busybox-static golang-github-containers-common containerd runc containernetworking-plugins podman conmon \
	util-linux protobuf-compiler uidmap

.PHONY: all build deps demo test test-cgv2 test-systemd test-integration unit-test lint bench clean

all: build

build:
	cargo build --release
	mkdir -p target/release
	cp $(BUILT) $(BIN)
	@ldd $(BIN) 2>&1 | grep -q 'not a dynamic executable\|statically linked' || { echo "berth is not static"; exit 1; }
	@[ "$$(od -An -tx1 -j16 -N2 $(BIN) | tr -d ' ')" = 0200 ] || { echo "berth is not a plain (ET_EXEC, non-PIE) static executable"; exit 1; }
	@size=$$(stat -c %s $(BIN)); [ $$size -lt 4194304 ] || { echo "berth is $$size bytes: over the 4 MiB promise"; exit 1; }

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# Builds berth, assembles a busybox bundle and runs a container from it.
demo: deps build
	integration/make-bundle.sh $(DEMO_DIR) sh -c 'echo "hello from $$(hostname), pid $$$$ in its own pid namespace"; id'
	$(BIN) --root $(DEMO_DIR)/state run --bundle $(DEMO_DIR) berth-demo-$$$$

unit-test:
	cargo test --release --bin berth

lint:
	scripts/check-layers.sh
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings

# The whole suite: unit tests, then real containers (tests/).
test: deps build test-cgv2 test-systemd test-integration
	rm -f target/$(CARGO_TARGET)/tmp/skipped.txt
	cargo test --release -- --test-threads=2
	@if [ -s target/$(CARGO_TARGET)/tmp/skipped.txt ]; then echo "Tests that could not run on this host:"; cat target/$(CARGO_TARGET)/tmp/skipped.txt; fi

# The cgroup tests again on a pure cgroup v2 host: a throw-away QEMU VM (integration/cgv2/run-in-vm.sh installs
# qemu-system-x86, cpio and xz-utils with apt-get when they are missing, and fetches a Debian kernel).
test-cgv2: deps
	integration/cgv2/test.sh

# The systemd cgroup driver (--systemd-cgroup) against a real systemd: a throw-away QEMU VM with systemd as PID 1
# (integration/systemd/run-in-vm.sh installs qemu-system-x86, mmdebstrap, e2fsprogs, cpio, xz-utils with apt-get
# when missing, builds a Debian bookworm image once), on cgroup v2 and on a hybrid boot.
test-systemd: deps build
	integration/systemd/test.sh

# Real clients driving berth: containerd's ctr and runc shim (private containerd, locally built image), containerd's
# CRI plugin driven as a kubelet drives it (integration/cri/, a Rust CRI client in its own crate), podman, and
# rootless podman as a throw-away user with subordinate ids (uidmap).
test-integration: deps build
	BERTH=$(CURDIR)/$(BIN) integration/containerd.sh
	BERTH=$(CURDIR)/$(BIN) integration/cri.sh
	BERTH=$(CURDIR)/$(BIN) integration/podman.sh
	BERTH=$(CURDIR)/$(BIN) integration/podman-rootless.sh

# berth, runc and crun side by side (ratios, not a test).
bench: deps build
	bench/compare.sh -n $${RUNS:-100} -o bench/RESULTS.txt
	@# Exec probes: median ExecSync through containerd's CRI, berth vs runc handler (integration/cri/src/bench.rs).
	BERTH=$(CURDIR)/$(BIN) BENCH_REPORT=$(CURDIR)/bench/RESULTS-exec-probes.txt integration/cri.sh bench $${EXEC_RUNS:-30}

clean:
	cargo clean
