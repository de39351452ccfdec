/* text.h -- building text: a growable byte buffer, UTF-8, JSON string
 * literals, and text from data made safe to show on a terminal or in a mail.
 * Pure, unit-tested alone (tests/unit/test_text.c) and fuzzed. */
#ifndef VX_TEXT_H
#define VX_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer.  buf_* functions return 0, or -1 on OOM (then the
 * buffer is left valid and a later buf_take still works). */
struct buf {
    char *p;
    size_t len, cap;
};
int buf_reserve(struct buf *b, size_t extra);
int buf_add(struct buf *b, const void *data, size_t len);
int buf_adds(struct buf *b, const char *s);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal, quotes included (s is UTF-8; control
 * characters and quotes escaped; invalid UTF-8 bytes replaced by U+FFFD). */
int buf_add_json_string(struct buf *b, const char *s, size_t len);
/* Hand over the bytes (NUL-terminated; caller frees) and reset b. */
char *buf_take(struct buf *b, size_t *len);
void buf_free(struct buf *b);

/* Length (1..4) of the valid UTF-8 character at s, of at most left bytes;
 * 0 if the bytes there are not valid UTF-8 (overlong, surrogate, cut). */
size_t utf8_char_len(const unsigned char *s, size_t left);

/* Replace every byte that is not part of valid UTF-8 in s (NUL-terminated)
 * by '?', in place. */
void utf8_sanitize(char *s);

/* Characters in s (NUL-terminated), or -1 if it is not valid UTF-8 or
 * holds a control character (C0, DEL, C1): for names shown to people. */
long utf8_text_chars(const char *s);

/* A token's name: 1 to TOKEN_NAME_MAX characters of such text. */
#define TOKEN_NAME_MAX 100
bool token_name_valid(const char *s);

/* Is s (len bytes) valid UTF-8 without NUL bytes? */
bool utf8_valid(const char *s, size_t len);

/* Text from data (a flag's name or owner, a token's name) on its way to a
 * terminal or a mail, where a control character would act instead of being
 * seen (docs/decisions.md, "Text for people").
 *
 * The characters kept out: C0 (NUL included), DEL, C1 (U+0080-U+009F), the
 * line and paragraph separators U+2028 and U+2029, and the bidirectional
 * controls U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069 (they
 * reorder what follows them on the line). */
bool text_char_control(unsigned long cp);

/* Append s (len bytes) with every such character, every byte that is not
 * part of valid UTF-8, and the backslash escaped as visible ASCII:
 *   \\  a backslash;  \n \r \t  LF, CR, TAB;  \xHH  other C0 and DEL (\x1b
 *   for ESC), and a byte that is not valid UTF-8 (always >= \x80);
 *   \uHHHH  the other characters (\u009b for the C1 CSI).
 * Everything else (valid UTF-8 text) is copied as it is.  The result is
 * printable, and two different inputs never look the same. */
int buf_add_visible(struct buf *b, const char *s, size_t len);

/* Characters that buf_add_visible writes for s (len bytes): its width in a
 * table, each character counted 1. */
size_t text_visible_width(const char *s, size_t len);

/* Append JSON text (len bytes, as jansson writes it) with the characters of
 * text_char_control that a JSON writer may leave as they are (DEL, C1,
 * U+2028, ...) written as \uHHHH instead: the same JSON value, nothing that
 * a terminal acts on.  C0 is left alone (a JSON writer escapes it inside
 * strings; outside them it is white space).  A byte that is not valid UTF-8
 * becomes \ufffd. */
int buf_add_json_visible(struct buf *b, const char *json, size_t len);

#endif
