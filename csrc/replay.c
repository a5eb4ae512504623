/* The replay window. Counter c lives at bit c % REPLAY_WINDOW. */
#include "replay.h"

#include <string.h>

void replay_init(struct replay *r) {
    memset(r, 0, sizeof(*r));
    r->empty = true;
}

static bool is_set(const struct replay *r, uint64_t c) {
    uint64_t bit = c % REPLAY_WINDOW;
    return (r->bits[bit / 64] >> (bit % 64)) & 1;
}

bool replay_check(const struct replay *r, uint64_t counter) {
    if (r->empty || counter > r->top)
        return true;
    if (r->top - counter >= REPLAY_WINDOW)
        return false;
    return !is_set(r, counter);
}

bool replay_accept(struct replay *r, uint64_t counter) {
    if (!r->empty && counter <= r->top) {
        if (r->top - counter >= REPLAY_WINDOW || is_set(r, counter))
            return false;
    } else {
        /* a new top: forget the counters that fall out of the window, which
         * are the ring positions top+1 .. counter (all of them if it jumps) */
        if (r->empty || counter - r->top >= REPLAY_WINDOW) {
            memset(r->bits, 0, sizeof(r->bits));
        } else {
            for (uint64_t c = r->top + 1; c <= counter; c++) {
                uint64_t bit = c % REPLAY_WINDOW;
                if (bit % 64 == 0 && counter - c >= 63) { /* a whole word at once */
                    r->bits[bit / 64] = 0;
                    c += 63;
                } else {
                    r->bits[bit / 64] &= ~((uint64_t)1 << (bit % 64));
                }
            }
        }
        r->top = counter;
        r->empty = false;
    }
    uint64_t bit = counter % REPLAY_WINDOW;
    r->bits[bit / 64] |= (uint64_t)1 << (bit % 64);
    return true;
}
