/* A repository object in an encrypted stanza: the key is fixed (the seeds were
 * written with it, by gen_corpus.c), so the header, the chunk framing and the
 * tag checks are reached; a plaintext object must be refused. */
#include "fuzz_object.h"

const uw_key fuzz_key = {{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32},
                         {0},
                         {0}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_object(&fuzz_key, data, size);
    return 0;
}
