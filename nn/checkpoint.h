/*
 * libtensor: safetensors checkpoints (<libtensor/checkpoint.h>)
 *
 * THE MODEL
 *
 * Checkpoints are safetensors files, the format of Hugging Face's
 * `safetensors` package, so PyTorch loads ours (safetensors.torch.load_file)
 * and we load theirs (safetensors.torch.save_file). A file is
 *
 *   bytes 0..7     N, the header length: unsigned 64-bit little-endian
 *   bytes 8..8+N   the header: a UTF-8 JSON object, maybe followed by spaces
 *                  (writers pad it so the data starts 8-byte aligned)
 *                    {"__metadata__": {"key": "value", ...},      (optional)
 *                     "conv1.weight": {"dtype": "F32",
 *                                      "shape": [64, 3, 7, 7],
 *                                      "data_offsets": [0, 37632]},
 *                     ...}
 *   bytes 8+N..    the data section: each tensor's elements, row-major,
 *                  little-endian, at [begin, end) counted from the start of
 *                  the data section
 *
 * Supported dtypes: "F32", "F64", "I64", "U8" (LT_F32, LT_F64, LT_I64, LT_U8).
 * Metadata values are strings only. A file is accepted only if (every
 * rejection is an error naming the file and, where there is one, the tensor):
 *  - it holds the 8 length bytes, N <= 100000000 and 8 + N <= file size;
 *  - the header has no NUL byte, parses as JSON, is an object, and only
 *    whitespace follows the object;
 *  - every entry except "__metadata__" is an object with a known "dtype", a
 *    "shape" of at most LT_MAX_DIMS non-negative integers whose element count
 *    and byte size do not overflow, and "data_offsets" [begin, end] of
 *    non-negative integers with begin <= end <= the data section's size and
 *    end - begin == numel * element size;
 *  - "__metadata__", if present, is an object of string values;
 *  - no name appears twice;
 *  - sorted by begin, the tensors tile the data section exactly: the first
 *    begins at 0, each begins where the previous ends (no overlap, no gap),
 *    and the last ends at the end of the file.
 * Nothing is allocated for tensor data before the whole header is validated,
 * so a file cannot request more memory than its own size.
 *
 * OWNERSHIP. lt_nn_safetensors_load/_decode return an lt_nn_tensor_file that
 * the caller owns and frees with lt_nn_tensor_file_free. The file object owns
 * its tensors, names and metadata strings; accessors return borrowed
 * pointers valid until the free (lt_retain a tensor to keep it longer).
 * Loaded tensors are contiguous, do not require grad, and do not belong to
 * any frame. Functions that take tensors borrow them.
 *
 * WRITES ARE ATOMIC. lt_nn_safetensors_save writes a temporary file in the
 * destination's directory, flushes and fsyncs it, renames it over the
 * destination and fsyncs the directory. A reader (or a crash) sees the old
 * file or the new one, never a partial one; on failure the temporary file is
 * removed and the old file is untouched. A process killed mid-save cannot
 * remove its temporary file ("PATH.tmp.PID.K"); the next successful save
 * of PATH removes those whose process is no longer running.
 *
 * ERRORS follow tensor.h: NULL or -1, and a message readable with
 * lt_last_error() that starts with "safetensors: PATH: ". The library never
 * prints or exits.
 *
 * MEMORY. Header text, name copies and tensors are allocated through the
 * libtensor allocator hook. The JSON parser (Debian's cJSON) allocates its
 * parse tree with its own (default) hooks, freed before the call returns.
 *
 * EXAMPLE
 *
 *     const char *names[] = {"fc.weight", "fc.bias"};
 *     const lt_tensor *ts[] = {w, b};
 *     const char *mk[] = {"arch"}, *mv[] = {"resnet18"};
 *     if (lt_nn_safetensors_save("model.safetensors", 2, names, ts, 1, mk, mv) < 0)
 *         fprintf(stderr, "%s\n", lt_last_error());
 *
 *     lt_nn_tensor_file *f = lt_nn_safetensors_load("model.safetensors");
 *     lt_tensor *dst[] = {my_w, my_b};   // leaf parameters, right shapes
 *     if (!f || lt_nn_load_into(f, 2, names, dst, NULL, NULL) < 0)
 *         fprintf(stderr, "%s\n", lt_last_error());
 *     const char *arch = lt_nn_tensor_file_meta(f, "arch");  // "resnet18"
 *     lt_nn_tensor_file_free(f);
 */
#ifndef LIBTENSOR_CHECKPOINT_H
#define LIBTENSOR_CHECKPOINT_H

#include <libtensor/autograd.h>
#include <libtensor/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest header length accepted (the limit of the safetensors package). */
#define LT_NN_SAFETENSORS_MAX_HEADER 100000000u

/* ---- writing ---- */

/* Write n tensors and n_meta metadata strings to path, atomically (see
 * above). names[i] names tensors[i]; the header and the data section keep
 * the caller's order. Tensors may have any strides, offset or rank 0..8;
 * their elements are written contiguous, row-major, little-endian. Names must
 * be distinct, not NULL and not "__metadata__"; metadata keys must be
 * distinct and not NULL, values not NULL. The header is padded with spaces to
 * a multiple of 8 bytes, as the safetensors package does. Returns 0, or -1
 * with an error (the old file at path, if any, is left as it was, except
 * when only the final fsync of the directory fails, which the message says).
 * A symbolic link at path is replaced by the new file, not written through. */
int lt_nn_safetensors_save(const char *path, int n, const char *const *names, lt_tensor *const *tensors,
                           int n_meta, const char *const *meta_keys, const char *const *meta_vals);

/* ---- reading ---- */

/* The tensors and metadata of one safetensors file (opaque). Owned by
 * whoever loaded it; free with lt_nn_tensor_file_free. */
typedef struct lt_nn_tensor_file lt_nn_tensor_file;

/* Read and validate the file at path. The tensors come in the order of their
 * data offsets (the order in which PyTorch wrote them). Returns a new file
 * object (caller owns), or NULL with an error naming path and the tensor. */
lt_nn_tensor_file *lt_nn_safetensors_load(const char *path);

/* Same, from len bytes at buf (the whole file image; buf is only read during
 * the call). label names the source in messages (NULL: "<memory>"). This is
 * the fuzzing entry point. */
lt_nn_tensor_file *lt_nn_safetensors_decode(const void *buf, size_t len, const char *label);

/* Free f, its names, metadata and its references to its tensors (a tensor
 * the caller retained lives on). NULL-safe. */
void lt_nn_tensor_file_free(lt_nn_tensor_file *f);

/* Number of tensors in f (0 for NULL). */
int lt_nn_tensor_file_count(const lt_nn_tensor_file *f);
/* Name of tensor i (0 <= i < count), borrowed from f; NULL if out of range. */
const char *lt_nn_tensor_file_name(const lt_nn_tensor_file *f, int i);
/* Tensor i, borrowed from f (valid until lt_nn_tensor_file_free; lt_retain
 * to keep it); NULL with an error if out of range. */
lt_tensor *lt_nn_tensor_file_tensor(const lt_nn_tensor_file *f, int i);
/* Index of the tensor called name, or -1 (no error recorded) if absent. */
int lt_nn_tensor_file_find(const lt_nn_tensor_file *f, const char *name);
/* Where the file came from (the path, or the decode label). Borrowed. */
const char *lt_nn_tensor_file_source(const lt_nn_tensor_file *f);

/* Metadata ("__metadata__"): the value for key, borrowed from f, or NULL
 * (no error recorded) if the key is absent. */
const char *lt_nn_tensor_file_meta(const lt_nn_tensor_file *f, const char *key);
/* Number of metadata entries, and entry i's key and value (borrowed; NULL
 * if out of range), in the order of the header. */
int lt_nn_tensor_file_meta_count(const lt_nn_tensor_file *f);
const char *lt_nn_tensor_file_meta_key(const lt_nn_tensor_file *f, int i);
const char *lt_nn_tensor_file_meta_value(const lt_nn_tensor_file *f, int i);

/* ---- loading into existing tensors (state dicts) ---- */

/* Options for lt_nn_load_into. NULL options mean strict, no skips. */
typedef struct lt_nn_load_opts {
    /* true: any missing, unexpected or mis-shaped key fails the call, and
     * nothing is written. false: load the keys whose shapes match, count the
     * rest (unlike torch's load_state_dict(strict=False), a shape mismatch
     * is counted, not an error). */
    bool strict;
    /* Keys starting with any of these prefixes are ignored on both sides:
     * neither loaded nor reported as missing or unexpected (the destination
     * keeps its values). For fine-tuning with another class count pass
     * "fc." (ResNet) or "head." (ViT); to load the weights of a training
     * checkpoint, pass "optim.". */
    int n_skip_prefixes;
    const char *const *skip_prefixes;
} lt_nn_load_opts;

/* What lt_nn_load_into did. */
typedef struct lt_nn_load_report {
    int loaded;     /* destination tensors written */
    int missing;    /* destination names absent from the file */
    int unexpected; /* file names no destination asked for */
    int mismatched; /* names present on both sides with different shapes */
    int skipped;    /* destination names matching a skip prefix */
    /* "missing: a, b; unexpected: c; shape mismatch: d (file (3,4), model
     * (4,3))", every key listed ("" when all matched). Allocated through the
     * hook; free with lt_nn_load_report_free. */
    char *detail;
    size_t detail_cap;
} lt_nn_load_report;

/* Copy tensors of f into the n destination tensors dst[i] named names[i]
 * (e.g. a model's state dict), matching by name. A match must have the same
 * shape; the dtype may differ (values convert as lt_to_dtype does, e.g. an
 * F64 file into f32 parameters). Values are written in place through
 * lt_data(dst[i]) (any strides), outside autograd: no graph is recorded and
 * dst[i] must be a leaf (a parameter or buffer). Every destination is checked
 * before anything is written, so a failing call leaves all of dst unchanged.
 * Strict (opts NULL or opts->strict): if any key is missing, unexpected or
 * mis-shaped, returns -1 with one message naming the file and listing them
 * (as many as fit the error buffer; report->detail has all). Otherwise loads
 * the matches and returns 0. report (may be NULL) receives the counts and
 * the listing (it is overwritten, so free a previous one first); free it
 * with lt_nn_load_report_free, also after a failure. Names in `names` should
 * be distinct (a repeated name loads the same file tensor twice). */
int lt_nn_load_into(const lt_nn_tensor_file *f, int n, const char *const *names, lt_tensor *const *dst,
                    const lt_nn_load_opts *opts, lt_nn_load_report *report);

/* Free report->detail and zero the report. NULL-safe. */
void lt_nn_load_report_free(lt_nn_load_report *report);

#ifdef __cplusplus
}
#endif
#endif
