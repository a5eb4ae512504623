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
#define REASM_PARITY_BYTES (REASM_MAX_BYTES / 2) /* parity chunks of one set, at most */
#define REASM_RESCUED 64                   /* messages completed with redundancy, remembered */
#define FEC_GROUP 8                        /* full chunks per parity chunk */

struct reasm_set {
    int used;
    uint32_t owner; /* the session's local index */
    uint64_t counter;
    uint8_t count;
    size_t size;     /* every chunk but the last; 0 until one arrives */
    size_t last_len;
    int last_early;  /* the last chunk is in `early`, not yet in buf */
    uint64_t seen[2];
    uint64_t redundant[2]; /* chunks rebuilt from parity or come as a copy */
    uint32_t parity_have;  /* bit g: group g's parity is in */
    unsigned nseen;
    double created;
    uint8_t *buf;      /* REASM_MAX_BYTES of chunks, then the parity chunks */
    uint8_t early[REASM_EARLY_LAST];
};

/* Told of every set lost (timed out, evicted) and every chunk rebuilt from
 * parity, for the owner's session: it asks its peer for parity meanwhile. */
typedef void (*reasm_event)(void *ctx, uint32_t owner, double now, int repaired);

struct reasm {
    struct reasm_set sets[REASM_SETS];
    double timeout;
    reasm_event on_event;
    void *ctx;
    struct {
        uint32_t owner;
        uint64_t counter;
    } rescued[REASM_RESCUED];
    unsigned rescued_next;
};

/* Parity chunks sent with a message of `count` chunks: one per FEC_GROUP
 * full chunks (the short last chunk is sent twice instead); none under 3. */
static inline unsigned fec_groups(unsigned count) {
    return count >= 3 ? (count - 1 + FEC_GROUP - 1) / FEC_GROUP : 0;
}

void reasm_init(struct reasm *r, double timeout);
void reasm_free(struct reasm *r);
/* Store one chunk. The whole ciphertext once every chunk is in (valid until
 * the next call), else NULL. drops is indexed by enum drop_reason. */
const uint8_t *reasm_add(struct reasm *r, uint32_t owner, uint64_t counter, uint8_t index,
                         uint8_t count, const uint8_t *chunk, size_t n, double now, size_t *len,
                         uint64_t *drops);
/* A parity chunk (index < fec_groups(count)) or the copy of a last chunk
 * (index count - 1): the whole message once it can be rebuilt, else NULL.
 * *spare is set when it came too late to matter (counted, not a drop). */
const uint8_t *reasm_add_redundant(struct reasm *r, uint32_t owner, uint64_t counter,
                                   uint8_t index, uint8_t count, const uint8_t *chunk, size_t n,
                                   double now, size_t *len, uint64_t *drops, int *spare);
/* Whether message `counter` was completed with redundancy: its own chunks may
 * still arrive, and are spares, not replays. */
int reasm_was_rescued(const struct reasm *r, uint32_t owner, uint64_t counter);
/* A session went away: its sets with it. */
void reasm_forget(struct reasm *r, uint32_t owner);

#endif
