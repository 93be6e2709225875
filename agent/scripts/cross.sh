#!/usr/bin/env bash
# Cross-target check and static build of statusmonitor-agent, for `make check`
# and `make dist`. Run from the workspace root.
#
#   agent/scripts/cross.sh check   # cargo check for Windows and macOS
#   agent/scripts/cross.sh dist    # static x86_64 Linux binary (musl), stripped
#
# One-time setup (Debian/Ubuntu):
#   rustup target add x86_64-pc-windows-gnu x86_64-apple-darwin x86_64-unknown-linux-musl
#   apt-get install -y gcc-mingw-w64-x86-64 clang musl-tools
#
# Why the C tools: rustls uses ring, whose build script compiles C even for
# `cargo check`. Windows needs mingw-w64. For macOS there is no Apple SDK here,
# so clang gets freestanding headers (its own + musl's) and a stub of Apple's
# TargetConditionals.h: enough to compile ring's C, so the agent's Rust code is
# fully type-checked for macOS. Linking a macOS binary needs a real SDK
# (osxcross or a Mac). The musl build uses musl-gcc from musl-tools.
set -euo pipefail
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target-agent}"

check() {
    cargo check -p agent --target x86_64-pc-windows-gnu

    stub=$(mktemp -d)
    trap 'rm -rf "$stub"' EXIT
    cat >"$stub/TargetConditionals.h" <<'H'
/* Stub of Apple's SDK header: lets ring's C compile for `cargo check` only. */
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_SIMULATOR 0
H
    CC_x86_64_apple_darwin=clang \
    CFLAGS_x86_64_apple_darwin="-nostdinc -isystem $(clang -print-resource-dir)/include -isystem /usr/include/x86_64-linux-musl -I$stub" \
        cargo check -p agent --target x86_64-apple-darwin
}

dist() {
    cargo build --release -p agent --target x86_64-unknown-linux-musl
    out="$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/statusmonitor-agent"
    mkdir -p dist
    strip -o dist/statusmonitor-agent-x86_64-linux "$out"
    ls -l dist/statusmonitor-agent-x86_64-linux
}

case "${1:-check}" in
    check) check ;;
    dist) dist ;;
    *) echo "usage: $0 check|dist" >&2; exit 2 ;;
esac
