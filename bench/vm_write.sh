#!/usr/bin/env bash
# bench/vm_write.sh: does writing new files cost more CPU when the machine's
# free memory has been free for a while? On a VM whose host takes back free
# guest memory (free page reporting, balloon or DAMON reclaim), the first
# write into each such page is a host fault, paid inside the kernel's copy
# into the page cache. This is what made the same restore, of either tool,
# run at half speed after `sync` and at full speed right after drop_caches
# (README: "Second idle run on the Xeon"). No ue-wal code runs here.
#
#   bench/vm_write.sh [MIB] [ROUNDS]     # default 1600 MiB, 2 rounds; root
#
# Per round and case, the same write (MIB as 8 MiB files into a new
# directory under /var/tmp, then syncfs) after:
#   idle       sync; sleep 15
#   dropped    sync; echo 1 > /proc/sys/vm/drop_caches   (memory freed just now)
#   dropped15  the same, then sleep 15
#   touched    sync; sleep 15; 3 GiB of anonymous memory touched and freed
# Prints wall and CPU seconds of each write, and what the kernel says of
# free page reporting.
set -euo pipefail
MIB=${1:-1600}
ROUNDS=${2:-2}
[[ $(id -u) -eq 0 ]] || { echo "vm_write: run as root (drop_caches)" >&2; exit 2; }
W=$(mktemp -d /var/tmp/vm_write.XXXXXX)
trap 'rm -rf "$W"' EXIT
write() {
    python3 - "$W/d" "$MIB" <<'PY'
import os, resource, sys, time
d, mib = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
buf = os.urandom(1 << 20) * 8
t0, r0 = time.time(), resource.getrusage(resource.RUSAGE_SELF)
for i in range(mib // 8):
    fd = os.open(f"{d}/f{i}", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, buf)
    os.close(fd)
fd = os.open(d, os.O_RDONLY)
os.syncfs(fd)
os.close(fd)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(f"wall {time.time() - t0:.2f} s, user {r1.ru_utime - r0.ru_utime:.2f} s, "
      f"system {r1.ru_stime - r0.ru_stime:.2f} s")
PY
}
touch_memory() {
    python3 -c 'import mmap
n = 3 << 30
m = mmap.mmap(-1, n)
for off in range(0, n, 4096):
    m[off] = 1'
}
for f in /sys/module/page_reporting/parameters/*; do
    [[ -r $f ]] && echo "page_reporting $(basename "$f"): $(cat "$f")"
done
for ((r = 1; r <= ROUNDS; r++)); do
    for c in idle dropped dropped15 touched; do
        rm -rf "$W/d"
        sync
        sleep 2
        case $c in
        idle) sleep 15 ;;
        dropped) echo 1 >/proc/sys/vm/drop_caches ;;
        dropped15) echo 1 >/proc/sys/vm/drop_caches; sleep 15 ;;
        touched) sleep 15; touch_memory ;;
        esac
        echo "round $r, $c: $(write)"
    done
done
