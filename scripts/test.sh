#!/usr/bin/env bash
# Build ue-wal and run every test (unit + PostgreSQL integration tests).
#
#   scripts/test.sh
#
# Environment:
#   UW_BUILD_DIR    build directory (default: build)
#   UW_CMAKE_ARGS   extra cmake configure arguments, e.g. -DUW_SANITIZE=ON
#   CC              C compiler (read by cmake on the first configure of a
#                   build directory)
#   UW_JOBS         parallel build jobs (default 2)
#   UW_TEST_JOBS    tests run side by side (default UW_JOBS); an integration
#                   test keeps a core about half busy (it waits on PostgreSQL
#                   and its own polls), so CI runs twice as many as cores
#   UW_CTEST_ARGS   extra ctest arguments, e.g. "-R it.fetch_errors"
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${UW_BUILD_DIR:-build}
JOBS=${UW_JOBS:-2}
TEST_JOBS=${UW_TEST_JOBS:-$JOBS}
read -r -a cmake_args <<<"${UW_CMAKE_ARGS:-}"
read -r -a ctest_args <<<"${UW_CTEST_ARGS:-}"

bash scripts/setup-deps.sh
# Loopback object-storage servers (s3rver, Azurite) from the npm registry,
# cached under /var/tmp/ue-wal-npm, so the download stays out of test time.
if [[ "${UW_SKIP_SETUP:-0}" != 1 ]]; then
    bash tests/objstore.sh install
fi

# A build directory configured with another compiler cannot be switched in
# place: start it afresh.
if [[ -n "${CC:-}" && -f "$BUILD/CMakeCache.txt" ]]; then
    cached=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
    wanted=$(command -v "$CC" || echo "$CC")
    if [[ -n "$cached" && "$(readlink -f "$cached")" != "$(readlink -f "$wanted")" ]]; then
        echo "test.sh: $BUILD was configured with $cached, CC=$CC: reconfiguring from scratch"
        rm -rf "$BUILD"
    fi
fi

t0=$SECONDS
cmake -S . -B "$BUILD" "${cmake_args[@]}"
cmake --build "$BUILD" -j"$JOBS"
echo "test.sh: build took $((SECONDS - t0)) s"

t0=$SECONDS
ctest --test-dir "$BUILD" --output-on-failure -j"$TEST_JOBS" "${ctest_args[@]}"
echo "test.sh: tests took $((SECONDS - t0)) s"
