#!/usr/bin/env python3
"""Minimal Azure Blob client for the integration tests (standard library only).

Signs its own requests with SharedKey, independently of ue-wal's C code, so the
tests check ue-wal against Azurite's view of the container, not against itself.

    azure_tool.py create-container CONTAINER
    azure_tool.py sas CONTAINER [PERMISSIONS=racwdl] [HOURS=2]  -> SAS token
    azure_tool.py list CONTAINER [PREFIX]      -> "size name" lines (all blobs, no delimiter)
    azure_tool.py get CONTAINER BLOB FILE
    azure_tool.py put CONTAINER BLOB FILE
    azure_tool.py delete CONTAINER BLOB
    azure_tool.py blocks CONTAINER BLOB        -> number of committed blocks
    azure_tool.py props CONTAINER BLOB         -> "Content-Length Content-MD5"
    azure_tool.py uncommitted CONTAINER [PREFIX]  -> "blocks name" per blob that
        has uncommitted blocks only (listed with include=uncommittedblobs, not
        without), blocks: its uncommitted blocks (Get Block List)

Environment: AZ_ENDPOINT (default http://127.0.0.1:10000), AZ_ACCOUNT and
AZ_KEY (default: Azurite's devstoreaccount1). Path-style URLs
(http://host:port/ACCOUNT/CONTAINER/BLOB), as Azurite serves them.
Exit status: 0 ok, 1 not found, 2 other HTTP error, 3 usage.
"""
import base64
import datetime
import hashlib
import hmac
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

ENDPOINT = os.environ.get("AZ_ENDPOINT", "http://127.0.0.1:10000").rstrip("/")
ACCOUNT = os.environ.get("AZ_ACCOUNT", "devstoreaccount1")
KEY = os.environ.get(
    "AZ_KEY",
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
VERSION = "2021-08-06"


def sign(key, text):
    mac = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def request(method, path, query=None, body=b"", headers=None):
    """path: decoded path after the account ("/container/blob")."""
    query = query or {}
    headers = dict(headers or {})
    headers["x-ms-date"] = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%a, %d %b %Y %H:%M:%S GMT")
    headers["x-ms-version"] = VERSION
    if method == "PUT":
        headers.setdefault("Content-Type", "application/octet-stream")
    url_path = "/" + ACCOUNT + urllib.parse.quote(path)
    length = str(len(body)) if body else ""
    std = ["Content-Encoding", "Content-Language", "Content-Length", "Content-MD5",
           "Content-Type", "Date", "If-Modified-Since", "If-Match", "If-None-Match",
           "If-Unmodified-Since", "Range"]
    vals = []
    for h in std:
        vals.append(length if h == "Content-Length" else headers.get(h, ""))
    canon_h = "".join("%s:%s\n" % (k.lower(), v.strip())
                      for k, v in sorted(headers.items(), key=lambda kv: kv[0].lower())
                      if k.lower().startswith("x-ms-"))
    canon_r = "/" + ACCOUNT + url_path
    for k in sorted(query):
        canon_r += "\n%s:%s" % (k.lower(), query[k])
    sts = method + "\n" + "\n".join(vals) + "\n" + canon_h + canon_r
    headers["Authorization"] = "SharedKey %s:%s" % (ACCOUNT, sign(KEY, sts))
    url = ENDPOINT + url_path
    if query:
        url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="")
    req = urllib.request.Request(url, data=body if method == "PUT" else None,
                                 method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def check(status, data, ok=(200, 201, 202)):
    if status in ok:
        return
    sys.stderr.write("azure_tool: HTTP %d %s\n" % (status, data[:300].decode("utf-8", "replace")))
    sys.exit(1 if status == 404 else 2)


def names(container, prefix, include=None):
    """Every blob name under prefix (no delimiter), following NextMarker."""
    marker, out = "", []
    while True:
        q = {"restype": "container", "comp": "list"}
        if prefix:
            q["prefix"] = prefix
        if include:
            q["include"] = include
        if marker:
            q["marker"] = marker
        st, _, data = request("GET", "/" + container, q)
        check(st, data)
        root = ET.fromstring(data)
        out.extend(b.findtext("Name") for b in root.iter("Blob"))
        marker = root.findtext("NextMarker") or ""
        if not marker:
            return out


def sas(container, perms="racwdl", hours=2):
    expiry = (datetime.datetime.now(datetime.timezone.utc) +
              datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sv = VERSION
    # Service SAS for a container (versions 2020-12-06 and later):
    # sp st se canonicalizedResource si sip spr sv sr snapshot encryptionScope
    # rscc rscd rsce rscl rsct
    fields = [perms, "", expiry, "/blob/%s/%s" % (ACCOUNT, container), "", "", "", sv, "c",
              "", "", "", "", "", "", ""]
    sig = sign(KEY, "\n".join(fields))
    q = [("sv", sv), ("sr", "c"), ("sp", perms), ("se", expiry), ("sig", sig)]
    return urllib.parse.urlencode(q, quote_via=urllib.parse.quote, safe="")


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 3
    cmd, args = argv[1], argv[2:]
    if cmd == "create-container":
        st, _, data = request("PUT", "/" + args[0], {"restype": "container"})
        check(st, data, (201, 409))
    elif cmd == "sas":
        print(sas(args[0], *(args[1:2] or []), *([int(args[2])] if len(args) > 2 else [])))
    elif cmd == "list":
        marker = ""
        while True:
            q = {"restype": "container", "comp": "list"}
            if len(args) > 1:
                q["prefix"] = args[1]
            if marker:
                q["marker"] = marker
            st, _, data = request("GET", "/" + args[0], q)
            check(st, data)
            root = ET.fromstring(data)
            for b in root.iter("Blob"):
                print(b.findtext("Properties/Content-Length"), b.findtext("Name"))
            marker = root.findtext("NextMarker") or ""
            if not marker:
                break
    elif cmd == "get":
        st, _, data = request("GET", "/%s/%s" % (args[0], args[1]))
        check(st, data)
        with open(args[2], "wb") as f:
            f.write(data)
    elif cmd == "put":
        with open(args[2], "rb") as f:
            body = f.read()
        st, _, data = request("PUT", "/%s/%s" % (args[0], args[1]), body=body,
                              headers={"x-ms-blob-type": "BlockBlob"})
        check(st, data)
    elif cmd == "delete":
        st, _, data = request("DELETE", "/%s/%s" % (args[0], args[1]))
        check(st, data)
    elif cmd == "blocks":
        st, _, data = request("GET", "/%s/%s" % (args[0], args[1]),
                              {"comp": "blocklist", "blocklisttype": "committed"})
        check(st, data)
        print(len(ET.fromstring(data).findall("CommittedBlocks/Block")))
    elif cmd == "props":
        st, h, data = request("HEAD", "/%s/%s" % (args[0], args[1]))
        check(st, data)
        print(h.get("Content-Length", ""), h.get("Content-MD5", ""))
    elif cmd == "uncommitted":
        prefix = args[1] if len(args) > 1 else ""
        committed = set(names(args[0], prefix))
        for name in names(args[0], prefix, "uncommittedblobs"):
            if name in committed:
                continue
            st, _, data = request("GET", "/%s/%s" % (args[0], name),
                                  {"comp": "blocklist", "blocklisttype": "uncommitted"})
            check(st, data)
            print(len(ET.fromstring(data).findall("UncommittedBlocks/Block")), name)
    else:
        sys.stderr.write("azure_tool: unknown command %r\n" % cmd)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
