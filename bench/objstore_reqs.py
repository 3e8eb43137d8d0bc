#!/usr/bin/env python3
"""bench/objstore_reqs.py REQUESTS.tsv: the request mix of each figure of
bench/objstore.sh run with BENCH_REQ_LOG=1, as Markdown.

REQUESTS.tsv columns: store, figure, tool, run, then bench/req_log.js's
line: end time ms, method, URL, request bytes read, Content-Length,
Transfer-Encoding, Range, x-amz-content-sha256 (abridged), status, response
bytes written, duration ms, server CPU ms while the request was open.

Each request is classified by what it does on either API (S3 or Azure Blob),
so that two tools' mixes for the same work compare class by class: how many
requests of each kind, how many body bytes each kind carried, how many 4xx
answers, and the server CPU they cost (overlapping when requests run at once:
a guide to where it goes, not a sum to add up)."""
import collections
import sys
import urllib.parse

CLASSES = ["LIST", "HEAD", "GET", "GET-range", "PUT", "MPU-init", "PART", "MPU-done",
           "BLOCKLIST", "DELETE", "other"]


def classify(method, url, rng):
    path, _, query = url.partition("?")
    q = urllib.parse.parse_qs(query, keep_blank_values=True)
    if method == "GET":
        if "list-type" in q or q.get("comp") == ["list"] or "uploads" in q:
            return "LIST"
        return "GET-range" if rng else "GET"
    if method == "HEAD":
        return "HEAD"
    if method == "PUT":
        if "partNumber" in q or q.get("comp") == ["block"]:
            return "PART"
        if q.get("comp") == ["blocklist"]:
            return "BLOCKLIST"
        return "PUT"
    if method == "POST":
        if "uploads" in q:
            return "MPU-init"
        if "uploadId" in q:
            return "MPU-done"
    if method == "DELETE":
        return "DELETE"
    return "other"


def sha_kind(sha):
    """x-amz-content-sha256 (abridged by req_log.js) as its kind of signing."""
    if not sha:
        return "none"
    if sha.startswith("e3b0c442"):
        return "empty body"
    if sha.startswith("UNSIGNED") or sha.startswith("STREAMING"):
        return sha
    return "body hash"


def main(path):
    figs = collections.OrderedDict()
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 16:
            continue
        store, fig, tool, run = f[:4]
        _, method, url, _, clen, te, rng, sha, status, _, ms, cpu = f[4:16]
        d = figs.setdefault((store, fig, tool, run), dict(
            n=collections.Counter(), bytes=collections.Counter(), cpu=collections.Counter(),
            err=collections.Counter(), chunked=0, sha=collections.Counter(), ms=0.0))
        c = classify(method, url, rng)
        d["n"][c] += 1
        d["bytes"][c] += int(clen or 0)
        d["cpu"][c] += float(cpu)
        d["ms"] += float(ms)
        if status.startswith("4") or status.startswith("5"):
            d["err"][f"{method} {status}"] += 1
        if te:
            d["chunked"] += 1
        d["sha"][sha_kind(sha)] += 1
    print("## Request mix (server side, bench/req_log.js)\n")
    print("Per class: requests / MiB of request body. cpu: the server's CPU seconds summed over")
    print("requests (overlapping when they run at once). err: 4xx/5xx answers.\n")
    used = [c for c in CLASSES if any(d["n"][c] for d in figs.values())]
    print("| store | figure | tool | run | requests | " + " | ".join(used) + " | err | chunked | cpu s |")
    print("| --- " * (7 + len(used)) + "|")
    for (store, fig, tool, run), d in figs.items():
        cells = []
        for c in used:
            n = d["n"][c]
            cells.append("" if not n else f"{n}" + (f" / {d['bytes'][c] / 1048576:.1f}" if d["bytes"][c] else ""))
        err = ", ".join(f"{k}×{v}" for k, v in d["err"].items()) or "0"
        print(f"| {store} | {fig} | {tool} | {run} | {sum(d['n'].values())} | " + " | ".join(cells)
              + f" | {err} | {d['chunked']} | {sum(d['cpu'].values()) / 1000:.2f} |")
    print("\nx-amz-content-sha256 per figure (S3 payload signing: body hash, UNSIGNED-PAYLOAD or streaming):\n")
    for (store, fig, tool, run), d in figs.items():
        if store == "s3":
            print(f"- {fig} {tool} run {run}: " + ", ".join(f"{k} ×{v}" for k, v in d["sha"].most_common()))


if __name__ == "__main__":
    main(sys.argv[1])
