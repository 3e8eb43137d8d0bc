/* The run-time loader (core/dl.h) against the real libcurl the build needs:
 * the first soname that opens wins, every symbol is resolved, and failures
 * (no library, a missing symbol) leave no slot set and say why in one line
 * with the caller's code and hint. */
#include <stdio.h>
#include <string.h>

#include "core/dl.h"
#include "unit.h"

static void *version, *init, *bogus;

int main(void)
{
    uw_err err;
    uw_err_clear(&err);

    uw_t_section("load: first soname that opens, all symbols");
    const char *const names[] = {"libuw-test-absent.so.9", "libcurl.so.4", NULL};
    uw_dl_lib lib = {"libcurl", names, "install libcurl4", UW_E_INTERNAL};
    uw_dl_sym ok[] = {{&version, "curl_version"}, {&init, "curl_easy_init"}};
    CHECK_OK(uw_dl_load(&lib, ok, 2, &err) == 0, err);
    CHECK(version != NULL && init != NULL);

    uw_t_section("failures: one line, caller's code, no slot set");
    const char *const absent[] = {"libuw-test-absent.so.9", NULL};
    uw_dl_lib none = {"libabsent", absent, "install libabsent9", UW_E_PG};
    version = init = NULL;
    CHECK_FAIL_CODE(uw_dl_load(&none, ok, 2, &err) < 0, err, UW_E_PG);
    CHECK_CONTAINS(err.msg, "unable to load libabsent: libuw-test-absent.so.9");
    CHECK_CONTAINS(err.msg, "(install libabsent9)");
    CHECK(strchr(err.msg, '\n') == NULL);
    CHECK(version == NULL && init == NULL);

    uw_dl_sym partial[] = {{&version, "curl_version"}, {&bogus, "curl_no_such_function"}};
    CHECK_FAIL_CODE(uw_dl_load(&lib, partial, 2, &err) < 0, err, UW_E_INTERNAL);
    CHECK_STR(
        err.msg,
        "unable to load libcurl: libcurl.so.4 lacks curl_no_such_function (install libcurl4)");
    CHECK(version == NULL && bogus == NULL);
    return uw_t_done("test_dl");
}
