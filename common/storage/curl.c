/* libcurl loaded on first use. See curl.h. */
#include "storage/curl.h"

#include <pthread.h>

#include "core/dl.h"

uw_curl_api uw_curl;

/* Resolves uw_curl; fills err when libcurl is missing or too old. */
static int curl_load(uw_err *err)
{
    static const char *const sonames[] = {"libcurl.so.4", NULL};
    static const uw_dl_lib lib = {
        "libcurl", sonames, "install libcurl4: object-store repositories need it", UW_E_INTERNAL};
    const uw_dl_sym syms[] = {
#define SYM(field, name) {(void **)&uw_curl.field, name}
        SYM(global_init, "curl_global_init"),
        SYM(easy_init, "curl_easy_init"),
        SYM(easy_cleanup, "curl_easy_cleanup"),
        SYM(easy_reset, "curl_easy_reset"),
        SYM(easy_setopt, "curl_easy_setopt"),
        SYM(easy_getinfo, "curl_easy_getinfo"),
        SYM(easy_strerror, "curl_easy_strerror"),
        SYM(multi_init, "curl_multi_init"),
        SYM(multi_cleanup, "curl_multi_cleanup"),
        SYM(multi_add_handle, "curl_multi_add_handle"),
        SYM(multi_remove_handle, "curl_multi_remove_handle"),
        SYM(multi_setopt, "curl_multi_setopt"),
        SYM(multi_socket_action, "curl_multi_socket_action"),
        SYM(multi_assign, "curl_multi_assign"),
        SYM(multi_info_read, "curl_multi_info_read"),
        SYM(multi_strerror, "curl_multi_strerror"),
        SYM(slist_append, "curl_slist_append"),
        SYM(slist_free_all, "curl_slist_free_all"),
        SYM(share_init, "curl_share_init"),
        SYM(share_setopt, "curl_share_setopt"),
        SYM(share_cleanup, "curl_share_cleanup"),
#undef SYM
    };
    return uw_dl_load(&lib, syms, sizeof syms / sizeof syms[0], err);
}

/* One mutex per kind of shared data (libcurl asks for a different lock for
 * each), taken whatever the access asked (shared or single): the critical
 * sections are a cache lookup or insertion. */
static pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
static CURLSH *share;

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *ud)
{
    (void)c;
    (void)access;
    (void)ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&share_mu[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *ud)
{
    (void)c;
    (void)ud;
    if ((unsigned)data < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&share_mu[data]);
}

/* The process's share object, kept until exit (handles attached to it may
 * live as long). Without one, every client works as before, only with more
 * full handshakes. */
static void share_make(void)
{
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_mu[i], NULL);
    CURLSH *s = curl_share_init();
    if (!s)
        return;
    if (curl_share_setopt(s, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(s, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
        curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
        curl_share_cleanup(s);
        return;
    }
    share = s;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static uw_err curl_init_err; /* code UW_OK once libcurl is loaded and initialised */
static void curl_init_once(void)
{
    if (curl_load(&curl_init_err) < 0)
        return;
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        uw_fail(&curl_init_err, UW_E_INTERNAL, "unable to initialise libcurl: %s",
                curl_easy_strerror(rc));
        return;
    }
    share_make();
}

CURLSH *uw_curl_share(void)
{
    return share;
}

int uw_curl_init(uw_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_err.code == UW_OK)
        return 0;
    if (err)
        *err = curl_init_err;
    return -1;
}
