/* Why the core dropped something: one counter per reason, named as the
 * Python data plane names them so `skylan status` reads the same. */
#ifndef SKYLAN_DROPS_H
#define SKYLAN_DROPS_H

#include <stdint.h>

#define DROP_REASONS(X)                                                                         \
    X(SHORT_DATA, "short_data")                                                                 \
    X(BAD_DATA_HEADER, "bad_data_header")                                                       \
    X(EXPIRED_SESSION, "expired_session")                                                       \
    X(REPLAY, "replay")                                                                         \
    X(AUTH_FAILED, "auth_failed")                                                               \
    X(SHORT_CIPHERTEXT, "short_ciphertext")                                                     \
    X(BAD_CONTAINER, "bad_container")                                                           \
    X(REASSEMBLY_DUPLICATE, "reassembly_duplicate")                                             \
    X(REASSEMBLY_MISMATCH, "reassembly_mismatch")                                               \
    X(REASSEMBLY_BAD_SIZES, "reassembly_bad_sizes")                                             \
    X(REASSEMBLY_EVICTED, "reassembly_evicted")                                                 \
    X(REASSEMBLY_TIMEOUT, "reassembly_timeout")                                                 \
    X(UNKNOWN_NETWORK, "unknown_network")                                                       \
    X(NOT_FOR_US, "not_for_us")                                                                 \
    X(MAC_SPOOF, "mac_spoof")                                                                   \
    X(BAD_SOURCE_MAC, "bad_source_mac")                                                         \
    X(RUNT, "runt")                                                                             \
    X(TAP_FULL, "tap_full")                                                                     \
    X(SEAL_FAILED, "seal_failed")                                                               \
    X(SLOW_PATH_FULL, "slow_path_full")

#define X_ENUM(id, name) DROP_##id,
enum drop_reason { DROP_REASONS(X_ENUM) DROP_COUNT };
#undef X_ENUM

extern const char *const drop_names[DROP_COUNT];

#endif
