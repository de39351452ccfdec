/* httputil.h -- pure helpers of the HTTP layer: entity-tag lists, integer
 * query parameters, escaped paths, CORS origins, Accept-Encoding.  No MHD
 * here, so each is unit-tested and fuzzed alone.  Building text (the
 * buffer, UTF-8, JSON strings) is text.h's. */
#ifndef VX_HTTPUTIL_H
#define VX_HTTPUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result of parsing If-None-Match / If-Match. */
struct etag_list {
    bool any;       /* "*" */
    size_t n;       /* number of tags kept (at most ETAG_LIST_MAX) */
    int64_t tag[8]; /* the numbers inside the quotes */
    bool weak[8];   /* W/ prefix */
};
#define ETAG_LIST_MAX 8

/* Entity-tag lists, as sent in If-None-Match and If-Match (RFC 9110
 * §8.8.3): OWS ( "*" / tag *( OWS "," OWS tag ) ) OWS, where a tag is an
 * optional W/ and a quoted string of entity-tag characters (printable ASCII
 * but '"', and bytes >= 0x80).  One parser reads both kinds of list below. */

/* Parse `"1", W/"2"` or `*` where every tag is a version: a decimal integer
 * 0..INT64_MAX.  Anything else (or more than ETAG_LIST_MAX tags) is an error.
 * 0 on success, -1 when malformed. */
int etag_parse(const char *s, size_t len, struct etag_list *out);

/* Does the list contain version v (weak comparison: W/ ignored)? */
bool etag_matches(const struct etag_list *l, int64_t v);

/* Does the header value s (len bytes), a list of tags of any text, hold the
 * tag `"text"` (weak comparison) or "*"?  A malformed list holds nothing. */
bool etag_header_has(const char *s, size_t len, const char *text, size_t text_len);

/* The entity-tag of version v, quotes included ("12"), in out (at least
 * ETAG_VERSION_MAX bytes).  Returns out. */
#define ETAG_VERSION_MAX 24
char *etag_format(int64_t v, char *out);

/* Parse a decimal integer in [min, max] with nothing else around it.
 * 0 on success, -1 otherwise. */
int parse_int_range(const char *s, int64_t min, int64_t max, int64_t *out);

/* Decode %XX escapes of s (NUL-terminated) in place and return the new
 * length.  Like libmicrohttpd's own, except that %00 stays as it is, so a
 * NUL can never cut a path or parameter short and make it mean something
 * else. */
size_t url_unescape(char *s);

/* Is origin one of list's comma-separated origins (spaces around each
 * ignored), or is list "*"?  A NULL list allows none. */
bool origin_listed(const char *list, const char *origin);

/* Does an Accept-Encoding value (RFC 9110 §12.5.3; NULL: absent) accept
 * gzip?  Yes when gzip (or x-gzip) is listed with a q above 0, or when it
 * is not named and "*" is, with a q above 0. */
bool accepts_gzip(const char *accept_encoding);

#endif
