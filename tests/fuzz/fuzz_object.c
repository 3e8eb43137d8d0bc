/* A repository object, unencrypted: header, zstd payload, trailer. */
#include "fuzz_object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_object(NULL, data, size);
    return 0;
}
