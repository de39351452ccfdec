/* fuzz_refs.c -- libFuzzer target for the reference scan of server/refs.c
 * (refs_scan_buffer: `vexil refs`).
 *
 * The input is the text of one file.  refs_scan_buffer gets an exactly
 * sized copy (it takes a length, so it must not read past it: a name or
 * an escape run at either end of the buffer is where that would happen).
 *
 * Checked besides ASan/UBSan, against a reference written here from the
 * contract in refs.h, one byte at a time with no SIMD and no hashing: a
 * reference is a name of the set between two of the same quote characters,
 * the first not escaped by an odd run of backslashes; lines end at LF; one
 * hit per name and line, in the order of the text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flag.h"
#include "refs.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_refs: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const char *const NAMES[] = {"a", "b", "ab", "a.b", "x-1", "A_b", "0", "checkout", NULL};

static int name_char(unsigned char c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return !first && (c == '_' || c == '.' || c == '-');
}

/* The reference scan: hits into lines[]/ids[] (room for max); their number. */
static size_t naive(const unsigned char *t, size_t len, size_t *lines, size_t *ids, size_t max)
{
    size_t n = 0, line = 1, first = 0;

    for (size_t q = 0; q < len; q++) {
        if (t[q] == '\n') {
            line++;
            first = n;
            continue;
        }
        if (t[q] != '"' && t[q] != '\'' && t[q] != '`')
            continue;
        size_t bs = 0, j = q + 1;
        while (bs < q && t[q - 1 - bs] == '\\')
            bs++;
        if (bs % 2 == 1)
            continue;
        while (j < len && j - q - 1 < FLAG_NAME_MAX && name_char(t[j], j == q + 1))
            j++;
        if (j >= len || t[j] != t[q] || j == q + 1)
            continue;
        for (size_t k = 0; NAMES[k] != NULL; k++) {
            if (strlen(NAMES[k]) != j - q - 1 || memcmp(NAMES[k], t + q + 1, j - q - 1) != 0)
                continue;
            int dup = 0;
            for (size_t d = first; d < n; d++)
                dup |= ids[d] == k;
            if (!dup && n < max) {
                lines[n] = line;
                ids[n++] = k;
            }
        }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct refs_names *set;
    static size_t lines[65536], ids[65536];
    struct refs_hits hits = {0};
    char *copy = malloc(size > 0 ? size : 1);

    if (set == NULL) {
        set = refs_names_new();
        CHECK(set != NULL);
        for (size_t k = 0; NAMES[k] != NULL; k++)
            CHECK(refs_names_add(set, NAMES[k], strlen(NAMES[k]), (int)k) == 1);
    }
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    CHECK(refs_scan_buffer(set, copy, size, &hits) == 0);
    size_t want = naive((const unsigned char *)copy, size, lines, ids, 65536);
    CHECK(hits.n == want);
    for (size_t i = 0; i < want; i++) {
        CHECK(hits.v[i].line == lines[i]);
        CHECK(hits.v[i].name == ids[i]);
    }
    free(hits.v);
    free(copy);
    return 0;
}
