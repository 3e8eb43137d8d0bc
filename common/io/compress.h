/* Compressors are a table: adding one means adding an entry in compress.c with a
 * new never-reused id; commands only see names. */
#ifndef UW_COMPRESS_H
#define UW_COMPRESS_H

#include <stdint.h>

#include "io/sink.h"

typedef struct {
    const char *name; /* option value: "zstd" */
    uint8_t id;       /* stored in object headers */
    const char *ext;  /* repository file suffix: ".zst", "" */
    /* threads > 1: compress on that many worker threads (the caller's thread
     * keeps feeding and hashing meanwhile). */
    uw_sink *(*compress)(int level, int threads, uw_sink *next);
    uw_sink *(*decompress)(uw_sink *next);
} uw_compressor;

const uw_compressor *uw_compressor_by_name(const char *name);
const uw_compressor *uw_compressor_by_id(uint8_t id);
/* Registers the compressors' names as the values of compress-type. A
 * constructor: runs before main(); CMakeLists.txt makes every program keep it. */
void uw_compress_register_names(void);
/* Free the compression contexts kept warm for the next file: the part
 * workers' pool and the calling thread's own (a long-lived host process
 * unloading, or a test counting leaks). */
void uw_compress_release_cache(void);

#endif
