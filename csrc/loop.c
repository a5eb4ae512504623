/* The core's thread: epoll over the UDP socket, the TAPs and a wake-up
 * eventfd, one wake-up's packets handled under the table lock. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

#define EVENTS 64
#define UDP_TAG UINT64_MAX
#define WAKE_TAG (UINT64_MAX - 1)

double core_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* the clock of Python's time.monotonic() */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A port's epoll tag carries its index and fd: an event that was queued
 * before the port was removed (or replaced) is recognised and skipped. */
static uint64_t port_tag(int index, int fd) { return ((uint64_t)index << 32) | (uint32_t)fd; }

int core_watch(struct core *c, int index, int add) {
    struct port *p = &c->ports[index];
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = port_tag(index, p->tap_fd)};
    return epoll_ctl(c->epoll_fd, add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, p->tap_fd, &ev);
}

static void *run(void *arg) {
    struct core *c = arg;
    struct epoll_event events[EVENTS];
    double busy_until = 0;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        /* right after traffic, poll instead of sleeping for a moment: the
         * answer to a request usually comes within it, and a sleeping thread
         * costs a wake-up on each hop */
        int n = epoll_wait(c->epoll_fd, events, EVENTS, 0);
        while (n == 0 && c->spin > 0 && core_now() < busy_until) {
            sched_yield(); /* whoever else wants this CPU comes first */
            n = epoll_wait(c->epoll_fd, events, EVENTS, 0);
        }
        if (n == 0)
            n = epoll_wait(c->epoll_fd, events, EVENTS, 1000);
        if (n < 0 && errno != EINTR)
            break;
        pthread_mutex_lock(&c->lock);
        double now = core_now();
        c->wakeups++;
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == WAKE_TAG) {
                uint64_t ignored;
                ssize_t r = read(c->wake_fd, &ignored, sizeof(ignored));
                (void)r;
            } else if (tag == UDP_TAG) {
                rx_from_udp(c, now);
            } else {
                int index = (int)(tag >> 32);
                struct port *p = index < CORE_MAX_PORTS ? &c->ports[index] : NULL;
                if (p && p->used && port_tag(index, p->tap_fd) == tag)
                    tx_from_tap(c, p, now);
            }
        }
        tx_flush(c);
        pthread_mutex_unlock(&c->lock);
        if (n > 0)
            busy_until = core_now() + c->spin;
    }
    return NULL;
}

int core_start(struct core *c) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UDP_TAG};
    if (epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, c->udp_fd, &ev) != 0)
        return -1;
    ev.data.u64 = WAKE_TAG;
    if (epoll_ctl(c->epoll_fd, EPOLL_CTL_ADD, c->wake_fd, &ev) != 0)
        return -1;
    c->stop = 0;
    if (pthread_create(&c->thread, NULL, run, c) != 0)
        return -1;
    c->running = 1;
    return 0;
}

void core_stop(struct core *c) {
    if (!c->running)
        return;
    __atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
    uint64_t one = 1;
    ssize_t r = write(c->wake_fd, &one, sizeof(one));
    (void)r;
    pthread_join(c->thread, NULL);
    c->running = 0;
    epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, c->udp_fd, NULL);
    epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, c->wake_fd, NULL);
}
