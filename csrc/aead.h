/* AES-256-GCM through OpenSSL's EVP, as a session's two directions use it.
 *
 * Sealing writes the ciphertext straight into its datagrams: a message of
 * N chunks becomes N segments of (16-byte header + chunk) laid out for one
 * GSO send, encrypted piece by piece into place with the one tag split over
 * wherever it falls. The nonce is Noise's: 32 zero bits and the counter. */
#ifndef SKYLAN_AEAD_H
#define SKYLAN_AEAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

/* A context keyed once for one direction; NULL on failure. */
EVP_CIPHER_CTX *aead_new(const uint8_t key[32], int encrypt);
void aead_free(EVP_CIPHER_CTX *ctx);

/* Encrypt plaintext (len bytes) as message `counter` to `receiver` into out,
 * which must hold aead_sealed_size(len, chunk). Returns the number of
 * segments (each DATA_HDR_LEN + chunk bytes, the last maybe shorter), or -1
 * if it needs more than MAX_CHUNKS or OpenSSL fails. *size is the bytes
 * written. */
int aead_seal(EVP_CIPHER_CTX *ctx, uint32_t receiver, uint64_t counter, const uint8_t *plaintext,
              size_t len, size_t chunk, uint8_t *out, size_t *size);
size_t aead_sealed_size(size_t len, size_t chunk);

/* Authenticate and decrypt one whole message (ciphertext with its tag) of
 * `count` chunks; out gets len - TAG_LEN bytes. 0, or -1 if it is forged. */
int aead_open(EVP_CIPHER_CTX *ctx, uint32_t receiver, uint64_t counter, uint8_t count,
              const uint8_t *ciphertext, size_t len, uint8_t *out);

#endif
