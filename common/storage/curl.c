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
#undef SYM
    };
    return uw_dl_load(&lib, syms, sizeof syms / sizeof syms[0], err);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static uw_err curl_init_err; /* code UW_OK once libcurl is loaded and initialised */
static void curl_init_once(void)
{
    if (curl_load(&curl_init_err) < 0)
        return;
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        uw_fail(&curl_init_err, UW_E_INTERNAL, "unable to initialise libcurl: %s",
                curl_easy_strerror(rc));
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
