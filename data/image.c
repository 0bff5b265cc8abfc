/*
 * image.c: JPEG / PNG / BMP decoding (stb_image), PNG writing (libpng) and
 * JPEG writing (stb_image_write), between files and u8 (C,H,W) tensors.
 *
 * stb_image is forgiving: it decodes a truncated JPEG into an image whose
 * missing blocks are grey, and it ignores PNG CRCs. A dataset reader must
 * not train on such files silently, so before decoding we walk the file's
 * structure ourselves (JPEG markers up to EOI, PNG chunks with their CRCs
 * up to IEND, BMP pixel-array bounds) and refuse anything incomplete.
 */
#include "data_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#define OP_READ "image_read"

/* ------------------------------------------------------------------ */
/* Structure checks                                                    */
/* ------------------------------------------------------------------ */

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

/* PNG: signature, then chunks (u32 length, 4-byte type, data, u32 CRC of
 * type+data) until IEND (PNG spec, section 5). */
static int check_png(const uint8_t *b, size_t len, const char *nm)
{
    size_t i = 8;
    bool first = true;
    uint64_t idat = 0, w = 0, h = 0, depth = 8, chans = 1;
    for (;;) {
        if (len - i < 12) {
            lt_set_error(OP_READ ": %s: truncated PNG: file ends at byte %zu before the IEND "
                         "chunk", nm, len);
            return -1;
        }
        uint64_t n = lt_data__load_uint(b + i, 4, 1);
        const uint8_t *type = b + i + 4;
        if (n > 0x7fffffffu) {
            lt_set_error(OP_READ ": %s: corrupt PNG: chunk length %llu at byte %zu", nm,
                         (unsigned long long)n, i);
            return -1;
        }
        if (n > len - i - 12) {
            lt_set_error(OP_READ ": %s: truncated PNG: chunk '%.4s' at byte %zu needs %llu "
                         "bytes, the file has %zu left", nm, (const char *)type, i,
                         (unsigned long long)n + 12, len - i);
            return -1;
        }
        if (first && memcmp(type, "IHDR", 4) != 0) {
            lt_set_error(OP_READ ": %s: corrupt PNG: first chunk is not IHDR", nm);
            return -1;
        }
        first = false;
        uLong crc = crc32(0L, type, (uInt)(n + 4));
        if (crc != lt_data__load_uint(b + i + 8 + n, 4, 1)) {
            lt_set_error(OP_READ ": %s: corrupt PNG: bad CRC in chunk '%.4s' at byte %zu", nm,
                         (const char *)type, i);
            return -1;
        }
        if (memcmp(type, "IHDR", 4) == 0 && n >= 13) {
            static const uint64_t ch[7] = {1, 0, 3, 1, 2, 0, 4}; /* by colour type */
            w = lt_data__load_uint(b + i + 8, 4, 1);
            h = lt_data__load_uint(b + i + 12, 4, 1);
            depth = b[i + 16];
            chans = b[i + 17] < 7 && ch[b[i + 17]] ? ch[b[i + 17]] : 1;
        } else if (memcmp(type, "IDAT", 4) == 0) {
            idat += n;
        }
        i += 12 + (size_t)n;
        if (memcmp(type, "IEND", 4) == 0) {
            /* Deflate expands at most ~1032:1, so image data shorter than
             * raw/1032 cannot hold the image it claims: refuse it before
             * stb_image allocates the full output (a decompression bomb). */
            uint64_t raw = h * (1 + (w * chans * depth + 7) / 8);
            if (w && h && idat * 1032 < raw) {
                lt_set_error(OP_READ ": %s: corrupt PNG: %llu bytes of image data cannot hold %llux%llu "
                             "pixels", nm, (unsigned long long)idat, (unsigned long long)w,
                             (unsigned long long)h);
                return -1;
            }
            return 0;
        }
    }
}

/* A DHT segment body: tables of (class/id byte, 16 code counts, symbols).
 * stb_image 2.27 (Debian's) writes past its 256-entry tables when the
 * counts add up to more than 256 (fixed upstream in 2.28), so we refuse
 * such tables here. ITU T.81 B.2.4.2. */
static int check_dht(const uint8_t *p, size_t n, const char *nm)
{
    size_t i = 0;
    while (i < n) {
        if (n - i < 17 || (p[i] >> 4) > 1 || (p[i] & 15) > 3) {
            lt_set_error(OP_READ ": %s: corrupt JPEG: bad DHT segment", nm);
            return -1;
        }
        size_t count = 0;
        for (int k = 1; k <= 16; k++)
            count += p[i + (size_t)k];
        if (count > 256 || count > n - i - 17) {
            lt_set_error(OP_READ ": %s: corrupt JPEG: bad DHT table (%zu codes)", nm, count);
            return -1;
        }
        i += 17 + count;
    }
    return 0;
}

/* JPEG: SOI, then marker segments (ITU T.81 B.1). After each SOS the
 * entropy-coded data runs to the next marker that is not a stuffed 0xFF00
 * or a restart marker. A complete file reaches EOI; bytes after it are
 * allowed (some cameras append data).
 *
 * Scan data too short for the frame size is refused as truncated: with
 * Huffman coding every 8x8 block of the full-resolution component costs at
 * least one bit (its DC code, in a sequential or a progressive DC scan).
 * stb_image decodes missing data as zeros, so without this check a few
 * hundred bytes that claim 16384x16384 pixels cost seconds and a gigabyte. */
static int check_jpeg(const uint8_t *b, size_t len, const char *nm)
{
    size_t i = 2;
    uint64_t w = 0, h = 0, scan_bytes = 0;
    for (;;) {
        /* find a marker, tolerating junk bytes and 0xFF fill before it */
        while (i < len && b[i] != 0xFF)
            i++;
        while (i < len && b[i] == 0xFF)
            i++;
        if (i >= len)
            break;
        uint8_t m = b[i++];
        if (m == 0xD9) {
            uint64_t blocks = ((w + 7) / 8) * ((h + 7) / 8);
            if (scan_bytes * 8 < blocks) {
                lt_set_error(OP_READ ": %s: truncated JPEG: %llu bytes of scan data cannot code "
                             "%llux%llu pixels", nm, (unsigned long long)scan_bytes,
                             (unsigned long long)w, (unsigned long long)h);
                return -1;
            }
            return 0;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8))
            continue; /* standalone markers */
        if (len - i < 2)
            break;
        size_t seg = (size_t)lt_data__load_uint(b + i, 2, 1);
        if (seg < 2) {
            lt_set_error(OP_READ ": %s: corrupt JPEG: segment length %zu at byte %zu", nm, seg,
                         i);
            return -1;
        }
        if (seg > len - i)
            break;
        if (m == 0xC4 && check_dht(b + i + 2, seg - 2, nm) < 0)
            return -1;
        /* SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) */
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC && seg >= 7) {
            h = lt_data__load_uint(b + i + 3, 2, 1);
            w = lt_data__load_uint(b + i + 5, 2, 1);
        }
        i += seg;
        if (m != 0xDA)
            continue;
        /* entropy-coded data after SOS */
        size_t start = i;
        while (i < len) {
            if (b[i] != 0xFF) {
                i++;
                continue;
            }
            if (i + 1 >= len) {
                i = len;
                break;
            }
            uint8_t n = b[i + 1];
            if (n == 0x00 || (n >= 0xD0 && n <= 0xD7) || n == 0xFF) {
                i += n == 0xFF ? 1 : 2;
                continue;
            }
            break; /* a real marker: back to the segment loop */
        }
        scan_bytes += i - start;
    }
    lt_set_error(OP_READ ": %s: truncated JPEG: no EOI marker before the end of the file (%zu "
                 "bytes)", nm, len);
    return -1;
}

/* BMP: the uncompressed pixel array must fit in the file (stb_image would
 * read zeros past the end). */
static int check_bmp(const uint8_t *b, size_t len, const char *nm)
{
    if (len < 26) {
        lt_set_error(OP_READ ": %s: truncated BMP header (%zu bytes)", nm, len);
        return -1;
    }
    uint64_t off = lt_data__load_uint(b + 10, 4, 0);
    uint64_t dib = lt_data__load_uint(b + 14, 4, 0);
    int64_t w, h;
    uint64_t bpp, comp = 0;
    if (dib == 12) {
        w = (int64_t)lt_data__load_uint(b + 18, 2, 0);
        h = (int64_t)lt_data__load_uint(b + 20, 2, 0);
        bpp = lt_data__load_uint(b + 24, 2, 0);
    } else {
        if (len < 34) {
            lt_set_error(OP_READ ": %s: truncated BMP header (%zu bytes)", nm, len);
            return -1;
        }
        w = (int32_t)(uint32_t)lt_data__load_uint(b + 18, 4, 0);
        h = (int32_t)(uint32_t)lt_data__load_uint(b + 22, 4, 0);
        bpp = lt_data__load_uint(b + 28, 2, 0);
        comp = lt_data__load_uint(b + 30, 4, 0);
    }
    if (h < 0)
        h = -h;
    if (w <= 0 || h <= 0 || w > LT_DATA_IMAGE_MAX_DIM || h > LT_DATA_IMAGE_MAX_DIM) {
        lt_set_error(OP_READ ": %s: corrupt BMP: size %lldx%lld", nm, (long long)w, (long long)h);
        return -1;
    }
    if (comp == 1 || comp == 2) {
        lt_set_error(OP_READ ": %s: unsupported BMP: RLE compression", nm);
        return -1;
    }
    /* stb_image reads any other compression code as uncompressed */
    if (comp != 0 && comp != 3 && comp != 6) {
        lt_set_error(OP_READ ": %s: corrupt BMP: compression %llu", nm, (unsigned long long)comp);
        return -1;
    }
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) {
        lt_set_error(OP_READ ": %s: corrupt BMP: %llu bits per pixel", nm, (unsigned long long)bpp);
        return -1;
    }
    uint64_t stride = ((uint64_t)w * bpp + 31) / 32 * 4;
    if (bpp <= 8) {
        /* Paletted: the palette (after the 14-byte file header and the DIB
         * header) must lie wholly before the pixels, and every pixel index
         * must name a palette entry; stb_image reads uninitialised stack
         * memory otherwise (seen with valgrind on fuzzed files). */
        uint64_t entry = dib == 12 ? 3 : 4;
        uint64_t used = dib >= 40 && len >= 50 ? lt_data__load_uint(b + 46, 4, 0) : 0;
        uint64_t entries = used ? used : (1ull << bpp);
        if (entries > (1ull << bpp))
            entries = 1ull << bpp;
        if (off < 14 + dib || (off - 14 - dib) / entry < entries || off > len) {
            lt_set_error(OP_READ ": %s: corrupt BMP: the %llu-entry palette does not fit before the pixels "
                         "at byte %llu", nm, (unsigned long long)entries, (unsigned long long)off);
            return -1;
        }
        if (stride * (uint64_t)h <= len - off)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++) {
                    uint64_t bit = (uint64_t)x * bpp;
                    uint8_t byte = b[off + (uint64_t)y * stride + bit / 8];
                    uint64_t idx = (byte >> (8 - bpp - bit % 8)) & ((1u << bpp) - 1);
                    if (idx >= entries) {
                        lt_set_error(OP_READ ": %s: corrupt BMP: pixel (%lld,%lld) uses palette entry %llu "
                                     "of %llu", nm, (long long)x, (long long)y, (unsigned long long)idx,
                                     (unsigned long long)entries);
                        return -1;
                    }
                }
    }
    if (off > len || stride * (uint64_t)h > len - off) {
        lt_set_error(OP_READ ": %s: truncated BMP: %lldx%lld at %llu bits needs %llu bytes of "
                     "pixels from byte %llu, the file has %zu", nm, (long long)w, (long long)h,
                     (unsigned long long)bpp, (unsigned long long)(stride * (uint64_t)h),
                     (unsigned long long)off, len);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Decode                                                              */
/* ------------------------------------------------------------------ */

lt_tensor *lt_data_image_decode(const void *buf, size_t len, int channels, const char *name)
{
    const uint8_t *b = buf;
    const char *nm = lt_data__name(name);
    if (channels < 0 || channels > 4) {
        lt_set_error(OP_READ ": %s: channels %d (want 0 for the file's own, or 1..4)", nm,
                     channels);
        return NULL;
    }
    if (!b && len) {
        lt_set_error(OP_READ ": %s: NULL buffer", nm);
        return NULL;
    }
    if (len > INT_MAX) {
        lt_set_error(OP_READ ": %s: file too large (%zu bytes)", nm, len);
        return NULL;
    }
    const char *fmt;
    int rc;
    if (len >= 8 && memcmp(b, png_sig, 8) == 0) {
        fmt = "PNG";
        rc = check_png(b, len, nm);
    } else if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
        fmt = "JPEG";
        rc = check_jpeg(b, len, nm);
    } else if (len >= 2 && b[0] == 'B' && b[1] == 'M') {
        fmt = "BMP";
        rc = check_bmp(b, len, nm);
    } else {
        lt_set_error(OP_READ ": %s: not a JPEG, PNG or BMP image (%zu bytes)", nm, len);
        return NULL;
    }
    if (rc < 0)
        return NULL;

    int w, h, comp;
    const char *why = "unknown error";
    uint8_t *px = lt_data__stbi_decode(b, (int)len, channels, &w, &h, &comp, &why);
    if (!px) {
        lt_set_error(OP_READ ": %s: corrupt %s: %s", nm, fmt, why);
        return NULL;
    }
    int c = channels ? channels : comp;
    lt_tensor *t = lt_empty(3, (int64_t[]){c, h, w}, LT_U8);
    if (!t) {
        lt_data__mfree(px);
        lt_set_error(OP_READ ": %s: out of memory for a %dx%dx%d image", nm, c, h, w);
        return NULL;
    }
    /* interleaved (H,W,C) -> planar (C,H,W) */
    uint8_t *d = lt_data(t);
    size_t plane = (size_t)w * (size_t)h;
    if (c == 1) {
        memcpy(d, px, plane);
    } else {
        for (size_t p = 0; p < plane; p++)
            for (int k = 0; k < c; k++)
                d[(size_t)k * plane + p] = px[p * (size_t)c + (size_t)k];
    }
    lt_data__mfree(px);
    return t;
}

lt_tensor *lt_data_image_read(const char *path, int channels)
{
    lt_data__buf b;
    if (lt_data__read_file(OP_READ, path, &b) < 0)
        return NULL;
    lt_tensor *t = lt_data_image_decode(b.buf, b.len, channels, path);
    lt_data__buf_free(&b);
    return t;
}

/* ------------------------------------------------------------------ */
/* Tensor -> interleaved 8-bit pixels (for the writers)                */
/* ------------------------------------------------------------------ */

typedef struct pixels {
    uint8_t *px; /* H*W*C interleaved, from lt_alloc */
    size_t size;
    int w, h, c;
} pixels;

/* Accept (C,H,W) or (H,W); u8 as is, f32/f64 in [0,1] scaled by 255. */
static int to_pixels(const char *op, const char *path, const lt_tensor *img, unsigned ch_ok,
                     pixels *out)
{
    memset(out, 0, sizeof *out);
    int nd = lt_ndim(img);
    lt_dtype dt = lt_dtype_of(img);
    char sh[128];
    lt_shape_str(img, sh, sizeof sh);
    if (nd != 2 && nd != 3) {
        lt_set_error("%s: %s: image shape %s: want (C,H,W) or (H,W)", op, path, sh);
        return -1;
    }
    int64_t c = nd == 3 ? lt_shape(img)[0] : 1;
    int64_t h = lt_shape(img)[nd - 2], w = lt_shape(img)[nd - 1];
    if (c < 1 || c > 4 || !(ch_ok & (1u << c))) {
        lt_set_error("%s: %s: image shape %s: %lld channels not supported by this format", op,
                     path, sh, (long long)c);
        return -1;
    }
    if (h < 1 || w < 1 || h > LT_DATA_IMAGE_MAX_DIM || w > LT_DATA_IMAGE_MAX_DIM) {
        lt_set_error("%s: %s: image shape %s: height and width must be 1..%d", op, path, sh,
                     LT_DATA_IMAGE_MAX_DIM);
        return -1;
    }
    if (dt != LT_U8 && dt != LT_F32 && dt != LT_F64) {
        lt_set_error("%s: %s: image dtype %s: want u8, or f32/f64 in [0,1]", op, path,
                     lt_dtype_name(dt));
        return -1;
    }
    size_t mark = lt_frame_push();
    lt_tensor *ct = lt_contiguous(img);
    size_t plane = (size_t)h * (size_t)w, n = plane * (size_t)c;
    out->px = ct ? lt_alloc(n) : NULL;
    if (!out->px) {
        lt_frame_pop(mark);
        lt_set_error("%s: %s: out of memory", op, path);
        return -1;
    }
    out->size = n;
    out->w = (int)w;
    out->h = (int)h;
    out->c = (int)c;
    const void *src = lt_data(ct);
    for (size_t k = 0; k < (size_t)c; k++) {
        for (size_t p = 0; p < plane; p++) {
            size_t s = k * plane + p;
            uint8_t v;
            if (dt == LT_U8) {
                v = ((const uint8_t *)src)[s];
            } else {
                double x = dt == LT_F32 ? ((const float *)src)[s] : ((const double *)src)[s];
                x = nearbyint(x * 255.0);
                v = (uint8_t)(x >= 255.0 ? 255 : x > 0.0 ? x : 0); /* NaN -> 0 */
            }
            out->px[p * (size_t)c + k] = v;
        }
    }
    lt_frame_pop(mark);
    return 0;
}

/* ------------------------------------------------------------------ */
/* PNG with libpng                                                     */
/* ------------------------------------------------------------------ */

typedef struct png_errbuf {
    char msg[200];
} png_errbuf;

/* libpng's default handlers print to stderr; ours record and jump. */
static void png_on_error(png_structp png, png_const_charp msg)
{
    png_errbuf *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static png_voidp png_on_malloc(png_structp png, png_alloc_size_t n)
{
    (void)png;
    return lt_data__malloc(n);
}

static void png_on_free(png_structp png, png_voidp p)
{
    (void)png;
    lt_data__mfree(p);
}

static int png_encode(FILE *f, const pixels *p, png_errbuf *e)
{
    static const int color[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                 PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    png_structp png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, e, png_on_error,
                                                png_on_warning, NULL, png_on_malloc, png_on_free);
    if (!png) {
        snprintf(e->msg, sizeof e->msg, "cannot create the libpng writer");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(e->msg, sizeof e->msg, "cannot create the libpng info struct");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)p->w, (png_uint_32)p->h, 8, color[p->c],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t row = (size_t)p->w * (size_t)p->c;
    for (int y = 0; y < p->h; y++)
        png_write_row(png, p->px + (size_t)y * row);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

/* Open path, run encode, close; on any failure remove the file. */
static int write_file(const char *op, const char *path, const pixels *p,
                      int (*encode)(FILE *, const pixels *, void *, char *, size_t), void *arg)
{
    bool regular;
    FILE *f = lt_data__create(op, path, &regular);
    if (!f)
        return -1;
    char msg[256] = "";
    int rc = encode(f, p, arg, msg, sizeof msg);
    int e = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        snprintf(msg, sizeof msg, "write failed: %s", strerror(errno));
    }
    if (rc != 0) {
        if (!msg[0])
            snprintf(msg, sizeof msg, "write failed: %s", strerror(e));
        lt_set_error("%s: %s: %s", op, path, msg);
        lt_data__discard(path, regular);
        return -1;
    }
    return 0;
}

static int png_encode_file(FILE *f, const pixels *p, void *arg, char *msg, size_t n)
{
    (void)arg;
    png_errbuf e = {""};
    int rc = png_encode(f, p, &e);
    if (rc < 0)
        snprintf(msg, n, "libpng: %s", e.msg);
    return rc;
}

int lt_data_png_write(const char *path, const lt_tensor *img)
{
    if (!img)
        return -1;
    if (!path) {
        lt_set_error("png_write: NULL path");
        return -1;
    }
    pixels p;
    if (to_pixels("png_write", path, img, 0x1e, &p) < 0)
        return -1;
    int rc = write_file("png_write", path, &p, png_encode_file, NULL);
    lt_free(p.px, p.size);
    return rc;
}

/* ------------------------------------------------------------------ */
/* JPEG with stb_image_write                                           */
/* ------------------------------------------------------------------ */

typedef struct jpeg_sink {
    FILE *f;
    bool failed;
} jpeg_sink;

static void jpeg_put(void *ctx, void *data, int n)
{
    jpeg_sink *s = ctx;
    if (!s->failed && fwrite(data, 1, (size_t)n, s->f) != (size_t)n)
        s->failed = true;
}

static int jpeg_encode_file(FILE *f, const pixels *p, void *arg, char *msg, size_t n)
{
    int quality = *(const int *)arg;
    jpeg_sink s = {f, false};
    if (!lt_data__stbi_write_jpg(jpeg_put, &s, p->w, p->h, p->c, p->px, quality)) {
        snprintf(msg, n, "stb_image_write failed");
        return -1;
    }
    return s.failed ? -1 : 0;
}

int lt_data_jpeg_write(const char *path, const lt_tensor *img, int quality)
{
    if (!img)
        return -1;
    if (!path) {
        lt_set_error("jpeg_write: NULL path");
        return -1;
    }
    if (quality < 1 || quality > 100) {
        lt_set_error("jpeg_write: %s: quality %d outside 1..100", path, quality);
        return -1;
    }
    pixels p;
    if (to_pixels("jpeg_write", path, img, 0x0a, &p) < 0)
        return -1;
    int rc = write_file("jpeg_write", path, &p, jpeg_encode_file, &quality);
    lt_free(p.px, p.size);
    return rc;
}
