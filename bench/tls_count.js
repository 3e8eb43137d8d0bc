// bench/tls_count.js: loaded into the object-store emulators by
// bench/objstore.sh (NODE_OPTIONS=--require), counts what their HTTPS server
// accepts: TCP connections, full TLS handshakes and resumed ones (a client
// that reuses a connection makes no new handshake; one that resumes a TLS
// session makes a cheaper one). The counts go to $UW_BENCH_TLS_COUNT as one
// line "tcp full resumed", replaced atomically after each event, so the
// benchmark reads them before and after each figure. Counting on the server
// side sees every client alike (ue-wal's libcurl, pgBackRest's own TLS code)
// and costs the clients nothing.
'use strict';
const fs = require('fs');
const tls = require('tls');

const file = process.env.UW_BENCH_TLS_COUNT;
if (file) {
    let tcp = 0, full = 0, resumed = 0;
    const save = () => {
        fs.writeFileSync(file + '.tmp', `${tcp} ${full} ${resumed}\n`);
        fs.renameSync(file + '.tmp', file);
    };
    save();
    // https.Server inherits tls.Server's prototype chain: one hook sees both
    // s3rver's and Azurite's servers.
    const emit = tls.Server.prototype.emit;
    tls.Server.prototype.emit = function (event, socket, ...rest) {
        if (event === 'connection') {
            tcp++;
            save();
        } else if (event === 'secureConnection') {
            if (socket.isSessionReused()) resumed++;
            else full++;
            save();
        }
        return emit.call(this, event, socket, ...rest);
    };
}
