#!/usr/bin/env bash
# The two commands a newcomer needs:
#   ./dev.sh demo   build, start a local S3 server on 127.0.0.1, upload sample objects and
#                   fetch them with pyfasts3 and with boto3, printing sizes and MB/s
#   ./dev.sh test   build and run every test (this is what .ci/run calls)
# Both install what they need first (pip packages, cbindgen, versitygw, the Rust build).
set -euo pipefail
cd "$(dirname "$0")"

CBINDGEN_VERSION=0.29.4
VERSITYGW_VERSION=v1.7.0
PYTHON=${PYTHON:-python3}
export PIP_ROOT_USER_ACTION=ignore
# Outside the clone, so fresh clones on the same machine reuse the dependency build.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/pyfasts3-target}
export PATH="$HOME/.cargo/bin:$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

install_tools() {
    step "Python packages (requirements-dev.txt)"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

    if [[ "$(cbindgen --version 2>/dev/null)" != "cbindgen $CBINDGEN_VERSION" ]]; then
        step "cbindgen $CBINDGEN_VERSION"
        cargo install cbindgen --version "$CBINDGEN_VERSION" --locked
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
    step "build libfasts3 (release) into pyfasts3/"
    "$PYTHON" build.py --no-header
}

run_tests() {
    step "Rust engine tests"
    cargo test --release --lib
    step "pytest: Python API (moto + versitygw lanes), C ABI under AddressSanitizer"
    "$PYTHON" -m pytest -q tests
}

case "${1:-}" in
    demo)
        install_tools
        build
        step "demo"
        "$PYTHON" bench/demo.py "${@:2}"
        ;;
    test)
        install_tools
        build
        run_tests
        ;;
    *)
        echo "usage: ./dev.sh demo | test" >&2
        exit 2
        ;;
esac
