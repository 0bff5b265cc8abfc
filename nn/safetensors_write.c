/*
 * safetensors_write.c: lt_nn_safetensors_save (checkpoint.h). The JSON
 * header is built by hand (compact, in the caller's order, as serde_json
 * writes it in the safetensors package); each tensor's elements stream into
 * a temporary file next to the target, which is fsynced and renamed into
 * place, and the directory is fsynced after the rename. A successful save
 * then removes the temporary files of that path that dead processes left.
 */
#include "safetensors_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

static int check_save_args(const char *path, int n, const char *const *names, lt_tensor *const *tensors,
                           int n_meta, const char *const *mk, const char *const *mv)
{
    if (!path) {
        lt_set_error("safetensors: save: NULL path");
        return -1;
    }
    if (n < 0 || n_meta < 0 || (n > 0 && (!names || !tensors)) || (n_meta > 0 && (!mk || !mv))) {
        lt__st_error(path, "save: bad arguments (n %d, n_meta %d, or NULL arrays)", n, n_meta);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!names[i] || !tensors[i]) {
            lt__st_error(path, "save: entry %d has a NULL %s", i, names[i] ? "tensor" : "name");
            return -1;
        }
        if (strcmp(names[i], "__metadata__") == 0) {
            lt__st_error(path, "save: \"__metadata__\" is reserved and cannot name a tensor");
            return -1;
        }
        if (!lt__st_dtype_name(lt_dtype_of(tensors[i]))) {
            lt__st_error(path, "save: tensor '%.200s' has an unsupported dtype", names[i]);
            return -1;
        }
    }
    for (int i = 0; i < n_meta; i++)
        if (!mk[i] || !mv[i]) {
            lt__st_error(path, "save: metadata entry %d has a NULL %s", i, mk[i] ? "value" : "key");
            return -1;
        }
    bool oom;
    const char *dup = lt__st_find_duplicate(n, names, &oom);
    if (!oom && !dup)
        dup = lt__st_find_duplicate(n_meta, mk, &oom);
    if (oom || dup) {
        if (oom)
            lt__st_error(path, "save: out of memory");
        else
            lt__st_error(path, "save: duplicate name '%.200s'", dup);
        return -1;
    }
    return 0;
}

/* The header: JSON padded with spaces to a multiple of 8 bytes. */
static int build_header(lt__sbuf *h, int n, const char *const *names, lt_tensor *const *tensors, int n_meta,
                        const char *const *mk, const char *const *mv)
{
    lt__sb_puts(h, "{");
    if (n_meta > 0) {
        lt__sb_puts(h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i)
                lt__sb_puts(h, ",");
            lt__sb_json_str(h, mk[i]);
            lt__sb_puts(h, ":");
            lt__sb_json_str(h, mv[i]);
        }
        lt__sb_puts(h, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const lt_tensor *t = tensors[i];
        if (i || n_meta > 0)
            lt__sb_puts(h, ",");
        lt__sb_json_str(h, names[i]);
        lt__sb_puts(h, ":{\"dtype\":\"");
        lt__sb_puts(h, lt__st_dtype_name(lt_dtype_of(t)));
        lt__sb_puts(h, "\",\"shape\":[");
        for (int d = 0; d < lt_ndim(t); d++) {
            if (d)
                lt__sb_puts(h, ",");
            lt__sb_u64(h, (uint64_t)lt_shape(t)[d]);
        }
        uint64_t nb = (uint64_t)lt_numel(t) * lt_dtype_size(lt_dtype_of(t));
        lt__sb_puts(h, "],\"data_offsets\":[");
        lt__sb_u64(h, off);
        lt__sb_puts(h, ",");
        lt__sb_u64(h, off + nb);
        lt__sb_puts(h, "]}");
        off += nb;
    }
    lt__sb_puts(h, "}");
    while (!h->oom && h->len % 8)
        lt__sb_puts(h, " ");
    return h->oom ? -1 : 0;
}

/* Write one tensor's elements, contiguous and little-endian. */
static int write_tensor(FILE *fp, const char *path, const char *name, const lt_tensor *t)
{
    size_t mark = lt_frame_push();
    bool prev = lt_ag_set_grad_enabled(false);
    lt_tensor *c = lt_contiguous(t);
    lt_ag_set_grad_enabled(prev);
    if (!c) {
        lt__st_error(path, "save: tensor '%.200s': %s", name, lt_last_error());
        lt_frame_pop(mark);
        return -1;
    }
    size_t es = lt_dtype_size(lt_dtype_of(c));
    size_t nbytes = (size_t)lt_numel(c) * es;
    const uint8_t *p = lt_data(c);
    bool ok = true;
    if (lt__st_host_is_le() || es == 1) {
        ok = fwrite(p, 1, nbytes, fp) == nbytes;
    } else {
        uint8_t chunk[4096];
        for (size_t at = 0; ok && at < nbytes; at += sizeof chunk) {
            size_t k = nbytes - at < sizeof chunk ? nbytes - at : sizeof chunk;
            memcpy(chunk, p + at, k);
            lt__st_swap_bytes(chunk, k / es, es);
            ok = fwrite(chunk, 1, k, fp) == k;
        }
    }
    if (!ok)
        lt__st_error(path, "save: writing tensor '%.200s' failed: %s", name, strerror(errno));
    lt_frame_pop(mark);
    return ok ? 0 : -1;
}

/* Create "<path>.tmp.<pid>.<k>" exclusively; its name goes to *tmp
 * (lt_alloc'd, *tmp_size bytes). */
static int open_temp(const char *path, char **tmp, size_t *tmp_size)
{
    static atomic_uint counter;
    *tmp_size = strlen(path) + 48;
    *tmp = lt_alloc(*tmp_size);
    if (!*tmp) {
        lt__st_error(path, "save: out of memory");
        return -1;
    }
    for (int attempt = 0; attempt < 64; attempt++) {
        snprintf(*tmp, *tmp_size, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
        int fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) {
            if (fd < 0)
                lt__st_error(path, "save: cannot create a temporary file next to it: %s", strerror(errno));
            return fd;
        }
    }
    lt__st_error(path, "save: cannot create a unique temporary file next to it");
    return -1;
}

/* The directory holding path into dir; 0, or -1 when it does not fit. */
static int dir_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, size, ".");
    else if (slash == path)
        snprintf(dir, size, "/");
    else if ((size_t)(slash - path) < size)
        snprintf(dir, size, "%.*s", (int)(slash - path), path);
    else
        return -1;
    return 0;
}

/* fsync the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path)
{
    char dir[4096];
    if (dir_of(path, dir, sizeof dir) < 0)
        return 0; /* a path this long cannot be opened whole anyway */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    /* Some file systems cannot sync a directory (EINVAL): nothing to do. */
    int rc = (fsync(fd) == 0 || errno == EINVAL) ? 0 : -1;
    close(fd);
    return rc;
}

/* Whether name is "<base>.tmp.<pid>.<k>" (open_temp's pattern, decimal
 * pid > 0 and k) of a process that is no longer running. */
static bool stale_temp(const char *name, const char *base, size_t bl)
{
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0)
        return false;
    const char *p = name + bl + 5, *q = p;
    long pid = 0;
    for (; *q >= '0' && *q <= '9' && q - p < 10; q++)
        pid = pid * 10 + (*q - '0');
    if (q == p || *q != '.' || pid <= 0 || !q[1])
        return false;
    for (q++; *q; q++)
        if (*q < '0' || *q > '9')
            return false;
    /* kill(pid, 0): 0 or EPERM while the process runs, ESRCH once it is
     * gone (a reused pid keeps the file: the safe side) */
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* After a successful save: remove the temporary files that saves of the
 * same path by processes that have since died (killed mid-save) left
 * next to it. Best effort: a file that cannot be removed stays, and
 * nothing here fails the save. */
static void remove_stale_temps(const char *path)
{
    char dir[4096];
    if (dir_of(path, dir, sizeof dir) < 0)
        return;
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    if (!d)
        return;
    int saved = errno;
    for (struct dirent *e; (e = readdir(d));)
        if (stale_temp(e->d_name, base, bl))
            (void)unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    errno = saved;
}

int lt_nn_safetensors_save(const char *path, int n, const char *const *names, lt_tensor *const *tensors,
                           int n_meta, const char *const *meta_keys, const char *const *meta_vals)
{
    if (check_save_args(path, n, names, tensors, n_meta, meta_keys, meta_vals) < 0)
        return -1;
    lt__sbuf h = {0};
    if (build_header(&h, n, names, tensors, n_meta, meta_keys, meta_vals) < 0) {
        lt__sb_free(&h);
        lt__st_error(path, "save: out of memory building the header");
        return -1;
    }
    char *tmp = NULL;
    size_t tmp_size = 0;
    int fd = open_temp(path, &tmp, &tmp_size);
    FILE *fp = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (fd >= 0 && !fp) {
        lt__st_error(path, "save: fdopen failed: %s", strerror(errno));
        close(fd);
    }
    int rc = fp ? 0 : -1;
    if (rc == 0) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++)
            len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
        if (fwrite(len8, 1, 8, fp) != 8 || fwrite(h.p, 1, h.len, fp) != h.len) {
            lt__st_error(path, "save: writing the header failed: %s", strerror(errno));
            rc = -1;
        }
    }
    for (int i = 0; rc == 0 && i < n; i++)
        rc = write_tensor(fp, path, names[i], tensors[i]);
    if (rc == 0 && (fflush(fp) != 0 || fsync(fileno(fp)) != 0)) {
        lt__st_error(path, "save: flushing the temporary file failed: %s", strerror(errno));
        rc = -1;
    }
    if (fp && fclose(fp) != 0 && rc == 0) {
        lt__st_error(path, "save: closing the temporary file failed: %s", strerror(errno));
        rc = -1;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        lt__st_error(path, "save: renaming the temporary file into place failed: %s", strerror(errno));
        rc = -1;
    }
    if (rc < 0 && fd >= 0)
        unlink(tmp);
    if (rc == 0 && sync_dir(path) < 0) {
        lt__st_error(path, "save: the file is written but fsync of its directory failed: %s", strerror(errno));
        rc = -1;
    }
    if (rc == 0)
        remove_stale_temps(path);
    if (tmp)
        lt_free(tmp, tmp_size);
    lt__sb_free(&h);
    return rc;
}

