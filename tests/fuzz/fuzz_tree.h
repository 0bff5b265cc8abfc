/*
 * fuzz_tree.h: build a small folder tree from fuzz input, inside a private
 * temporary folder, and remove it again (for the listing targets,
 * fuzz_in9.c and fuzz_rival10.c; not a library header).
 *
 * Input, after the target's control byte: lines separated by '\n', each
 *
 *     a/b/c/         a folder (and its parents)
 *     a/b/file       an empty file (parents created)
 *     a/b/file<TAB>text   a file holding text (up to the end of the line)
 *
 * Safety, because the input is arbitrary: every path is relative to the
 * tree's root, a line with a "." or ".." component, a NUL byte, a
 * component over 100 bytes or more than 8 components is skipped; files
 * are created with O_CREAT|O_EXCL|O_NOFOLLOW, and no link is ever made, so
 * nothing is written outside the root. The root is <TMPDIR>/lt_fuzz.XXXXXX
 * (mkdtemp) + "/t"; fz_tree_clear removes everything under it without
 * following links or crossing file systems, and atexit removes the
 * mkdtemp folder. tests/fuzz/run.sh sets TMPDIR (/dev/shm, or
 * tests/fuzz/build/tmp), so a crashed run leaves its tree there.
 */
#ifndef LT_FUZZ_TREE_H
#define LT_FUZZ_TREE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FZ_TREE_MAX_LINES 64
#define FZ_TREE_MAX_DEPTH 8
#define FZ_TREE_MAX_NAME 100

static char fz_tree_tmp[512];  /* the mkdtemp folder */
static char fz_tree_root[560]; /* fz_tree_tmp + "/t", the tree's root */

static int fz_tree_rm(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    /* only ever below fz_tree_tmp */
    if (strncmp(p, fz_tree_tmp, strlen(fz_tree_tmp)) != 0)
        abort();
    return (flag == FTW_DP ? rmdir(p) : unlink(p)) ? -1 : 0;
}

/* Remove the tree (root included); a no-op when there is none. */
static void fz_tree_clear(void)
{
    struct stat st;
    if (fz_tree_root[0] && lstat(fz_tree_root, &st) == 0)
        if (nftw(fz_tree_root, fz_tree_rm, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0) {
            fprintf(stderr, "fuzz: cannot remove %s: %s\n", fz_tree_root, strerror(errno));
            abort();
        }
}

static void fz_tree_atexit(void)
{
    fz_tree_clear();
    if (fz_tree_tmp[0])
        rmdir(fz_tree_tmp);
}

/* Create the private temporary folder; call once (LLVMFuzzerInitialize). */
static void fz_tree_init(void)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(fz_tree_tmp, sizeof fz_tree_tmp, "%s/lt_fuzz.XXXXXX", tmp);
    if (!mkdtemp(fz_tree_tmp)) {
        fprintf(stderr, "fuzz: mkdtemp %s: %s\n", fz_tree_tmp, strerror(errno));
        abort();
    }
    snprintf(fz_tree_root, sizeof fz_tree_root, "%s/t", fz_tree_tmp);
    atexit(fz_tree_atexit);
}

/* Make one line (len bytes, not NUL terminated) under the root. */
static void fz_tree_line(const char *s, size_t len)
{
    const char *tab = memchr(s, '\t', len);
    size_t plen = tab ? (size_t)(tab - s) : len;
    if (plen == 0 || memchr(s, '\0', plen))
        return;
    bool is_dir = s[plen - 1] == '/';
    char path[sizeof fz_tree_root + FZ_TREE_MAX_DEPTH * (FZ_TREE_MAX_NAME + 1) + 1];
    size_t n = (size_t)snprintf(path, sizeof path, "%s", fz_tree_root);
    size_t ends[FZ_TREE_MAX_DEPTH];
    int depth = 0;
    for (size_t i = 0; i < plen;) {
        size_t j = i;
        while (j < plen && s[j] != '/')
            j++;
        size_t k = j - i;
        if (k > 0) {
            if (k > FZ_TREE_MAX_NAME || depth == FZ_TREE_MAX_DEPTH ||
                (k == 1 && s[i] == '.') || (k == 2 && s[i] == '.' && s[i + 1] == '.'))
                return;
            path[n++] = '/';
            memcpy(path + n, s + i, k);
            n += k;
            ends[depth++] = n;
        }
        i = j + 1;
    }
    if (depth == 0)
        return;
    path[n] = '\0';
    /* parents (all components but the last, or all of them for a folder) */
    for (int d = 0; d < depth - (is_dir ? 0 : 1); d++) {
        char keep = path[ends[d]];
        path[ends[d]] = '\0';
        int rc = mkdir(path, 0755);
        path[ends[d]] = keep;
        if (rc != 0 && errno != EEXIST)
            return;
    }
    if (is_dir)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (tab) {
        const char *text = tab + 1;
        size_t tl = len - plen - 1;
        while (tl > 0) {
            ssize_t w = write(fd, text, tl);
            if (w <= 0)
                break;
            text += w;
            tl -= (size_t)w;
        }
    }
    close(fd);
}

/* Clear the tree, then build it from input (see the top of the file). */
static void fz_tree_build(const uint8_t *data, size_t size)
{
    fz_tree_clear();
    if (mkdir(fz_tree_root, 0755) != 0) {
        fprintf(stderr, "fuzz: mkdir %s: %s\n", fz_tree_root, strerror(errno));
        abort();
    }
    const char *s = (const char *)data;
    int lines = 0;
    for (size_t i = 0; i < size && lines < FZ_TREE_MAX_LINES; lines++) {
        const char *nl = memchr(s + i, '\n', size - i);
        size_t end = nl ? (size_t)(nl - s) : size;
        fz_tree_line(s + i, end - i);
        i = end + 1;
    }
}

/* root + "/" + rel into out (cap bytes). */
static void fz_tree_path(char *out, size_t cap, const char *rel)
{
    snprintf(out, cap, "%s/%s", fz_tree_root, rel);
}

#endif
