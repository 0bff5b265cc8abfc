/*
 * libtensor: data I/O (<libtensor/data.h>)
 *
 * WHAT IT IS FOR
 *
 * Reading and writing the files that image-classification experiments use:
 * NumPy .npy arrays (IN-9 foreground masks), IDX files (MNIST and
 * Fashion-MNIST, plain or gzipped), and JPEG / PNG / BMP images; and listing
 * the samples of a dataset laid out as ImageNet-9 / the Backgrounds
 * Challenge publishes it, or as a plain class-folder tree. Each format
 * has a reader that takes a path and a decoder that takes a buffer in memory
 * (the fuzz targets call the decoders). Every decoder is strict and bounds
 * checked: a file that is truncated, malformed or inconsistent (a header that
 * promises more data than there is, an unknown dtype, a bad magic number) is
 * an error, never a crash, a hang or a huge allocation.
 *
 * IMAGES are tensors of dtype u8 (0..255) or f32 (0..1), layout C x H x W
 * for one image (channels first, rows top to bottom, row-major), as PyTorch
 * does. Channel order is gray (1), gray+alpha (2), RGB (3) or RGBA (4).
 * Decoders always return u8.
 *
 * OWNERSHIP follows <libtensor/tensor.h>: every tensor returned here is
 * owned by the caller's current frame (lt_frame_push/lt_frame_pop); retain
 * it to keep it past the frame. Tensor arguments are borrowed. Buffers and
 * paths passed in are only read during the call. The one other thing handed
 * out is a dataset listing (lt_data_list), which the caller owns and frees
 * with lt_data_list_free.
 *
 * ERRORS are values. A reader or decoder returns NULL, a writer returns -1,
 * after recording a message readable with lt_last_error(). The message starts
 * with the function and the file:
 *
 *     "npy_read: masks/n01_3.npy: data truncated: shape (224,224) of |u1 needs
 *      50176 bytes after the header, the file has 1000"
 *
 * Decoders name their input with the `name` argument (NULL reads as
 * "<memory>"). A NULL tensor argument makes a writer return -1 without
 * overwriting the message already recorded, so a chain can be checked once.
 * Nothing here prints or exits. Allocations go through lt_alloc (the
 * allocator hook), including those of the image codecs.
 *
 * THREADS. Every function is reentrant; decoders may run on several threads
 * at once (the prefetching loader does).
 *
 * EXAMPLE
 *
 *     size_t mark = lt_frame_push();
 *     lt_tensor *img = lt_data_image_read("cat.jpg", 3);      // u8 (3,H,W)
 *     lt_tensor *mask = lt_data_npy_read("cat_mask.npy");     // u8 (H,W)
 *     if (!img || !mask)
 *         fprintf(stderr, "%s\n", lt_last_error());
 *     else
 *         lt_data_png_write("cat.png", img);
 *     lt_frame_pop(mark);
 */
#ifndef LIBTENSOR_DATA_H
#define LIBTENSOR_DATA_H

#include <libtensor/tensor.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* NumPy .npy                                                          */
/* ------------------------------------------------------------------ */
/*
 * THE FORMAT (numpy/lib/format.py, NEP 1):
 *
 *   bytes 0-5   "\x93NUMPY"
 *   byte  6,7   major, minor version: 1.0, 2.0 or 3.0
 *   then        header length HLEN, little-endian: u16 in 1.0, u32 in 2.0/3.0
 *   then        HLEN bytes: a Python dict literal, space padded, '\n' ended:
 *               {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 *   then        the elements, numel * itemsize bytes, in C (row-major) or
 *               Fortran (column-major) order.
 *
 * The header dict must have exactly the keys descr, fortran_order and shape
 * (any order, strings in ' or " quotes, a trailing comma allowed). shape is a
 * tuple of non-negative integers, at most LT_MAX_DIMS of them ("()" is a
 * 0-d array). Bytes after the data are ignored, as np.load ignores them.
 *
 * DTYPES. descr is a byte order ('<' little, '>' big, '|' not applicable;
 * '|' only for 1-byte types) and one of the codes below, mapped onto the
 * libtensor dtypes without loss:
 *
 *   b1 (bool)  -> u8 (0 or 1; any nonzero byte reads as 1)
 *   u1 (uint8) -> u8
 *   i1, i4, i8 (int8/32/64) -> i64
 *   f4 (float32) -> f32
 *   f8 (float64) -> f64
 *
 * Other dtypes (i2, u4, c8, '<U5', structured, ...) are refused with an
 * error naming the descr. Fortran-ordered files are read into a row-major
 * (C order) tensor of the same shape. Big-endian files are byte swapped.
 */

/* What a .npy header says. */
typedef struct lt_data_npy_info {
    int major, minor;            /* format version: 1.0, 2.0 or 3.0 */
    char byteorder;              /* '<', '>' or '|' as written */
    char kind;                   /* 'b', 'u', 'i' or 'f' */
    int itemsize;                /* bytes per element in the file: 1, 4 or 8 */
    bool fortran_order;
    int ndim;                    /* 0..LT_MAX_DIMS */
    int64_t shape[LT_MAX_DIMS];
    int64_t numel;
    size_t data_offset;          /* bytes from the start to the first element */
    size_t data_bytes;           /* numel * itemsize */
    lt_dtype dtype;              /* the libtensor dtype it reads as */
} lt_data_npy_info;

/* Parse and validate the header at the start of buf (len bytes) into *info.
 * Checks that the data the header promises fits in len. Returns 0, or -1
 * with an error "npy_read: NAME: ...". */
int lt_data_npy_parse_header(const void *buf, size_t len, const char *name,
                             lt_data_npy_info *info);

/* Decode a whole .npy image held in memory. Returns a new contiguous tensor
 * with the file's shape and the mapped dtype (see DTYPES), owned by the
 * current frame; NULL with an error naming `name` on any defect. */
lt_tensor *lt_data_npy_decode(const void *buf, size_t len, const char *name);

/* Read the .npy file at path (see lt_data_npy_decode). Errors name path. */
lt_tensor *lt_data_npy_read(const char *path);

/* Write t (any shape, any layout, rank 0..LT_MAX_DIMS) to path as a version
 * 1.0, C-order, little-endian .npy that np.load reads back exactly:
 * f32 -> '<f4', f64 -> '<f8', i64 -> '<i8', u8 -> '|u1'. The header is
 * padded so the data starts on a 64-byte boundary, as NumPy does. Returns 0,
 * or -1 with "npy_write: PATH: ..." (a partial file is removed). */
int lt_data_npy_write(const char *path, const lt_tensor *t);

/* ------------------------------------------------------------------ */
/* IDX (MNIST / Fashion-MNIST)                                         */
/* ------------------------------------------------------------------ */
/*
 * THE FORMAT (yann.lecun.com/exdb/mnist): all integers big-endian.
 *
 *   bytes 0,1   zero
 *   byte  2     element type: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32,
 *               0x0D f32, 0x0E f64
 *   byte  3     number of dims, 1..LT_MAX_DIMS
 *   then        one u32 per dim
 *   then        the elements, row-major, exactly prod(dims) of them.
 *
 * Mapping: 0x08 -> u8, 0x09/0x0B/0x0C -> i64, 0x0D -> f32, 0x0E -> f64.
 * Fashion-MNIST images read as u8 (N,28,28) and labels as u8 (N,).
 * A file shorter or longer than the header says is an error.
 */

/* Decode an (uncompressed) IDX image held in memory. Returns a new tensor
 * owned by the current frame, or NULL with "idx_read: NAME: ...". */
lt_tensor *lt_data_idx_decode(const void *buf, size_t len, const char *name);

/* Read an IDX file, plain or gzip-compressed (detected from the content, not
 * the name: "train-images-idx3-ubyte.gz" and an unpacked copy both work).
 * A corrupt or truncated gzip stream is an error naming path. */
lt_tensor *lt_data_idx_read(const char *path);

/* ------------------------------------------------------------------ */
/* Images: JPEG, PNG, BMP                                              */
/* ------------------------------------------------------------------ */
/*
 * Decoding uses stb_image (baseline and progressive JPEG, 8-bit PNG of every
 * colour type including palette and 16-bit, which is reduced to 8 bits; BMP).
 * Before decoding, a JPEG must run from SOI to an EOI marker and a PNG must
 * be a complete chain of chunks with correct CRCs ending in IEND: stb_image
 * alone would return a half-grey image for a truncated JPEG.
 * Images wider or taller than LT_DATA_IMAGE_MAX_DIM are refused.
 *
 * channels: 0 keeps the file's own count (1..4); 1..4 converts (RGB to gray
 * uses stb_image's integer weights (77 R + 150 G + 29 B) >> 8; gray to RGB
 * repeats it; a missing alpha is 255; a dropped alpha is discarded).
 */
#define LT_DATA_IMAGE_MAX_DIM 16384

/* Decode a JPEG, PNG or BMP held in memory into a new u8 tensor
 * (C,H,W) owned by the current frame, C = channels or the file's count.
 * NULL with "image_read: NAME: ..." on a corrupt, truncated or unsupported
 * image or on channels outside 0..4. */
lt_tensor *lt_data_image_decode(const void *buf, size_t len, int channels, const char *name);

/* Read and decode the image file at path (see lt_data_image_decode). */
lt_tensor *lt_data_image_read(const char *path, int channels);

/* Write img as an 8-bit PNG with libpng (lossless: reading it back with
 * lt_data_image_read(path, 0) returns the same bytes). img is (C,H,W) with
 * C = 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), or (H,W) for gray; u8
 * as is, f32/f64 in [0,1] scaled by 255, rounded to nearest and clamped.
 * Any layout. Returns 0, or -1 with "png_write: PATH: ...". */
int lt_data_png_write(const char *path, const lt_tensor *img);

/* Write img as a baseline JPEG with stb_image_write at quality 1..100
 * (lossy; 4:2:0 chroma subsampling up to quality 90, none above). img as for
 * lt_data_png_write but C = 1 or 3. Returns 0, or -1 with
 * "jpeg_write: PATH: ...". */
int lt_data_jpeg_write(const char *path, const lt_tensor *img, int quality);

/* ------------------------------------------------------------------ */
/* Masks                                                               */
/* ------------------------------------------------------------------ */

/* Read a foreground mask as u8 (1,H,W) holding 0 or 1.
 *   .npy: (H,W) or (1,H,W) of any supported dtype; nonzero -> 1 (IN-9
 *         masks are bool or uint8 H x W).
 *   image (PNG/JPEG/BMP): converted to gray; >= 128 -> 1, i.e. the 0.5
 *         threshold that RIVAL10's JPEG masks need.
 * The format is chosen by the content, not the name. NULL with
 * "mask_read: PATH: ..." on error (wrong rank, unreadable file). */
lt_tensor *lt_data_mask_read(const char *path);

/* ------------------------------------------------------------------ */
/* Dataset listings: ImageNet-9 / Backgrounds Challenge, plain folders */
/* ------------------------------------------------------------------ */
/*
 * A listing walks a dataset's folders once and returns every sample as
 * (image path, label, mask path). It reads no pixels; the loader does.
 *
 * ImageNet-9 / Backgrounds Challenge (github.com/MadryLab/backgrounds_challenge):
 *
 *   <root>/<variant>/<split>/<NN_class>/<file>       images
 *   <root>/fg_mask/<split>/<NN_class>/<stem>.npy     masks (bool/uint8 H x W)
 *
 * variant is original, only_fg, only_bg_b, only_bg_t, no_fg, mixed_same,
 * mixed_rand, mixed_next or in9l; split is train or val. Mixed images are
 * named fg_<stem>_bg_<stem2>.<ext> and take the mask of the foreground
 * image <stem> (of the class folder they sit in). The first "_bg_" after
 * the "fg_" ends the stem.
 *
 * Plain folder:
 *
 *   <root>/<class>/<file>                            images
 *   <root>_masks/<class>/<stem>.npy or .png          masks (.npy first)
 *
 * RIVAL10 (github.com/mmoayeri/RIVAL10, as its authors' loader reads it):
 *
 *   <root>/<split>/ordinary/<wnid>_<n>.JPEG          images (split: train, test)
 *   <root>/<split>/entire_object_masks/<name>        masks, JPEG, >= 0.5 is object
 *   <root>/meta/label_mappings.json   {"<ImageNet class>": ["<class>", label]}
 *   <root>/meta/wnid_to_class.json    {"<wnid>": "<ImageNet class>"}
 *
 * A RIVAL10 image's label is label_mappings[wnid_to_class[wnid]][1], wnid
 * being its name up to the first '_' (a label_mappings.json keyed by wnid
 * works without wnid_to_class.json); classes[k] is the class name paired
 * with label k, and every label 0..K-1 must have one. The mask of
 * ordinary/<name> is entire_object_masks/<name>, else <stem> with .JPEG,
 * .jpg, .jpeg or .png, else <wnid>_<name> (the name the authors'
 * ImageNet-URL loader builds). The attribute files that share ordinary/
 * with the images (*_attr_labels.npy, *_attr_dict.pkl, *_merged_mask.*)
 * are skipped; any other non-image file there is an error. Samples are
 * ordered by label, then file name.
 *
 * Labels are positions in the class folders sorted by name (bytewise, so
 * "00_dog" < "01_bird"); samples are ordered by label, then file name.
 * Names starting with '.' are skipped. Image files are recognised by
 * extension: .jpg .jpeg .png .bmp in any case. Errors (each names the path):
 * a missing root or split folder, a file where class folders should be, a
 * class folder with no images, a file that is not an image, and, with
 * LT_DATA_MASKS_REQUIRED, a missing mask.
 */

typedef enum lt_data_mask_mode {
    LT_DATA_MASKS_REQUIRED = 0, /* every image must have a mask file */
    LT_DATA_MASKS_OPTIONAL = 1, /* mask_path is NULL where there is none */
    LT_DATA_MASKS_NONE = 2      /* do not look for masks; mask_path NULL */
} lt_data_mask_mode;

/* One sample. The strings belong to the listing. */
typedef struct lt_data_sample {
    const char *path;      /* image file */
    const char *mask_path; /* mask file, or NULL */
    int64_t label;         /* 0 .. nclasses-1 */
} lt_data_sample;

/* A listing; the caller owns it and frees it with lt_data_list_free. */
typedef struct lt_data_list {
    lt_data_sample *samples;
    size_t n;
    const char **classes;  /* class folder names, sorted; label i = classes[i] */
    int nclasses;
} lt_data_list;

/* List <root>/<variant>/<split> (see above). NULL with
 * "in9_list: PATH: ..." on any error. */
lt_data_list *lt_data_in9_list(const char *root, const char *variant, const char *split,
                               lt_data_mask_mode masks);

/* List a plain <root>/<class>/<file> folder (see above). NULL with
 * "folder_list: PATH: ..." on any error. */
lt_data_list *lt_data_folder_list(const char *root, lt_data_mask_mode masks);

/* List RIVAL10's <root>/<split>/ordinary (see above); split is "train"
 * or "test". NULL with "rival10_list: PATH: ..." on any error: a missing
 * folder or meta file, malformed JSON, a wnid no mapping knows, a missing
 * mask (LT_DATA_MASKS_REQUIRED), a non-image file. */
lt_data_list *lt_data_rival10_list(const char *root, const char *split,
                                   lt_data_mask_mode masks);

/* Free a listing and every string in it. NULL-safe. */
void lt_data_list_free(lt_data_list *list);

#ifdef __cplusplus
}
#endif
#endif
