/* libcurl, loaded on first use (core/dl.h), not linked: with its ~30
 * dependencies it costs every process ~3 ms of start-up and ~6 MiB of resident
 * memory, and most runs (posix repositories, every archive_command call) never
 * need it. Only the HTTP client (http.c) includes this, instead of
 * <curl/curl.h>: the usual curl_* names then call through the loaded table,
 * which is valid once uw_curl_init() succeeded. */
#ifndef UW_CURL_H
#define UW_CURL_H

#define CURL_DISABLE_TYPECHECK /* calls go through the pointers below */
#include <curl/curl.h>

#include "core/error.h"

typedef struct {
    CURLcode (*global_init)(long);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *);
    void (*easy_reset)(CURL *);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLMcode (*multi_socket_action)(CURLM *, curl_socket_t, int, int *);
    CURLMcode (*multi_assign)(CURLM *, curl_socket_t, void *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    const char *(*multi_strerror)(CURLMcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    CURLSH *(*share_init)(void);
    CURLSHcode (*share_setopt)(CURLSH *, CURLSHoption, ...);
    CURLSHcode (*share_cleanup)(CURLSH *);
} uw_curl_api;
extern uw_curl_api uw_curl;

#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_multi_setopt
#undef curl_share_setopt
#define curl_global_init uw_curl.global_init
#define curl_easy_init uw_curl.easy_init
#define curl_easy_cleanup uw_curl.easy_cleanup
#define curl_easy_reset uw_curl.easy_reset
#define curl_easy_setopt uw_curl.easy_setopt
#define curl_easy_getinfo uw_curl.easy_getinfo
#define curl_easy_strerror uw_curl.easy_strerror
#define curl_multi_init uw_curl.multi_init
#define curl_multi_cleanup uw_curl.multi_cleanup
#define curl_multi_add_handle uw_curl.multi_add_handle
#define curl_multi_remove_handle uw_curl.multi_remove_handle
#define curl_multi_setopt uw_curl.multi_setopt
#define curl_multi_socket_action uw_curl.multi_socket_action
#define curl_multi_assign uw_curl.multi_assign
#define curl_multi_info_read uw_curl.multi_info_read
#define curl_multi_strerror uw_curl.multi_strerror
#define curl_slist_append uw_curl.slist_append
#define curl_slist_free_all uw_curl.slist_free_all
#define curl_share_init uw_curl.share_init
#define curl_share_setopt uw_curl.share_setopt
#define curl_share_cleanup uw_curl.share_cleanup

/* Load and initialise libcurl, once per process (thread-safe). 0, or -1 with
 * err filled (UW_E_INTERNAL: "unable to load libcurl: ..."), every time. */
int uw_curl_init(uw_err *err);

/* The process's share object (after uw_curl_init succeeded), or NULL when
 * libcurl could not make one: TLS sessions and DNS answers are shared by
 * every handle of the process, whatever its thread or its client, so that a
 * client's new connection to a server that any client of the process has
 * talked to resumes the TLS session (an abbreviated handshake, without the
 * server's certificate chain and its signature) instead of a full one. A
 * resumed session was verified when it was made, against the same CA file
 * and host name: libcurl only offers a cached session to a connection with
 * the same scheme, host, port and TLS settings (verification included).
 * Connections themselves are not shared across clients: libcurl does not
 * support a shared connection cache used by concurrent threads, and each
 * client's multi handle already reuses its own connections. */
CURLSH *uw_curl_share(void);

#endif
