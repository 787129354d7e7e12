/*
 * Batch AES-256-GCM for the envelope of secrets at rest (src/crypto/envelope.ts, which owns the
 * format; docs/psk-database.md "Encryption"). The same OpenSSL that node:crypto uses (Node's own,
 * its symbols exported by the node binary), without the per-call cost of node:crypto: a
 * createCipheriv + setAAD + update + final + getAuthTag costs ~7.6 us per 32-byte secret in JS
 * calls and allocations, of which AES-GCM itself is well under one. Here one context per key keeps
 * the key schedule and each secret only re-initialises the IV.
 *
 * Blob layout (big-endian): version u8 (=1) | key id u32 | iv [12] | tag [16] | ciphertext.
 * Associated data: the 5 header bytes, then the owner's bytes (the PID for a PPS).
 *
 * Nothing here formats or logs a secret; errors name lengths only.
 */
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ENVELOPE_VERSION 1
#define KEY_BYTES 32
#define HEADER_BYTES 5
#define IV_BYTES 12
#define TAG_BYTES 16
#define OVERHEAD (HEADER_BYTES + IV_BYTES + TAG_BYTES)
/* The secrets sealed here are short (a PPS is 32 bytes, a password under 64): one bound keeps
 * every length an int for OpenSSL. */
#define MAX_PART (1u << 30)

typedef struct {
  EVP_CIPHER_CTX *enc;
  EVP_CIPHER_CTX *dec;
} KeyContexts;

static void free_contexts(KeyContexts *k) {
  if (k == NULL) return;
  EVP_CIPHER_CTX_free(k->enc); /* frees and cleanses the key schedule */
  EVP_CIPHER_CTX_free(k->dec);
  free(k);
}

static void finalize_contexts(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free_contexts((KeyContexts *)data);
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

static int get_buffer(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  bool is;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  void *p;
  if (napi_get_buffer_info(env, v, &p, len) != napi_ok) return 0;
  *data = (uint8_t *)p;
  return 1;
}

static int get_u32_array(napi_env env, napi_value v, uint32_t **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, len, &p, NULL, NULL) != napi_ok || type != napi_uint32_array) return 0;
  *data = (uint32_t *)p;
  return 1;
}

static KeyContexts *get_contexts(napi_env env, napi_value v) {
  napi_valuetype t;
  void *p = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return (KeyContexts *)p;
}

/* contexts(key: Buffer) -> External: encryption and decryption contexts holding the key schedule. */
static napi_value contexts(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1) return fail(env, "contexts: one key");
  uint8_t *key;
  size_t key_len;
  if (!get_buffer(env, argv[0], &key, &key_len) || key_len != KEY_BYTES) return fail(env, "contexts: the key is not 32 bytes");
  KeyContexts *k = calloc(1, sizeof *k);
  if (k == NULL) return fail(env, "contexts: out of memory");
  k->enc = EVP_CIPHER_CTX_new();
  k->dec = EVP_CIPHER_CTX_new();
  if (k->enc == NULL || k->dec == NULL ||
      EVP_EncryptInit_ex(k->enc, EVP_aes_256_gcm(), NULL, key, NULL) != 1 ||
      EVP_DecryptInit_ex(k->dec, EVP_aes_256_gcm(), NULL, key, NULL) != 1) {
    free_contexts(k);
    return fail(env, "contexts: OpenSSL could not set up AES-256-GCM");
  }
  napi_value out;
  if (napi_create_external(env, k, finalize_contexts, NULL, &out) != napi_ok) {
    free_contexts(k);
    return fail(env, "contexts: could not wrap the contexts");
  }
  return out;
}

static void write_header(uint8_t *out, uint32_t key_id) {
  out[0] = ENVELOPE_VERSION;
  out[1] = (uint8_t)(key_id >> 24);
  out[2] = (uint8_t)(key_id >> 16);
  out[3] = (uint8_t)(key_id >> 8);
  out[4] = (uint8_t)key_id;
}

/* Sums n lengths into *total; 0 if one is too long or the sum overflows. */
static int sum_lengths(const uint32_t *lengths, size_t n, size_t *total) {
  size_t t = 0;
  for (size_t i = 0; i < n; i++) {
    if (lengths[i] > MAX_PART || t > SIZE_MAX - lengths[i]) return 0;
    t += lengths[i];
  }
  *total = t;
  return 1;
}

/*
 * seal(contexts, keyId, data, plainLengths, aadLengths, ivs, out): data holds the plaintexts back
 * to back, then the associated data back to back; ivs n * 12 random bytes; out receives the blobs
 * back to back (sum of OVERHEAD + plainLengths[i] bytes).
 */
static napi_value seal(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7) return fail(env, "seal: seven arguments");
  KeyContexts *k = get_contexts(env, argv[0]);
  uint32_t key_id;
  uint8_t *data, *ivs, *out;
  size_t data_len, ivs_len, out_len, n, n_aad;
  uint32_t *plain_lengths, *aad_lengths;
  if (k == NULL || napi_get_value_uint32(env, argv[1], &key_id) != napi_ok || !get_buffer(env, argv[2], &data, &data_len) ||
      !get_u32_array(env, argv[3], &plain_lengths, &n) || !get_u32_array(env, argv[4], &aad_lengths, &n_aad) ||
      !get_buffer(env, argv[5], &ivs, &ivs_len) || !get_buffer(env, argv[6], &out, &out_len)) {
    return fail(env, "seal: arguments of the wrong types");
  }
  size_t plain_total, aad_total;
  if (n != n_aad || !sum_lengths(plain_lengths, n, &plain_total) || !sum_lengths(aad_lengths, n, &aad_total) ||
      plain_total > data_len || aad_total != data_len - plain_total || ivs_len != n * IV_BYTES ||
      n > (SIZE_MAX - plain_total) / OVERHEAD || out_len != plain_total + n * OVERHEAD) {
    return fail(env, "seal: lengths do not add up");
  }
  const uint8_t *plain = data;
  const uint8_t *aad = data + plain_total;
  uint8_t *blob = out;
  for (size_t i = 0; i < n; i++) {
    int len;
    write_header(blob, key_id);
    memcpy(blob + HEADER_BYTES, ivs + i * IV_BYTES, IV_BYTES);
    uint8_t *tag = blob + HEADER_BYTES + IV_BYTES;
    uint8_t *body = blob + OVERHEAD;
    if (EVP_EncryptInit_ex(k->enc, NULL, NULL, NULL, blob + HEADER_BYTES) != 1 ||
        EVP_EncryptUpdate(k->enc, NULL, &len, blob, HEADER_BYTES) != 1 ||
        (aad_lengths[i] > 0 && EVP_EncryptUpdate(k->enc, NULL, &len, aad, (int)aad_lengths[i]) != 1) ||
        EVP_EncryptUpdate(k->enc, body, &len, plain, (int)plain_lengths[i]) != 1 || (uint32_t)len != plain_lengths[i] ||
        EVP_EncryptFinal_ex(k->enc, body + len, &len) != 1 || len != 0 ||
        EVP_CIPHER_CTX_ctrl(k->enc, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag) != 1) {
      OPENSSL_cleanse(out, out_len);
      return fail(env, "seal: OpenSSL failed");
    }
    plain += plain_lengths[i];
    aad += aad_lengths[i];
    blob += OVERHEAD + plain_lengths[i];
  }
  return NULL;
}

/*
 * open(contexts[], keyIds, data, blobLengths, aadLengths, out) -> number: data holds the blobs back
 * to back, then the associated data back to back; contexts[j] holds the key with id keyIds[j];
 * out receives the plaintexts back to back. Returns -1 when every blob opened, else the index of
 * the first that did not (wrong version, unknown key, a failed tag), with out zeroed.
 */
static napi_value open_blobs(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 6) return fail(env, "open: six arguments");
  bool is_array;
  uint32_t n_keys;
  uint8_t *data, *out;
  size_t data_len, out_len, n, n_aad, n_ids;
  uint32_t *key_ids, *blob_lengths, *aad_lengths;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &n_keys) != napi_ok || !get_u32_array(env, argv[1], &key_ids, &n_ids) ||
      n_ids != n_keys || n_keys == 0 || !get_buffer(env, argv[2], &data, &data_len) ||
      !get_u32_array(env, argv[3], &blob_lengths, &n) || !get_u32_array(env, argv[4], &aad_lengths, &n_aad) ||
      !get_buffer(env, argv[5], &out, &out_len)) {
    return fail(env, "open: arguments of the wrong types");
  }
  size_t blob_total, aad_total;
  if (n != n_aad || !sum_lengths(blob_lengths, n, &blob_total) || !sum_lengths(aad_lengths, n, &aad_total) ||
      blob_total > data_len || aad_total != data_len - blob_total) {
    return fail(env, "open: lengths do not add up");
  }
  size_t plain_total = 0;
  for (size_t i = 0; i < n; i++) {
    if (blob_lengths[i] < OVERHEAD) return fail(env, "open: a blob is shorter than its envelope");
    plain_total += blob_lengths[i] - OVERHEAD;
  }
  if (out_len != plain_total) return fail(env, "open: lengths do not add up");
  /* One entry per data key the database has ever kept (a handful; rotation deletes unused ones). */
  KeyContexts **keys = calloc(n_keys, sizeof *keys);
  if (keys == NULL) return fail(env, "open: out of memory");
  for (uint32_t j = 0; j < n_keys; j++) {
    napi_value v;
    if (napi_get_element(env, argv[0], j, &v) != napi_ok || (keys[j] = get_contexts(env, v)) == NULL) {
      free(keys);
      return fail(env, "open: arguments of the wrong types");
    }
  }
  const uint8_t *blob = data;
  const uint8_t *aad = data + blob_total;
  uint8_t *plain = out;
  int64_t failed = -1;
  for (size_t i = 0; i < n && failed < 0; i++) {
    const uint32_t body_len = blob_lengths[i] - OVERHEAD;
    const uint32_t key_id = ((uint32_t)blob[1] << 24) | ((uint32_t)blob[2] << 16) | ((uint32_t)blob[3] << 8) | blob[4];
    KeyContexts *k = NULL;
    for (uint32_t j = 0; j < n_keys && k == NULL; j++) {
      if (key_ids[j] == key_id) k = keys[j];
    }
    int len;
    /* The tag is copied: OpenSSL's SET_TAG takes a non-const pointer. */
    uint8_t tag[TAG_BYTES];
    memcpy(tag, blob + HEADER_BYTES + IV_BYTES, TAG_BYTES);
    if (blob[0] != ENVELOPE_VERSION || k == NULL ||
        EVP_DecryptInit_ex(k->dec, NULL, NULL, NULL, blob + HEADER_BYTES) != 1 ||
        EVP_DecryptUpdate(k->dec, NULL, &len, blob, HEADER_BYTES) != 1 ||
        (aad_lengths[i] > 0 && EVP_DecryptUpdate(k->dec, NULL, &len, aad, (int)aad_lengths[i]) != 1) ||
        EVP_DecryptUpdate(k->dec, plain, &len, blob + OVERHEAD, (int)body_len) != 1 || (uint32_t)len != body_len ||
        EVP_CIPHER_CTX_ctrl(k->dec, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag) != 1 ||
        EVP_DecryptFinal_ex(k->dec, plain + len, &len) != 1) {
      failed = (int64_t)i;
      break;
    }
    blob += blob_lengths[i];
    aad += aad_lengths[i];
    plain += body_len;
  }
  free(keys);
  /* Unauthenticated plaintext never leaves: on any failure the whole output is zeroed. */
  if (failed >= 0) OPENSSL_cleanse(out, out_len);
  napi_value result;
  if (napi_create_int64(env, failed, &result) != napi_ok) return NULL;
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"contexts", NULL, contexts, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seal", NULL, seal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"open", NULL, open_blobs, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
