#!/usr/bin/env bash
# Cheap gates, run first by .ci/run (seconds, no build):
#   - shellcheck over every tracked shell script (*.sh, .ci/run and the
#     package's maintainer scripts packaging/debian/p*), with the
#     settings of .shellcheckrc;
#   - clang-format --dry-run -Werror over every tracked .c/.h file (the
#     checked-in .clang-format; fix with `clang-format -i FILE`).
#
#   scripts/lint.sh
#
# Needs shellcheck and clang-format (scripts/setup-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in shellcheck clang-format; do
    command -v "$tool" >/dev/null || {
        echo "lint: $tool not found (run scripts/setup-deps.sh)" >&2
        exit 1
    }
done

# The tracked files when this is a git checkout, else what is on disk.
files() { # files PATTERN...
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -- "$@"
    else
        local p
        for p in "$@"; do find . -path ./build\* -prune -o -path "./$p" -type f -print; done |
            sed 's|^\./||' | sort -u
    fi
}

rc=0
mapfile -t scripts < <(files '*.sh' '.ci/run' 'packaging/debian/p*inst' 'packaging/debian/p*rm')
if shellcheck "${scripts[@]}"; then
    echo "lint: shellcheck: ${#scripts[@]} scripts clean"
else
    echo "lint: shellcheck found problems (above)" >&2
    rc=1
fi

mapfile -t sources < <(files '*.c' '*.h')
if clang-format --dry-run -Werror "${sources[@]}"; then
    echo "lint: clang-format: ${#sources[@]} files formatted ($(clang-format --version | grep -o 'version [0-9.]*'))"
else
    echo "lint: clang-format: the files above differ from .clang-format (fix: clang-format -i FILE)" >&2
    rc=1
fi
exit "$rc"
