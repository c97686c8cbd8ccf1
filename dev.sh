#!/usr/bin/env bash
# The two commands a newcomer needs:
#   ./dev.sh bench  the main job: build, start versitygw (real S3) and nginx (static files) on
#                   127.0.0.1, seed them, fetch with pyfasts3 and every peer (boto3, s3fs,
#                   obstore, curl), check every byte, write bench/RESULTS.md + plots
#   ./dev.sh test   build and run every test, plus the benchmark's quick correctness mode
#                   (this is what .ci/run calls)
# and a short one: ./dev.sh demo (pyfasts3 vs boto3 side by side, about a minute).
# All install what they need first (pip packages, cbindgen, versitygw, nginx, the Rust build).
set -euo pipefail
cd "$(dirname "$0")"

CBINDGEN_VERSION=0.29.4
VERSITYGW_VERSION=v1.7.0
PYTHON=${PYTHON:-python3}
ARCH=$(uname -m)
# The library is built once, by cargo-zigbuild against glibc 2.17 (manylinux2014): the tests,
# the benchmark and the wheel all use that one build, and `cargo test` names the same target
# (and linker) so that it reuses the same compiled dependencies.
ZIG_TARGET="$ARCH-unknown-linux-gnu.2.17"
# macOS is compile-checked here (the Linux-only code sits behind cfg gates).
MACOS_CHECK_TARGET=aarch64-apple-darwin
RUST_TARGETS="$MACOS_CHECK_TARGET"
export PIP_ROOT_USER_ACTION=ignore
# Outside the clone, so fresh clones on the same machine reuse the dependency build.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/pyfasts3-target}
# pip's scripts directory too: cargo-zigbuild comes from PyPI (requirements-dev.txt).
PY_SCRIPTS=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH="$HOME/.cargo/bin:$PY_SCRIPTS:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

install_tools() {
    step "Python packages (bench/requirements.txt: the test pins plus the benchmark peers)"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
    "$PYTHON" -m pip check

    if ! cargo clippy --version >/dev/null 2>&1; then
        step "clippy (rustup component)"
        rustup component add clippy
    fi

    for target in $RUST_TARGETS; do
        if ! rustup target list --installed | grep -qx "$target"; then
            step "Rust standard library for $target (rustup target)"
            rustup target add "$target"
        fi
    done

    if [[ "$(cbindgen --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]]; then
        step "cbindgen $CBINDGEN_VERSION"
        cargo install cbindgen --version "$CBINDGEN_VERSION" --locked
    fi

    if ! command -v nginx >/dev/null && [[ -x /usr/sbin/nginx ]]; then
        export PATH="$PATH:/usr/sbin"
    fi
    if ! command -v nginx >/dev/null; then
        step "nginx (Debian package; the benchmark's client-bound static-file lane)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx
    fi

    if ! go version -m "$(command -v versitygw || echo /nonexistent)" 2>/dev/null \
            | grep -q "mod.*github.com/versity/versitygw.*$VERSITYGW_VERSION"; then
        step "versitygw $VERSITYGW_VERSION (S3 server that verifies SigV4)"
        go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
    fi
}

build() {
    step "check include/fasts3.h is what cbindgen generates"
    "$PYTHON" build.py --check-header
    step "build libfasts3 (release, cargo-zigbuild for glibc 2.17: what the wheel ships) into pyfasts3/"
    "$PYTHON" build.py --no-header --manylinux
}

run_tests() {
    # --workspace everywhere: both crates (fasts3, the C ABI; fasts3-engine) are checked and
    # tested, whatever the workspace's default members say.
    step "clippy on both crates, warnings as errors (workspace lints in Cargo.toml: SAFETY comments, # Safety sections)"
    cargo clippy --workspace --all-targets -- -D warnings
    step "Rust tests of both crates (the same target and linker as the library: no second build)"
    cargo-zigbuild test --release --workspace --lib --target "$ZIG_TARGET"
    step "macOS: both crates compile for $MACOS_CHECK_TARGET (cargo check, zig as the C compiler)"
    cargo-zigbuild check --workspace --lib --target "$MACOS_CHECK_TARGET"
    step "wheel: build.py --wheel packages the library above; auditwheel must say manylinux2014"
    rm -f dist/pyfasts3-*.whl
    "$PYTHON" build.py --wheel
    PYFASTS3_WHEEL=$(ls dist/pyfasts3-*-py3-none-*manylinux_2_17_"$ARCH"*.whl)
    export PYFASTS3_WHEEL  # tests/test_packaging.py installs it in a fresh venv without cargo
    step "pytest: Python API (moto + versitygw lanes), C ABI under AddressSanitizer, packaging"
    "$PYTHON" -m pytest -q tests
    step "benchmark harness, quick mode (correctness of every client, not speed)"
    "$PYTHON" bench/run.py --quick
}

case "${1:-}" in
    demo)
        install_tools
        build
        step "demo"
        "$PYTHON" bench/demo.py "${@:2}"
        ;;
    bench)
        install_tools
        build
        step "benchmark"
        "$PYTHON" bench/run.py "${@:2}"
        ;;
    test)
        install_tools
        build
        run_tests
        ;;
    *)
        echo "usage: ./dev.sh bench [--quick] | test | demo" >&2
        exit 2
        ;;
esac
