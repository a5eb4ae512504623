/* Parsing and writing the data header and the decrypted container. */
#include "wire.h"

#include <string.h>

int wire_parse_data_header(const uint8_t *p, size_t n, struct data_header *h) {
    if (n < DATA_HDR_LEN + 1)
        return -1;
    h->flags = p[1];
    h->index = p[2];
    h->count = p[3];
    h->receiver = get_be32(p + 4);
    h->counter = get_be64(p + 8);
    if (p[0] != MSG_DATA || (h->flags & ~FLAG_REDUNDANT) || h->count == 0 ||
        h->count > MAX_CHUNKS || h->index >= h->count)
        return -2;
    if (h->flags) {
        unsigned groups = h->count >= 3 ? (h->count - 1 + 7) / 8 : 0;
        if (h->count < 3 || (h->index != h->count - 1 && h->index >= groups))
            return -2;
    }
    return 0;
}

void wire_put_data_header(uint8_t *out, uint8_t flags, uint8_t index, uint8_t count,
                          uint32_t receiver, uint64_t counter) {
    out[0] = MSG_DATA;
    out[1] = flags;
    out[2] = index;
    out[3] = count;
    put_be32(out + 4, receiver);
    put_be64(out + 8, counter);
}

int wire_parse_container(const uint8_t *p, size_t n, uint8_t *kind, uint32_t *network_id,
                         struct frame_ref *out, int max) {
    if (n == 0)
        return -1;
    *kind = p[0];
    *network_id = 0;
    if (p[0] == KIND_KEEPALIVE)
        return n == 1 ? 0 : -1;
    if (p[0] == KIND_FEEDBACK)
        return n == 2 ? 0 : -1;
    if (p[0] > KIND_FEEDBACK || n < CONTAINER_PREFIX_LEN)
        return -1;
    *network_id = get_be32(p + 1);
    if (p[0] == KIND_SUPERFRAME) {
        size_t start = CONTAINER_PREFIX_LEN + VNET_LEN;
        if (n < start + MIN_FRAME || max < 1)
            return -1;
        out[0].vnet = p + CONTAINER_PREFIX_LEN;
        out[0].frame = p + start;
        out[0].len = n - start;
        return 1;
    }
    size_t extra = p[0] == KIND_VNET_FRAMES ? VNET_LEN : 0;
    size_t pos = CONTAINER_PREFIX_LEN;
    int count = 0;
    while (pos < n) {
        if (pos + 2 + extra > n || count >= max)
            return -1;
        size_t len = ((size_t)p[pos] << 8) | p[pos + 1];
        pos += 2;
        const uint8_t *vnet = extra ? p + pos : NULL;
        pos += extra;
        if (len < MIN_FRAME || len > n - pos)
            return -1;
        out[count].vnet = vnet;
        out[count].frame = p + pos;
        out[count].len = len;
        count++;
        pos += len;
    }
    return count > 0 ? count : -1;
}
