#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and UBSan
# in their own build directory, and run each for a bounded time, starting from
# the checked-in seeds (tests/fuzz/corpus/<target>/, which also hold the
# reproducers of every bug found so far). Fails on any crash, hang (-timeout),
# leak, out-of-memory or sanitizer report; the input that caused it is left in
# $FUZZ_OUT/<target>/ (reproduce with: build-fuzz/fuzz_<target> FILE).
#
#   scripts/fuzz.sh                          # every target, FUZZ_SECONDS each (CI)
#   FUZZ_SECONDS=600 scripts/fuzz.sh manifest object   # longer, some targets
#
# Environment:
#   FUZZ_SECONDS     time per target (default 30)
#   FUZZ_JOBS        targets run side by side (default 2)
#   FUZZ_BUILD_DIR   build directory (default build-fuzz)
#   FUZZ_OUT         new corpus entries and crash artifacts (default
#                    $FUZZ_BUILD_DIR/fuzz-out; new corpus entries are never
#                    written into the checked-in seeds)
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${FUZZ_SECONDS:-30}
JOBS=${FUZZ_JOBS:-2}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
OUT=${FUZZ_OUT:-$BUILD/fuzz-out}

# Longest input per target: a little more than the largest real file of its
# kind that matters (a WAL seed holds 3 pages of 8 KiB).
declare -A MAX_LEN=(
    [config]=4096 [stanza_info]=2048 [manifest]=8192 [object]=16384 [object_enc]=16384
    [wal]=32768 [tl_history]=1024 [http_headers]=4096 [s3_xml]=8192 [azure_xml]=8192
)

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=()
    for f in tests/fuzz/fuzz_*.c; do
        n=$(basename "$f" .c)
        targets+=("${n#fuzz_}")
    done
fi
for t in "${targets[@]}"; do
    if [[ ! -f tests/fuzz/fuzz_$t.c ]]; then
        echo "fuzz.sh: unknown target '$t' (tests/fuzz/fuzz_$t.c)" >&2
        exit 2
    fi
done

t0=$SECONDS
CC=clang cmake -S . -B "$BUILD" -DUW_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target fuzz >/dev/null
echo "fuzz.sh: built ${#targets[@]} targets in $((SECONDS - t0)) s; $SECONDS_EACH s each, $JOBS at a time"

# Sanitizer reports end the process with an error: libFuzzer reports them as a
# crash with the input that caused them.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_one() {
    local t=$1 dir
    dir=$OUT/$t
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/artifacts"
    local start=$SECONDS rc=0
    # The first corpus directory receives new inputs: a scratch one, with the
    # checked-in seeds read from the second.
    "$BUILD/fuzz_$t" -max_total_time="$SECONDS_EACH" -max_len="${MAX_LEN[$t]:-4096}" \
        -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
        -artifact_prefix="$dir/artifacts/" "$dir/corpus" "tests/fuzz/corpus/$t" \
        >"$dir/log" 2>&1 || rc=$?
    echo "$rc $((SECONDS - start))" >"$dir/result"
}

running=0
for t in "${targets[@]}"; do
    if ((running >= JOBS)); then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait || true

fail=0
total_execs=0
printf '%-14s %12s %8s  %s\n' target executions seconds result
for t in "${targets[@]}"; do
    dir=$OUT/$t
    read -r rc secs <"$dir/result"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    execs=${execs:-0}
    total_execs=$((total_execs + execs))
    artifacts=$(find "$dir/artifacts" -type f | head -5)
    if [[ $rc -ne 0 || -n $artifacts ]]; then
        fail=1
        printf '%-14s %12s %8s  FAILED (exit %s)\n' "$t" "$execs" "$secs" "$rc"
        grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|==ERROR' \
            "$dir/log" | sed 's/^/    /' || true
        for a in $artifacts; do
            echo "    input: $a (reproduce: $BUILD/fuzz_$t $a)"
        done
        echo "    log: $dir/log"
    else
        printf '%-14s %12s %8s  ok\n' "$t" "$execs" "$secs"
    fi
done
echo "fuzz.sh: $total_execs executions in $((SECONDS - t0)) s (build included)"
exit $fail
