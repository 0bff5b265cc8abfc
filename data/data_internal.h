/*
 * data_internal.h: helpers shared by the files of data/ (not installed).
 *
 * Internal names use the prefix lt_data__ (two underscores).
 */
#ifndef LIBTENSOR_DATA_INTERNAL_H
#define LIBTENSOR_DATA_INTERNAL_H

#include "data.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The name a decoder uses in messages for an input given as NULL. */
static inline const char *lt_data__name(const char *name) { return name ? name : "<memory>"; }

/* A whole file read into memory. buf comes from lt_alloc (cap bytes, of
 * which len are the file's); free it with lt_data__buf_free. */
typedef struct lt_data__buf {
    uint8_t *buf;
    size_t len;
    size_t cap;
} lt_data__buf;

/* Read all of path into *out. On failure returns -1 after
 * lt_set_error("OP: PATH: reason") and leaves *out empty. */
int lt_data__read_file(const char *op, const char *path, lt_data__buf *out);
/* Same, but the file may be gzip-compressed (zlib decompresses it; a plain
 * file is read as is). */
int lt_data__read_file_gz(const char *op, const char *path, lt_data__buf *out);
void lt_data__buf_free(lt_data__buf *b);

/* Open path for writing ("wb"); *regular tells whether it is a regular
 * file. NULL after lt_set_error("OP: PATH: reason"). */
FILE *lt_data__create(const char *op, const char *path, bool *regular);
/* After a failed write: remove what was written, but only a regular file
 * (never a device such as /dev/full, a FIFO or a terminal). */
void lt_data__discard(const char *path, bool regular);

/* malloc-style allocation through lt_alloc, for third-party code (stb)
 * that frees without a size: the size rides in a 16-byte prefix. */
void *lt_data__malloc(size_t n);
void *lt_data__realloc(void *p, size_t n);
void lt_data__mfree(void *p);

/* Unaligned loads of unsigned integers, nbytes 1..8, either byte order. */
static inline uint64_t lt_data__load_uint(const uint8_t *p, int nbytes, int big_endian)
{
    uint64_t v = 0;
    if (big_endian)
        for (int i = 0; i < nbytes; i++)
            v = (v << 8) | p[i];
    else
        for (int i = nbytes - 1; i >= 0; i--)
            v = (v << 8) | p[i];
    return v;
}

/* stb_image / stb_image_write, compiled once in stb_impl.c with static
 * linkage (no clash with a user's own copy of stb). */

/* Decode buf into interleaved 8-bit pixels (H*W*C, C = req or the file's
 * count when req is 0). Returns NULL and sets *why on failure; free the
 * result with lt_data__mfree. */
uint8_t *lt_data__stbi_decode(const uint8_t *buf, int len, int req, int *w, int *h,
                              int *comp_in_file, const char **why);

/* Encode interleaved 8-bit pixels as JPEG through write(ctx, data, n).
 * Returns 1 on success, 0 on failure. */
typedef void lt_data__write_fn(void *ctx, void *data, int n);
int lt_data__stbi_write_jpg(lt_data__write_fn *write, void *ctx, int w, int h, int comp,
                            const uint8_t *pixels, int quality);

/* ------------------------------------------------------------------ */
/* Strings, paths and folders (dirs.c); all through lt_data__malloc    */
/* ------------------------------------------------------------------ */

char *lt_data__strdup(const char *s);
/* a + "/" + b (+ "/" + c when c is not NULL), or NULL when out of memory.
 * Trailing slashes of a are dropped, so "root/" and "root" give the same
 * paths. */
char *lt_data__join(const char *a, const char *b, const char *c);

/* A growing vector of owned strings. */
typedef struct lt_data__strvec {
    char **v;
    size_t n, cap;
} lt_data__strvec;
void lt_data__sv_free(lt_data__strvec *s);
/* Takes ownership of str (freed on failure; a NULL str fails). */
int lt_data__sv_push(lt_data__strvec *s, char *str);

/* Sorted (bytewise) names in dir, without names starting with '.'.
 * -1 with "OP: DIR: reason" on failure. */
int lt_data__list_dir(const char *op, const char *dir, lt_data__strvec *out);
bool lt_data__is_dir(const char *p);  /* follows symlinks */
bool lt_data__is_file(const char *p); /* a regular file, following symlinks */
/* .jpg .jpeg .png .bmp in any case */
bool lt_data__is_image_name(const char *name);
/* Append a sample; takes ownership of path and mask (freed on failure).
 * -1 when out of memory (no message set). */
int lt_data__list_add(lt_data_list *l, size_t *cap, char *path, char *mask, int64_t label);
/* mkdir -p; -1 with "OP: PATH: reason". */
int lt_data__mkdirs(const char *op, const char *path);

/* ------------------------------------------------------------------ */
/* Seeds                                                               */
/* ------------------------------------------------------------------ */

/* SplitMix64's finalizer (Steele, Lea, Flood, "Fast splittable
 * pseudorandom number generators", OOPSLA 2014): a bijection that spreads
 * nearby inputs over all 64 bits. */
static inline uint64_t lt_data__mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A generator seed for (seed, tag, a, b): the loader keys a sample's
 * transform by (seed, epoch, index) this way, so draws never depend on
 * thread scheduling. Distinct tags keep unrelated streams apart. */
static inline uint64_t lt_data__derive(uint64_t seed, uint64_t tag, uint64_t a, uint64_t b)
{
    return lt_data__mix64(lt_data__mix64(lt_data__mix64(seed ^ lt_data__mix64(tag)) + a) + b);
}

#endif
