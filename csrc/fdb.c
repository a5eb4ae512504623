/* An open-addressing hash table of (network, MAC) -> node, rebuilt whole
 * when a netmap changes a network (rare), looked up per frame (often). */
#include "fdb.h"

#include <stdlib.h>
#include <string.h>

void fdb_init(struct fdb *f) { memset(f, 0, sizeof(*f)); }

void fdb_free(struct fdb *f) {
    free(f->buckets);
    memset(f, 0, sizeof(*f));
}

static uint32_t hash(uint32_t vni, const uint8_t mac[6]) {
    uint64_t h = vni * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 6; i++)
        h = (h ^ mac[i]) * 0x100000001B3ull;
    return (uint32_t)(h ^ (h >> 29));
}

static int insert(struct fdb_entry *b, uint32_t mask, uint32_t vni, const uint8_t *mac,
                  int32_t node) {
    for (uint32_t i = hash(vni, mac) & mask;; i = (i + 1) & mask) {
        if (b[i].node == FDB_NONE || (b[i].vni == vni && memcmp(b[i].mac, mac, 6) == 0)) {
            int fresh = b[i].node == FDB_NONE;
            b[i].vni = vni;
            memcpy(b[i].mac, mac, 6);
            b[i].node = node;
            return fresh;
        }
    }
}

int fdb_set_network(struct fdb *f, uint32_t vni, const uint8_t *macs, const int32_t *nodes,
                    uint32_t n) {
    uint32_t keep = 0;
    for (uint32_t i = 0; f->buckets && i <= f->mask; i++)
        if (f->buckets[i].node != FDB_NONE && f->buckets[i].vni != vni)
            keep++;
    uint32_t size = 16;
    while (size < 2 * (keep + n) + 2)
        size *= 2;
    struct fdb_entry *b = malloc(sizeof(*b) * size);
    if (b == NULL)
        return -1;
    for (uint32_t i = 0; i < size; i++)
        b[i].node = FDB_NONE;
    uint32_t used = 0;
    for (uint32_t i = 0; f->buckets && i <= f->mask; i++) {
        struct fdb_entry *e = &f->buckets[i];
        if (e->node != FDB_NONE && e->vni != vni)
            used += insert(b, size - 1, e->vni, e->mac, e->node);
    }
    for (uint32_t i = 0; i < n; i++)
        used += insert(b, size - 1, vni, macs + 6 * i, nodes[i]);
    free(f->buckets);
    f->buckets = b;
    f->mask = size - 1;
    f->used = used;
    return 0;
}

int32_t fdb_lookup(const struct fdb *f, uint32_t vni, const uint8_t mac[6]) {
    if (f->buckets == NULL)
        return FDB_NONE;
    for (uint32_t i = hash(vni, mac) & f->mask;; i = (i + 1) & f->mask) {
        const struct fdb_entry *e = &f->buckets[i];
        if (e->node == FDB_NONE)
            return FDB_NONE;
        if (e->vni == vni && memcmp(e->mac, mac, 6) == 0)
            return e->node;
    }
}
