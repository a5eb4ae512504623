/* Sending: frames read from a TAP, switched, batched per peer, sealed and
 * sent with UDP GSO, several messages per sendmmsg.
 *
 * The same decisions as skylan.dataplane.node's TAP path: a known unicast
 * destination goes to its peer; small frames read in one pass are batched
 * per peer (one seal for the lot) and a peer's batch leaves before a larger
 * frame for it, so frames stay in order. Floods, ARP, unknown destinations
 * and peers without an established session go up to Python. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "aead.h"
#include "core.h"
#include "wire.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define READ_BATCH 64
#define SMALL_FRAME 1600
#define BATCH_BYTES (16 * 1024)
#define BATCH_PEERS 16
#define BATCH_CAP (CONTAINER_PREFIX_LEN + BATCH_BYTES + 2 + VNET_LEN + SMALL_FRAME)
#define MAX_READ (65536 + VNET_LEN + 64)
#define TX_QUEUE 32
#define TX_BUF (96 * 1024) /* a sealed 64 KB super-frame with parity */
#define MAX_UDP_PAYLOAD 65507
#define MMSG_MAX 128

struct batch {
    int32_t slot;
    uint32_t vni;
    int frames;
    size_t len;
    size_t first_len; /* the first frame's vnet header + frame: sent alone, a super-frame */
    uint8_t buf[BATCH_CAP];
};

struct sealed {
    struct sockaddr_in to;
    size_t size, segment;
    int count;
    uint8_t buf[TX_BUF];
};

struct tx_state {
    uint8_t read_buf[CONTAINER_PREFIX_LEN + MAX_READ];
    struct batch batches[BATCH_PEERS];
    int nbatches;
    struct sealed queue[TX_QUEUE];
    int queued;
    struct mmsghdr msgs[MMSG_MAX];
    struct iovec iovs[MMSG_MAX];
    uint8_t cmsgs[MMSG_MAX][CMSG_SPACE(sizeof(uint16_t))];
};

int tx_init(struct core *c) {
    c->tx = calloc(1, sizeof(struct tx_state));
    return c->tx ? 0 : -1;
}

void tx_free(struct core *c) {
    free(c->tx);
    c->tx = NULL;
}

/* Parity for a sealed message of `count` segments in buf: the full chunks,
 * then `groups` parity segments (the XOR of full chunks g, g + groups, ...),
 * then the last chunk, moved behind them (GSO wants every segment but the
 * last full-size). The layout of skylan.tunnel.segments.lay_out_fec.
 * Returns the new size. */
size_t tx_add_parity(uint8_t *buf, unsigned count, unsigned groups, size_t seg,
                     size_t last_len) {
    unsigned full = count - 1;
    size_t chunk = seg - DATA_HDR_LEN;
    memmove(buf + (size_t)(full + groups) * seg, buf + (size_t)full * seg, last_len);
    for (unsigned g = 0; g < groups; g++) {
        uint8_t *p = buf + (size_t)(full + g) * seg;
        memcpy(p, buf, DATA_HDR_LEN);
        p[1] = FLAG_REDUNDANT;
        p[2] = (uint8_t)g;
        memset(p + DATA_HDR_LEN, 0, chunk);
        for (unsigned i = g; i < full; i += groups) {
            const uint8_t *row = buf + (size_t)i * seg + DATA_HDR_LEN;
            for (size_t k = 0; k < chunk; k++)
                p[DATA_HDR_LEN + k] ^= row[k];
        }
    }
    return (size_t)(full + groups) * seg + last_len;
}

static int send_range(struct core *c, int first, int n) {
    int sent = 0;
    while (sent < n) {
        int r = sendmmsg(c->udp_fd, c->tx->msgs + first + sent, (unsigned)(n - sent), 0);
        if (r > 0) {
            sent += r;
            continue;
        }
        if (r < 0 && c->gso && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT))
            return -1; /* the kernel or path refuses GSO */
        c->send_errors++; /* that one message is lost; go on with the rest */
        sent++;
    }
    return 0;
}

/* Send every queued message: one mmsghdr per (at most 64 KB) GSO part, or
 * one per datagram where GSO is off. */
void tx_flush(struct core *c) {
    struct tx_state *t = c->tx;
    int n = 0;
    for (int q = 0; q < t->queued; q++) {
        struct sealed *s = &t->queue[q];
        size_t step = c->gso ? (MAX_UDP_PAYLOAD / s->segment) * s->segment : s->segment;
        for (size_t off = 0; off < s->size; off += step) {
            if (n == MMSG_MAX) {
                if (send_range(c, 0, n) != 0)
                    goto no_gso;
                n = 0;
            }
            size_t len = s->size - off < step ? s->size - off : step;
            struct mmsghdr *m = &t->msgs[n];
            memset(m, 0, sizeof(*m));
            t->iovs[n].iov_base = s->buf + off;
            t->iovs[n].iov_len = len;
            m->msg_hdr.msg_iov = &t->iovs[n];
            m->msg_hdr.msg_iovlen = 1;
            m->msg_hdr.msg_name = &s->to;
            m->msg_hdr.msg_namelen = sizeof(s->to);
            if (c->gso && len > s->segment) {
                m->msg_hdr.msg_control = t->cmsgs[n];
                m->msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
                struct cmsghdr *cm = CMSG_FIRSTHDR(&m->msg_hdr);
                cm->cmsg_level = SOL_UDP;
                cm->cmsg_type = UDP_SEGMENT;
                cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t seg = (uint16_t)s->segment;
                memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
            }
            n++;
        }
    }
    if (n && send_range(c, 0, n) != 0)
        goto no_gso;
    t->queued = 0;
    return;
no_gso:
    /* resend everything datagram by datagram: a receiver drops repeats as
     * replays, and this happens once in the core's life */
    c->gso = 0;
    tx_flush(c);
}

void tx_seal(struct core *c, struct slot *sl, const uint8_t *pt, size_t len, double now,
             int data) {
    struct tx_state *t = c->tx;
    struct session *s = sl->send;
    if (s == NULL)
        return;
    if (t->queued >= TX_QUEUE - 1) /* room for the message and a copy of its last chunk */
        tx_flush(c);
    struct sealed *out = &t->queue[t->queued];
    size_t seg = DATA_HDR_LEN + c->chunk_size;
    if (aead_sealed_size(len, c->chunk_size) + (MAX_CHUNKS / FEC_GROUP) * seg > TX_BUF) {
        c->drops[DROP_SEAL_FAILED]++;
        return;
    }
    uint64_t counter = __atomic_fetch_add(&s->counter, 1, __ATOMIC_RELAXED);
    size_t size;
    int count = aead_seal(s->enc, s->remote_index, counter, pt, len, c->chunk_size, out->buf,
                          &size);
    if (count < 0) {
        c->drops[DROP_SEAL_FAILED]++;
        return;
    }
    out->to = sl->endpoint;
    out->segment = seg;
    unsigned groups = now < sl->fec_until ? fec_groups((unsigned)count) : 0;
    size_t last_len = size - (size_t)(count - 1) * seg;
    if (groups)
        size = tx_add_parity(out->buf, (unsigned)count, groups, seg, last_len);
    out->size = size;
    out->count = count + (int)groups;
    t->queued++;
    if (groups) { /* and the short last chunk once more, on its own */
        struct sealed *copy = &t->queue[t->queued++];
        memcpy(copy->buf, out->buf + size - last_len, last_len);
        copy->buf[1] |= FLAG_REDUNDANT;
        copy->to = sl->endpoint;
        copy->size = copy->segment = last_len;
        copy->count = 1;
        size += last_len;
        count += (int)groups + 1;
    }
    sl->tx_bytes += size;
    sl->tx_packets += (uint64_t)count;
    sl->last_tx = now;
    if (data)
        sl->last_data_tx = now;
    c->tx_messages++;
}

static void send_batch(struct core *c, struct batch *b, double now) {
    struct slot *sl = &c->slots[b->slot];
    if (sl->send == NULL) /* (cannot happen: the lock is held for the pass) */
        return;
    if (b->frames == 1) { /* one frame alone: a super-frame, as Python sends it */
        /* [prefix][length][vnet][frame] loses its length field */
        memmove(b->buf + CONTAINER_PREFIX_LEN, b->buf + CONTAINER_PREFIX_LEN + 2,
                b->first_len);
        b->buf[0] = KIND_SUPERFRAME;
        size_t len = CONTAINER_PREFIX_LEN + b->first_len;
        tx_seal(c, sl, b->buf, len, now, 1);
    } else {
        tx_seal(c, sl, b->buf, b->len, now, 1);
    }
    b->frames = 0;
}

static struct batch *batch_for(struct core *c, int32_t slot, uint32_t vni, int create,
                               double now) {
    struct tx_state *t = c->tx;
    for (int i = 0; i < t->nbatches; i++)
        if (t->batches[i].slot == slot && t->batches[i].vni == vni)
            return &t->batches[i];
    if (!create)
        return NULL;
    if (t->nbatches == BATCH_PEERS) { /* many peers in one pass: send what we have */
        for (int i = 0; i < t->nbatches; i++)
            if (t->batches[i].frames)
                send_batch(c, &t->batches[i], now);
        t->nbatches = 0;
    }
    struct batch *b = &t->batches[t->nbatches++];
    b->slot = slot;
    b->vni = vni;
    b->frames = 0;
    return b;
}

static void add_to_batch(struct core *c, struct batch *b, const uint8_t *vnet_frame, size_t n,
                         double now) {
    if (b->frames == 0) {
        b->buf[0] = KIND_VNET_FRAMES;
        put_be32(b->buf + 1, b->vni);
        b->len = CONTAINER_PREFIX_LEN;
        b->first_len = n;
    }
    size_t flen = n - VNET_LEN;
    b->buf[b->len] = (uint8_t)(flen >> 8);
    b->buf[b->len + 1] = (uint8_t)flen;
    memcpy(b->buf + b->len + 2, vnet_frame, n);
    b->len += 2 + n;
    b->frames++;
    if (b->len - CONTAINER_PREFIX_LEN >= BATCH_BYTES)
        send_batch(c, b, now);
}

static void to_python(struct core *c, uint32_t vni, const uint8_t *vnet_frame, size_t n) {
    if (slowpath_push(&c->slow, SLOW_TAP_FRAME, -1, vni, NULL, vnet_frame, n, NULL, 0) != 0)
        c->drops[DROP_SLOW_PATH_FULL]++;
}

void tx_from_tap(struct core *c, struct port *p, double now) {
    struct tx_state *t = c->tx;
    uint8_t *buf = t->read_buf + CONTAINER_PREFIX_LEN;
    t->nbatches = 0;
    for (int i = 0; i < READ_BATCH; i++) {
        ssize_t n = read(p->tap_fd, buf, MAX_READ);
        if (n < 0)
            break; /* empty (EAGAIN), or the device went away */
        if ((size_t)n < VNET_LEN + MIN_FRAME) {
            c->drops[DROP_RUNT]++;
            continue;
        }
        const uint8_t *frame = buf + VNET_LEN;
        size_t flen = (size_t)n - VNET_LEN;
        p->tx_bytes += flen;
        p->tx_packets++;
        int arp = frame[12] == 0x08 && frame[13] == 0x06;
        if (arp || (frame[0] & 1)) { /* floods and ARP: the switch's to decide */
            to_python(c, p->vni, buf, (size_t)n);
            continue;
        }
        int32_t node = fdb_lookup(&c->fdb, p->vni, frame);
        if (node == FDB_LOCAL)
            continue; /* for this node itself: nothing leaves */
        int32_t slot = node > 0 && node < CORE_MAX_NODES ? c->node_slot[node] : -1;
        struct slot *sl = slot >= 0 ? &c->slots[slot] : NULL;
        if (sl == NULL || sl->send == NULL || !sl->has_endpoint || now >= sl->send->expires) {
            to_python(c, p->vni, buf, (size_t)n);
            continue;
        }
        if (buf[1] == 0 && flen <= SMALL_FRAME) { /* gso_type none: batch it */
            add_to_batch(c, batch_for(c, slot, p->vni, 1, now), buf, (size_t)n, now);
            continue;
        }
        struct batch *b = batch_for(c, slot, p->vni, 0, now);
        if (b != NULL && b->frames)
            send_batch(c, b, now);
        uint8_t *pt = t->read_buf; /* the prefix goes right before what was read */
        pt[0] = KIND_SUPERFRAME;
        put_be32(pt + 1, p->vni);
        tx_seal(c, sl, pt, CONTAINER_PREFIX_LEN + (size_t)n, now, 1);
    }
    for (int i = 0; i < t->nbatches; i++)
        if (t->batches[i].frames)
            send_batch(c, &t->batches[i], now);
    t->nbatches = 0;
}
