#!/usr/bin/env bash
# Configures and builds kc-cluster-hub, kc-cluster-ctl and the unit tests into build/ (or
# KCHUB_BUILD_DIR): Release with debug info, warnings as errors, two parallel jobs. Extra arguments
# go to cmake configure, for example -DKCHUB_SANITIZE=address,undefined.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${KCHUB_BUILD_DIR:-$REPO_ROOT/build}

cmake -S "$REPO_ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKCHUB_WERROR=ON "$@"
cmake --build "$BUILD_DIR" --parallel 2
