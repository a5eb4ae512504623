/* Reassembly sets: chunk i of a message goes to buf + i * size. */
#include "reassembly.h"

#include <stdlib.h>
#include <string.h>

#include "drops.h"

void reasm_init(struct reasm *r, double timeout) {
    memset(r, 0, sizeof(*r));
    r->timeout = timeout;
}

void reasm_free(struct reasm *r) {
    for (int i = 0; i < REASM_SETS; i++) {
        free(r->sets[i].buf);
        r->sets[i].buf = NULL;
    }
}

static void drop_set(struct reasm *r, struct reasm_set *s, uint64_t *drops, int reason,
                     double now) {
    s->used = 0;
    if (drops)
        drops[reason]++;
    if (r->on_event && reason != DROP_REASSEMBLY_BAD_SIZES && reason != DROP_REASSEMBLY_MISMATCH)
        r->on_event(r->ctx, s->owner, now, 0);
}

static struct reasm_set *open_set(struct reasm *r, uint32_t owner, uint64_t counter,
                                  uint8_t count, double now, uint64_t *drops) {
    struct reasm_set *oldest = NULL, *free_set = NULL, *oldest_own = NULL;
    unsigned own = 0;
    for (int i = 0; i < REASM_SETS; i++) {
        struct reasm_set *s = &r->sets[i];
        if (s->used && now - s->created >= r->timeout)
            drop_set(r, s, drops, DROP_REASSEMBLY_TIMEOUT, now);
        if (!s->used) {
            if (free_set == NULL)
                free_set = s;
            continue;
        }
        if (oldest == NULL || s->created < oldest->created)
            oldest = s;
        if (s->owner == owner) {
            own++;
            if (oldest_own == NULL || s->created < oldest_own->created)
                oldest_own = s;
        }
    }
    struct reasm_set *s = free_set;
    if (own >= REASM_PER_OWNER) { /* one peer may not take the pool from the others */
        s = oldest_own;
        drop_set(r, s, drops, DROP_REASSEMBLY_EVICTED, now);
    } else if (s == NULL) {
        s = oldest;
        drop_set(r, s, drops, DROP_REASSEMBLY_EVICTED, now);
    }
    if (s->buf == NULL && (s->buf = malloc(REASM_MAX_BYTES + REASM_PARITY_BYTES)) == NULL)
        return NULL;
    s->used = 1;
    s->owner = owner;
    s->counter = counter;
    s->count = count;
    s->size = 0;
    s->last_len = 0;
    s->last_early = 0;
    s->seen[0] = s->seen[1] = 0;
    s->redundant[0] = s->redundant[1] = 0;
    s->parity_have = 0;
    s->nseen = 0;
    s->created = now;
    return s;
}

static struct reasm_set *find(struct reasm *r, uint32_t owner, uint64_t counter) {
    for (int i = 0; i < REASM_SETS; i++)
        if (r->sets[i].used && r->sets[i].owner == owner && r->sets[i].counter == counter)
            return &r->sets[i];
    return NULL;
}

static int has(const uint64_t bits[2], unsigned i) { return (bits[i / 64] >> (i % 64)) & 1; }
static void mark(uint64_t bits[2], unsigned i) { bits[i / 64] |= (uint64_t)1 << (i % 64); }

/* The set for a chunk of message `counter`, opened if new; NULL if the
 * chunk must be dropped (counted). */
static struct reasm_set *admit(struct reasm *r, uint32_t owner, uint64_t counter, uint8_t count,
                               double now, uint64_t *drops) {
    struct reasm_set *s = find(r, owner, counter);
    if (s != NULL && s->count != count) {
        drops[DROP_REASSEMBLY_MISMATCH]++;
        return NULL;
    }
    return s ? s : open_set(r, owner, counter, count, now, drops);
}

/* The size of every chunk but the last, learned from a chunk of n bytes. */
static int learn_size(struct reasm *r, struct reasm_set *s, size_t n, double now,
                      uint64_t *drops) {
    if ((s->last_early && s->last_len > n) || n == 0 || (size_t)s->count * n > REASM_MAX_BYTES) {
        drop_set(r, s, drops, DROP_REASSEMBLY_BAD_SIZES, now);
        return -1;
    }
    s->size = n;
    if (s->last_early) {
        memcpy(s->buf + (size_t)(s->count - 1) * n, s->early, s->last_len);
        s->last_early = 0;
    }
    return 0;
}

/* Store chunk `index`; -1 if the set was dropped for it. */
static int store(struct reasm *r, struct reasm_set *s, uint8_t index, const uint8_t *chunk,
                 size_t n, double now, uint64_t *drops) {
    uint8_t count = s->count;
    if (index == count - 1) { /* the last chunk may be shorter */
        if (s->size) {
            if (n > s->size) {
                drop_set(r, s, drops, DROP_REASSEMBLY_BAD_SIZES, now);
                return -1;
            }
            memcpy(s->buf + (size_t)index * s->size, chunk, n);
        } else {
            if (n > REASM_EARLY_LAST) {
                drop_set(r, s, drops, DROP_REASSEMBLY_BAD_SIZES, now);
                return -1;
            }
            memcpy(s->early, chunk, n);
            s->last_early = 1;
        }
        s->last_len = n;
    } else {
        if (!s->size) {
            if (learn_size(r, s, n, now, drops) != 0)
                return -1;
        } else if (n != s->size) {
            drop_set(r, s, drops, DROP_REASSEMBLY_BAD_SIZES, now);
            return -1;
        }
        memcpy(s->buf + (size_t)index * n, chunk, n);
    }
    mark(s->seen, index);
    s->nseen++;
    return 0;
}

/* Rebuild every full chunk that is the only one missing from a group whose
 * parity is in. */
static void repair(struct reasm *r, struct reasm_set *s, double now) {
    unsigned groups = fec_groups(s->count), full = s->count - 1u;
    for (unsigned g = 0; g < groups && s->size; g++) {
        if (!((s->parity_have >> g) & 1))
            continue;
        int missing = -1, several = 0;
        for (unsigned i = g; i < full; i += groups) {
            if (!has(s->seen, i)) {
                several |= missing >= 0;
                missing = (int)i;
            }
        }
        if (missing < 0 || several)
            continue;
        uint8_t *row = s->buf + (size_t)missing * s->size;
        memcpy(row, s->buf + REASM_MAX_BYTES + (size_t)g * s->size, s->size);
        for (unsigned i = g; i < full; i += groups) {
            if ((int)i == missing)
                continue;
            const uint8_t *other = s->buf + (size_t)i * s->size;
            for (size_t k = 0; k < s->size; k++)
                row[k] ^= other[k];
        }
        mark(s->seen, (unsigned)missing);
        mark(s->redundant, (unsigned)missing);
        s->nseen++;
        if (r->on_event)
            r->on_event(r->ctx, s->owner, now, 1);
    }
}

/* The whole message if the set is complete (the set is closed), else NULL. */
static const uint8_t *finish(struct reasm *r, struct reasm_set *s, size_t *len) {
    if (s->nseen < s->count)
        return NULL;
    s->used = 0; /* the buffer stays as it is until the set is reused */
    if (s->redundant[0] | s->redundant[1]) {
        r->rescued[r->rescued_next].owner = s->owner;
        r->rescued[r->rescued_next].counter = s->counter;
        r->rescued_next = (r->rescued_next + 1) % REASM_RESCUED;
    }
    *len = (size_t)(s->count - 1) * s->size + s->last_len;
    return s->buf;
}

const uint8_t *reasm_add(struct reasm *r, uint32_t owner, uint64_t counter, uint8_t index,
                         uint8_t count, const uint8_t *chunk, size_t n, double now, size_t *len,
                         uint64_t *drops) {
    if (count < 2 || index >= count)
        return NULL; /* a single-chunk message is never reassembled */
    struct reasm_set *s = admit(r, owner, counter, count, now, drops);
    if (s == NULL)
        return NULL;
    if (has(s->seen, index)) {
        if (has(s->redundant, index)) /* redundancy was quicker: not a duplicate */
            s->redundant[index / 64] &= ~((uint64_t)1 << (index % 64));
        else
            drops[DROP_REASSEMBLY_DUPLICATE]++;
        return NULL;
    }
    if (store(r, s, index, chunk, n, now, drops) != 0)
        return NULL;
    if (s->parity_have)
        repair(r, s, now);
    return finish(r, s, len);
}

const uint8_t *reasm_add_redundant(struct reasm *r, uint32_t owner, uint64_t counter,
                                   uint8_t index, uint8_t count, const uint8_t *chunk, size_t n,
                                   double now, size_t *len, uint64_t *drops, int *spare) {
    *spare = 0;
    unsigned groups = fec_groups(count);
    if (count < 3 || (index != count - 1 && index >= groups))
        return NULL;
    struct reasm_set *s = find(r, owner, counter);
    if (s != NULL && (index == count - 1 ? has(s->seen, index) : (int)((s->parity_have >> index) & 1))) {
        *spare = 1;
        return NULL;
    }
    if ((s = admit(r, owner, counter, count, now, drops)) == NULL)
        return NULL;
    if (index == count - 1) { /* the copy of the last chunk */
        if (store(r, s, index, chunk, n, now, drops) != 0)
            return NULL;
        mark(s->redundant, index);
    } else {
        if (!s->size && learn_size(r, s, n, now, drops) != 0)
            return NULL;
        if (n != s->size || (size_t)(index + 1) * n > REASM_PARITY_BYTES) {
            drop_set(r, s, drops, DROP_REASSEMBLY_BAD_SIZES, now);
            return NULL;
        }
        memcpy(s->buf + REASM_MAX_BYTES + (size_t)index * n, chunk, n);
        s->parity_have |= (uint32_t)1 << index;
    }
    repair(r, s, now);
    return finish(r, s, len);
}

int reasm_was_rescued(const struct reasm *r, uint32_t owner, uint64_t counter) {
    for (int i = 0; i < REASM_RESCUED; i++)
        if (r->rescued[i].owner == owner && r->rescued[i].counter == counter)
            return 1;
    return 0;
}

void reasm_forget(struct reasm *r, uint32_t owner) {
    for (int i = 0; i < REASM_SETS; i++)
        if (r->sets[i].used && r->sets[i].owner == owner)
            r->sets[i].used = 0;
}
