#!/usr/bin/env bash
# bench/setup.sh: what the benchmarks need beyond scripts/setup-deps.sh
# (Debian 12, as root): pgBackRest, the tool they compare against. Kept out
# of setup-deps.sh so that CI machines never install it.
set -euo pipefail
"$(dirname "$0")/../scripts/setup-deps.sh"
if ! command -v pgbackrest >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends pgbackrest
fi
pgbackrest version
