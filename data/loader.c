/*
 * loader.c: batches from a listing, with deterministic shuffling, a
 * position that checkpoints store, and prefetching worker threads
 * (contract in data.h).
 *
 * SEQUENCE NUMBERS. Batch b of epoch e is sequence number s = e * nb + b
 * (nb batches per epoch). The caller consumes s = ret, ret + 1, ...;
 * workers build s = issue, issue + 1, ... while issue < ret + P, each into
 * slot s % P, so a slot is never reused before the caller has taken it.
 * Everything a batch holds is a function of (seed, s) alone: its sample
 * indices come from the permutation of epoch e (lt_randperm keyed by the
 * seed and e) and each sample's transform draws from a generator keyed by
 * (seed, e, index). So any number of workers, in any order, builds the
 * same bytes.
 *
 * SEEK bumps a generation counter: jobs in flight finish, see the stale
 * generation and throw their batch away.
 *
 * OWNERSHIP. A worker builds a batch inside its own frame, retains the
 * four tensors and parks them in the slot; lt_data_loader_next hands them
 * to the caller's frame with lt_autorelease. Reference counts are atomic,
 * so a tensor made on one thread is released on another.
 */
#include "data_internal.h"

#include <pthread.h>
#include <string.h>

#define OP "loader"
#define TAG_SHUFFLE 0x5348554646ull /* "SHUFF" */
#define TAG_SAMPLE 0x53414d504cull  /* "SAMPL" */
#define MAX_WORKERS 256
#define MAX_PREFETCH 1024

typedef struct result {
    lt_tensor *images, *labels, *masks, *indices; /* owned references */
    bool failed;
    char err[1024];
} result;

typedef struct slot {
    int64_t seq;
    bool ready;
    result r;
} slot;

struct lt_data_loader {
    const lt_data_list *list;
    lt_data_loader_opts o;
    int64_t n, nb;        /* samples, batches per epoch */
    int channels;

    /* the caller's side */
    int64_t ret;          /* sequence number of the next batch to return */
    bool at_end;          /* the last batch of an epoch went out; next says 0 */
    bool failed;
    char err[1024];

    /* shared with the workers, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_ready;
    int64_t issue;
    uint64_t gen;
    bool stop;
    int64_t perm_epoch;   /* epoch whose permutation perm holds, or -1 */
    int64_t *perm;        /* n entries, through lt_alloc */
    slot *slots;          /* P of them */
    int P;
    pthread_t *threads;
    int nthreads;
};

/* ------------------------------------------------------------------ */
/* Which samples a batch holds                                         */
/* ------------------------------------------------------------------ */

/* The sample indices of sequence number s into idx; returns how many, or
 * -1 with an error. Uses ld->perm; call under mu (or with no workers). */
static int64_t batch_indices(lt_data_loader *ld, int64_t s, int64_t *idx)
{
    int64_t e = s / ld->nb, b = s % ld->nb, bs = ld->o.batch_size;
    int64_t start = b * bs, end = start + bs < ld->n ? start + bs : ld->n;
    if (ld->o.shuffle && ld->perm_epoch != e) {
        size_t mark = lt_frame_push();
        lt_rng r = lt_rng_new(lt_data__derive(ld->o.seed, TAG_SHUFFLE, (uint64_t)e, 0));
        lt_tensor *p = lt_randperm(&r, ld->n);
        if (p)
            memcpy(ld->perm, lt_data(p), (size_t)ld->n * sizeof *ld->perm);
        lt_frame_pop(mark);
        if (!p)
            return -1;
        ld->perm_epoch = e;
    }
    for (int64_t i = start; i < end; i++)
        idx[i - start] = ld->o.shuffle ? ld->perm[i] : i;
    return end - start;
}

/* ------------------------------------------------------------------ */
/* Building a batch (any thread, no lock held)                         */
/* ------------------------------------------------------------------ */

static void result_release(result *r)
{
    lt_release(r->images);
    lt_release(r->labels);
    lt_release(r->masks);
    lt_release(r->indices);
    memset(r, 0, sizeof *r);
}

/* Record the failure in r: this thread's last error (which names the
 * file at fault). */
static void result_fail(result *r)
{
    result_release(r);
    r->failed = true;
    snprintf(r->err, sizeof r->err, "%s", lt_last_error());
}

/* Load, transform and stack the samples idx[0..cnt) of epoch e. */
static void build(const lt_data_loader *ld, int64_t e, const int64_t *idx, int64_t cnt,
                  result *r)
{
    memset(r, 0, sizeof *r);
    size_t mark = lt_frame_push();
    const lt_data_loader_opts *o = &ld->o;
    lt_tensor *labels = lt_empty(1, (int64_t[]){cnt}, LT_I64);
    lt_tensor *indices = lt_from_data(idx, 1, (int64_t[]){cnt}, LT_I64);
    lt_tensor *images = NULL, *masks = NULL; /* owned (retained) */
    int64_t shape[3] = {0, 0, 0};
    char msg[1024];
    if (!labels || !indices)
        goto fail;
    for (int64_t i = 0; i < cnt; i++) {
        const lt_data_sample *s = &ld->list->samples[idx[i]];
        ((int64_t *)lt_data(labels))[i] = s->label;
        size_t inner = lt_frame_push();
        lt_tensor *img = lt_data_image_read(s->path, ld->channels), *mk = NULL;
        if (!img)
            goto fail_inner; /* the message names the file */
        int64_t h = lt_size(img, 1), w = lt_size(img, 2);
        if (o->masks) {
            if (s->mask_path) {
                mk = lt_data_mask_read(s->mask_path);
                if (mk && (lt_size(mk, 1) != h || lt_size(mk, 2) != w))
                    mk = lt_data_resize_mask(mk, h, w);
            } else {
                mk = lt_zeros(3, (int64_t[]){1, h, w}, LT_U8);
            }
            if (!mk)
                goto fail_inner;
        }
        lt_rng rng = lt_rng_new(lt_data__derive(o->seed, TAG_SAMPLE, (uint64_t)e, (uint64_t)idx[i]));
        if (lt_data_transform_apply(&o->transform, &rng, &img, o->masks ? &mk : NULL) < 0) {
            snprintf(msg, sizeof msg, "%s", lt_last_error());
            lt_set_error(OP ": %s: %s", s->path, msg);
            goto fail_inner;
        }
        const int64_t *sh = lt_shape(img);
        if (i == 0) {
            memcpy(shape, sh, sizeof shape);
            images = lt_retain(lt_empty(4, (int64_t[]){cnt, sh[0], sh[1], sh[2]}, LT_F32));
            if (o->masks)
                masks = lt_retain(lt_empty(4, (int64_t[]){cnt, 1, sh[1], sh[2]}, LT_U8));
            if (!images || (o->masks && !masks))
                goto fail_inner;
        } else if (memcmp(shape, sh, sizeof shape) != 0) {
            char s1[64];
            lt_set_error(OP ": %s: image %s after the transform differs from the batch's "
                         "(%lld,%lld,%lld): give the transform a resize or crop",
                         s->path, lt_shape_str(img, s1, sizeof s1), (long long)shape[0],
                         (long long)shape[1], (long long)shape[2]);
            goto fail_inner;
        }
        size_t plane = (size_t)(sh[1] * sh[2]);
        memcpy((float *)lt_data(images) + (size_t)i * (size_t)sh[0] * plane, lt_data(img),
               (size_t)sh[0] * plane * sizeof(float));
        if (o->masks)
            memcpy((uint8_t *)lt_data(masks) + (size_t)i * plane, lt_data(mk), plane);
        lt_frame_pop(inner);
        continue;
    fail_inner:
        lt_frame_pop(inner);
        goto fail;
    }
    r->images = images;
    r->masks = masks;
    r->labels = lt_retain(labels);
    r->indices = lt_retain(indices);
    lt_frame_pop(mark);
    return;
fail:
    lt_release(images);
    lt_release(masks);
    result_fail(r);
    lt_frame_pop(mark);
}

/* ------------------------------------------------------------------ */
/* Workers                                                             */
/* ------------------------------------------------------------------ */

static void *worker(void *arg)
{
    lt_data_loader *ld = arg;
    size_t bytes = (size_t)ld->o.batch_size * sizeof(int64_t);
    int64_t *idx = lt_alloc(bytes);
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && !(ld->issue < ld->ret + ld->P))
            pthread_cond_wait(&ld->cv_work, &ld->mu);
        if (ld->stop)
            break;
        int64_t s = ld->issue++;
        uint64_t gen = ld->gen;
        result r;
        int64_t cnt = idx ? batch_indices(ld, s, idx) : -1;
        if (cnt < 0) {
            if (!idx)
                lt_set_error(OP ": out of memory for a batch of %lld indices",
                             (long long)ld->o.batch_size);
            memset(&r, 0, sizeof r);
            result_fail(&r);
        } else {
            pthread_mutex_unlock(&ld->mu);
            build(ld, s / ld->nb, idx, cnt, &r);
            pthread_mutex_lock(&ld->mu);
        }
        if (gen == ld->gen && !ld->stop) {
            slot *sl = &ld->slots[s % ld->P];
            sl->seq = s;
            sl->r = r;
            sl->ready = true;
            pthread_cond_broadcast(&ld->cv_ready);
        } else {
            result_release(&r);
        }
    }
    pthread_mutex_unlock(&ld->mu);
    if (idx)
        lt_free(idx, bytes);
    lt_frame_pop(0);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

static int check_opts(const lt_data_list *list, const lt_data_loader_opts *o)
{
    if (!list || !o) {
        lt_set_error(OP ": NULL listing or options");
        return -1;
    }
    if (list->n == 0 || !list->samples) {
        lt_set_error(OP ": the listing has no samples");
        return -1;
    }
    if (o->batch_size < 1) {
        lt_set_error(OP ": batch size %lld: want >= 1", (long long)o->batch_size);
        return -1;
    }
    if (o->channels < 0 || o->channels > 4) {
        lt_set_error(OP ": channels %d: want 1..4 (0 for 3)", o->channels);
        return -1;
    }
    if (o->workers < 0 || o->workers > MAX_WORKERS || o->prefetch < 0 ||
        o->prefetch > MAX_PREFETCH) {
        lt_set_error(OP ": workers %d, prefetch %d: want 0..%d and 0..%d", o->workers,
                     o->prefetch, MAX_WORKERS, MAX_PREFETCH);
        return -1;
    }
    const lt_data_transform *t = &o->transform;
    if ((unsigned)t->geom > LT_DATA_GEOM_RANDOM_RESIZED_CROP) {
        lt_set_error(OP ": unknown transform geometry %d", (int)t->geom);
        return -1;
    }
    if (t->geom != LT_DATA_GEOM_NONE &&
        (t->height < 1 || t->width < 1 || t->height > LT_DATA_IMAGE_MAX_DIM ||
         t->width > LT_DATA_IMAGE_MAX_DIM || t->resize < 0)) {
        lt_set_error(OP ": transform size %lldx%lld (resize %lld): want 1..%d",
                     (long long)t->height, (long long)t->width, (long long)t->resize,
                     LT_DATA_IMAGE_MAX_DIM);
        return -1;
    }
    if (!(t->hflip >= 0 && t->hflip <= 1)) {
        lt_set_error(OP ": flip probability %g: want 0..1", t->hflip);
        return -1;
    }
    for (size_t i = 0; i < list->n; i++)
        if (!list->samples[i].path) {
            lt_set_error(OP ": sample %zu has no path", i);
            return -1;
        }
    return 0;
}

lt_data_loader *lt_data_loader_new(const lt_data_list *list, const lt_data_loader_opts *opts)
{
    if (check_opts(list, opts) < 0)
        return NULL;
    int64_t n = (int64_t)list->n, bs = opts->batch_size;
    int64_t nb = opts->drop_last ? n / bs : (n + bs - 1) / bs;
    if (nb == 0) {
        lt_set_error(OP ": batch size %lld with drop_last leaves no batch of the %lld samples",
                     (long long)bs, (long long)n);
        return NULL;
    }
    lt_data_loader *ld = lt_data__malloc(sizeof *ld);
    if (!ld) {
        lt_set_error(OP ": out of memory");
        return NULL;
    }
    ld->list = list;
    ld->o = *opts;
    ld->n = n;
    ld->nb = nb;
    ld->channels = opts->channels ? opts->channels : 3;
    ld->perm_epoch = -1;
    ld->nthreads = opts->workers;
    ld->P = opts->workers ? (opts->prefetch ? opts->prefetch : 2 * opts->workers) : 1;
    ld->perm = opts->shuffle ? lt_data__malloc((size_t)n * sizeof *ld->perm) : NULL;
    ld->slots = lt_data__malloc((size_t)ld->P * sizeof *ld->slots);
    ld->threads = lt_data__malloc((size_t)(ld->nthreads ? ld->nthreads : 1) * sizeof *ld->threads);
    if ((opts->shuffle && !ld->perm) || !ld->slots || !ld->threads) {
        lt_data__mfree(ld->perm);
        lt_data__mfree(ld->slots);
        lt_data__mfree(ld->threads);
        lt_data__mfree(ld);
        lt_set_error(OP ": out of memory");
        return NULL;
    }
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->cv_work, NULL);
    pthread_cond_init(&ld->cv_ready, NULL);
    for (int i = 0; i < ld->nthreads; i++) {
        int rc = pthread_create(&ld->threads[i], NULL, worker, ld);
        if (rc != 0) {
            ld->nthreads = i;
            lt_data_loader_free(ld);
            lt_set_error(OP ": cannot start worker thread %d: %s", i, strerror(rc));
            return NULL;
        }
    }
    return ld;
}

int64_t lt_data_loader_batches_per_epoch(const lt_data_loader *ld) { return ld ? ld->nb : -1; }

lt_data_position lt_data_loader_tell(const lt_data_loader *ld)
{
    if (!ld)
        return (lt_data_position){-1, -1};
    if (ld->at_end)
        return (lt_data_position){ld->ret / ld->nb - 1, ld->nb};
    return (lt_data_position){ld->ret / ld->nb, ld->ret % ld->nb};
}

/* Release the batches parked in the slots. Under mu. */
static void drop_slots(lt_data_loader *ld)
{
    for (int i = 0; i < ld->P; i++) {
        if (ld->slots[i].ready)
            result_release(&ld->slots[i].r);
        ld->slots[i].ready = false;
    }
}

int lt_data_loader_seek(lt_data_loader *ld, lt_data_position pos)
{
    if (!ld) {
        lt_set_error(OP ": NULL loader");
        return -1;
    }
    if (pos.epoch < 0 || pos.batch < 0 || pos.batch > ld->nb ||
        pos.epoch > (INT64_MAX / ld->nb) - 2) {
        lt_set_error(OP ": position (epoch %lld, batch %lld) out of range: want epoch >= 0, "
                     "batch 0..%lld", (long long)pos.epoch, (long long)pos.batch,
                     (long long)ld->nb);
        return -1;
    }
    pthread_mutex_lock(&ld->mu);
    ld->gen++;
    drop_slots(ld);
    ld->at_end = pos.batch == ld->nb;
    ld->ret = pos.epoch * ld->nb + pos.batch;
    ld->issue = ld->ret;
    ld->failed = false;
    pthread_cond_broadcast(&ld->cv_work);
    pthread_mutex_unlock(&ld->mu);
    return 0;
}

int lt_data_loader_next(lt_data_loader *ld, lt_data_batch *out)
{
    if (!ld || !out) {
        lt_set_error(OP ": NULL loader or batch");
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (ld->failed) {
        lt_set_error("%s", ld->err);
        return -1;
    }
    if (ld->at_end) {
        ld->at_end = false;
        return 0;
    }
    int64_t s = ld->ret;
    result r;
    if (ld->nthreads == 0) {
        size_t bytes = (size_t)ld->o.batch_size * sizeof(int64_t);
        int64_t *idx = lt_alloc(bytes);
        int64_t cnt = idx ? batch_indices(ld, s, idx) : -1;
        if (cnt < 0) {
            memset(&r, 0, sizeof r);
            result_fail(&r);
        } else {
            build(ld, s / ld->nb, idx, cnt, &r);
        }
        if (idx)
            lt_free(idx, bytes);
    } else {
        pthread_mutex_lock(&ld->mu);
        slot *sl = &ld->slots[s % ld->P];
        while (!(sl->ready && sl->seq == s))
            pthread_cond_wait(&ld->cv_ready, &ld->mu);
        r = sl->r;
        sl->ready = false;
        memset(&sl->r, 0, sizeof sl->r);
        if (!r.failed) {
            ld->ret = s + 1; /* room for one more job */
            pthread_cond_broadcast(&ld->cv_work);
        }
        pthread_mutex_unlock(&ld->mu);
    }
    if (r.failed) {
        ld->failed = true;
        snprintf(ld->err, sizeof ld->err, "%s", r.err);
        lt_set_error("%s", r.err);
        return -1;
    }
    if (ld->nthreads == 0)
        ld->ret = s + 1;
    ld->at_end = ld->ret % ld->nb == 0;
    out->images = lt_autorelease(r.images);
    out->labels = lt_autorelease(r.labels);
    out->masks = r.masks ? lt_autorelease(r.masks) : NULL;
    out->indices = lt_autorelease(r.indices);
    out->epoch = s / ld->nb;
    out->batch = s % ld->nb;
    if (!out->images || !out->labels || !out->indices || (ld->o.masks && !out->masks)) {
        lt_set_error(OP ": out of memory handing over a batch");
        return -1;
    }
    return 1;
}

void lt_data_loader_free(lt_data_loader *ld)
{
    if (!ld)
        return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = true;
    pthread_cond_broadcast(&ld->cv_work);
    pthread_cond_broadcast(&ld->cv_ready);
    pthread_mutex_unlock(&ld->mu);
    for (int i = 0; i < ld->nthreads; i++)
        pthread_join(ld->threads[i], NULL);
    drop_slots(ld);
    pthread_mutex_destroy(&ld->mu);
    pthread_cond_destroy(&ld->cv_work);
    pthread_cond_destroy(&ld->cv_ready);
    lt_data__mfree(ld->perm);
    lt_data__mfree(ld->slots);
    lt_data__mfree(ld->threads);
    lt_data__mfree(ld);
}
