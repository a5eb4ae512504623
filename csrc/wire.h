/* skylan's tunnel wire format, as the C core reads and writes it.
 *
 * The byte layout is docs/protocol.md's and skylan.tunnel.wire's: a data
 * datagram is a 16-byte header (type, flags, chunk index, chunk count,
 * receiver index, counter) and a slice of one AES-256-GCM ciphertext; the
 * decrypted container starts with its kind. Parsers here never trust a
 * length they did not check against the buffer they were given.
 */
#ifndef SKYLAN_WIRE_H
#define SKYLAN_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define MSG_DATA 4
#define DATA_HDR_LEN 16
#define MAX_CHUNKS 128
#define FLAG_REDUNDANT 0x01
#define TAG_LEN 16

#define KIND_KEEPALIVE 0
#define KIND_FRAMES 1
#define KIND_SUPERFRAME 2
#define KIND_VNET_FRAMES 3
#define KIND_FEEDBACK 4
#define CONTAINER_PREFIX_LEN 5 /* kind, network id (u32, big-endian) */
#define VNET_LEN 10            /* struct virtio_net_hdr without num_buffers */
#define MIN_FRAME 14
#define MAX_FRAME 65535

struct data_header {
    uint8_t flags, index, count;
    uint32_t receiver;
    uint64_t counter;
};

/* 0 and the header, or -1 (short) / -2 (malformed): the reasons the Python
 * engine counts as short_data and bad_data_header. */
int wire_parse_data_header(const uint8_t *p, size_t n, struct data_header *h);

/* The 16 bytes of a header; the AEAD's associated data is the header with
 * index 0 and no flags, the same for every chunk of a message. */
void wire_put_data_header(uint8_t *out, uint8_t flags, uint8_t index, uint8_t count,
                          uint32_t receiver, uint64_t counter);

/* One frame of a decrypted container. vnet is NULL for FRAMES (no header). */
struct frame_ref {
    const uint8_t *vnet;
    const uint8_t *frame;
    size_t len;
};

/* The frames of a decrypted container, at most max of them, into out.
 * Returns how many, 0 for a keepalive or feedback (*kind says which), or a
 * negative number for a malformed one (nothing of it may be delivered). */
int wire_parse_container(const uint8_t *p, size_t n, uint8_t *kind, uint32_t *network_id,
                         struct frame_ref *out, int max);

static inline uint32_t get_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint64_t get_be64(const uint8_t *p) {
    return ((uint64_t)get_be32(p) << 32) | get_be32(p + 4);
}
static inline void put_be64(uint8_t *p, uint64_t v) {
    put_be32(p, (uint32_t)(v >> 32)); put_be32(p + 4, (uint32_t)v);
}

#endif
