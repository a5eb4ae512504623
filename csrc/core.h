/* The compiled data-plane core: one thread that owns the per-packet loop of
 * one lane (see docs/dataplane-core.md for the boundary with Python).
 *
 * Python pushes tables in (ports, the forwarding table, peers and the keys
 * and counters of established sessions) and takes the slow path out; the
 * thread reads TAPs and the UDP socket on epoll without the GIL. Every table
 * is guarded by one mutex, which the thread holds while it handles one
 * wake-up's worth of packets and Python holds while it changes a table. */
#ifndef SKYLAN_CORE_H
#define SKYLAN_CORE_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>

#include "drops.h"
#include "fdb.h"
#include "reassembly.h"
#include "replay.h"
#include "slowpath.h"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

#define CORE_MAX_PORTS 64
#define CORE_MAX_SLOTS 65536
#define CORE_MAX_NODES 65536
/* After traffic the thread polls this long (yielding the CPU to anyone who
 * wants it) before it sleeps: a request's answer usually comes within it,
 * and each sleep costs a wake-up on the hop. SKYLAN_CORE_SPIN_US overrides. */
#define CORE_SPIN_US 50
#define FEC_HOLD 10.0         /* s: send parity this long after the peer last asked */
#define FEEDBACK_INTERVAL 1.0 /* s: ask a lossy peer for parity at most this often */

struct session {
    uint32_t local_index, remote_index;
    int32_t slot;
    EVP_CIPHER_CTX *enc, *dec;
    uint64_t counter; /* the next send counter: taken atomically, Python seals too */
    struct replay replay;
    double expires; /* monotonic time after which the key is used for nothing */
};

struct slot {
    int used;
    int32_t node;
    struct sockaddr_in endpoint;
    int has_endpoint;
    struct session *send; /* the session this peer is sent to on, or NULL */
    double last_rx, last_tx, last_data_rx, last_data_tx;
    uint64_t rx_bytes, rx_packets, tx_bytes, tx_packets;
    int roamed; /* the endpoint changed since Python last looked */
    double fec_until;   /* it asked for parity: send it until then */
    double last_loss;   /* a message from it was lost or rebuilt from parity */
    double feedback_at; /* we last asked it for parity */
    uint64_t repaired;  /* chunks from it rebuilt from parity */
};

struct port {
    int used;
    uint32_t vni;
    int tap_fd;
    uint64_t tx_bytes, tx_packets, rx_bytes, rx_packets;
};

struct core {
    pthread_mutex_t lock;
    pthread_t thread;
    int running, stop;
    int udp_fd, epoll_fd, wake_fd;
    size_t chunk_size;
    double spin; /* seconds to poll after traffic before sleeping */
    int gso, gro;
    struct port ports[CORE_MAX_PORTS];
    struct slot *slots; /* CORE_MAX_SLOTS of them */
    int32_t *node_slot; /* node -> the slot its traffic goes to, or -1 */
    struct session **by_index; /* open addressing on local_index */
    uint32_t index_mask, sessions;
    struct fdb fdb;
    struct reasm reasm;
    struct slowpath slow;
    uint64_t drops[DROP_COUNT];
    uint64_t send_errors, wakeups, tx_messages, rx_messages;
    uint64_t spares; /* redundant datagrams that were not needed */
    struct tx_state *tx;
    struct rx_state *rx;
};

double core_now(void);

/* Make and free a core (core.c); NULL if the machine refuses a resource. */
struct core *core_new(int udp_fd, size_t chunk_size, double reassembly_timeout);
void core_free(struct core *c);

/* Network vni's port, or NULL (core.c). */
struct port *core_port(struct core *c, uint32_t vni);

/* Sessions, by receiver index (sessions.c). */
struct session *core_session(const struct core *c, uint32_t local_index);
int core_add_session(struct core *c, struct session *s);
void core_remove_session(struct core *c, uint32_t local_index);

/* The two directions (tx.c, rx.c); called by the loop with the lock held. */
int tx_init(struct core *c);
void tx_free(struct core *c);
void tx_from_tap(struct core *c, struct port *p, double now);
void tx_flush(struct core *c);
/* Seal one container to a slot's peer on its send session and queue it;
 * `data` says whether it carries frames (the timers tell them apart). */
void tx_seal(struct core *c, struct slot *sl, const uint8_t *pt, size_t len, double now,
             int data);
/* Add `groups` parity segments to a sealed message of `count` segments in
 * buf (the last one last_len bytes); the new size. */
size_t tx_add_parity(uint8_t *buf, unsigned count, unsigned groups, size_t seg, size_t last_len);
int rx_init(struct core *c);
void rx_free(struct core *c);
void rx_from_udp(struct core *c, double now);
/* One datagram from `from` (the fuzzers feed it directly). */
void rx_datagram(struct core *c, const uint8_t *d, size_t n, const struct sockaddr_in *from,
                 double now);

/* The thread (loop.c). */
int core_start(struct core *c);
void core_stop(struct core *c);
int core_watch(struct core *c, int port_index, int add);

#endif
