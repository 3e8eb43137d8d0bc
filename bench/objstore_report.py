#!/usr/bin/env python3
"""bench/objstore_report.py RESULTS.tsv SEGMENTS CORES: the Markdown tables of
bench/objstore.sh.

RESULTS.tsv columns: store, figure, tool (ue|pb), run, seconds, tool CPU s
(user + system of every process of the operation), emulator CPU s (the
server's node process during the timed part, -1 unknown), TCP connections,
full TLS handshakes, resumed TLS handshakes (server side, whole operation),
extra (bytes stored or restored), load average after, peak RSS KiB."""
import collections
import statistics
import sys

TARGET = 1.5
BUSY_EMU = 0.8  # the emulator's node process at >= 80 % of a core: it is the bottleneck
BUSY_CPU = 0.8  # tool + emulator at >= 80 % of every core: the machine's CPU is


def load(path):
    data = collections.defaultdict(list)
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 13:
            continue
        store, fig, tool, run = f[:4]
        data[(store, fig, tool)].append(dict(
            run=int(run), s=float(f[4]), cpu=float(f[5] or 0), emu=float(f[6] or -1),
            tcp=int(f[7]), full=int(f[8]), resumed=int(f[9]),
            extra=int(f[10]) if f[10] else None, load=f[11], rss=int(f[12] or 0)))
    return data


def med(rows, key="s"):
    vals = [r[key] for r in rows if r[key] is not None and r[key] >= 0]
    return statistics.median(vals) if vals else None


def fmt(x, spec, suffix=""):
    return "–" if x is None else format(x, spec) + suffix


def rows_for(backup_pmax, pmax):
    """(label, ue figure, pgBackRest figure, target, counts segments)"""
    rows = [
        ("push, one call per segment (sync)", "push-sync", "push-sync", TARGET, True),
        (f"push, async process-max {pmax}", "push-async", "push-async", TARGET, True),
        ("fetch, one call per segment (sync)", "fetch-sync", "fetch-sync", None, True),
        (f"fetch, prefetch vs archive-get async (process-max {pmax})", "fetch-async", "fetch-async", TARGET, True),
        ("fetch, prefetch vs archive-get sync", "fetch-async", "fetch-sync", None, True),
    ]
    for p in backup_pmax:
        rows.append((f"full backup, process-max {p}", f"backup-p{p}", f"backup-p{p}", TARGET, False))
    for p in backup_pmax:
        rows.append((f"restore, process-max {p}", f"restore-p{p}", f"restore-p{p}", TARGET, False))
    return rows


def bound(rows, cores):
    """What bounds a figure, from the medians of its runs: the emulator (its
    node process near one full core), the CPU (tool + emulator near every
    core), else waiting (round trips, disk, the other side)."""
    s, emu, cpu = med(rows), med(rows, "emu"), med(rows, "cpu")
    if not s or emu is None:
        return "–"
    e, t = emu / s, cpu / s
    if e >= BUSY_EMU:
        what = "**emulator**"
    elif (e + t) >= BUSY_CPU * cores:
        what = "CPU"
    else:
        what = "waits"
    return f"{what} (emu {e * 100:.0f} %, tool {t * 100:.0f} %)"


def handshakes(rows, nseg, per_segment):
    """Median TLS handshakes (full + resumed) per segment or per operation,
    with how many of them were resumed and the TCP connections."""
    if not rows:
        return "–"
    hs = statistics.median(r["full"] + r["resumed"] for r in rows)
    res = statistics.median(r["resumed"] for r in rows)
    tcp = statistics.median(r["tcp"] for r in rows)
    if per_segment:
        return f"{hs / nseg:.2f}/seg ({hs:g}, {res:g} resumed, {tcp:g} TCP)"
    return f"{hs:g} ({res:g} resumed, {tcp:g} TCP)"


def main():
    data = load(sys.argv[1])
    nseg, cores = int(sys.argv[2]), int(sys.argv[3])
    stores, figs = [], set()
    for (st, fig, _) in data:
        if st not in stores:
            stores.append(st)
        figs.add(fig)
    bpmax = sorted({int(f.split("-p")[1]) for f in figs if f.startswith(("backup-p", "restore-p"))})
    # process-max of async push/prefetch is the script's PMAX; not in the rows
    pmax = sys.argv[4] if len(sys.argv) > 4 else "2"
    verdicts = []
    for st in stores:
        name = {"s3": "S3 (s3rver)", "azure": "Azure (Azurite)"}.get(st, st)
        print(f"## {name}")
        print()
        print("| figure | ue-wal s | pgBackRest s | speedup (pgBR/ue) | best-run speedup | ue seg/s | pgBR seg/s "
              "| target | met |")
        print("|---|---:|---:|---:|---:|---:|---:|---|---|")
        detail = []
        for label, uf, pf, target, segs in rows_for(bpmax, pmax):
            u, p = data.get((st, uf, "ue"), []), data.get((st, pf, "pb"), [])
            if not u or not p:
                continue
            us, ps = med(u), med(p)
            sp = ps / us if us and ps else None
            best = min(r["s"] for r in p) / min(r["s"] for r in u)
            tgt = met = ""
            if target and sp is not None:
                ok = sp >= target
                tgt, met = f"≥ {target}×", "yes" if ok else "**no**"
                verdicts.append((name, label, f"{sp:.2f}×", ok))
            print(f"| {label} | {fmt(us, '.3f')} | {fmt(ps, '.3f')} | {fmt(sp, '.2f', '×')} "
                  f"| {best:.2f}× | {fmt(nseg / us if segs else None, '.1f')} "
                  f"| {fmt(nseg / ps if segs else None, '.1f')} | {tgt} | {met} |")
            if uf == pf:  # once per operation
                detail.append(
                    f"| {label} | {fmt(med(u, 'cpu'), '.2f')} / {fmt(med(p, 'cpu'), '.2f')} "
                    f"| {fmt(med(u, 'emu'), '.2f')} / {fmt(med(p, 'emu'), '.2f')} "
                    f"| {bound(u, cores)} | {bound(p, cores)} "
                    f"| {handshakes(u, nseg, segs)} | {handshakes(p, nseg, segs)} |")
        print()
        print(f"What bounds each figure (medians; {cores} cores). CPU seconds are user + system: the "
              "tool's of every process of the operation, the emulator's node process during the "
              "timed part. Bound: **emulator** when its node process used ≥ 80 % of a core (the "
              "server, not the tool, sets the pace), CPU when tool + emulator used ≥ 80 % of every "
              "core, else waits (round trips, fsync, the other side). TLS handshakes counted by the "
              "server (bench/tls_count.js) over the whole operation, background processes included:")
        print()
        print("| figure | tool CPU s ue / pgBR | emulator CPU s ue / pgBR | bound, ue-wal | bound, pgBackRest "
              "| TLS handshakes ue-wal | TLS handshakes pgBackRest |")
        print("|---|---:|---:|---|---|---|---|")
        print("\n".join(detail))
        print()
    if verdicts:
        print("## Targets")
        print()
        print("| store | figure | speedup | met (≥ 1.5×) |")
        print("|---|---|---:|---|")
        for st, label, m, ok in verdicts:
            print(f"| {st} | {label} | {m} | {'yes' if ok else '**no**'} |")
        print()
        print(f"{sum(v[3] for v in verdicts)} of {len(verdicts)} targets met.")
        print()
    print("## Every run")
    print()
    print("| store | figure | tool | run | seconds | tool CPU s | emulator CPU s | TCP | TLS full | TLS resumed "
          "| bytes | peak RSS KiB | load avg after |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (st, fig, tool), rows in data.items():
        for r in rows:
            print(f"| {st} | {fig} | {tool} | {r['run']} | {r['s']:.3f} | {r['cpu']:.2f} | {r['emu']:.2f} "
                  f"| {r['tcp']} | {r['full']} | {r['resumed']} | {r['extra'] if r['extra'] is not None else ''} "
                  f"| {r['rss']} | {r['load']} |")


if __name__ == "__main__":
    main()
