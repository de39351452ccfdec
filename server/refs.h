/* refs.h -- where code still uses a flag: every flag name written as a
 * whole string literal in the files under some paths (`vexil refs`, `vexil
 * stale --refs`, docs/operations.md §3).
 *
 * A reference is a name between two of the same quote characters -- '"',
 * '\'' or '`' -- the first of them not escaped by a backslash: "checkout"
 * refers to flag checkout, "checkout.v2" and checkout (bare) do not.  This
 * is a text search, not a parser of any one language, so it reads every
 * language alike (docs/decisions.md, "vexil refs").
 *
 * Pure but for the file system: no database, no network, no globals; the
 * caller supplies the names.  Unit-tested alone (tests/unit/test_refs.c). */
#ifndef VX_REFS_H
#define VX_REFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vx.h"

/* ------------------------------------------------------------------ */
/* The names looked for                                                 */
/* ------------------------------------------------------------------ */

/* A set of names in an open-addressing hash table, each with the hash it
 * was filed under and an int the caller attaches (its tag).  Names are
 * numbered in the order they were added, from 0. */
struct refs_names;

/* A new, empty set (caller refs_names_free()s), or NULL when out of memory. */
struct refs_names *refs_names_new(void);
void refs_names_free(struct refs_names *set);

/* Add name[0..len) with tag.  1 when added, 0 when the set already holds
 * it (its tag is left as it was: add the names that should win first), -1
 * when out of memory.  A name that is not a flag name (flag_name_valid) may
 * be added but is never found by a scan. */
int refs_names_add(struct refs_names *set, const char *name, size_t len, int tag);

size_t refs_names_count(const struct refs_names *set);

/* Name i (NUL-terminated, owned by the set) and its tag (tag may be NULL). */
const char *refs_names_at(const struct refs_names *set, size_t i, int *tag);

/* The number of s[0..len) in the set, or -1 when it is not there. */
long refs_names_find(const struct refs_names *set, const char *s, size_t len);

/* ------------------------------------------------------------------ */
/* One buffer                                                           */
/* ------------------------------------------------------------------ */

/* A reference: the line it is on (from 1; lines end at LF, so CR LF files
 * count right) and the number of the name in the set. */
struct refs_hit {
    size_t line;
    size_t name;
};

/* A growable array of hits (free v). */
struct refs_hits {
    struct refs_hit *v;
    size_t n, cap;
};

/* Append every reference in buf[0..len) to hits, in the order of the text,
 * one per name and line (a name twice on a line is one reference).  One
 * pass, all names at once: each quote character starts a candidate, whose
 * text is looked up in the set only when it has the shape of a flag name.
 * 0, or -1 when out of memory (hits then holds what was found so far). */
int refs_scan_buffer(const struct refs_names *set, const char *buf, size_t len,
                     struct refs_hits *hits);

/* ------------------------------------------------------------------ */
/* Files and directories                                                */
/* ------------------------------------------------------------------ */

#define REFS_MAX_FILE_SIZE_DEFAULT ((size_t)10 << 20) /* 10 MiB */
#define REFS_MAX_FILE_SIZE_MAX     ((size_t)1 << 30)  /* the largest --max-file-size */
#define REFS_BINARY_PROBE          8192 /* a NUL byte in this many first bytes: binary */
#define REFS_THREADS_MAX           64

struct refs_config {
    size_t max_file_size; /* larger files are skipped; 0 means the default */
    unsigned threads;     /* files scanned at once; 0 or 1: in the calling thread */
};

/* Is a directory of this name skipped when met inside a tree?  (.git, .hg,
 * .svn, node_modules, __pycache__, build, builddir, dist, out, target: the
 * list in docs/operations.md §3.)  A path given to refs_scan_paths is
 * read whatever its name. */
bool refs_dir_skipped(const char *name);

/* The references in one file: its path as reached (a given path, then
 * "/" and each directory entry's name) and its hits. */
struct refs_file {
    char *path;
    struct refs_hit *hits;
    size_t n_hits;
};

/* The result of a scan: the files with at least one reference, in the
 * order of the walk (the paths in the order given; inside a directory, its
 * entries sorted bytewise, each directory's files and subdirectories
 * interleaved), and how many files were read. */
struct refs_report {
    struct refs_file *files;
    size_t n_files;
    size_t files_scanned;
};
void refs_report_free(struct refs_report *r);

/* Scan the files and directories paths[0..n) (directories recursively).
 * Symbolic links are followed, but each directory and each file is read
 * once, under the first path that reaches it, so a link loop ends.  Not
 * read: directories named as refs_dir_skipped says (below a given path),
 * anything but regular files and directories (FIFOs, devices, sockets),
 * files larger than cfg->max_file_size, binary files (a NUL byte in the
 * first REFS_BINARY_PROBE bytes), and entries that vanish or whose links
 * lead nowhere while the walk runs.
 *
 * 0 with *out filled (caller refs_report_free()s); -1 with err filled when
 * a given path does not exist, a directory or a file cannot be read, or
 * memory runs out (then *out is empty). */
int refs_scan_paths(const struct refs_names *set, const char *const *paths, size_t n,
                    const struct refs_config *cfg, struct refs_report *out, struct vx_error *err);

#endif
