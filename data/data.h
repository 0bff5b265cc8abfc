/*
 * libtensor: data I/O (<libtensor/data.h>)
 *
 * WHAT IT IS FOR
 *
 * Reading and writing the files that image-classification experiments use:
 * NumPy .npy arrays (IN-9 foreground masks), IDX files (MNIST and
 * Fashion-MNIST, plain or gzipped), and JPEG / PNG / BMP images; and listing
 * the samples of a dataset laid out as ImageNet-9 / the Backgrounds
 * Challenge publishes it, as RIVAL10 publishes it, or as a plain
 * class-folder tree; transforms that move an image and its mask together;
 * edge removal; a prefetching, deterministic batch loader; and the
 * generator of the bundled Fashion-MNIST backgrounds benchmark. Each format
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
 * with lt_data_list_free, and a loader (lt_data_loader_free).
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

/* ------------------------------------------------------------------ */
/* Transforms: image and mask together                                 */
/* ------------------------------------------------------------------ */
/*
 * An image is (C,H,W) u8 (0..255) or f32 (0..1), C = 1..4; its mask, when
 * there is one, is u8 (1,H,W) of the same height and width. Each geometric
 * transform takes both by address and replaces them with new tensors owned
 * by the current frame (the old ones are only borrowed), so the same crop,
 * flip or resize always happens to both. Pass mask = NULL (or a pointer to
 * NULL) for an image alone. They return 0, or -1 with "OP: ..." and the
 * arguments untouched.
 *
 * They follow torchvision on PIL images, which the paper's training ran:
 *   resize       image: bilinear with PIL's antialiasing (a triangle filter
 *                whose support grows with the downscale factor; plain
 *                half-pixel bilinear when upscaling); u8 results rounded.
 *                mask: nearest, source pixel floor((x + 0.5) * in / out).
 *   crop         rows top..top+h-1, columns left..left+w-1; parts outside
 *                the image are zero (torchvision pads the same way).
 *   center crop  top = round((H - h) / 2), left = round((W - w) / 2).
 *   random-resized-crop
 *                torchvision's RandomResizedCrop.get_params: up to 10
 *                tries of area = U(scale) * H * W and aspect ratio
 *                exp(U(log ratio)), w = round(sqrt(area * ratio)),
 *                h = round(sqrt(area / ratio)); the first that fits is
 *                placed at a uniform offset; after 10 misses, the whole
 *                image cut to the nearest allowed ratio, centred. Then a
 *                resize to (h, w). Draws come from the lt_rng given.
 *   hflip        mirror left-right.
 */

/* A crop box. */
typedef struct lt_data_box {
    int64_t top, left, h, w;
} lt_data_box;

/* Resize to (h, w): bilinear image, nearest mask. */
int lt_data_resize(lt_tensor **image, lt_tensor **mask, int64_t h, int64_t w);
/* Resize so the shorter side is `size`, keeping the aspect ratio
 * (torchvision Resize(int): the long side is truncated). */
int lt_data_resize_shorter(lt_tensor **image, lt_tensor **mask, int64_t size);
/* Nearest-neighbour resize of any u8 (C,H,W) tensor (a mask); new tensor
 * owned by the current frame. */
lt_tensor *lt_data_resize_mask(const lt_tensor *mask, int64_t h, int64_t w);
int lt_data_crop(lt_tensor **image, lt_tensor **mask, int64_t top, int64_t left, int64_t h,
                 int64_t w);
int lt_data_center_crop(lt_tensor **image, lt_tensor **mask, int64_t h, int64_t w);
int lt_data_hflip(lt_tensor **image, lt_tensor **mask);
/* The box random-resized-crop would cut from an H x W image; scale and
 * ratio are (lo, hi) pairs (torchvision's defaults: (0.08, 1) and
 * (3/4, 4/3)). Advances r. */
int lt_data_rrc_params(lt_rng *r, int64_t H, int64_t W, const double scale[2],
                       const double ratio[2], lt_data_box *box);
/* Crop that box from image and mask, then resize both to (h, w). */
int lt_data_random_resized_crop(lt_rng *r, lt_tensor **image, lt_tensor **mask, int64_t h,
                                int64_t w, const double scale[2], const double ratio[2]);

/* f32 copy in [0,1]: u8 divided by 255; an f32 image is returned as is
 * (contiguous). Owned by the current frame. */
lt_tensor *lt_data_to_float(const lt_tensor *image);
/* (x - mean[c]) / std[c] per channel c of a (C,H,W) or (N,C,H,W) image,
 * as f32 (u8 input is divided by 255 first, like ToTensor + Normalize).
 * mean and std have C entries; std > 0. */
lt_tensor *lt_data_normalize(const lt_tensor *image, const double *mean, const double *std);

/* ImageNet statistics (torchvision's), for lt_data_transform.mean/std. */
#define LT_DATA_IMAGENET_MEAN {0.485, 0.456, 0.406, 0.0}
#define LT_DATA_IMAGENET_STD {0.229, 0.224, 0.225, 1.0}

typedef enum lt_data_geom {
    LT_DATA_GEOM_NONE = 0,            /* keep the size */
    LT_DATA_GEOM_RESIZE = 1,          /* resize to (height, width) */
    LT_DATA_GEOM_RESIZE_CENTER_CROP = 2, /* shorter side to `resize` (0: height),
                                            then center crop (height, width):
                                            torchvision's evaluation recipe */
    LT_DATA_GEOM_RANDOM_RESIZED_CROP = 3 /* random-resized-crop to (height, width):
                                            the training recipe */
} lt_data_geom;

/* A transform pipeline: geometry, then a horizontal flip with probability
 * hflip, then f32 in [0,1] and, if normalize, (x - mean) / std. A zeroed
 * struct converts to f32 and nothing else. The caller owns it (plain data). */
typedef struct lt_data_transform {
    lt_data_geom geom;
    int64_t height, width; /* output size for every geom but NONE */
    int64_t resize;        /* RESIZE_CENTER_CROP: shorter side first */
    double scale[2];       /* RANDOM_RESIZED_CROP; {0,0}: (0.08, 1) */
    double ratio[2];       /* RANDOM_RESIZED_CROP; {0,0}: (3/4, 4/3) */
    double hflip;          /* probability of a flip, 0..1 */
    bool normalize;
    double mean[4], std[4]; /* per channel, when normalize */
} lt_data_transform;

/* Run t on one image (and mask): *image becomes f32 (C,h,w), *mask u8
 * (1,h,w), both owned by the current frame. Random choices come from r,
 * in this order: the crop box, then the flip; r may be NULL when t draws
 * nothing. 0, or -1 with an error. */
int lt_data_transform_apply(const lt_data_transform *t, lt_rng *r, lt_tensor **image,
                            lt_tensor **mask);

/* ------------------------------------------------------------------ */
/* Edge removal (the paper's section 4.4)                              */
/* ------------------------------------------------------------------ */
/*
 * Santos & Zanchettin test whether a model relies on the object's outline
 * by zeroing a band of a given width around the foreground boundary, half
 * of it inside the object and half outside. For an H x W image, exactly:
 *
 *   r = (width / 2) * min(H, W) / 224     (width is given in pixels of a
 *                                          224-pixel image; the shorter
 *                                          side stands for 224)
 *   pixel p is in the band  <=>  some pixel q with mask(q) != mask(p)
 *                                 has |p - q| <= r
 *
 * with |p - q| the Euclidean distance between pixel centres. So a
 * foreground pixel is zeroed when a background pixel lies within r of it,
 * and the other way round: for a straight edge and integer r, r pixel
 * rows on each side (2r in all); at a convex corner the outer band is
 * rounded. A mask that is all foreground or all background has no band.
 * Computed with an exact Euclidean distance transform, linear in H*W.
 */

/* The band as u8 0/1, same shape as mask (u8 (H,W), (1,H,W) or
 * (N,1,H,W)); width224 >= 0. Owned by the current frame. */
lt_tensor *lt_data_edge_band(const lt_tensor *mask, double width224);
/* Copy of image with the band set to 0 (any dtype; for a black band on a
 * normalized image, remove edges before normalizing). image (C,H,W) with
 * mask (1,H,W) or (H,W), or (N,C,H,W) with (N,1,H,W). */
lt_tensor *lt_data_remove_edges(const lt_tensor *image, const lt_tensor *mask, double width224);

/* ------------------------------------------------------------------ */
/* Loader                                                              */
/* ------------------------------------------------------------------ */
/*
 * A loader turns a listing into batches:
 *
 *   images  f32 (N,C,H,W)   after the transform
 *   labels  i64 (N)
 *   masks   u8  (N,1,H,W)   0/1, when opts.masks (a sample without a mask
 *                           file gets zeros); a mask whose size differs
 *                           from its image is first resized to it (nearest)
 *   indices i64 (N)         the samples' positions in the listing
 *
 * ORDER. Epoch e visits the samples in the order lt_randperm gives for a
 * generator seeded from (seed, e), or in listing order without shuffle;
 * batch b holds positions b*N .. b*N+N-1 of that order. With drop_last a
 * short final batch is dropped, otherwise it is returned short.
 *
 * RANDOMNESS. The transform of a sample draws from a generator seeded from
 * (seed, epoch, sample index) only, so a batch's pixels do not depend on
 * the number of workers, on their scheduling or on what came before.
 *
 * POSITION. (epoch, batch) of the next batch to return; a checkpoint
 * stores it and lt_data_loader_seek restores it, so a resumed run sees the
 * same batches. lt_data_loader_next returns 1 with a batch, and 0 once at
 * the end of each epoch, after which the position is (epoch + 1, 0):
 *
 *     lt_data_batch b;
 *     for (int e = 0; e < epochs; e++) {
 *         int rc;
 *         while ((rc = lt_data_loader_next(ld, &b)) > 0) {
 *             size_t m = lt_frame_push();      // b's tensors are in the outer frame
 *             ... train on b.images, b.labels, b.masks ...
 *             lt_frame_pop(m);
 *         }
 *         if (rc < 0) { fprintf(stderr, "%s\n", lt_last_error()); break; }
 *     }
 *
 * THREADS. With workers > 0, that many threads decode and transform whole
 * batches ahead of the caller, up to `prefetch` batches (each worker in its
 * own frame, handing over retained tensors). A failure in a worker (a
 * corrupt file, say) comes back from lt_data_loader_next as -1 with the
 * worker's message, which names the file; the loader then stays failed
 * until a seek. lt_data_loader_free stops and joins the workers. One
 * thread at a time may call a loader's functions.
 */

typedef struct lt_data_loader lt_data_loader;

/* Options; the caller owns the struct (plain data). */
typedef struct lt_data_loader_opts {
    int64_t batch_size;  /* >= 1 */
    bool shuffle;
    bool drop_last;
    bool masks;          /* load masks */
    uint64_t seed;
    int channels;        /* 1..4; 0 means 3 */
    int workers;         /* 0: decode on the calling thread */
    int prefetch;        /* batches ready ahead (workers > 0); 0: 2 * workers */
    lt_data_transform transform;
} lt_data_loader_opts;

/* One batch. The tensors are owned by the caller's current frame at the
 * time of lt_data_loader_next. */
typedef struct lt_data_batch {
    lt_tensor *images;  /* f32 (N,C,H,W) */
    lt_tensor *labels;  /* i64 (N) */
    lt_tensor *masks;   /* u8 (N,1,H,W), or NULL without opts.masks */
    lt_tensor *indices; /* i64 (N) */
    int64_t epoch, batch;
} lt_data_batch;

typedef struct lt_data_position {
    int64_t epoch; /* >= 0 */
    int64_t batch; /* 0 .. batches per epoch (the last: the epoch is done) */
} lt_data_position;

/* A loader over list, at position (0, 0). list is borrowed: it must stay
 * alive and unchanged until lt_data_loader_free. The caller owns the
 * loader. NULL with "loader: ..." on bad options or an empty epoch. */
lt_data_loader *lt_data_loader_new(const lt_data_list *list, const lt_data_loader_opts *opts);
/* Next batch into *out: 1, 0 at the end of an epoch, -1 on error. */
int lt_data_loader_next(lt_data_loader *ld, lt_data_batch *out);
lt_data_position lt_data_loader_tell(const lt_data_loader *ld);
/* Move to pos (drops prefetched batches). 0, or -1 if pos is out of range. */
int lt_data_loader_seek(lt_data_loader *ld, lt_data_position pos);
int64_t lt_data_loader_batches_per_epoch(const lt_data_loader *ld);
/* Stop the workers and free the loader. NULL-safe. */
void lt_data_loader_free(lt_data_loader *ld);

/* ------------------------------------------------------------------ */
/* The bundled benchmark: a Backgrounds Challenge from Fashion-MNIST    */
/* ------------------------------------------------------------------ */
/*
 * lt_data_bgc_generate writes a dataset in the exact ImageNet-9 /
 * Backgrounds Challenge layout (read it with lt_data_in9_list):
 *
 *   <out>/original/{train,val}/<NN_class>/<stem>.png
 *   <out>/{only_fg,no_fg,only_bg_b,only_bg_t}/val/<NN_class>/<stem>.png
 *   <out>/{mixed_same,mixed_rand,mixed_next}/val/<NN_class>/fg_<stem>_bg_<stem2>.png
 *   <out>/fg_mask/{train,val}/<NN_class>/<stem>.npy      u8 0/1, H x W
 *   <out>/meta.json                                      parameters, classes, counts
 *
 * (.JPEG instead of .png with LT_DATA_BGC_JPEG.) Classes are the ten
 * Fashion-MNIST classes, 00_tshirt .. 09_ankle_boot. Train foregrounds come
 * from Fashion-MNIST's train split and val foregrounds from its test split
 * (stems train_<index> and test_<index>, the item's index in its split).
 *
 * An image: the item (28 x 28 gray, a real product photograph) scaled
 * bilinearly to a side drawn from [fg_min, fg_max] * size and pasted at a
 * uniform random position over a procedural background. Its mask is the
 * item's own pixels: everything not connected to the 28 x 28 border
 * through pixels <= 10 (so dark parts inside a garment stay object),
 * scaled with the item and thresholded at 0.5. The background belongs to
 * one of ten texture families (pattern, orientation, frequency, palette);
 * with probability bg_correlation it is the family of the image's class,
 * otherwise a family drawn uniformly from all ten (so the class family
 * shows with probability c + (1 - c) / 10). Each image jitters its
 * family's orientation, frequency, phase and colours.
 *
 * Val variants, as IN-9 defines them: original; only_fg (the item on
 * black); no_fg (the mask region black); only_bg_b (the mask's bounding
 * box black); only_bg_t (the clean background, without the item: the
 * generator knows it, IN-9 had to tile it); mixed_same / mixed_rand /
 * mixed_next (the item, at its own place, over the clean background of
 * another val image of the same class / of any class / of class
 * (y + 1) mod 10, named fg_<stem>_bg_<stem of that image>).
 *
 * Every random choice is drawn from generators seeded by (seed, what,
 * which image), so the same options give byte-identical files whatever
 * the thread count.
 */

typedef enum lt_data_bgc_format { LT_DATA_BGC_PNG = 0, LT_DATA_BGC_JPEG = 1 } lt_data_bgc_format;

/* Called after each image written (from any thread, never two at once):
 * done of total files so far. */
typedef void lt_data_bgc_progress_fn(void *ud, int64_t done, int64_t total);

/* Options; plain data owned by the caller. lt_data_bgc_defaults fills the
 * defaults shown. */
typedef struct lt_data_bgc_opts {
    const char *out;        /* output folder (created; must be empty or absent
                               unless overwrite) */
    const char *source;     /* Fashion-MNIST folder (NULL:
                               /usr/share/datasets/fashion-mnist), holding
                               {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] */
    int size;               /* image side, 64; 16..1024 */
    int train_per_class;    /* 1000; 1..6000 */
    int val_per_class;      /* 100; 1..1000 */
    double bg_correlation;  /* 0.9; 0..1 */
    double fg_min, fg_max;  /* item side / image side, 0.5 and 0.85; 0.2..1 */
    uint64_t seed;          /* 0 */
    lt_data_bgc_format format; /* PNG */
    int jpeg_quality;       /* 95 */
    int threads;            /* 1; 1..256 */
    bool overwrite;         /* write into a non-empty folder */
    lt_data_bgc_progress_fn *progress;
    void *progress_ud;
} lt_data_bgc_opts;

#define LT_DATA_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

void lt_data_bgc_defaults(lt_data_bgc_opts *o);
/* Generate the dataset. 0, or -1 with "bg_challenge: ..." naming the
 * file or the option at fault. */
int lt_data_bgc_generate(const lt_data_bgc_opts *o);
/* A PNG grid of samples from a generated (or real IN-9) tree at root: one
 * row per val variant (original, only_fg, no_fg, only_bg_b, only_bg_t,
 * mixed_same, mixed_rand, mixed_next), one column per class (its first
 * image in that variant), each cell scaled to cell x cell pixels, 2-pixel
 * gaps. 0, or -1 with an error. */
int lt_data_bgc_grid(const char *root, const char *png_path, int cell);

#ifdef __cplusplus
}
#endif
#endif
