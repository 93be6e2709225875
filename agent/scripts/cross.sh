#!/usr/bin/env bash
# Cross-target check and static build of statusmonitor-agent, for `make check`
# and `make dist`. Run from the workspace root.
#
#   agent/scripts/cross.sh check   # cargo check for Windows and macOS
#   agent/scripts/cross.sh dist    # static x86_64 Linux binary (musl), stripped
#   agent/scripts/cross.sh agents  # static Linux agents the server embeds, into
#                                  # $AGENTS_DIR (target/agents); never fails
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

# The agents `statusmonitor` embeds and serves at /download/agent/linux-<arch>
# (server/build.rs picks up whatever is in $AGENTS_DIR). Static (musl) and
# stripped. A target whose Rust standard library or C cross compiler cannot
# be installed here is skipped with one line: the server then builds without
# it and answers 404 for it, saying how to build it.
#   x86_64   musl-gcc (Debian musl-tools) for ring's C; the host's cc links
#            (musl-gcc as linker would make a dynamically linked binary)
#   aarch64  aarch64-linux-gnu-gcc (Debian gcc-aarch64-linux-gnu) as C compiler
#            and linker; the Rust musl target brings its own libc and crt.
#   armv7    arm-linux-gnueabihf-gcc (gcc-arm-linux-gnueabihf), same way.
agents() {
    local dir="${AGENTS_DIR:-target/agents}"
    mkdir -p "$dir"
    local built=()
    for spec in \
        "x86_64 x86_64-unknown-linux-musl musl-gcc cc" \
        "aarch64 aarch64-unknown-linux-musl aarch64-linux-gnu-gcc aarch64-linux-gnu-gcc" \
        "armv7 armv7-unknown-linux-musleabihf arm-linux-gnueabihf-gcc arm-linux-gnueabihf-gcc"; do
        # shellcheck disable=SC2086 # four words
        set -- $spec
        local arch=$1 triple=$2 cc=$3 linker=$4
        local out="$dir/statusmonitor-agent-linux-$arch"
        if ! rustup target list --installed 2>/dev/null | grep -qx "$triple" \
            && ! timeout 120 rustup target add "$triple" >/dev/null 2>&1; then
            echo "agents: skipping linux-$arch: \`rustup target add $triple\` failed (no download here?); the server will not carry this agent"
            rm -f "$out"
            continue
        fi
        if ! command -v "$cc" >/dev/null; then
            echo "agents: skipping linux-$arch: no $cc (make setup-agents installs it from Debian)"
            rm -f "$out"
            continue
        fi
        local env_triple=${triple//-/_}
        local upper=${env_triple^^}
        if ! env "CC_$env_triple=$cc" "CARGO_TARGET_${upper}_LINKER=$linker" \
            CARGO_PROFILE_RELEASE_STRIP=symbols \
            cargo build --release --quiet -p agent --bin statusmonitor-agent --target "$triple"; then
            echo "agents: skipping linux-$arch: the build failed (see above); the server will not carry this agent"
            rm -f "$out"
            continue
        fi
        cp "$CARGO_TARGET_DIR/$triple/release/statusmonitor-agent" "$out.tmp"
        mv "$out.tmp" "$out"
        built+=("linux-$arch")
    done
    if [ ${#built[@]} -eq 0 ]; then
        echo "agents: none built; the server will answer 404 at /download/agent/ (see above)"
    else
        ls -l "$dir"
    fi
}

case "${1:-check}" in
    check) check ;;
    dist) dist ;;
    agents) agents ;;
    *) echo "usage: $0 check|dist|agents" >&2; exit 2 ;;
esac
