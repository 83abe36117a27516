// SHA-256 compression (FIPS 180-4 §6.2.2) with a saveable state. Three implementations of the same function:
// portable C, x86-64 SHA extensions (SHA-NI, selected at run time by CPUID) and ARMv8 SHA2 (compile time).
#include "rch_sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

void rch_sha256_init(uint32_t state[8]) {
    static const uint32_t H0[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(state, H0, sizeof H0);
}

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

void rch_sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
    uint32_t w[64];
    for (; blocks > 0; blocks--, data += 64) {
        for (int t = 0; t < 16; t++) {
            w[t] = (uint32_t)data[4 * t] << 24 | (uint32_t)data[4 * t + 1] << 16 | (uint32_t)data[4 * t + 2] << 8 |
                   (uint32_t)data[4 * t + 3];
        }
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ROTR(w[t - 15], 7) ^ ROTR(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ROTR(w[t - 2], 17) ^ ROTR(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
            uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

// Four rounds per group i (0–15); message words rotate through m[0..3] (Intel's SHA extensions white paper).
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks_shani(uint32_t state[8], const uint8_t *data,
                                                                     size_t blocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i state1 = _mm_loadu_si128((const __m128i *)&state[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                 // CDAB
    state1 = _mm_shuffle_epi32(state1, 0x1B);           // EFGH
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);   // ABEF
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);        // CDGH
    for (; blocks > 0; blocks--, data += 64) {
        __m128i abef = state0, cdgh = state1;
        __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 0)), mask);
        __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16)), mask);
        __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 32)), mask);
        __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 48)), mask);
        // Group i: rounds 4i..4i+3 with message words `cur`; `next` gets msg2 (groups 3–14), `prev` (the group
        // i+3 words) gets msg1 (groups 1–12).
#define QROUND(i, cur, next, prev)                                                    \
    do {                                                                              \
        __m128i msg = _mm_add_epi32(cur, _mm_loadu_si128((const __m128i *)&K[4 * (i)])); \
        state1 = _mm_sha256rnds2_epu32(state1, state0, msg);                          \
        if ((i) >= 3 && (i) <= 14) {                                                  \
            next = _mm_add_epi32(next, _mm_alignr_epi8(cur, prev, 4));                \
            next = _mm_sha256msg2_epu32(next, cur);                                   \
        }                                                                             \
        msg = _mm_shuffle_epi32(msg, 0x0E);                                           \
        state0 = _mm_sha256rnds2_epu32(state0, state1, msg);                          \
        if ((i) >= 1 && (i) <= 12) { prev = _mm_sha256msg1_epu32(prev, cur); }       \
    } while (0)
        QROUND(0, m0, m1, m3);
        QROUND(1, m1, m2, m0);
        QROUND(2, m2, m3, m1);
        QROUND(3, m3, m0, m2);
        QROUND(4, m0, m1, m3);
        QROUND(5, m1, m2, m0);
        QROUND(6, m2, m3, m1);
        QROUND(7, m3, m0, m2);
        QROUND(8, m0, m1, m3);
        QROUND(9, m1, m2, m0);
        QROUND(10, m2, m3, m1);
        QROUND(11, m3, m0, m2);
        QROUND(12, m0, m1, m3);
        QROUND(13, m1, m2, m0);
        QROUND(14, m2, m3, m1);
        QROUND(15, m3, m0, m2);
#undef QROUND
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
    }
    tmp = _mm_shuffle_epi32(state0, 0x1B);        // FEBA
    state1 = _mm_shuffle_epi32(state1, 0xB1);     // DCHG
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);  // DCBA
    state1 = _mm_alignr_epi8(state1, tmp, 8);     // ABEF -> HGFE
    _mm_storeu_si128((__m128i *)&state[0], state0);
    _mm_storeu_si128((__m128i *)&state[4], state1);
}

// Two states over the same blocks (a file's digest and the tar stream's, whose data is the same bytes at a
// 64-byte aligned offset): the message schedule is computed once and the two states' rounds interleave, so
// the SHA unit works on one while the other's previous round completes.
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks2_shani(uint32_t sa[8], uint32_t sb[8],
                                                                      const uint8_t *data, size_t blocks) {
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i a0, a1, b0, b1, tmp;
    tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&sa[0]), 0xB1);
    a1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&sa[4]), 0x1B);
    a0 = _mm_alignr_epi8(tmp, a1, 8);
    a1 = _mm_blend_epi16(a1, tmp, 0xF0);
    tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&sb[0]), 0xB1);
    b1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&sb[4]), 0x1B);
    b0 = _mm_alignr_epi8(tmp, b1, 8);
    b1 = _mm_blend_epi16(b1, tmp, 0xF0);
    for (; blocks > 0; blocks--, data += 64) {
        __m128i sa0 = a0, sa1 = a1, sb0 = b0, sb1 = b1;
        __m128i m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 0)), mask);
        __m128i m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16)), mask);
        __m128i m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 32)), mask);
        __m128i m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 48)), mask);
#define QROUND2(i, cur, next, prev)                                                   \
    do {                                                                              \
        __m128i msg = _mm_add_epi32(cur, _mm_loadu_si128((const __m128i *)&K[4 * (i)])); \
        a1 = _mm_sha256rnds2_epu32(a1, a0, msg);                                      \
        b1 = _mm_sha256rnds2_epu32(b1, b0, msg);                                      \
        if ((i) >= 3 && (i) <= 14) {                                                  \
            next = _mm_add_epi32(next, _mm_alignr_epi8(cur, prev, 4));                \
            next = _mm_sha256msg2_epu32(next, cur);                                   \
        }                                                                             \
        msg = _mm_shuffle_epi32(msg, 0x0E);                                           \
        a0 = _mm_sha256rnds2_epu32(a0, a1, msg);                                      \
        b0 = _mm_sha256rnds2_epu32(b0, b1, msg);                                      \
        if ((i) >= 1 && (i) <= 12) { prev = _mm_sha256msg1_epu32(prev, cur); }       \
    } while (0)
        QROUND2(0, m0, m1, m3);
        QROUND2(1, m1, m2, m0);
        QROUND2(2, m2, m3, m1);
        QROUND2(3, m3, m0, m2);
        QROUND2(4, m0, m1, m3);
        QROUND2(5, m1, m2, m0);
        QROUND2(6, m2, m3, m1);
        QROUND2(7, m3, m0, m2);
        QROUND2(8, m0, m1, m3);
        QROUND2(9, m1, m2, m0);
        QROUND2(10, m2, m3, m1);
        QROUND2(11, m3, m0, m2);
        QROUND2(12, m0, m1, m3);
        QROUND2(13, m1, m2, m0);
        QROUND2(14, m2, m3, m1);
        QROUND2(15, m3, m0, m2);
#undef QROUND2
        a0 = _mm_add_epi32(a0, sa0);
        a1 = _mm_add_epi32(a1, sa1);
        b0 = _mm_add_epi32(b0, sb0);
        b1 = _mm_add_epi32(b1, sb1);
    }
    tmp = _mm_shuffle_epi32(a0, 0x1B);
    a1 = _mm_shuffle_epi32(a1, 0xB1);
    _mm_storeu_si128((__m128i *)&sa[0], _mm_blend_epi16(tmp, a1, 0xF0));
    _mm_storeu_si128((__m128i *)&sa[4], _mm_alignr_epi8(a1, tmp, 8));
    tmp = _mm_shuffle_epi32(b0, 0x1B);
    b1 = _mm_shuffle_epi32(b1, 0xB1);
    _mm_storeu_si128((__m128i *)&sb[0], _mm_blend_epi16(tmp, b1, 0xF0));
    _mm_storeu_si128((__m128i *)&sb[4], _mm_alignr_epi8(b1, tmp, 8));
}

static int has_shani(void) {
    static int cached = -1;
    if (cached < 0) {
        unsigned a, b, c, d;
        int ok = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) && (c & (1u << 9));
        ok = ok && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
        cached = ok;
    }
    return cached;
}

void rch_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
    if (has_shani()) {
        blocks_shani(state, data, blocks);
    } else {
        rch_sha256_blocks_portable(state, data, blocks);
    }
}

void rch_sha256_blocks2(uint32_t a[8], uint32_t b[8], const uint8_t *data, size_t blocks) {
    if (has_shani()) {
        blocks2_shani(a, b, data, blocks);
    } else {
        rch_sha256_blocks_portable(a, data, blocks);
        rch_sha256_blocks_portable(b, data, blocks);
    }
}

const char *rch_sha256_implementation(void) { return has_shani() ? "sha-ni" : "portable"; }

#elif defined(__aarch64__) && defined(__ARM_FEATURE_SHA2)
#include <arm_neon.h>

void rch_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
    uint32x4_t state0 = vld1q_u32(&state[0]);
    uint32x4_t state1 = vld1q_u32(&state[4]);
    for (; blocks > 0; blocks--, data += 64) {
        uint32x4_t abcd = state0, efgh = state1;
        uint32x4_t m[4];
        for (int i = 0; i < 4; i++) {
            m[i] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(data + 16 * i)));
        }
        for (int i = 0; i < 16; i++) {
            uint32x4_t w = vaddq_u32(m[i & 3], vld1q_u32(&K[4 * i]));
            if (i < 12) { m[i & 3] = vsha256su0q_u32(m[i & 3], m[(i + 1) & 3]); }
            uint32x4_t prev = state0;
            state0 = vsha256hq_u32(state0, state1, w);
            state1 = vsha256h2q_u32(state1, prev, w);
            if (i < 12) { m[i & 3] = vsha256su1q_u32(m[i & 3], m[(i + 2) & 3], m[(i + 3) & 3]); }
        }
        state0 = vaddq_u32(state0, abcd);
        state1 = vaddq_u32(state1, efgh);
    }
    vst1q_u32(&state[0], state0);
    vst1q_u32(&state[4], state1);
}

void rch_sha256_blocks2(uint32_t a[8], uint32_t b[8], const uint8_t *data, size_t blocks) {
    rch_sha256_blocks(a, data, blocks);
    rch_sha256_blocks(b, data, blocks);
}

const char *rch_sha256_implementation(void) { return "armv8"; }

#else

void rch_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
    rch_sha256_blocks_portable(state, data, blocks);
}

void rch_sha256_blocks2(uint32_t a[8], uint32_t b[8], const uint8_t *data, size_t blocks) {
    rch_sha256_blocks_portable(a, data, blocks);
    rch_sha256_blocks_portable(b, data, blocks);
}

const char *rch_sha256_implementation(void) { return "portable"; }

#endif
