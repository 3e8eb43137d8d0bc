#!/usr/bin/env bash
# Coverage report: builds with gcov instrumentation (cmake -DUW_COVERAGE=ON,
# Debug) in a build directory of its own, runs the unit and integration tests
# (ctest), and prints gcovr's line and function coverage of common/,
# archive/, restore/ and pitr/, per folder and in total.
#
#   scripts/coverage.sh                       # every test (as long as the suite)
#   UW_CTEST_ARGS="-E ^it\." scripts/coverage.sh   # unit tests only
#
# Environment:
#   UW_COV_BUILD_DIR  build directory (default /var/tmp/ue-wal-cov-<hash of
#                     this checkout>): the tests run binaries as the postgres
#                     user, which must be able to write their .gcda files next
#                     to the objects, so the directory must be reachable by it
#                     (a checkout under /root is not)
#   UW_PORT_START     first port of the integration tests (default 25400)
#   UW_JOBS           parallel build/test jobs (default 2)
#   UW_CTEST_ARGS     extra ctest arguments, e.g. "-R it.fetch_errors"
# Also writes the per-file table to <build>/coverage.txt and gcovr's JSON
# summary to <build>/coverage.json.  Exits non-zero when a test failed (the
# report is printed all the same).  Needs gcovr (scripts/setup-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD

command -v gcovr >/dev/null || { echo "coverage: gcovr not found (run scripts/setup-deps.sh)" >&2; exit 1; }
BUILD=${UW_COV_BUILD_DIR:-/var/tmp/ue-wal-cov-$(printf '%s' "$SRC" | sha256sum | cut -c1-8)}
JOBS=${UW_JOBS:-2}
read -r -a ctest_args <<<"${UW_CTEST_ARGS:-}"

t0=$SECONDS
CC=${CC:-gcc} cmake -S . -B "$BUILD" -DUW_COVERAGE=ON -DCMAKE_BUILD_TYPE=Debug \
    -DUW_PORT_START="${UW_PORT_START:-25400}" >/dev/null
cmake --build "$BUILD" -j"$JOBS" >/dev/null
echo "coverage: built in $BUILD ($((SECONDS - t0)) s)"

# Fresh counters. Binaries run as root and as the postgres user (archive and
# restore commands) all add to the same .gcda files: every object directory
# writable by both, and files created world-writable (umask 0; PostgreSQL's
# children create theirs with its own umask, as its user, which root can
# still write).
find "$BUILD" -name '*.gcda' -delete
find "$BUILD" -type d -exec chmod 0777 {} +
umask 000

t0=$SECONDS
rc=0
ctest --test-dir "$BUILD" --output-on-failure -j"$JOBS" "${ctest_args[@]}" || rc=$?
echo "coverage: tests took $((SECONDS - t0)) s (ctest exit $rc)"

filters=()
for d in common archive restore pitr; do filters+=(--filter "$SRC/$d/"); done
# --gcov-ignore-parse-errors: counters of a process killed mid-update (the
# tests SIGKILL pushers) can still be garbled; a warning, not a lost report.
# From the build directory: gcovr leaves gcov's intermediate files in its
# working directory when it cannot parse one.
(cd "$BUILD" && gcovr --root "$SRC" "${filters[@]}" --gcov-ignore-parse-errors \
    --txt "$BUILD/coverage.txt" --json-summary-pretty --json-summary "$BUILD/coverage.json" "$BUILD" >/dev/null)
python3 - "$BUILD/coverage.json" <<'PY'
import json, sys
files = json.load(open(sys.argv[1]))["files"]
groups = {}
for f in files:
    top = f["filename"].split("/")[0]
    key = "common/" + f["filename"].split("/")[1] if top == "common" else top
    for k in (key, "total"):
        g = groups.setdefault(k, [0, 0, 0, 0])
        g[0] += f["line_covered"]; g[1] += f["line_total"]
        g[2] += f["function_covered"]; g[3] += f["function_total"]
def pct(a, b):
    return "%5.1f%%" % (100.0 * a / b) if b else "   - "
print("%-16s %8s %15s %10s %11s" % ("", "lines", "", "functions", ""))
for k in sorted(groups, key=lambda k: (k == "total", k)):
    lc, lt, fc, ft = groups[k]
    print("%-16s %s %6d/%-6d  %s %5d/%-5d" % (k, pct(lc, lt), lc, lt, pct(fc, ft), fc, ft))
PY
echo "coverage: per-file table in $BUILD/coverage.txt"
exit "$rc"
