// Checks Sources/CRCHSHA on the machine it runs on (scripts/check-sha256 also runs it for AArch64 under qemu):
// FIPS 180-4 vectors through the CPU's implementation and the portable one, then random messages through
// both. Exit status 0 only if everything matches.
#include "rch_sha256.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void digest(int portable, const uint8_t *msg, size_t len, char hex[65]) {
    uint32_t st[8];
    rch_sha256_init(st);
    size_t full = len / 64;
    if (portable) {
        rch_sha256_blocks_portable(st, msg, full);
    } else {
        rch_sha256_blocks(st, msg, full);
    }
    uint8_t tail[128] = {0};
    size_t rem = len - full * 64;
    memcpy(tail, msg + full * 64, rem);
    tail[rem] = 0x80;
    size_t blocks = rem + 9 <= 64 ? 1 : 2;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[blocks * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
    if (portable) {
        rch_sha256_blocks_portable(st, tail, blocks);
    } else {
        rch_sha256_blocks(st, tail, blocks);
    }
    for (int i = 0; i < 8; i++) snprintf(hex + 8 * i, 9, "%08x", st[i]);
}

int main(void) {
    static const char *vectors[][2] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    int failures = 0;
    char a[65], b[65];
    for (size_t v = 0; v < sizeof vectors / sizeof vectors[0]; v++) {
        for (int p = 0; p < 2; p++) {
            digest(p, (const uint8_t *)vectors[v][0], strlen(vectors[v][0]), a);
            if (strcmp(a, vectors[v][1]) != 0) {
                fprintf(stderr, "vector %zu (%s): %s\n", v, p ? "portable" : "fast", a);
                failures++;
            }
        }
    }
    srand(7);
    for (int n = 0; n < 500; n++) {
        size_t len = (size_t)(rand() % 4000);
        uint8_t *m = malloc(len + 1);
        for (size_t i = 0; i < len; i++) m[i] = (uint8_t)rand();
        digest(0, m, len, a);
        digest(1, m, len, b);
        if (strcmp(a, b) != 0) failures++;
        free(m);
    }
    printf("CRCHSHA %s: %s\n", rch_sha256_implementation(), failures ? "MISMATCH" : "ok");
    return failures != 0;
}
