#!/usr/bin/env python3
"""bench/report.py RESULTS.tsv SEGMENTS CORES [MEMINFO.tsv]: the Markdown tables of bench/run.sh.

RESULTS.tsv columns: corpus, figure, tool (ue|pb|cpu), run, seconds,
max RSS KiB (the calls), background max RSS KiB, extra (bytes stored for
push/backup/restore, compressed bytes for the ceiling), 1-minute load average
right after the measurement, sampled peak PSS of the whole process tree KiB
(when measured).

MEMINFO.tsv (optional): corpus, figure, tool, run, Dirty KiB and Writeback
KiB of /proc/meminfo before the restore, the same after it, the restore's
seconds, the 1-minute load average after it, and over the restore the
block device's write ticks (ms), discards issued, discard ticks (ms) and
flushes (/sys/class/block/DEV/stat)."""
import collections
import statistics
import sys

SEG = 16 * 1024 * 1024
LEVEL = 3  # run.sh's LEVEL: the zstd level of the compared figures (push-sync, backup)


def load(path):
    data = collections.defaultdict(list)
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 8:
            continue
        corpus, fig, tool, run, secs, rss, bg, extra = f[:8]
        data[(corpus, fig, tool)].append(
            dict(run=int(run), s=float(secs), rss=int(rss or 0), bg=int(bg or 0),
                 extra=int(extra) if extra else None, load=f[8] if len(f) > 8 else "",
                 pss=int(f[9]) if len(f) > 9 and f[9] else 0))
    return data


def med(rows, key="s"):
    return statistics.median(r[key] for r in rows) if rows else None


def peak(rows):
    """Peak RSS in KiB over every call and background process of every run."""
    if not rows:
        return None, False
    fg = max(r["rss"] for r in rows)
    bg = max(r["bg"] for r in rows)
    return max(fg, bg), bg > fg


def mib(kib_and_bg):
    kib, bg = kib_and_bg
    if kib is None:
        return "–"
    return f"{kib / 1024:.1f} MiB" + (" (bg)" if bg else "")


def fmt(x, spec, suffix=""):
    return "–" if x is None else format(x, spec) + suffix


# (label, ue figure, pgBackRest figure, target speedup, counts segments)
ROWS = [
    ("push, one call per segment (sync)", "push-sync", "push-sync", 2.0, True),
    ("push, async process-max 2", "push-async", "push-async", 1.2, True),
    ("fetch, no prefetch vs archive-get sync", "fetch-sync", "fetch-sync", None, True),
    ("fetch, prefetch vs archive-get sync", "fetch-async", "fetch-sync", 2.0, True),
    ("fetch, prefetch vs archive-get async", "fetch-async", "fetch-async", None, True),
    ("full backup, process-max 2", "backup", "backup", 1.3, False),
    ("restore, process-max 2", "restore", "restore", 1.5, False),
    ("restore after drop_caches, process-max 2", "restore-cold", "restore-cold", None, False),
    ("restore after drop_caches=1 (page cache), process-max 2", "restore-pagecache",
     "restore-pagecache", None, False),
    ("restore after drop_caches=2 (dentries, inodes), process-max 2", "restore-dentries",
     "restore-dentries", None, False),
    ("restore after discards settled, process-max 2", "restore-settled", "restore-settled", None,
     False),
    ("restore without sync first, process-max 2", "restore-nosync", "restore-nosync", None, False),
]


def mibs(b):
    return "–" if b is None else f"{b / 2**20:.1f}"


# (label, figure): each tool at its own defaults, then the same rows at
# zstd LEVEL for reference (what the default costs or saves).
DEFAULT_ROWS = [
    ("push sync, each tool's defaults", "push-sync-default"),
    ("full backup, each tool's defaults", "backup-default"),
    (f"push sync, both zstd {LEVEL}", "push-sync"),
    (f"full backup, both zstd {LEVEL}", "backup"),
]


def ue_levels(data, c):
    """{zstd level: ue push-sync rows}: push-sync-lN, and push-sync at LEVEL."""
    levels = {}
    for (cc, fig, tool), rows in data.items():
        if cc == c and tool == "ue" and fig.startswith("push-sync-l") and fig[11:].isdigit():
            levels[int(fig[11:])] = rows
    if levels and (c, "push-sync", "ue") in data:
        levels.setdefault(LEVEL, data[(c, "push-sync", "ue")])
    return levels


def defaults_section(data, corpora, nseg):
    """Only when a run measured the defaults figures (BENCH_FIGURES with defaults)."""
    shown = [c for c in corpora
             if any((c, f, t) in data for f in ("push-sync-default", "backup-default") for t in ("ue", "pb"))
             or ue_levels(data, c)]
    if not shown:
        return
    print("## Defaults and compression levels")
    print()
    print("Each tool without compression settings, as it ships (pgBackRest: gz level 6), "
          f"and ue-wal's push sync at other zstd levels (the default is chosen from these). "
          f"Stored: the WAL objects a push leaves in the repository, the backup's directory (median).")
    print()
    for c in shown:
        print(f"### {c} corpus")
        print()
        print("| figure | ue-wal s | pgBackRest s | speedup (pgBR/ue) | ue stored MiB | pgBR stored MiB |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, fig in DEFAULT_ROWS:
            u, p = data.get((c, fig, "ue"), []), data.get((c, fig, "pb"), [])
            if not u and not p:
                continue
            us, ps = med(u), med(p)
            ub = med([r for r in u if r["extra"] is not None], "extra")
            pb = med([r for r in p if r["extra"] is not None], "extra")
            sp = ps / us if us and ps else None
            print(f"| {label} | {fmt(us, '.3f')} | {fmt(ps, '.3f')} | {fmt(sp, '.2f', '×')} "
                  f"| {mibs(ub)} | {mibs(pb)} |")
        levels = ue_levels(data, c)
        if levels:
            print()
            print("| ue-wal push sync | seconds (median) | seg/s | stored MiB | ratio |")
            print("|---|---:|---:|---:|---:|")
            for lv in sorted(levels):
                rows = levels[lv]
                s = med(rows)
                b = med([r for r in rows if r["extra"] is not None], "extra")
                print(f"| zstd level {lv}{' (compared figures)' if lv == LEVEL else ''} | {fmt(s, '.3f')} "
                      f"| {fmt(nseg / s if s else None, '.1f')} | {mibs(b)} "
                      f"| {fmt(nseg * SEG / b if b else None, '.2f', '×')} |")
        print()


# (label, figure, its pgBackRest counterpart): the encrypted figures
# (BENCH_FIGURES word "encrypted"), each measured as VARIANT suffixes
# -clear, -enc and (ue-wal only) -enc-nocache.
ENC_ROWS = [
    ("push, one call per segment", "push-sync", "push-sync"),
    ("fetch with prefetch (pgBR: archive-get async)", "fetch-async", "fetch-async"),
    ("fetch, no prefetch (pgBR: archive-get sync)", "fetch-sync", "fetch-sync"),
]
ENC_TARGET = 0.9  # issue 14: encrypted within 10 % of unencrypted throughput


def paired(clear, enc):
    """Median over runs of clear seconds / encrypted seconds, each pair from
    the same run (measured back to back, so load drift mostly cancels)."""
    by_run = {r["run"]: r["s"] for r in clear}
    ratios = [by_run[r["run"]] / r["s"] for r in enc if r["run"] in by_run and r["s"]]
    return statistics.median(ratios) if ratios else None


def encrypted_section(data, corpora, nseg, verdicts):
    shown = [c for c in corpora if any((c, f + "-enc", t) in data
                                       for _, f, _ in ENC_ROWS for t in ("ue", "pb"))]
    if not shown:
        return
    print("## Encrypted")
    print()
    print("Each tool unencrypted (clear) and encrypted, back to back in every run: ue-wal "
          "aes-256-gcm with the derived-key cache as it ships (cipher-key-cache=y, spool-path "
          "present) and without it (cipher-key-cache=n: scrypt in every process); pgBackRest "
          "repo1-cipher-type=aes-256-cbc. *enc/clear* is the throughput kept: the median over "
          "runs of clear time / encrypted time of the same run. seg/s from medians.")
    print()
    for c in shown:
        print(f"### {c} corpus")
        print()
        print("| figure | tool | clear seg/s | encrypted seg/s | enc/clear | no cache seg/s "
              "| no cache/clear | enc peak RSS | no cache peak RSS | target | met |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for label, uf, pf in ENC_ROWS:
            for tool, fig in (("ue", uf), ("pb", pf)):
                cl = data.get((c, fig + "-clear", tool), [])
                en = data.get((c, fig + "-enc", tool), [])
                nc = data.get((c, fig + "-enc-nocache", tool), [])
                if not cl and not en:
                    continue
                rate = lambda rows: nseg / med(rows) if rows else None
                keep, keep_nc = paired(cl, en), paired(cl, nc)
                tgt = met = ""
                if tool == "ue" and fig in ("push-sync", "fetch-async") and keep is not None:
                    ok = keep >= ENC_TARGET
                    tgt, met = f"≥ {ENC_TARGET * 100:.0f} %", "yes" if ok else "**no**"
                    verdicts.append((c, f"encrypted {label}: ≥ {ENC_TARGET * 100:.0f} % of unencrypted",
                                     f"{keep * 100:.0f} %", ok))
                print(f"| {label} | {'ue-wal' if tool == 'ue' else 'pgBackRest'} "
                      f"| {fmt(rate(cl), '.1f')} | {fmt(rate(en), '.1f')} "
                      f"| {fmt(keep and keep * 100, '.0f', ' %')} | {fmt(rate(nc), '.1f')} "
                      f"| {fmt(keep_nc and keep_nc * 100, '.0f', ' %')} | {mib(peak(en))} "
                      f"| {mib(peak(nc)) if nc else '–'} | {tgt} | {met} |")
        print()
        print("| encrypted figure | ue-wal s | pgBackRest s | speedup (pgBR/ue) | best-run speedup |")
        print("|---|---:|---:|---:|---:|")
        for label, uf, pf in ENC_ROWS:
            u, p = data.get((c, uf + "-enc", "ue"), []), data.get((c, pf + "-enc", "pb"), [])
            if not u or not p:
                continue
            us, ps = med(u), med(p)
            best = min(r["s"] for r in p) / min(r["s"] for r in u)
            print(f"| {label} | {us:.3f} | {ps:.3f} | {ps / us:.2f}× | {best:.2f}× |")
        print()


def meminfo_section(path):
    """Dirty/Writeback around each restore: what the restore left to the kernel,
    and what it found dirty (a restore ends with one syncfs, which also waits
    for other processes' dirty data on the same file system)."""
    try:
        rows = [l.rstrip("\n").split("\t") for l in open(path)]
    except OSError:
        return
    # 10 columns from runs before the device counters were recorded.
    rows = [r + ["–"] * 4 if len(r) == 10 else r for r in rows if len(r) in (10, 14)]
    if not rows:
        return
    print("## Page cache and device around restores")
    print()
    print("/proc/meminfo right before each restore (after what the figure does first: `sync`, "
          "drop_caches, a wait for discards, or nothing for restore-nosync) and right after it "
          "returned, MiB; the restore's seconds and the 1-minute load average after it; over "
          "the restore, the block device's time spent writing, discards issued, time spent "
          "discarding (ms, summed over requests in flight) and cache flushes:")
    print()
    print("| corpus | figure | tool | run | Dirty before | Writeback before | Dirty after "
          "| Writeback after | seconds | load | write ms | discards | discard ms | flushes |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c, fig, tool, run, d0, w0, d1, w1, sec, load, wt, dn, dt, fl in rows:
        print(f"| {c} | {fig} | {tool} | {run} | {int(d0) / 1024:.1f} | {int(w0) / 1024:.1f} "
              f"| {int(d1) / 1024:.1f} | {int(w1) / 1024:.1f} | {sec} | {load} "
              f"| {wt} | {dn} | {dt} | {fl} |")
    print()


def main():
    data = load(sys.argv[1])
    nseg = int(sys.argv[2])
    cores = int(sys.argv[3])
    corpora = []
    for (c, _, _) in data:
        if c not in corpora:
            corpora.append(c)
    verdicts = []  # (corpus, target text, measured text, met)
    for c in corpora:
        ceil = data.get((c, "ceiling", "cpu"), [])
        ceil_s = med(ceil)
        ceil_rate = nseg / ceil_s if ceil_s else None
        print(f"## {c} corpus ({nseg} segments of 16 MiB)")
        print()
        if ceil:
            out = statistics.median(r["extra"] for r in ceil if r["extra"])
            print(f"Compute ceiling (median): zstd -3 + SHA-256 in process, {cores} threads: "
                  f"{ceil_s:.3f} s = **{ceil_rate:.1f} segments/s** "
                  f"({nseg * SEG / ceil_s / 1e6:.0f} MB/s); the corpus compresses "
                  f"{nseg * SEG / out:.2f}× per segment.")
            print()
        print("| figure | ue-wal s | pgBackRest s | speedup (pgBR/ue) | best-run speedup | ue seg/s "
              "| pgBR seg/s | ue % of ceiling | ue peak RSS | pgBR peak RSS | target | met |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for label, uf, pf, target, segs in ROWS:
            u, p = data.get((c, uf, "ue"), []), data.get((c, pf, "pb"), [])
            if not u and not p:
                continue
            us, ps = med(u), med(p)
            sp = ps / us if us and ps else None
            urate = nseg / us if us and segs else None
            prate = nseg / ps if ps and segs else None
            frac = urate / ceil_rate if urate and ceil_rate and uf.startswith("push") else None
            tgt, met = "", ""
            if target and sp is not None:
                ok = sp >= target
                tgt = f"≥ {target}×"
                if uf == "push-async" and frac is not None:
                    tgt += ", ≥ 90 % ceiling"
                    ok = ok and frac >= 0.9
                if uf == "backup":
                    us_b, ps_b = med(u, "extra"), med(p, "extra")
                    tgt += ", size ±5 %"
                    ok = ok and us_b is not None and ps_b and us_b <= ps_b * 1.05
                met = "yes" if ok else "**no**"
                verdicts.append((c, f"{label}: {tgt}", f"{sp:.2f}×"
                                 + (f", {frac * 100:.0f} % of ceiling" if frac and uf == "push-async" else "")
                                 + (f", size {us_b / ps_b * 100:.1f} % of pgBR" if uf == "backup" and ps_b else ""),
                                 ok))
            best = (min(r["s"] for r in p) / min(r["s"] for r in u)) if u and p else None
            print(f"| {label} | {fmt(us, '.3f')} | {fmt(ps, '.3f')} | {fmt(sp, '.2f', '×')} "
                  f"| {fmt(best, '.2f', '×')} "
                  f"| {fmt(urate, '.1f')} | {fmt(prate, '.1f')} | {fmt(frac and frac * 100, '.0f', ' %')} "
                  f"| {mib(peak(u))} | {mib(peak(p))} | {tgt} | {met} |")
        # Peak RSS per operation (each distinct ue figure vs the same pgBR operation).
        for label, fig in (("push sync", "push-sync"), ("push async", "push-async"),
                           ("fetch sync", "fetch-sync"), ("fetch async/prefetch", "fetch-async"),
                           ("backup", "backup"), ("restore", "restore")):
            u, p = peak(data.get((c, fig, "ue"), []))[0], peak(data.get((c, fig, "pb"), []))[0]
            if u is None or p is None:
                continue
            verdicts.append((c, f"peak RSS, {label}: ue ≤ pgBR",
                             f"{u / 1024:.1f} vs {p / 1024:.1f} MiB", u <= p))
        pss_rows = []
        for label, fig in (("push async", "push-async"), ("fetch async/prefetch", "fetch-async"),
                           ("backup", "backup"), ("restore", "restore")):
            u = [r["pss"] for r in data.get((c, fig, "ue"), []) if r["pss"]]
            p = [r["pss"] for r in data.get((c, fig, "pb"), []) if r["pss"]]
            if u and p:
                pss_rows.append(f"| {label} | {max(u) / 1024:.1f} MiB | {max(p) / 1024:.1f} MiB |")
        if pss_rows:
            print()
            print("Whole-operation footprint (sampled every 50 ms: sum of the PSS of every process "
                  "of the operation, background ones included; peak over runs). Unlike ru_maxrss it "
                  "counts all of pgBackRest's worker processes and shares libraries fairly:")
            print()
            print("| operation | ue-wal | pgBackRest |")
            print("|---|---:|---:|")
            print("\n".join(pss_rows))
        bu, bp = data.get((c, "backup", "ue"), []), data.get((c, "backup", "pb"), [])
        if bu and bp:
            su, sp_ = med(bu, "extra"), med(bp, "extra")
            print()
            print(f"Stored full backup: ue-wal {su / 2**20:.1f} MiB, pgBackRest {sp_ / 2**20:.1f} MiB "
                  f"(ue-wal = {su / sp_ * 100:.1f} % of pgBackRest).")
        print()
    defaults_section(data, corpora, nseg)
    encrypted_section(data, corpora, nseg, verdicts)
    if len(sys.argv) > 4:
        meminfo_section(sys.argv[4])
    if verdicts:
        print("## Targets")
        print()
        print("| corpus | target | measured | met |")
        print("|---|---|---|---|")
        for c, t, m, ok in verdicts:
            print(f"| {c} | {t} | {m} | {'yes' if ok else '**no**'} |")
        print()
        print(f"{sum(v[3] for v in verdicts)} of {len(verdicts)} targets met.")
        print()
    print("## Every run")
    print()
    print("| corpus | figure | tool | run | seconds | max RSS KiB | background max RSS KiB | tree PSS KiB | bytes | load avg after |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (c, fig, tool), rows in data.items():
        for r in rows:
            print(f"| {c} | {fig} | {tool} | {r['run']} | {r['s']:.3f} | {r['rss'] or ''} | {r['bg'] or ''} | {r['pss'] or ''} "
                  f"| {r['extra'] if r['extra'] is not None else ''} | {r['load']} |")


if __name__ == "__main__":
    main()
