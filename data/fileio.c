/*
 * fileio.c: whole-file reads (plain and gzip) and the malloc-style wrapper
 * over lt_alloc that the image codecs allocate through.
 */
#include "data_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ------------------------------------------------------------------ */
/* Growing buffer                                                      */
/* ------------------------------------------------------------------ */

void lt_data__buf_free(lt_data__buf *b)
{
    if (b->buf)
        lt_free(b->buf, b->cap);
    b->buf = NULL;
    b->len = b->cap = 0;
}

/* Make room for at least `more` bytes after len. */
static int buf_reserve(lt_data__buf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t need = b->len + more;
    if (need < b->len)
        return -1;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return -1;
        ncap *= 2;
    }
    uint8_t *nb = lt_alloc(ncap);
    if (!nb)
        return -1;
    if (b->buf) {
        memcpy(nb, b->buf, b->len);
        lt_free(b->buf, b->cap);
    }
    b->buf = nb;
    b->cap = ncap;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Plain files                                                         */
/* ------------------------------------------------------------------ */

int lt_data__read_file(const char *op, const char *path, lt_data__buf *out)
{
    memset(out, 0, sizeof *out);
    if (!path) {
        lt_set_error("%s: NULL path", op);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        lt_set_error("%s: %s: %s", op, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        lt_set_error("%s: %s: is a directory", op, path);
        return -1;
    }
    /* Size the buffer from stat for regular files; pipes grow as they go. */
    size_t hint = (S_ISREG(st.st_mode) && st.st_size > 0) ? (size_t)st.st_size + 1 : 4096;
    if (buf_reserve(out, hint) < 0)
        goto oom;
    for (;;) {
        if (out->cap == out->len && buf_reserve(out, out->cap) < 0)
            goto oom;
        size_t n = fread(out->buf + out->len, 1, out->cap - out->len, f);
        out->len += n;
        if (n == 0) {
            if (ferror(f)) {
                int e = errno;
                fclose(f);
                lt_data__buf_free(out);
                lt_set_error("%s: %s: read failed: %s", op, path, strerror(e));
                return -1;
            }
            break;
        }
    }
    fclose(f);
    return 0;
oom:
    fclose(f);
    lt_data__buf_free(out);
    lt_set_error("%s: %s: out of memory reading the file", op, path);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Output files                                                        */
/* ------------------------------------------------------------------ */

FILE *lt_data__create(const char *op, const char *path, bool *regular)
{
    *regular = false;
    if (!path) {
        lt_set_error("%s: NULL path", op);
        return NULL;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        lt_set_error("%s: %s: %s", op, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    *regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    return f;
}

void lt_data__discard(const char *path, bool regular)
{
    if (regular)
        unlink(path);
}

/* ------------------------------------------------------------------ */
/* gzip through zlib (gzread passes plain files through unchanged)     */
/* ------------------------------------------------------------------ */

/* zlib's gzerror() message, without the "path: " it starts with. */
static const char *gz_message(gzFile g, const char *path, int *zerr)
{
    const char *msg = gzerror(g, zerr);
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        msg += n + 2;
    return msg;
}

int lt_data__read_file_gz(const char *op, const char *path, lt_data__buf *out)
{
    memset(out, 0, sizeof *out);
    if (!path) {
        lt_set_error("%s: NULL path", op);
        return -1;
    }
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        lt_set_error("%s: %s: is a directory", op, path);
        return -1;
    }
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) {
        lt_set_error("%s: %s: %s", op, path, errno ? strerror(errno) : "cannot open");
        return -1;
    }
    for (;;) {
        if (buf_reserve(out, 1 << 16) < 0) {
            gzclose(g);
            lt_data__buf_free(out);
            lt_set_error("%s: %s: out of memory reading the file", op, path);
            return -1;
        }
        size_t room = out->cap - out->len;
        unsigned chunk = room > (1u << 30) ? (1u << 30) : (unsigned)room;
        int n = gzread(g, out->buf + out->len, chunk);
        if (n < 0) {
            int zerr;
            const char *msg = gz_message(g, path, &zerr);
            lt_set_error("%s: %s: corrupt gzip data: %s", op, path,
                         zerr == Z_ERRNO ? strerror(errno) : msg);
            gzclose(g);
            lt_data__buf_free(out);
            return -1;
        }
        out->len += (size_t)n;
        if (n == 0)
            break;
    }
    /* A truncated stream ends the reads early without a negative count;
     * zlib reports it here. */
    int zerr;
    const char *msg = gz_message(g, path, &zerr);
    if (zerr != Z_OK) {
        lt_set_error("%s: %s: corrupt gzip data: %s", op, path, msg);
        gzclose(g);
        lt_data__buf_free(out);
        return -1;
    }
    gzclose(g);
    return 0;
}

/* ------------------------------------------------------------------ */
/* malloc-style allocation over lt_alloc                               */
/* ------------------------------------------------------------------ */

/* 16 bytes keep the user pointer aligned for any scalar type. */
#define PREFIX 16

/* The memory is zeroed: Debian's stb_image 2.27 reads Huffman tables that
 * a malformed JPEG never defined from its malloc'd decoder state (upstream
 * 2.28 added a memset for it); zeroed, they fail cleanly instead of
 * indexing out of bounds with whatever the heap held. */
void *lt_data__malloc(size_t n)
{
    if (n > SIZE_MAX - PREFIX)
        return NULL;
    size_t *p = lt_alloc(n + PREFIX);
    if (!p)
        return NULL;
    memset(p, 0, n + PREFIX);
    p[0] = n + PREFIX;
    return (char *)p + PREFIX;
}

void lt_data__mfree(void *q)
{
    if (!q)
        return;
    size_t *p = (size_t *)(void *)((char *)q - PREFIX);
    lt_free(p, p[0]);
}

void *lt_data__realloc(void *q, size_t n)
{
    if (!q)
        return lt_data__malloc(n);
    size_t old = ((size_t *)(void *)((char *)q - PREFIX))[0] - PREFIX;
    void *r = lt_data__malloc(n);
    if (!r)
        return NULL;
    memcpy(r, q, old < n ? old : n);
    lt_data__mfree(q);
    return r;
}
