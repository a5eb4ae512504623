/* The table of sessions by receiver index: every datagram looks one up. */
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "core.h"

static uint32_t slot_of(uint32_t index, uint32_t mask) {
    return (index * 2654435761u) & mask;
}

struct session *core_session(const struct core *c, uint32_t local_index) {
    if (c->by_index == NULL)
        return NULL;
    for (uint32_t i = slot_of(local_index, c->index_mask);; i = (i + 1) & c->index_mask) {
        struct session *s = c->by_index[i];
        if (s == NULL || s->local_index == local_index)
            return s;
    }
}

static int rebuild(struct core *c, uint32_t size) {
    struct session **table = calloc(size, sizeof(*table));
    if (table == NULL)
        return -1;
    for (uint32_t i = 0; c->by_index && i <= c->index_mask; i++) {
        struct session *s = c->by_index[i];
        if (s == NULL)
            continue;
        uint32_t j = slot_of(s->local_index, size - 1);
        while (table[j] != NULL)
            j = (j + 1) & (size - 1);
        table[j] = s;
    }
    free(c->by_index);
    c->by_index = table;
    c->index_mask = size - 1;
    return 0;
}

int core_add_session(struct core *c, struct session *s) {
    core_remove_session(c, s->local_index);
    if (c->by_index == NULL || 2 * (c->sessions + 1) > c->index_mask + 1) {
        uint32_t size = 16;
        while (size < 4 * (c->sessions + 1))
            size *= 2;
        if (rebuild(c, size) != 0)
            return -1;
    }
    uint32_t j = slot_of(s->local_index, c->index_mask);
    while (c->by_index[j] != NULL)
        j = (j + 1) & c->index_mask;
    c->by_index[j] = s;
    c->sessions++;
    return 0;
}

static void free_session(struct core *c, struct session *s) {
    if (s->slot >= 0 && s->slot < CORE_MAX_SLOTS && c->slots[s->slot].send == s)
        c->slots[s->slot].send = NULL;
    reasm_forget(&c->reasm, s->local_index);
    aead_free(s->enc);
    aead_free(s->dec);
    free(s);
}

void core_remove_session(struct core *c, uint32_t local_index) {
    if (c->by_index == NULL)
        return;
    uint32_t mask = c->index_mask;
    for (uint32_t i = slot_of(local_index, mask);; i = (i + 1) & mask) {
        struct session *s = c->by_index[i];
        if (s == NULL)
            return;
        if (s->local_index != local_index)
            continue;
        c->by_index[i] = NULL;
        c->sessions--;
        free_session(c, s);
        /* re-seat the rest of the cluster so lookups still find them */
        for (uint32_t j = (i + 1) & mask; c->by_index[j] != NULL; j = (j + 1) & mask) {
            struct session *moved = c->by_index[j];
            c->by_index[j] = NULL;
            uint32_t k = slot_of(moved->local_index, mask);
            while (c->by_index[k] != NULL)
                k = (k + 1) & mask;
            c->by_index[k] = moved;
        }
        return;
    }
}
