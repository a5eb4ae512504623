/* libFuzzer target: the whole receive path of the core, from datagram to
 * TAP write, on hostile input.
 *
 * The first byte picks what the rest is:
 *  - even: raw datagrams (2-byte length, bytes), as anyone on the internet
 *    can send them, fed to the session the core holds;
 *  - odd: plaintext containers sealed with the session's real key, cut into
 *    chunks of a size the input chooses and delivered in an order it
 *    chooses, so the parsers behind authentication are reached too; with
 *    parity, and one chunk left out for it to rebuild.
 * The TAP is /dev/null; the slow path is drained after each input. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../aead.h"
#include "../core.h"
#include "../wire.h"
#include "fixture.h"

static struct core *core;
static struct session *session;
static EVP_CIPHER_CTX *sealer;
static const uint8_t KEY[32] = {7};
static uint64_t next_counter;

static void setup(void) {
    core = core_new(-1, 1404, 0.5);
    if (core == NULL)
        abort();
    session = fixture_peer(core, open("/dev/null", O_WRONLY), KEY, 0x11223344, 0x55667788);
    sealer = aead_new(KEY, 1);
}

static const struct sockaddr_in FROM = {.sin_family = AF_INET, .sin_port = 0x1234};
static uint8_t out[256 * 1024];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (core == NULL)
        setup();
    if (size < 1)
        return 0;
    double now = 1000.0 + (double)(data[0] >> 4);
    int sealed = data[0] & 1;
    data++;
    size--;
    while (size >= 2) {
        size_t len = ((size_t)data[0] << 8 | data[1]);
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        if (!sealed) {
            rx_datagram(core, data, len, &FROM, now);
        } else if (len >= 2) {
            size_t chunk = 16 + data[0] * 8u; /* 16..2056 */
            uint8_t order = data[1];
            size_t total;
            int count = aead_seal(sealer, session->local_index, next_counter++, data + 2, len - 2,
                                  chunk, out, &total);
            size_t seg = DATA_HDR_LEN + chunk;
            int lost = -1;
            if (count >= 3 && (order & 4)) { /* parity, and a full chunk lost */
                unsigned groups = fec_groups((unsigned)count);
                size_t last_len = total - (size_t)(count - 1) * seg;
                total = tx_add_parity(out, (unsigned)count, groups, seg, last_len);
                lost = (order >> 3) % (count - 1);
                count += (int)groups;
            }
            for (int k = 0; count > 0 && k < count; k++) {
                int i = (order & 1) ? count - 1 - k : k; /* forwards or backwards */
                if (i == lost)
                    continue;
                size_t start = (size_t)i * seg;
                size_t n = start + seg <= total ? seg : total - start;
                rx_datagram(core, out + start, n, &FROM, now);
                if ((order & 2) && k == 0) /* and a duplicate */
                    rx_datagram(core, out + start, n, &FROM, now);
            }
        }
        data += len;
        size -= len;
    }
    fixture_drain_slow_path(core);
    return 0;
}
