/* What every fuzz target starts from: a core with network 42 on one "TAP",
 * this node's MAC and one peer's (node 1, slot 0), and an established
 * session with that peer under a fixed key. Header-only: each target is one
 * translation unit. */
#ifndef SKYLAN_FUZZ_FIXTURE_H
#define SKYLAN_FUZZ_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#include "../aead.h"
#include "../core.h"

#define FIXTURE_VNI 42

static const uint8_t FIXTURE_LOCAL_MAC[6] = {0x02, 0, 0, 0, 0, 1};
static const uint8_t FIXTURE_PEER_MAC[6] = {0x02, 0, 0, 0, 0, 2};

static struct session *fixture_peer(struct core *c, int tap_fd, const uint8_t key[32],
                                    uint32_t local_index, uint32_t remote_index) {
    c->ports[0] = (struct port){.used = 1, .vni = FIXTURE_VNI, .tap_fd = tap_fd};
    uint8_t macs[12];
    memcpy(macs, FIXTURE_LOCAL_MAC, 6);
    memcpy(macs + 6, FIXTURE_PEER_MAC, 6);
    int32_t nodes[2] = {FDB_LOCAL, 1};
    fdb_set_network(&c->fdb, FIXTURE_VNI, macs, nodes, 2);
    c->slots[0].used = 1;
    c->slots[0].node = 1;
    c->node_slot[1] = 0;
    struct session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        abort();
    s->local_index = local_index;
    s->remote_index = remote_index;
    s->slot = 0;
    s->enc = aead_new(key, 1);
    s->dec = aead_new(key, 0);
    s->expires = 1e18;
    replay_init(&s->replay);
    core_add_session(c, s);
    c->slots[0].send = s;
    return s;
}

/* Free whatever the core handed up to Python. */
static void fixture_drain_slow_path(struct core *c) {
    struct slow_entry e[64];
    unsigned n;
    while ((n = slowpath_take(&c->slow, e, 64)) > 0)
        for (unsigned i = 0; i < n; i++)
            free(e[i].data);
}

#endif
