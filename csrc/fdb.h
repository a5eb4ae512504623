/* The forwarding table Python pushes in: which node owns a MAC in which
 * network (the members' static MACs from the netmap; node 0 is this node),
 * and which peer slot carries a node's traffic. Anything not in it — a
 * learned MAC behind a gateway, a flood — is decided by Python's switch. */
#ifndef SKYLAN_FDB_H
#define SKYLAN_FDB_H

#include <stdint.h>

#define FDB_LOCAL 0
#define FDB_NONE (-1)

struct fdb_entry {
    uint32_t vni;
    uint8_t mac[6];
    int32_t node; /* FDB_NONE marks an empty bucket */
};

struct fdb {
    struct fdb_entry *buckets;
    uint32_t mask; /* buckets - 1, a power of two minus one */
    uint32_t used;
};

void fdb_init(struct fdb *f);
void fdb_free(struct fdb *f);
/* Replace network vni's entries with these (macs: n * 6 bytes). 0 or -1. */
int fdb_set_network(struct fdb *f, uint32_t vni, const uint8_t *macs, const int32_t *nodes,
                    uint32_t n);
int32_t fdb_lookup(const struct fdb *f, uint32_t vni, const uint8_t mac[6]);

#endif
