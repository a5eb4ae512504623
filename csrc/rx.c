/* Receiving: datagrams (GRO batches split), session lookup, replay window,
 * reassembly, open, and the switch's check before each frame goes to its TAP.
 *
 * The same decisions as the Python engine and switch for the common case:
 * data for a session the core holds, frames between member MACs. Anything
 * else (handshakes, an index the core does not hold, a frame from a MAC it
 * does not know or to a multicast address) goes up to Python. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "aead.h"
#include "core.h"
#include "wire.h"

#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define RX_BATCH 8
#define RX_BUF 65536
#define RX_ROUNDS 8 /* recvmmsg calls per wake-up before the TAPs get a turn */
#define MAX_FRAMES 256
#define PLAIN_BUF (REASM_MAX_BYTES)

struct rx_state {
    struct mmsghdr msgs[RX_BATCH];
    struct iovec iovs[RX_BATCH];
    struct sockaddr_in addrs[RX_BATCH];
    uint8_t cmsgs[RX_BATCH][CMSG_SPACE(sizeof(int))];
    uint8_t bufs[RX_BATCH][RX_BUF];
    uint8_t plain[PLAIN_BUF];
    struct frame_ref frames[MAX_FRAMES];
};

static const uint8_t zero_vnet[VNET_LEN];

int rx_init(struct core *c) {
    c->rx = calloc(1, sizeof(struct rx_state));
    return c->rx ? 0 : -1;
}

void rx_free(struct core *c) {
    free(c->rx);
    c->rx = NULL;
}

static void up(struct core *c, uint8_t kind, int32_t slot, uint32_t vni,
               const struct sockaddr_in *addr, const uint8_t *head, size_t head_len,
               const uint8_t *body, size_t body_len) {
    if (slowpath_push(&c->slow, kind, slot, vni, addr, head, head_len, body, body_len) != 0)
        c->drops[DROP_SLOW_PATH_FULL]++;
}

/* The switch's from_peer for a frame whose addresses the table knows. */
static void deliver(struct core *c, struct port *p, struct slot *sl, int32_t slot,
                    const struct frame_ref *f) {
    const uint8_t *dst = f->frame, *src = f->frame + 6;
    const uint8_t *vnet = f->vnet ? f->vnet : zero_vnet;
    if (src[0] & 1) {
        c->drops[DROP_BAD_SOURCE_MAC]++;
        return;
    }
    int32_t owner = fdb_lookup(&c->fdb, p->vni, src);
    if (owner == FDB_NONE || (dst[0] & 1)) { /* to learn, or a flood: Python's switch */
        up(c, SLOW_PEER_FRAME, slot, p->vni, NULL, vnet, VNET_LEN, f->frame, f->len);
        return;
    }
    if (owner != sl->node) {
        c->drops[DROP_MAC_SPOOF]++;
        return;
    }
    int32_t to = fdb_lookup(&c->fdb, p->vni, dst);
    if (to != FDB_LOCAL && to != FDB_NONE) {
        c->drops[DROP_NOT_FOR_US]++;
        return;
    }
    struct iovec iov[2] = {{(void *)vnet, VNET_LEN}, {(void *)f->frame, f->len}};
    if (writev(p->tap_fd, iov, 2) < 0) {
        c->drops[DROP_TAP_FULL]++;
        return;
    }
    p->rx_bytes += f->len;
    p->rx_packets++;
}

static void plaintext(struct core *c, struct session *s, const struct data_header *h,
                      const uint8_t *pt, size_t len, const struct sockaddr_in *from, double now) {
    struct slot *sl = &c->slots[s->slot];
    sl->last_rx = now;
    sl->rx_packets += h->count;
    sl->rx_bytes += len + (size_t)DATA_HDR_LEN * h->count;
    if (!sl->has_endpoint || sl->endpoint.sin_addr.s_addr != from->sin_addr.s_addr ||
        sl->endpoint.sin_port != from->sin_port) {
        sl->endpoint = *from; /* authenticated: the peer roamed */
        sl->has_endpoint = 1;
        sl->roamed = 1;
    }
    uint8_t kind;
    uint32_t vni;
    int n = wire_parse_container(pt, len, &kind, &vni, c->rx->frames, MAX_FRAMES);
    if (n < 0) {
        c->drops[DROP_BAD_CONTAINER]++;
        return;
    }
    if (kind == KIND_FEEDBACK && (pt[1] & 1))
        sl->fec_until = now + FEC_HOLD; /* its path loses our chunks: add parity */
    if (sl->send && now - sl->last_loss < FEC_HOLD && now - sl->feedback_at >= FEEDBACK_INTERVAL) {
        static const uint8_t want_fec[2] = {KIND_FEEDBACK, 0x01};
        sl->feedback_at = now; /* our path from it loses chunks: ask for parity */
        tx_seal(c, sl, want_fec, sizeof(want_fec), now, 0);
    }
    if (n == 0)
        return;
    sl->last_data_rx = now;
    struct port *p = core_port(c, vni);
    if (p == NULL) {
        c->drops[DROP_UNKNOWN_NETWORK] += (uint64_t)n;
        return;
    }
    for (int i = 0; i < n; i++)
        deliver(c, p, sl, s->slot, &c->rx->frames[i]);
}

void rx_datagram(struct core *c, const uint8_t *d, size_t n, const struct sockaddr_in *from,
                     double now) {
    if (n == 0 || d[0] != MSG_DATA) { /* handshakes and junk: the engine's to judge */
        up(c, SLOW_DATAGRAM, -1, 0, from, d, n, NULL, 0);
        return;
    }
    struct data_header h;
    int r = wire_parse_data_header(d, n, &h);
    if (r != 0) {
        c->drops[r == -1 ? DROP_SHORT_DATA : DROP_BAD_DATA_HEADER]++;
        return;
    }
    struct session *s = core_session(c, h.receiver);
    if (s == NULL) { /* a handshake's first data, or a session Python keeps */
        up(c, SLOW_DATAGRAM, -1, 0, from, d, n, NULL, 0);
        return;
    }
    if (now >= s->expires) {
        c->drops[DROP_EXPIRED_SESSION]++;
        return;
    }
    if (!replay_check(&s->replay, h.counter)) {
        if ((h.flags & FLAG_REDUNDANT) || reasm_was_rescued(&c->reasm, h.receiver, h.counter))
            c->spares++; /* the message is in already (parity rebuilt it first) */
        else
            c->drops[DROP_REPLAY]++;
        return;
    }
    const uint8_t *ct = d + DATA_HDR_LEN;
    size_t len = n - DATA_HDR_LEN;
    if (h.flags & FLAG_REDUNDANT) {
        int spare;
        ct = reasm_add_redundant(&c->reasm, s->local_index, h.counter, h.index, h.count, ct, len,
                                 now, &len, c->drops, &spare);
        c->spares += (uint64_t)spare;
        if (ct == NULL)
            return;
    } else if (h.count > 1) {
        ct = reasm_add(&c->reasm, s->local_index, h.counter, h.index, h.count, ct, len, now, &len,
                       c->drops);
        if (ct == NULL)
            return;
    }
    if (len < TAG_LEN || len - TAG_LEN > PLAIN_BUF) {
        c->drops[DROP_SHORT_CIPHERTEXT]++;
        return;
    }
    if (aead_open(s->dec, h.receiver, h.counter, h.count, ct,
                  len, c->rx->plain) != 0) {
        c->drops[DROP_AUTH_FAILED]++;
        return;
    }
    if (!replay_accept(&s->replay, h.counter)) {
        c->drops[DROP_REPLAY]++;
        return;
    }
    c->rx_messages++;
    plaintext(c, s, &h, c->rx->plain, len - TAG_LEN, from, now);
}

static int gro_size(struct msghdr *m) {
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm))
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
            int size;
            memcpy(&size, CMSG_DATA(cm), sizeof(size));
            return size;
        }
    return 0;
}

void rx_from_udp(struct core *c, double now) {
    struct rx_state *x = c->rx;
    for (int round = 0; round < RX_ROUNDS; round++) {
        for (int i = 0; i < RX_BATCH; i++) {
            x->iovs[i].iov_base = x->bufs[i];
            x->iovs[i].iov_len = RX_BUF;
            struct msghdr *m = &x->msgs[i].msg_hdr;
            memset(m, 0, sizeof(*m));
            m->msg_iov = &x->iovs[i];
            m->msg_iovlen = 1;
            m->msg_name = &x->addrs[i];
            m->msg_namelen = sizeof(x->addrs[i]);
            m->msg_control = x->cmsgs[i];
            m->msg_controllen = sizeof(x->cmsgs[i]);
        }
        int got = recvmmsg(c->udp_fd, x->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0)
            return;
        for (int i = 0; i < got; i++) {
            size_t n = x->msgs[i].msg_len;
            int seg = gro_size(&x->msgs[i].msg_hdr);
            size_t step = seg > 0 ? (size_t)seg : (n ? n : 1);
            if (x->addrs[i].sin_family != AF_INET)
                continue;
            if (n == 0) {
                rx_datagram(c, x->bufs[i], 0, &x->addrs[i], now);
                continue;
            }
            for (size_t off = 0; off < n; off += step)
                rx_datagram(c, x->bufs[i] + off, n - off < step ? n - off : step, &x->addrs[i],
                         now);
        }
        if (got < RX_BATCH)
            return;
    }
}
