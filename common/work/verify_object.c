/* Read-only verification of one repository object (see verify_object.h). */
#include "work/verify_object.h"

#include <stdlib.h>
#include <string.h>

#include "io/object.h"
#include "io/sink.h"

/* The end of the chain: the verified content is dropped, never stored. */
static int discard_write(uw_sink *s, const uint8_t *buf, size_t len, uw_err *err)
{
    (void)s, (void)buf, (void)len, (void)err;
    return 0;
}

static int discard_finish(uw_sink *s, uw_err *err)
{
    (void)s, (void)err;
    return 0;
}

static void discard_destroy(uw_sink *s)
{
    free(s);
}

static uw_sink *discard_sink(void)
{
    uw_sink *s = uw_calloc(1, sizeof *s);
    *s = (uw_sink){discard_write, discard_finish, discard_destroy, NULL, false, NULL};
    return s;
}

int uw_verify_object(uw_repo *r, const uw_verify_obj *o, uw_verify_result *res, uw_err *err)
{
    memset(res, 0, sizeof *res);
    int rc;
    for (int attempt = 0;; attempt++) {
        uw_digest d = {0};
        uint64_t raw = 0;
        uw_obj_read_opts ro = {r->info.system_id, o->expect,      r->have_key ? &r->key : NULL,
                               o->path,           false,          o->bind,
                               o->max_size,       o->expect_is_id};
        uw_sink *reader = uw_object_reader(&ro, discard_sink(), &d);
        uw_sink *counted = uw_count_sink(reader, &raw);
        rc = uw_storage_read(r->st, o->path, counted, err);
        if (rc == 0)
            rc = uw_sink_finish(counted, err);
        uw_sink_free(counted);
        res->read += raw;
        if (rc == 0) {
            uw_hex(d.sha256, 32, res->sha256);
            res->content = d.size;
            break;
        }
        if (!uw_retry_wait(attempt, err))
            break;
    }
    return rc;
}
