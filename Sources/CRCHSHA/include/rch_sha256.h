#ifndef RCH_SHA256_H
#define RCH_SHA256_H

#include <stddef.h>
#include <stdint.h>

/// SHA-256 (FIPS 180-4) compression whose state can be saved and resumed: the canonical tar is hashed with
/// it so that a midstate at any 64-byte boundary (every tar entry boundary is one) can be kept and a later
/// hash resumed from it. Uses the CPU's SHA instructions (x86-64 SHA-NI, checked at run time; ARMv8 SHA2)
/// and portable C otherwise.

/// The initial hash value H(0).
void rch_sha256_init(uint32_t state[8]);

/// Processes `blocks` whole 64-byte blocks of `data` into `state`.
void rch_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);

/// Processes the same `blocks` into two states `a` and `b` (two digests of one aligned piece of data, e.g. a
/// file's and the tar stream's): with SHA-NI the message schedule is shared and the rounds interleave.
void rch_sha256_blocks2(uint32_t a[8], uint32_t b[8], const uint8_t *data, size_t blocks);

/// The same with the portable code whatever the CPU (tests compare both).
void rch_sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks);

/// Which implementation rch_sha256_blocks uses: "sha-ni", "armv8" or "portable".
const char *rch_sha256_implementation(void);

#endif
