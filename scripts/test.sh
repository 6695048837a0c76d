#!/usr/bin/env bash
# Runs the test suites of an existing build (scripts/setup.sh builds it).
#   scripts/test.sh            # fast tests (the default label)
#   scripts/test.sh slow       # slow tests
#   MF_BUILD_DIR=build-asan scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${MF_BUILD_DIR:-build}
LABEL=${1:-fast}
export MF_NO_PROGRESS=1
ctest --test-dir "$BUILD_DIR" -L "$LABEL" --output-on-failure -j "$(nproc)" --timeout 900
