/* The sliding replay window over 64-bit message counters: 8192 wide, as
 * skylan.tunnel.replay (chunked super-frames and several lanes reorder a
 * lot). A ring bitmap indexed by counter, so advancing the top clears only
 * the words it passes instead of shifting the whole window. */
#ifndef SKYLAN_REPLAY_H
#define SKYLAN_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#define REPLAY_WINDOW 8192
#define REPLAY_WORDS (REPLAY_WINDOW / 64)

struct replay {
    uint64_t top;  /* highest counter accepted; meaningless while empty */
    bool empty;
    uint64_t bits[REPLAY_WORDS];
};

void replay_init(struct replay *r);
/* Whether counter would be accepted: new, and not older than the window. */
bool replay_check(const struct replay *r, uint64_t counter);
/* Mark it seen, only once the message authenticated; false for a replay. */
bool replay_accept(struct replay *r, uint64_t counter);

#endif
