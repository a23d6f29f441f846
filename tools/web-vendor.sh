#!/usr/bin/env bash
# `make web-vendor`: copy onnxruntime-web's WebAssembly build, at the pinned version, into the page's
# vendor/ folder, from the npm package (`npm pack`: no install, no node_modules). Every file is checked
# against vendor/SHA256SUMS (onnxruntime-web is MIT-licensed, by Microsoft), so the page never runs other bytes than the ones pinned there.
# Usage: tools/web-vendor.sh VERSION VENDOR_DIR
set -euo pipefail
version="$1"
vendor="$(cd "$2" && pwd)"
files=(ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)
if (cd "$vendor" && sha256sum --check --quiet --strict SHA256SUMS) >/dev/null 2>&1; then
    exit 0  # already there, and the pinned bytes
fi
command -v npm >/dev/null || { echo "web-vendor: npm is needed to fetch onnxruntime-web $version" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-web@$version" >/dev/null && tar xzf "onnxruntime-web-$version.tgz")
for f in "${files[@]}"; do
    cp "$tmp/package/dist/$f" "$tmp/$f"
done
(cd "$tmp" && sha256sum --check --quiet --strict "$vendor/SHA256SUMS") || {
    echo "web-vendor: onnxruntime-web $version does not match $vendor/SHA256SUMS" >&2; exit 2; }
for f in "${files[@]}"; do
    mv "$tmp/$f" "$vendor/$f"
done
echo "web-vendor: onnxruntime-web $version in $vendor"
