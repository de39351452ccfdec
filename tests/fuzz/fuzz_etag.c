/* fuzz_etag.c -- libFuzzer target for the header and query values parsed
 * by server/httputil.c: etag_parse()/etag_matches() (If-None-Match,
 * If-Match) and parse_int_range() (wait=, days=, rolled_out_days=,
 * Content-Length).
 *
 * The input is one header or parameter value.  etag_parse() gets an exactly
 * sized copy (it takes a length, so it must not read past it);
 * parse_int_range() gets the value up to its first NUL, as MHD hands it over.
 *
 * Checked besides ASan/UBSan, against reference parsers written here from
 * the contracts in httputil.h and docs/decisions.md:
 *   - etag_parse accepts exactly  OWS ( "*" / tag *( OWS "," OWS tag ) ) OWS
 *     with tag = [ "W/" ] DQUOTE 1*DIGIT DQUOTE, at most ETAG_LIST_MAX tags,
 *     each <= INT64_MAX, and returns those tags; etag_matches agrees;
 *   - parse_int_range accepts exactly an optional '-' and decimal digits,
 *     nothing around them, whose value lies in [min, max], and returns it. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httputil.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_etag: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- reference: entity-tag lists ------------------------------------------- */

static size_t ows(const char *s, size_t i, size_t len)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

/* 0 and the list, or -1. */
static int ref_etag(const char *s, size_t len, struct etag_list *out)
{
    size_t i = ows(s, 0, len);

    memset(out, 0, sizeof(*out));
    if (i < len && s[i] == '*') {
        if (ows(s, i + 1, len) != len)
            return -1;
        out->any = true;
        return 0;
    }
    for (;;) {
        bool weak = false;
        uint64_t v = 0;
        size_t digits = 0;

        i = ows(s, i, len);
        if (i + 1 < len && s[i] == 'W' && s[i + 1] == '/') {
            weak = true;
            i += 2;
        }
        if (i >= len || s[i] != '"')
            return -1;
        for (i++; i < len && isdigit((unsigned char)s[i]); i++, digits++) {
            uint64_t d = (uint64_t)(s[i] - '0');
            if (v > ((uint64_t)INT64_MAX - d) / 10)
                return -1;
            v = v * 10 + d;
        }
        if (digits == 0 || i >= len || s[i] != '"')
            return -1;
        if (out->n == ETAG_LIST_MAX)
            return -1;
        out->tag[out->n] = (int64_t)v;
        out->weak[out->n] = weak;
        out->n++;
        i = ows(s, i + 1, len);
        if (i == len)
            return 0;
        if (s[i] != ',')
            return -1;
        i++;
    }
}

static void check_etag(const uint8_t *data, size_t size)
{
    struct etag_list got, want;
    char *s = malloc(size ? size : 1);

    CHECK(s != NULL);
    memcpy(s, data, size);
    int rc = etag_parse(s, size, &got);
    int ref = ref_etag(s, size, &want);
    CHECK(rc == 0 || rc == -1);
    CHECK(rc == ref);
    if (rc == 0) {
        CHECK(got.any == want.any && got.n == want.n);
        CHECK(got.any ? got.n == 0 : got.n >= 1 && got.n <= ETAG_LIST_MAX);
        for (size_t i = 0; i < got.n; i++) {
            CHECK(got.tag[i] == want.tag[i] && got.weak[i] == want.weak[i]);
            CHECK(got.tag[i] >= 0);
            CHECK(etag_matches(&got, got.tag[i]));
        }
        /* A version not in the list never matches, unless "*": one of
         * 0..ETAG_LIST_MAX is missing from any list. */
        int64_t probe = 0;
        for (bool listed = true; listed; probe += listed) {
            listed = false;
            for (size_t i = 0; i < got.n; i++)
                listed |= got.tag[i] == probe;
        }
        CHECK(etag_matches(&got, probe) == got.any);
    }
    free(s);
}

/* ---- reference: integers ------------------------------------------------------ */

/* 0 and *out when s is -?[0-9]+ and fits in int64; -1 otherwise. */
static int ref_int(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    uint64_t v = 0;
    const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

    if (neg)
        s++;
    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (lim - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

static void check_int(const uint8_t *data, size_t size)
{
    static const struct {
        int64_t min, max;
    } ranges[] = {
        {1, 60},                /* wait= */
        {0, INT64_MAX},         /* Content-Length */
        {0, 100000},            /* days=, rolled_out_days= */
        {INT64_MIN, INT64_MAX}, /* anything */
    };
    char *s = malloc(size + 1);
    int64_t want = 0;

    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    int ref = ref_int(s, &want);
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        int64_t got = 12345;
        int rc = parse_int_range(s, ranges[i].min, ranges[i].max, &got);
        bool ok = ref == 0 && want >= ranges[i].min && want <= ranges[i].max;
        if (!ok && rc == 0) {
            fprintf(stderr, "fuzz_etag: parse_int_range accepted \"");
            for (const char *c = s; *c != '\0'; c++)
                fprintf(stderr, isprint((unsigned char)*c) ? "%c" : "\\x%02x", (unsigned char)*c);
            fprintf(stderr, "\" as %lld in [%lld, %lld]\n", (long long)got,
                    (long long)ranges[i].min, (long long)ranges[i].max);
        }
        CHECK(rc == (ok ? 0 : -1));
        if (rc == 0)
            CHECK(got == want);
        else
            CHECK(got == 12345); /* untouched on failure */
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_etag(data, size);
    check_int(data, size);
    return 0;
}
