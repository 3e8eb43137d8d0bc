/* Little-endian field access for the on-disk formats we read and write (our
 * object headers, block deltas, PostgreSQL WAL pages on the platforms its
 * Debian packages target), independent of the host's byte order. */
#ifndef UW_BYTES_H
#define UW_BYTES_H

#include <stdint.h>

static inline void uw_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void uw_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t uw_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t uw_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t uw_get64(const uint8_t *p)
{
    return (uint64_t)uw_get32(p) | (uint64_t)uw_get32(p + 4) << 32;
}

#endif
