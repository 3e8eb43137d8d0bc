/* Backup objects present or missing: see backup_check.h. */
#include "repo/backup_check.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *id;
    char **paths; /* sorted, relative to the repository root */
    size_t n, cap;
} listing;

struct uw_backup_objects {
    uw_repo *r;
    listing *v;
    size_t n;
};

uw_backup_objects *uw_backup_objects_new(uw_repo *r)
{
    uw_backup_objects *c = uw_calloc(1, sizeof *c);
    c->r = r;
    return c;
}

void uw_backup_objects_free(uw_backup_objects *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++) {
        for (size_t k = 0; k < c->v[i].n; k++)
            free(c->v[i].paths[k]);
        free(c->v[i].paths);
        free(c->v[i].id);
    }
    free(c->v);
    free(c);
}

typedef struct {
    listing *l;
    const char *dir;
} walk_ctx;

static int walk_cb(void *ctx, const char *rel, bool is_dir, uint64_t size)
{
    (void)size;
    (void)is_dir;
    walk_ctx *w = ctx;
    listing *l = w->l;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->paths = uw_realloc(l->paths, l->cap * sizeof *l->paths);
    }
    l->paths[l->n++] = uw_sprintf("%s/%s", w->dir, rel);
    return 0;
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static listing *listing_of(uw_backup_objects *c, const char *id, uw_err *err)
{
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].id, id))
            return &c->v[i];
    listing l = {uw_strdup(id), NULL, 0, 0};
    char *dir = uw_backup_dir(c->r, id);
    walk_ctx w = {&l, dir};
    int rc = uw_storage_list_tree(c->r->st, dir, walk_cb, &w, err);
    free(dir);
    if (rc < 0) {
        for (size_t i = 0; i < l.n; i++)
            free(l.paths[i]);
        free(l.paths);
        free(l.id);
        return NULL;
    }
    qsort(l.paths, l.n, sizeof *l.paths, cmp_path);
    c->v = uw_realloc(c->v, (c->n + 1) * sizeof *c->v);
    c->v[c->n] = l;
    return &c->v[c->n++];
}

int uw_backup_check_files(uw_backup_objects *c, const uw_manifest *m, size_t *missing, char **first,
                          uw_err *err)
{
    *missing = 0;
    *first = NULL;
    for (size_t i = 0; i < m->count; i++) {
        const uw_mf_entry *e = &m->entries[i];
        if (e->type != 'f')
            continue;
        listing *l = listing_of(c, e->ref, err);
        if (!l) {
            free(*first);
            *first = NULL;
            return -1;
        }
        char *obj = uw_backup_object(c->r, e);
        if (!bsearch(&obj, l->paths, l->n, sizeof *l->paths, cmp_path)) {
            if (!(*missing)++)
                *first = uw_strdup(e->path);
        }
        free(obj);
    }
    return 0;
}
