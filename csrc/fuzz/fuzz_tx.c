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
#include "fixture.h"

static struct core *core;
static int tap[2];
static const uint8_t KEY[32] = {9};
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
    fixture_peer(core, tap[1], KEY, 1, 2);
    core->slots[0].endpoint = addr; /* itself, on loopback */
    core->slots[0].has_endpoint = 1;
}

static void drain(void) {
    static uint8_t buf[65536];
    while (recv(core->udp_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
    }
    fixture_drain_slow_path(core);
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
