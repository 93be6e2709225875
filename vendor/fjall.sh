#!/bin/sh
# The vendored fjall is the pristine fjall 3.1.13 crate from crates.io plus
# vendor/fjall.patch (why: docs/fjall-patch.md).
#
#   vendor/fjall.sh check    vendor/fjall is exactly pristine + patch (default)
#   vendor/fjall.sh apply    re-create vendor/fjall from pristine + patch
#   vendor/fjall.sh refresh  write vendor/fjall.patch from an edited vendor/fjall
#
# The pristine crate comes through cargo itself: `cargo fetch` of a throwaway
# crate that depends on exactly this version (outside the workspace, so the
# [patch.crates-io] does not apply), then the .crate file from cargo's cache.
set -eu
VERSION=3.1.13
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/fetch/src"
printf '[package]\nname = "fjall-fetch"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nfjall = "=%s"\n' \
  "$VERSION" > "$tmp/fetch/Cargo.toml"
: > "$tmp/fetch/src/lib.rs"
cargo fetch --quiet --manifest-path "$tmp/fetch/Cargo.toml"
crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"fjall-$VERSION.crate" | head -n 1)
mkdir "$tmp/x"
tar xzf "$crate" -C "$tmp/x"
# What cargo adds to a published crate and the vendored copy does not keep.
mv "$tmp/x/fjall-$VERSION" "$tmp/a"
rm -f "$tmp/a/.cargo_vcs_info.json" "$tmp/a/Cargo.lock" "$tmp/a/Cargo.toml.orig"

case "${1:-check}" in
  refresh)
    cp -r "$here/fjall" "$tmp/b"
    (cd "$tmp" && diff -ruN a b | sed -E 's#^(\+\+\+|---) ([ab]/[^\t]*)\t.*#\1 \2#') > "$here/fjall.patch" || true
    echo "vendor/fjall.patch written ($(grep -c '^diff ' "$here/fjall.patch") files)"
    ;;
  check | apply)
    (cd "$tmp/a" && patch --quiet -p1 < "$here/fjall.patch")
    if [ "${1:-check}" = apply ]; then
      rm -rf "$here/fjall"
      cp -r "$tmp/a" "$here/fjall"
      echo "vendor/fjall re-created: fjall $VERSION + vendor/fjall.patch"
    elif diff -r "$tmp/a" "$here/fjall" > "$tmp/diff"; then
      echo "vendor/fjall is fjall $VERSION + vendor/fjall.patch"
    else
      cat "$tmp/diff" >&2
      echo "vendor/fjall differs from fjall $VERSION + vendor/fjall.patch: run vendor/fjall.sh refresh" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: vendor/fjall.sh [check|apply|refresh]" >&2
    exit 2
    ;;
esac
