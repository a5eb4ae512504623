/* libFuzzer target: the send path of the core, from frames read off a TAP
 * to sealed datagrams, on whatever a local program can make the TAP hold.
 *
 * The input is a sequence of frames (2-byte length, vnet header + frame).
 * The "TAP" is a SOCK_SEQPACKET pair, one read one frame as on a TAP queue;
 * the peer's endpoint is the core's own UDP socket on loopback, drained after
 * each input, so nothing leaves the machine. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../aead.h"
#include "../core.h"
#include "../wire.h"

static struct core *core;
static int tap[2];
static const uint8_t KEY[32] = {9};
static const uint8_t LOCAL_MAC[6] = {0x02, 0, 0, 0, 0, 1};
static const uint8_t PEER_MAC[6] = {0x02, 0, 0, 0, 0, 2};

static void setup(void) {
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t len = sizeof(addr);
    if (udp < 0 || bind(udp, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        getsockname(udp, (struct sockaddr *)&addr, &len) != 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, tap) != 0)
        abort();
    core = core_new(udp, 1404, 0.5);
    if (core == NULL)
        abort();
    core->ports[0] = (struct port){.used = 1, .vni = 42, .tap_fd = tap[1]};
    uint8_t macs[12];
    memcpy(macs, LOCAL_MAC, 6);
    memcpy(macs + 6, PEER_MAC, 6);
    int32_t nodes[2] = {FDB_LOCAL, 1};
    fdb_set_network(&core->fdb, 42, macs, nodes, 2);
    struct slot *sl = &core->slots[0];
    sl->used = 1;
    sl->node = 1;
    sl->endpoint = addr; /* itself, on loopback */
    sl->has_endpoint = 1;
    core->node_slot[1] = 0;
    struct session *s = calloc(1, sizeof(*s));
    s->local_index = 1;
    s->remote_index = 2;
    s->slot = 0;
    s->enc = aead_new(KEY, 1);
    s->dec = aead_new(KEY, 0);
    s->expires = 1e18;
    replay_init(&s->replay);
    core_add_session(core, s);
    sl->send = s;
}

static void drain(void) {
    static uint8_t buf[65536];
    while (recv(core->udp_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
    struct slow_entry e[64];
    unsigned n;
    while ((n = slowpath_take(&core->slow, e, 64)) > 0)
        for (unsigned i = 0; i < n; i++)
            free(e[i].data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (core == NULL)
        setup();
    if (size < 1)
        return 0;
    /* parity on or off for this input, as if the peer asked for it */
    core->slots[0].fec_until = (data[0] & 1) ? 1e18 : 0;
    data++;
    size--;
    while (size >= 2) {
        size_t len = ((size_t)data[0] << 8 | data[1]);
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        if (send(tap[0], data, len, MSG_DONTWAIT) < 0) { /* the queue is full: let it run */
            tx_from_tap(core, &core->ports[0], 1000.0);
            tx_flush(core);
            drain();
            (void)send(tap[0], data, len, MSG_DONTWAIT);
        }
        data += len;
        size -= len;
    }
    tx_from_tap(core, &core->ports[0], 1000.0);
    tx_flush(core);
    drain();
    return 0;
}
