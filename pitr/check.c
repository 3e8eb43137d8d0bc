#include "pitr.h"
int pitr_check(const uw_config *cfg, uw_err *err)
{
    (void)cfg;
    return uw_fail(err, UW_E_INTERNAL, "not yet");
}
