/* The slow-path ring and its eventfd. */
#include "slowpath.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int slowpath_init(struct slowpath *q) {
    memset(q->ring, 0, sizeof(q->ring));
    q->head = q->count = 0;
    q->bytes = 0;
    q->eventfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->eventfd < 0)
        return -1;
    pthread_mutex_init(&q->lock, NULL);
    return 0;
}

void slowpath_free(struct slowpath *q) {
    struct slow_entry e;
    while (slowpath_take(q, &e, 1) == 1)
        free(e.data);
    if (q->eventfd >= 0)
        close(q->eventfd);
    q->eventfd = -1;
    pthread_mutex_destroy(&q->lock);
}

int slowpath_push(struct slowpath *q, uint8_t kind, int32_t slot, uint32_t vni,
                  const struct sockaddr_in *addr, const uint8_t *head, size_t head_len,
                  const uint8_t *body, size_t body_len) {
    size_t len = head_len + body_len;
    pthread_mutex_lock(&q->lock);
    int full = q->count >= SLOW_ENTRIES || q->bytes + len > SLOW_BYTES;
    pthread_mutex_unlock(&q->lock);
    if (full)
        return -1;
    uint8_t *data = malloc(len ? len : 1);
    if (data == NULL)
        return -1;
    if (head_len)
        memcpy(data, head, head_len);
    if (body_len)
        memcpy(data + head_len, body, body_len);
    pthread_mutex_lock(&q->lock);
    if (q->count >= SLOW_ENTRIES || q->bytes + len > SLOW_BYTES) {
        pthread_mutex_unlock(&q->lock);
        free(data);
        return -1;
    }
    struct slow_entry *e = &q->ring[(q->head + q->count) % SLOW_ENTRIES];
    e->kind = kind;
    e->slot = slot;
    e->vni = vni;
    if (addr)
        e->addr = *addr;
    else
        memset(&e->addr, 0, sizeof(e->addr));
    e->len = len;
    e->data = data;
    int wake = q->count == 0;
    q->count++;
    q->bytes += len;
    pthread_mutex_unlock(&q->lock);
    if (wake) {
        uint64_t one = 1;
        ssize_t ignored = write(q->eventfd, &one, sizeof(one));
        (void)ignored; /* a full counter still leaves the fd readable */
    }
    return 0;
}

unsigned slowpath_take(struct slowpath *q, struct slow_entry *out, unsigned max) {
    pthread_mutex_lock(&q->lock);
    unsigned n = 0;
    while (n < max && q->count > 0) {
        out[n] = q->ring[q->head];
        q->head = (q->head + 1) % SLOW_ENTRIES;
        q->count--;
        q->bytes -= out[n].len;
        n++;
    }
    pthread_mutex_unlock(&q->lock);
    return n;
}
