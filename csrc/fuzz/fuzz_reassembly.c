/* libFuzzer target: reassembly on any sequence of chunks from several
 * owners, parity and copies of last chunks among them: no out-of-bounds
 * access, a completed message is no longer than a set holds, and the pool's
 * bounds hold. */
#include <stdlib.h>
#include <string.h>

#include "../drops.h"
#include "../reassembly.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct reasm r;
    static int ready;
    static uint8_t chunk[4096];
    uint64_t drops[DROP_COUNT] = {0};
    if (!ready) {
        reasm_init(&r, 0.5);
        ready = 1;
    }
    double now = 0;
    while (size >= 6) {
        uint32_t owner = data[0] & 3;
        int redundant = data[0] & 0x80;
        uint64_t counter = data[1] & 15;
        uint8_t count = data[2] & 127;
        uint8_t index = data[3] & 127;
        size_t n = ((size_t)data[4] << 4) | (data[5] >> 4);
        now += (data[5] & 15) * 0.05;
        data += 6;
        size -= 6;
        memset(chunk, (int)counter, n);
        size_t len = 0;
        int spare;
        const uint8_t *whole =
            redundant
                ? reasm_add_redundant(&r, owner, counter, index, count, chunk, n, now, &len,
                                      drops, &spare)
                : reasm_add(&r, owner, counter, index, count, chunk, n, now, &len, drops);
        if (whole != NULL && (len > REASM_MAX_BYTES || count < 2))
            abort();
        unsigned per_owner[4] = {0};
        for (int i = 0; i < REASM_SETS; i++)
            if (r.sets[i].used && ++per_owner[r.sets[i].owner & 3] > REASM_PER_OWNER)
                abort();
    }
    for (uint32_t o = 0; o < 4; o++)
        reasm_forget(&r, o);
    return 0;
}
