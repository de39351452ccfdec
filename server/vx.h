/* vx.h -- small types shared by every module.
 *
 * Errors travel as a struct vx_error filled by the callee: a stable machine
 * code (one of docs/api.md §5's codes, a static string compared by pointer or
 * strcmp) and a human sentence.
 *
 * Results follow one convention per layer:
 *   - the pure modules (flag, eval, httputil, ...) return 0 on success and
 *     -1 on failure, with a struct vx_error where the caller needs a reason;
 *   - the database layer returns enum store_status (store.h);
 *   - HTTP handlers return enum http_rc (http.h);
 *   - a function with more than two outcomes returns an enum of its own that
 *     names each (enum http_inm, enum http_park, enum auth_result, ...). */
#ifndef VX_H
#define VX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* docs/api.md §5 error codes. */
#define VX_E_BAD_REQUEST         "bad_request"
#define VX_E_INVALID_JSON        "invalid_json"
#define VX_E_UNKNOWN_FIELD       "unknown_field"
#define VX_E_INVALID_VALUE       "invalid_value"
#define VX_E_UNAUTHORIZED        "unauthorized"
#define VX_E_FORBIDDEN           "forbidden"
#define VX_E_NOT_FOUND           "not_found"
#define VX_E_METHOD_NOT_ALLOWED  "method_not_allowed"
#define VX_E_CONFLICT            "conflict"
#define VX_E_PRECONDITION_FAILED "precondition_failed"
#define VX_E_PAYLOAD_TOO_LARGE   "payload_too_large"
#define VX_E_UNAVAILABLE         "unavailable"
#define VX_E_INTERNAL            "internal_error" /* 500: out of memory while answering */

struct vx_error {
    const char *code;  /* one of VX_E_*, static */
    char message[256]; /* a human sentence, NUL-terminated */
};

/* Fill err (if not NULL) and return -1. */
int vx_fail(struct vx_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
