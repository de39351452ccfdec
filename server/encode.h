/* encode.h -- bytes as text: lowercase hex and unpadded base64url.
 *
 * Pure functions, no allocation: the caller sizes every output buffer.
 * Token secrets are base64url (docs/decisions.md), their SHA-256 digests
 * travel to PostgreSQL as hex. */
#ifndef VX_ENCODE_H
#define VX_ENCODE_H

#include <stddef.h>
#include <stdint.h>

/* The size of the text encode_base64url() writes for n bytes, NUL included. */
#define ENCODE_BASE64URL_SIZE(n) (((n)*4 + 2) / 3 + 1)

/* n bytes as 2n lowercase hex digits plus a NUL; out holds 2n + 1. */
void encode_hex(const uint8_t *in, size_t n, char *out);

/* Exactly 2n hex digits (either case) of the NUL-terminated s into n bytes.
 * 0, or -1 when s has another length or a character that is not a hex
 * digit (then out may be partly written). */
int encode_unhex(const char *s, uint8_t *out, size_t n);

/* n bytes as base64url without padding (RFC 4648 §5), NUL-terminated; out
 * holds ENCODE_BASE64URL_SIZE(n). */
void encode_base64url(const uint8_t *in, size_t n, char *out);

#endif
