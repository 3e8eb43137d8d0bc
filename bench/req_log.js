// bench/req_log.js: loaded into the object-store emulators by
// bench/objstore.sh when BENCH_REQ_LOG=1 (NODE_OPTIONS=--require), writes
// one tab-separated line per HTTP request the server answered to
// $UW_BENCH_REQ_LOG: end time (ms since the epoch), method, URL (path and
// query as sent), request bytes read off the socket for it (headers and body,
// chunk framing included), Content-Length, Transfer-Encoding, Range,
// x-amz-content-sha256 (abridged), status, response bytes written, duration
// (ms) and the server's CPU time (ms, user + system) while the request was
// open, which overlaps when requests run at once. bench/objstore_reqs.py
// classifies the lines of each figure. It exists to explain the emulator CPU
// a tool's request mix costs: both tools are seen alike, from the server side.
'use strict';
const fs = require('fs');
const tls = require('tls');
const http = require('http');

const file = process.env.UW_BENCH_REQ_LOG;
if (file) {
    const fd = fs.openSync(file, 'a');
    const hook = (proto) => {
        const emit = proto.emit;
        proto.emit = function (event, req, res, ...rest) {
            if (event === 'request' && res && typeof res.on === 'function') {
                const t0 = process.hrtime.bigint();
                const c0 = process.cpuUsage();
                const sock = req.socket;
                const in0 = sock ? sock.bytesRead : 0;
                const out0 = sock ? sock.bytesWritten : 0;
                const h = req.headers;
                res.on('finish', () => {
                    const c = process.cpuUsage(c0);
                    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
                    const sha = h['x-amz-content-sha256'] || '';
                    const line = [Date.now(), req.method, req.url,
                        sock ? sock.bytesRead - in0 : -1, h['content-length'] || '',
                        h['transfer-encoding'] || '', h['range'] || h['x-ms-range'] || '',
                        sha.length > 20 ? sha.slice(0, 8) + '..' : sha, res.statusCode,
                        sock ? sock.bytesWritten - out0 : -1, ms.toFixed(2),
                        ((c.user + c.system) / 1000).toFixed(2)].join('\t');
                    fs.writeSync(fd, line + '\n');
                });
            }
            return emit.call(this, event, req, res, ...rest);
        };
    };
    // https.Server inherits tls.Server's; http.Server is hooked for a
    // plain-HTTP run (the two prototypes are distinct).
    hook(tls.Server.prototype);
    hook(http.Server.prototype);
}
