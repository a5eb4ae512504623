/* AES-256-GCM seal into datagram segments, and open. */
#include "aead.h"

#include <openssl/evp.h>
#include <string.h>

#include "wire.h"

EVP_CIPHER_CTX *aead_new(const uint8_t key[32], int encrypt) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return NULL;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, NULL, encrypt) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void aead_free(EVP_CIPHER_CTX *ctx) { EVP_CIPHER_CTX_free(ctx); }

static void nonce(uint8_t iv[12], uint64_t counter) {
    memset(iv, 0, 4);
    put_be64(iv + 4, counter);
}

size_t aead_sealed_size(size_t len, size_t chunk) {
    size_t total = len + TAG_LEN;
    size_t count = (total + chunk - 1) / chunk;
    return total + count * DATA_HDR_LEN;
}

int aead_seal(EVP_CIPHER_CTX *ctx, uint32_t receiver, uint64_t counter, const uint8_t *plaintext,
              size_t len, size_t chunk, uint8_t *out, size_t *size) {
    size_t total = len + TAG_LEN;
    size_t count = (total + chunk - 1) / chunk;
    if (chunk == 0 || count > MAX_CHUNKS || len > INT32_MAX)
        return -1;
    uint8_t iv[12], aad[DATA_HDR_LEN], tag[TAG_LEN];
    int outl;
    nonce(iv, counter);
    wire_put_data_header(aad, 0, 0, (uint8_t)count, receiver, counter);
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &outl, aad, DATA_HDR_LEN) != 1)
        return -1;
    size_t seg = DATA_HDR_LEN + chunk;
    for (size_t i = 0; i < count; i++) {
        uint8_t *s = out + i * seg;
        memcpy(s, aad, DATA_HDR_LEN);
        s[2] = (uint8_t)i;
        size_t a = i * chunk, b = a + chunk < total ? a + chunk : total;
        size_t enc_end = b < len ? b : len;
        if (a < enc_end &&
            EVP_EncryptUpdate(ctx, s + DATA_HDR_LEN, &outl, plaintext + a, (int)(enc_end - a)) != 1)
            return -1;
    }
    if (EVP_EncryptFinal_ex(ctx, tag, &outl) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        return -1;
    for (size_t k = 0; k < TAG_LEN; k++) { /* the tag's bytes, wherever they fall */
        size_t pos = len + k;
        out[(pos / chunk) * seg + DATA_HDR_LEN + pos % chunk] = tag[k];
    }
    *size = total + count * DATA_HDR_LEN;
    return (int)count;
}

int aead_open(EVP_CIPHER_CTX *ctx, uint32_t receiver, uint64_t counter, uint8_t count,
              const uint8_t *ciphertext, size_t len, uint8_t *out) {
    if (len < TAG_LEN || len - TAG_LEN > INT32_MAX)
        return -1;
    uint8_t iv[12], aad[DATA_HDR_LEN];
    int outl;
    nonce(iv, counter);
    wire_put_data_header(aad, 0, 0, count, receiver, counter);
    size_t n = len - TAG_LEN;
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &outl, aad, DATA_HDR_LEN) != 1 ||
        EVP_DecryptUpdate(ctx, out, &outl, ciphertext, (int)n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(ciphertext + n)) != 1 ||
        EVP_DecryptFinal_ex(ctx, out + outl, &outl) != 1)
        return -1;
    return 0;
}
