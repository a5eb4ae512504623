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

static void drop_set(struct reasm_set *s, uint64_t *drops, int reason) {
    s->used = 0;
    if (drops)
        drops[reason]++;
}

static struct reasm_set *open_set(struct reasm *r, uint32_t owner, uint64_t counter,
                                  uint8_t count, double now, uint64_t *drops) {
    struct reasm_set *oldest = NULL, *free_set = NULL, *oldest_own = NULL;
    unsigned own = 0;
    for (int i = 0; i < REASM_SETS; i++) {
        struct reasm_set *s = &r->sets[i];
        if (s->used && now - s->created >= r->timeout)
            drop_set(s, drops, DROP_REASSEMBLY_TIMEOUT);
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
        drop_set(s, drops, DROP_REASSEMBLY_EVICTED);
    } else if (s == NULL) {
        s = oldest;
        drop_set(s, drops, DROP_REASSEMBLY_EVICTED);
    }
    if (s->buf == NULL && (s->buf = malloc(REASM_MAX_BYTES)) == NULL)
        return NULL;
    s->used = 1;
    s->owner = owner;
    s->counter = counter;
    s->count = count;
    s->size = 0;
    s->last_len = 0;
    s->last_early = 0;
    s->seen[0] = s->seen[1] = 0;
    s->nseen = 0;
    s->created = now;
    return s;
}

const uint8_t *reasm_add(struct reasm *r, uint32_t owner, uint64_t counter, uint8_t index,
                         uint8_t count, const uint8_t *chunk, size_t n, double now, size_t *len,
                         uint64_t *drops) {
    struct reasm_set *s = NULL;
    if (count < 2 || index >= count)
        return NULL; /* a single-chunk message is never reassembled */
    for (int i = 0; i < REASM_SETS; i++) {
        if (r->sets[i].used && r->sets[i].owner == owner && r->sets[i].counter == counter) {
            s = &r->sets[i];
            break;
        }
    }
    if (s != NULL && s->count != count) {
        drops[DROP_REASSEMBLY_MISMATCH]++;
        return NULL;
    }
    if (s == NULL && (s = open_set(r, owner, counter, count, now, drops)) == NULL)
        return NULL;
    uint64_t bit = (uint64_t)1 << (index % 64);
    if (s->seen[index / 64] & bit) {
        drops[DROP_REASSEMBLY_DUPLICATE]++;
        return NULL;
    }
    if (index == count - 1) { /* the last chunk may be shorter */
        if (s->size) {
            if (n > s->size) {
                drop_set(s, drops, DROP_REASSEMBLY_BAD_SIZES);
                return NULL;
            }
            memcpy(s->buf + (size_t)index * s->size, chunk, n);
        } else {
            if (n > REASM_EARLY_LAST) {
                drop_set(s, drops, DROP_REASSEMBLY_BAD_SIZES);
                return NULL;
            }
            memcpy(s->early, chunk, n);
            s->last_early = 1;
        }
        s->last_len = n;
    } else {
        if (!s->size) {
            if ((s->last_early && s->last_len > n) || n == 0 ||
                (size_t)count * n > REASM_MAX_BYTES) {
                drop_set(s, drops, DROP_REASSEMBLY_BAD_SIZES);
                return NULL;
            }
            s->size = n;
            if (s->last_early) {
                memcpy(s->buf + (size_t)(count - 1) * n, s->early, s->last_len);
                s->last_early = 0;
            }
        } else if (n != s->size) {
            drop_set(s, drops, DROP_REASSEMBLY_BAD_SIZES);
            return NULL;
        }
        memcpy(s->buf + (size_t)index * n, chunk, n);
    }
    s->seen[index / 64] |= bit;
    if (++s->nseen < count)
        return NULL;
    s->used = 0; /* complete: the buffer stays as it is until the set is reused */
    *len = (size_t)(count - 1) * s->size + s->last_len;
    return s->buf;
}

void reasm_forget(struct reasm *r, uint32_t owner) {
    for (int i = 0; i < REASM_SETS; i++)
        if (r->sets[i].used && r->sets[i].owner == owner)
            r->sets[i].used = 0;
}
