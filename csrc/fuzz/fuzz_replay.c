/* libFuzzer target: the replay window against a plain model of what it
 * must do (accept each counter once, and never one 8192 or more below the
 * highest accepted), on any sequence of 64-bit counters. */
#include <stdlib.h>
#include <string.h>

#include "../replay.h"

#define MODEL 4096

struct model { /* counters accepted, newest last; enough to judge the window */
    uint64_t seen[MODEL];
    size_t n;
    int empty;
    uint64_t top;
};

static int model_accept(struct model *m, uint64_t c) {
    if (!m->empty && c <= m->top && m->top - c >= REPLAY_WINDOW)
        return 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->seen[i] == c)
            return 0;
    if (m->n == MODEL) {
        memmove(m->seen, m->seen + 1, sizeof(m->seen[0]) * (MODEL - 1));
        m->n--;
    }
    m->seen[m->n++] = c;
    if (m->empty || c > m->top)
        m->top = c;
    m->empty = 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct replay r;
    static struct model m;
    replay_init(&r);
    m.n = 0;
    m.empty = 1;
    uint64_t base = 0;
    for (size_t i = 0; i + 3 <= size && m.n < MODEL; i += 3) {
        /* mostly small steps around a moving base, sometimes a leap */
        uint16_t delta = (uint16_t)(data[i + 1] << 8 | data[i + 2]);
        uint64_t c;
        if (data[i] == 0xff)
            base += (uint64_t)delta << 20;
        c = (data[i] & 1) ? base + delta : (base > delta ? base - delta : 0);
        if (data[i] & 2)
            base = c;
        int check = replay_check(&r, c);
        int got = replay_accept(&r, c);
        int want = model_accept(&m, c);
        if (got != want || check != want)
            abort();
    }
    return 0;
}
