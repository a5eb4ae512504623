/* Bounded reassembly of chunked messages, before authentication.
 *
 * Anyone can send chunks, so memory is fixed: a pool of REASM_SETS sets for
 * the whole core, at most REASM_PER_OWNER of them per session, each at most
 * REASM_MAX_BYTES, and a set not completed within the timeout is dropped.
 * The oldest set gives way to a new one. Every discarded set is counted. */
#ifndef SKYLAN_REASSEMBLY_H
#define SKYLAN_REASSEMBLY_H

#include <stddef.h>
#include <stdint.h>

#define REASM_SETS 64
#define REASM_PER_OWNER 8
#define REASM_MAX_BYTES (66 * 1024 + 1024) /* a 64 KB super-frame, sealed */
#define REASM_EARLY_LAST 2048              /* a last chunk held before the size is known */

struct reasm_set {
    int used;
    uint32_t owner; /* the session's local index */
    uint64_t counter;
    uint8_t count;
    size_t size;     /* every chunk but the last; 0 until one arrives */
    size_t last_len;
    int last_early;  /* the last chunk is in `early`, not yet in buf */
    uint64_t seen[2];
    unsigned nseen;
    double created;
    uint8_t *buf;
    uint8_t early[REASM_EARLY_LAST];
};

struct reasm {
    struct reasm_set sets[REASM_SETS];
    double timeout;
};

void reasm_init(struct reasm *r, double timeout);
void reasm_free(struct reasm *r);
/* Store one chunk. The whole ciphertext once every chunk is in (valid until
 * the next call), else NULL. drops is indexed by enum drop_reason. */
const uint8_t *reasm_add(struct reasm *r, uint32_t owner, uint64_t counter, uint8_t index,
                         uint8_t count, const uint8_t *chunk, size_t n, double now, size_t *len,
                         uint64_t *drops);
/* A session went away: its sets with it. */
void reasm_forget(struct reasm *r, uint32_t owner);

#endif
