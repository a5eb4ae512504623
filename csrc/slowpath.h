/* The queue up to Python: what the core cannot decide on its own.
 *
 * Handshakes, data for a session the core does not hold, floods and ARP
 * from the TAP, frames from a peer that the switch must judge. Bounded in
 * entries and bytes (a flood of junk must not eat memory: beyond the bound
 * it is dropped and counted); an eventfd wakes Python's loop when the queue
 * stops being empty. Producer: the core's thread; consumer: Python. */
#ifndef SKYLAN_SLOWPATH_H
#define SKYLAN_SLOWPATH_H

#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define SLOW_ENTRIES 4096
#define SLOW_BYTES (8u << 20)

enum slow_kind {
    SLOW_DATAGRAM = 1,  /* a UDP datagram: addr */
    SLOW_TAP_FRAME = 2, /* vnet header + frame read from a TAP: vni */
    SLOW_PEER_FRAME = 3 /* a decrypted frame from peer slot: vni, vnet + frame */
};

struct slow_entry {
    uint8_t kind;
    int32_t slot;
    uint32_t vni;
    struct sockaddr_in addr;
    size_t len;
    uint8_t *data;
};

struct slowpath {
    pthread_mutex_t lock;
    struct slow_entry ring[SLOW_ENTRIES];
    unsigned head, count;
    size_t bytes;
    int eventfd;
};

int slowpath_init(struct slowpath *q);
void slowpath_free(struct slowpath *q);
/* Copy one entry in (head and body are concatenated); 0, or -1 if full. */
int slowpath_push(struct slowpath *q, uint8_t kind, int32_t slot, uint32_t vni,
                  const struct sockaddr_in *addr, const uint8_t *head, size_t head_len,
                  const uint8_t *body, size_t body_len);
/* Move up to max entries out (the caller frees their data); how many. */
unsigned slowpath_take(struct slowpath *q, struct slow_entry *out, unsigned max);

#endif
