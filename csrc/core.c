/* A core's life: its tables and buffers made and freed (no Python here, so
 * the fuzzers build the same core the extension does). */
#include "core.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "aead.h"

/* A set lost or a chunk rebuilt: the peer's path loses chunks, so ask it for
 * parity (rx.c does, with the next message from it). */
static void on_reassembly(void *ctx, uint32_t owner, double now, int repaired) {
    struct core *c = ctx;
    struct session *s = core_session(c, owner);
    if (s == NULL || s->slot < 0)
        return;
    c->slots[s->slot].last_loss = now;
    c->slots[s->slot].repaired += (uint64_t)repaired;
}

struct core *core_new(int udp_fd, size_t chunk_size, double reassembly_timeout) {
    struct core *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->udp_fd = udp_fd;
    c->chunk_size = chunk_size;
    c->gso = c->gro = 1;
    const char *spin = getenv("SKYLAN_CORE_SPIN_US");
    c->spin = (spin ? atof(spin) : CORE_SPIN_US) * 1e-6;
    c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->slots = calloc(CORE_MAX_SLOTS, sizeof(struct slot));
    c->node_slot = malloc(CORE_MAX_NODES * sizeof(int32_t));
    fdb_init(&c->fdb);
    reasm_init(&c->reasm, reassembly_timeout);
    c->reasm.on_event = on_reassembly;
    c->reasm.ctx = c;
    int slow = slowpath_init(&c->slow);
    int tx = tx_init(c), rx = rx_init(c);
    if (c->epoll_fd < 0 || c->wake_fd < 0 || !c->slots || !c->node_slot || slow != 0 ||
        tx != 0 || rx != 0) {
        c->slow.eventfd = slow == 0 ? c->slow.eventfd : -1;
        core_free(c);
        return NULL;
    }
    for (int i = 0; i < CORE_MAX_NODES; i++)
        c->node_slot[i] = -1;
    return c;
}

void core_free(struct core *c) {
    core_stop(c);
    for (uint32_t i = 0; c->by_index && i <= c->index_mask; i++) {
        struct session *s = c->by_index[i];
        if (s) {
            aead_free(s->enc);
            aead_free(s->dec);
            free(s);
        }
    }
    free(c->by_index);
    free(c->slots);
    free(c->node_slot);
    fdb_free(&c->fdb);
    reasm_free(&c->reasm);
    if (c->slow.eventfd >= 0)
        slowpath_free(&c->slow);
    tx_free(c);
    rx_free(c);
    if (c->epoll_fd >= 0)
        close(c->epoll_fd);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

struct port *core_port(struct core *c, uint32_t vni) {
    for (int i = 0; i < CORE_MAX_PORTS; i++)
        if (c->ports[i].used && c->ports[i].vni == vni)
            return &c->ports[i];
    return NULL;
}
