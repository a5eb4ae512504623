/* skylan.dataplane._core: the Python face of the compiled core.
 *
 * Python owns the sockets, TAPs and every decision that is not per packet;
 * this type only moves tables in and the slow path and counters out. All
 * of it is called from the agent's event loop thread, with the GIL held. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "aead.h"
#include "core.h"

typedef struct {
    PyObject_HEAD struct core *c;
} CoreObject;

static int Core_init(CoreObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"udp_fd", "chunk_size", "reassembly_timeout", NULL};
    int udp_fd;
    Py_ssize_t chunk = 1404;
    double timeout = 0.5;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "i|nd", names, &udp_fd, &chunk, &timeout))
        return -1;
    if (chunk < 64 || chunk > 65000) {
        PyErr_SetString(PyExc_ValueError, "chunk_size must be 64..65000");
        return -1;
    }
    if (self->c != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "already initialised");
        return -1;
    }
    struct core *c = core_new(udp_fd, (size_t)chunk, timeout);
    if (c == NULL) {
        PyErr_SetString(PyExc_OSError, "cannot set up the data-plane core");
        return -1;
    }
    self->c = c;
    return 0;
}

static void Core_dealloc(CoreObject *self) {
    if (self->c)
        core_free(self->c);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define CORE(self)                                                                             \
    struct core *c = ((CoreObject *)(self))->c;                                                \
    if (c == NULL) {                                                                           \
        PyErr_SetString(PyExc_RuntimeError, "core not initialised");                           \
        return NULL;                                                                           \
    }

static PyObject *Core_start(PyObject *self, PyObject *unused) {
    CORE(self);
    if (!c->running && core_start(c) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *Core_stop(PyObject *self, PyObject *unused) {
    CORE(self);
    Py_BEGIN_ALLOW_THREADS core_stop(c);
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

static PyObject *Core_add_port(PyObject *self, PyObject *args) {
    CORE(self);
    unsigned int vni;
    int fd;
    if (!PyArg_ParseTuple(args, "Ii", &vni, &fd))
        return NULL;
    pthread_mutex_lock(&c->lock);
    int index = core_port(c, vni) ? -2 : -1;
    for (int i = 0; index == -1 && i < CORE_MAX_PORTS; i++)
        if (!c->ports[i].used)
            index = i;
    if (index >= 0) {
        memset(&c->ports[index], 0, sizeof(struct port));
        c->ports[index].vni = vni;
        c->ports[index].tap_fd = fd;
        if (core_watch(c, index, 1) == 0)
            c->ports[index].used = 1;
        else
            index = -3;
    }
    pthread_mutex_unlock(&c->lock);
    if (index == -2)
        return PyErr_Format(PyExc_ValueError, "network %u has a port already", vni);
    if (index == -1)
        return PyErr_Format(PyExc_ValueError, "at most %d ports", CORE_MAX_PORTS);
    if (index == -3)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *Core_remove_port(PyObject *self, PyObject *args) {
    CORE(self);
    unsigned int vni;
    if (!PyArg_ParseTuple(args, "I", &vni))
        return NULL;
    pthread_mutex_lock(&c->lock);
    struct port *p = core_port(c, vni);
    if (p != NULL) {
        core_watch(c, (int)(p - c->ports), 0);
        p->used = 0;
    }
    pthread_mutex_unlock(&c->lock);
    Py_RETURN_NONE;
}

static PyObject *Core_set_macs(PyObject *self, PyObject *args) {
    CORE(self);
    unsigned int vni;
    Py_buffer macs;
    PyObject *nodes;
    if (!PyArg_ParseTuple(args, "Iy*O!", &vni, &macs, &PyList_Type, &nodes))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(nodes);
    if (macs.len != 6 * n) {
        PyBuffer_Release(&macs);
        return PyErr_Format(PyExc_ValueError, "%zd nodes need %zd bytes of MACs", n, 6 * n);
    }
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    for (Py_ssize_t i = 0; ids && i < n; i++) {
        long v = PyLong_AsLong(PyList_GET_ITEM(nodes, i));
        if ((v == -1 && PyErr_Occurred()) || v < 0 || v >= CORE_MAX_NODES) {
            free(ids);
            PyBuffer_Release(&macs);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "node numbers are 0..65535");
            return NULL;
        }
        ids[i] = (int32_t)v;
    }
    int r = -1;
    if (ids) {
        pthread_mutex_lock(&c->lock);
        r = fdb_set_network(&c->fdb, vni, macs.buf, ids, (uint32_t)n);
        pthread_mutex_unlock(&c->lock);
    }
    free(ids);
    PyBuffer_Release(&macs);
    if (r != 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static int valid_slot(long slot) {
    if (slot < 0 || slot >= CORE_MAX_SLOTS) {
        PyErr_Format(PyExc_ValueError, "slot %ld is not 0..%d", slot, CORE_MAX_SLOTS - 1);
        return 0;
    }
    return 1;
}

static PyObject *Core_set_slot(PyObject *self, PyObject *args) {
    CORE(self);
    long slot, node;
    const char *host;
    int port;
    if (!PyArg_ParseTuple(args, "llzi", &slot, &node, &host, &port) || !valid_slot(slot))
        return NULL;
    if (node < 1 || node >= CORE_MAX_NODES)
        return PyErr_Format(PyExc_ValueError, "node %ld is not 1..%d", node, CORE_MAX_NODES - 1);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (host && inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return PyErr_Format(PyExc_ValueError, "%s is not an IPv4 address", host);
    pthread_mutex_lock(&c->lock);
    struct slot *s = &c->slots[slot];
    if (!s->used) {
        memset(s, 0, sizeof(*s));
        s->last_rx = s->last_tx = s->last_data_rx = s->last_data_tx = -1.0;
    }
    s->used = 1;
    s->node = (int32_t)node;
    if (host) {
        s->endpoint = addr;
        s->has_endpoint = 1;
    }
    pthread_mutex_unlock(&c->lock);
    Py_RETURN_NONE;
}

static PyObject *Core_clear_slot(PyObject *self, PyObject *args) {
    CORE(self);
    long slot;
    if (!PyArg_ParseTuple(args, "l", &slot) || !valid_slot(slot))
        return NULL;
    pthread_mutex_lock(&c->lock);
    for (uint32_t i = 0; c->by_index && i <= c->index_mask; i++) {
        struct session *s = c->by_index[i];
        if (s && s->slot == slot) {
            core_remove_session(c, s->local_index);
            i = (uint32_t)-1; /* the table was re-seated: start over */
        }
    }
    memset(&c->slots[slot], 0, sizeof(struct slot));
    for (int i = 0; i < CORE_MAX_NODES; i++)
        if (c->node_slot[i] == slot)
            c->node_slot[i] = -1;
    pthread_mutex_unlock(&c->lock);
    Py_RETURN_NONE;
}

static PyObject *Core_set_node_slot(PyObject *self, PyObject *args) {
    CORE(self);
    long node, slot;
    if (!PyArg_ParseTuple(args, "ll", &node, &slot))
        return NULL;
    if (node < 1 || node >= CORE_MAX_NODES || slot < -1 || slot >= CORE_MAX_SLOTS)
        return PyErr_Format(PyExc_ValueError, "bad node %ld or slot %ld", node, slot);
    pthread_mutex_lock(&c->lock);
    c->node_slot[node] = (int32_t)slot;
    pthread_mutex_unlock(&c->lock);
    Py_RETURN_NONE;
}

static PyObject *Core_add_session(PyObject *self, PyObject *args) {
    CORE(self);
    long slot;
    unsigned int local, remote;
    Py_buffer send_key, recv_key, bits;
    unsigned long long next_counter;
    long long top;
    double expires;
    if (!PyArg_ParseTuple(args, "lIIy*y*KLy*d", &slot, &local, &remote, &send_key, &recv_key,
                          &next_counter, &top, &bits, &expires))
        return NULL;
    PyObject *err = NULL;
    if (!valid_slot(slot))
        err = Py_None;
    else if (send_key.len != 32 || recv_key.len != 32)
        err = PyErr_Format(PyExc_ValueError, "keys are 32 bytes");
    else if (bits.len != REPLAY_WINDOW / 8)
        err = PyErr_Format(PyExc_ValueError, "the replay bitmap is %d bytes", REPLAY_WINDOW / 8);
    struct session *s = err ? NULL : calloc(1, sizeof(*s));
    if (s) {
        s->local_index = local;
        s->remote_index = remote;
        s->slot = (int32_t)slot;
        s->counter = next_counter;
        s->expires = expires;
        s->enc = aead_new(send_key.buf, 1);
        s->dec = aead_new(recv_key.buf, 0);
        replay_init(&s->replay);
        if (top >= 0) { /* what Python's window accepted already: bit i is top - i */
            const uint8_t *b = bits.buf;
            replay_accept(&s->replay, (uint64_t)top);
            for (uint64_t i = 1; i < REPLAY_WINDOW && i <= (uint64_t)top; i++)
                if ((b[i / 8] >> (i % 8)) & 1)
                    replay_accept(&s->replay, (uint64_t)top - i);
        }
    }
    PyBuffer_Release(&send_key);
    PyBuffer_Release(&recv_key);
    PyBuffer_Release(&bits);
    if (err)
        return NULL;
    if (s == NULL || s->enc == NULL || s->dec == NULL) {
        if (s) {
            aead_free(s->enc);
            aead_free(s->dec);
            free(s);
        }
        return PyErr_NoMemory();
    }
    pthread_mutex_lock(&c->lock);
    int r = core_add_session(c, s);
    pthread_mutex_unlock(&c->lock);
    if (r != 0) {
        aead_free(s->enc);
        aead_free(s->dec);
        free(s);
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

static PyObject *Core_send_on(PyObject *self, PyObject *args) {
    CORE(self);
    long slot;
    unsigned int local;
    if (!PyArg_ParseTuple(args, "lI", &slot, &local) || !valid_slot(slot))
        return NULL;
    pthread_mutex_lock(&c->lock);
    struct session *s = local ? core_session(c, local) : NULL;
    int ok = local == 0 || (s && s->slot == slot);
    if (ok)
        c->slots[slot].send = s;
    pthread_mutex_unlock(&c->lock);
    if (!ok)
        return PyErr_Format(PyExc_KeyError, "no session %u for slot %ld", local, slot);
    Py_RETURN_NONE;
}

static PyObject *Core_remove_session(PyObject *self, PyObject *args) {
    CORE(self);
    unsigned int local;
    if (!PyArg_ParseTuple(args, "I", &local))
        return NULL;
    pthread_mutex_lock(&c->lock);
    struct session *s = core_session(c, local);
    uint64_t next = s ? __atomic_load_n(&s->counter, __ATOMIC_RELAXED) : 0;
    core_remove_session(c, local);
    pthread_mutex_unlock(&c->lock);
    if (s == NULL)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(next); /* where Python's own counting goes on */
}

static PyObject *Core_take_counter(PyObject *self, PyObject *args) {
    CORE(self);
    unsigned int local;
    if (!PyArg_ParseTuple(args, "I", &local))
        return NULL;
    pthread_mutex_lock(&c->lock);
    struct session *s = core_session(c, local);
    uint64_t counter = s ? __atomic_fetch_add(&s->counter, 1, __ATOMIC_RELAXED) : 0;
    pthread_mutex_unlock(&c->lock);
    if (s == NULL)
        return PyErr_Format(PyExc_KeyError, "no session %u", local);
    return PyLong_FromUnsignedLongLong(counter);
}

static PyObject *address(const struct sockaddr_in *a, int has) {
    char host[INET_ADDRSTRLEN];
    if (!has || inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host)) == NULL)
        return Py_BuildValue("(Oi)", Py_None, 0);
    return Py_BuildValue("(si)", host, ntohs(a->sin_port));
}

static PyObject *Core_take(PyObject *self, PyObject *args) {
    CORE(self);
    unsigned int max = 256;
    if (!PyArg_ParseTuple(args, "|I", &max))
        return NULL;
    if (max > 1024)
        max = 1024;
    struct slow_entry entries[1024];
    unsigned n = slowpath_take(&c->slow, entries, max);
    PyObject *out = PyList_New(0);
    for (unsigned i = 0; i < n; i++) {
        if (out) {
            PyObject *addr = address(&entries[i].addr, entries[i].kind == SLOW_DATAGRAM);
            PyObject *item =
                addr ? Py_BuildValue("(iiINy#)", entries[i].kind, entries[i].slot,
                                     entries[i].vni, addr, (const char *)entries[i].data,
                                     (Py_ssize_t)entries[i].len)
                     : NULL;
            if (item == NULL || PyList_Append(out, item) != 0)
                Py_CLEAR(out);
            Py_XDECREF(item);
        }
        free(entries[i].data);
    }
    return out;
}

static PyObject *Core_activity(PyObject *self, PyObject *unused) {
    CORE(self);
    PyObject *out = PyList_New(0);
    pthread_mutex_lock(&c->lock);
    double now = core_now();
    for (int i = 0; out && i < CORE_MAX_SLOTS; i++) {
        struct slot *s = &c->slots[i];
        if (!s->used)
            continue;
        PyObject *addr = address(&s->endpoint, s->has_endpoint);
        PyObject *item = addr ? Py_BuildValue("(iddddNiKKKKOK)", i, s->last_rx, s->last_tx,
                                              s->last_data_rx, s->last_data_tx, addr, s->roamed,
                                              (unsigned long long)s->rx_bytes,
                                              (unsigned long long)s->rx_packets,
                                              (unsigned long long)s->tx_bytes,
                                              (unsigned long long)s->tx_packets,
                                              s->fec_until > now ? Py_True : Py_False,
                                              (unsigned long long)s->repaired)
                              : NULL;
        s->roamed = 0;
        if (item == NULL || PyList_Append(out, item) != 0)
            Py_CLEAR(out);
        Py_XDECREF(item);
    }
    pthread_mutex_unlock(&c->lock);
    return out;
}

static PyObject *Core_port_counters(PyObject *self, PyObject *args) {
    CORE(self);
    unsigned int vni;
    if (!PyArg_ParseTuple(args, "I", &vni))
        return NULL;
    unsigned long long v[4] = {0, 0, 0, 0};
    pthread_mutex_lock(&c->lock);
    struct port *p = core_port(c, vni);
    if (p != NULL) {
        v[0] = p->tx_bytes;
        v[1] = p->tx_packets;
        v[2] = p->rx_bytes;
        v[3] = p->rx_packets;
    }
    pthread_mutex_unlock(&c->lock);
    return Py_BuildValue("(KKKK)", v[0], v[1], v[2], v[3]);
}

static PyObject *Core_drops(PyObject *self, PyObject *unused) {
    CORE(self);
    PyObject *out = PyDict_New();
    pthread_mutex_lock(&c->lock);
    for (int i = 0; out && i < DROP_COUNT; i++) {
        if (!c->drops[i])
            continue;
        PyObject *v = PyLong_FromUnsignedLongLong(c->drops[i]);
        if (v == NULL || PyDict_SetItemString(out, drop_names[i], v) != 0)
            Py_CLEAR(out);
        Py_XDECREF(v);
    }
    pthread_mutex_unlock(&c->lock);
    return out;
}

static PyObject *Core_stats(PyObject *self, PyObject *unused) {
    CORE(self);
    pthread_mutex_lock(&c->lock);
    PyObject *out = Py_BuildValue(
        "{s:O,s:O,s:K,s:K,s:K,s:K,s:I,s:K}", "gso", c->gso ? Py_True : Py_False, "gro",
        c->gro ? Py_True : Py_False, "send_errors", (unsigned long long)c->send_errors, "wakeups",
        (unsigned long long)c->wakeups, "tx_messages", (unsigned long long)c->tx_messages,
        "rx_messages", (unsigned long long)c->rx_messages, "sessions", c->sessions, "spares",
        (unsigned long long)c->spares);
    pthread_mutex_unlock(&c->lock);
    return out;
}

static PyObject *Core_eventfd(PyObject *self, void *unused) {
    CORE(self);
    return PyLong_FromLong(c->slow.eventfd);
}

static PyMethodDef Core_methods[] = {
    {"start", Core_start, METH_NOARGS, "Start the thread."},
    {"stop", Core_stop, METH_NOARGS, "Stop the thread and wait for it."},
    {"add_port", Core_add_port, METH_VARARGS, "add_port(vni, tap_fd)"},
    {"remove_port", Core_remove_port, METH_VARARGS, "remove_port(vni)"},
    {"set_macs", Core_set_macs, METH_VARARGS, "set_macs(vni, macs, nodes): node 0 is local"},
    {"set_slot", Core_set_slot, METH_VARARGS, "set_slot(slot, node, host, port)"},
    {"clear_slot", Core_clear_slot, METH_VARARGS, "clear_slot(slot)"},
    {"set_node_slot", Core_set_node_slot, METH_VARARGS, "set_node_slot(node, slot)"},
    {"add_session", Core_add_session, METH_VARARGS,
     "add_session(slot, local, remote, send_key, recv_key, next_counter, replay_top, "
     "replay_bits, expires)"},
    {"send_on", Core_send_on, METH_VARARGS, "send_on(slot, local_index or 0)"},
    {"remove_session", Core_remove_session, METH_VARARGS, "remove_session(local_index) -> the next send counter, or None"},
    {"take_counter", Core_take_counter, METH_VARARGS, "take_counter(local_index) -> counter"},
    {"take", Core_take, METH_VARARGS, "take(max) -> slow-path entries"},
    {"activity", Core_activity, METH_NOARGS, "activity() -> per-slot times and counters"},
    {"port_counters", Core_port_counters, METH_VARARGS, "port_counters(vni)"},
    {"drops", Core_drops, METH_NOARGS, "drops() -> {reason: count}"},
    {"stats", Core_stats, METH_NOARGS, "stats() -> dict"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef Core_getset[] = {
    {"eventfd", Core_eventfd, NULL, "readable when the slow path holds entries", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "skylan.dataplane._core.Core",
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Core_init,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_methods = Core_methods,
    .tp_getset = Core_getset,
    .tp_doc = "The per-packet loop of one data-plane lane, in its own thread.",
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_core",
                                    "skylan's compiled data-plane core.", -1, NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__core(void) {
    if (PyType_Ready(&CoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(m, "Core", (PyObject *)&CoreType) < 0 ||
        PyModule_AddIntConstant(m, "SLOW_DATAGRAM", SLOW_DATAGRAM) < 0 ||
        PyModule_AddIntConstant(m, "SLOW_TAP_FRAME", SLOW_TAP_FRAME) < 0 ||
        PyModule_AddIntConstant(m, "SLOW_PEER_FRAME", SLOW_PEER_FRAME) < 0 ||
        PyModule_AddIntConstant(m, "REPLAY_WINDOW", REPLAY_WINDOW) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
