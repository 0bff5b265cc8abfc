/*
 * fuzz_image.c: lt_data_image_decode (JPEG, PNG, BMP through stb_image and
 * our pre-checks) on arbitrary bytes.
 *
 * Input layout: byte 0 is a control byte, the rest is the file.
 *   (byte0 & 0x7f) % 5   channels to request, 0..4
 *   byte0 & 0x80         rewrite the CRC of every PNG chunk before decoding,
 *                        so mutations get past the CRC check into the
 *                        decoder (with the bit clear, bad CRCs are tested)
 *
 * Beyond "no crash, no leak" (fuzz_common.h) it checks what data.h says of
 * a decoded image: u8 (C,H,W), C the requested count (or the file's 1..4),
 * 1 <= H,W <= LT_DATA_IMAGE_MAX_DIM. When a conversion was requested it
 * decodes again with channels 0 and checks the conversion rules for PNG
 * (8-bit and below) and BMP: gray to RGB repeats, a missing alpha is 255,
 * RGB to gray is (77 R + 150 G + 29 B) >> 8. (JPEG to gray takes the
 * decoder's luma and 16-bit PNG converts before its reduction to 8 bits,
 * so for those only the shape is compared.)
 *
 * Determinism: every successful decode is repeated after the stack below
 * us has been painted with another byte, and must give the same pixels.
 * ASan does not see reads of uninitialised memory; this makes a decoder
 * that copies uninitialised stack bytes into the image (a BMP palette
 * shorter than its pixel indices, for one) fail every time, not by luck.
 */
#include "fuzz_common.h"

#include <libtensor/data.h>

#include <zlib.h>

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* Recompute the CRC of each complete chunk of a PNG in place. */
static void fix_png_crcs(uint8_t *b, size_t n)
{
    if (n < 8 || memcmp(b, png_sig, 8) != 0)
        return;
    size_t i = 8;
    while (n - i >= 12) {
        uint32_t len = rd32(b + i);
        if (len > n - i - 12)
            return;
        uLong crc = crc32(0L, b + i + 4, (uInt)len + 4);
        uint8_t *c = b + i + 8 + len;
        c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16);
        c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
        i += 12 + (size_t)len;
    }
}

/* Pixel k (0..c-1) of (y, x) in a (C,H,W) u8 tensor. */
static int px(const lt_tensor *t, int k, int64_t p)
{
    const uint8_t *d = lt_data(t);
    return d[(int64_t)k * lt_shape(t)[1] * lt_shape(t)[2] + p];
}

/* Expected channel k of a pixel converted from cf to ct channels, as
 * stb_image's stbi__convert_format does it. */
static int converted(const lt_tensor *src, int cf, int ct, int k, int64_t p)
{
    int gray, alpha = 255;
    if (cf >= 3) {
        gray = (77 * px(src, 0, p) + 150 * px(src, 1, p) + 29 * px(src, 2, p)) >> 8;
        if (cf == 4)
            alpha = px(src, 3, p);
    } else {
        gray = px(src, 0, p);
        if (cf == 2)
            alpha = px(src, 1, p);
    }
    switch (ct) {
    case 1: return gray;
    case 2: return k == 0 ? gray : alpha;
    default:
        if (k == 3)
            return alpha;
        return cf >= 3 ? px(src, k, p) : gray;
    }
}

/* Fill the next 64 KiB of stack with v, so what a decoder later finds in
 * its uninitialised locals is v. */
__attribute__((noinline)) static void paint_stack(uint8_t v)
{
    volatile uint8_t pad[1 << 16];
    memset((uint8_t *)pad, v, sizeof pad);
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_image: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    lt_set_num_threads(1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int channels = (data[0] & 0x7f) % 5;
    size_t n = size - 1;
    /* a copy of exactly n bytes, so ASan flags any read past the file */
    uint8_t *file = malloc(n ? n : 1);
    if (!file)
        return 0;
    memcpy(file, data + 1, n);
    if (data[0] & 0x80)
        fix_png_crcs(file, n);

    /* K2: a small PNG whose IHDR claims a large image makes stb_image
     * allocate its whole zlib output buffer (805 MB for 16384x16384 RGB) */
    if (fz_skip_known() && n >= 24 && memcmp(file, png_sig, 8) == 0 &&
        (uint64_t)rd32(file + 16) * rd32(file + 20) > ((uint64_t)1 << 22)) {
        free(file);
        return 0;
    }
    /* K3: a BMP of 8 bits or fewer per pixel whose palette is shorter than
     * its pixel indices (or whose pixel offset lies inside its header)
     * decodes uninitialised stack bytes of stb_image's palette */
    bool bmp_pal = n >= 30 && file[0] == 'B' && file[1] == 'M' &&
                   (file[14] == 12 ? file[24] : file[28]) <= 8;
    bool skip_pixels = fz_skip_known() && bmp_pal;

    fz_state st = fz_enter();
    paint_stack(0x00);
    lt_tensor *t = lt_data_image_decode(file, n, channels, FZ_NAME);
    if (!t) {
        fz_check_error("image_read", FZ_NAME);
    } else {
        if (lt_dtype_of(t) != LT_U8 || lt_ndim(t) != 3)
            fail("decoded image is not u8 (C,H,W)");
        int64_t c = lt_shape(t)[0], h = lt_shape(t)[1], w = lt_shape(t)[2];
        if ((channels && c != channels) || c < 1 || c > 4)
            fail("decoded image has the wrong channel count");
        if (h < 1 || w < 1 || h > LT_DATA_IMAGE_MAX_DIM || w > LT_DATA_IMAGE_MAX_DIM)
            fail("decoded image size outside 1..LT_DATA_IMAGE_MAX_DIM");
        fz_touch(t);
        paint_stack(0xA5);
        lt_tensor *again = lt_data_image_decode(file, n, channels, FZ_NAME);
        if (!again || lt_numel(again) != lt_numel(t) ||
            (!skip_pixels && memcmp(lt_data(again), lt_data(t), (size_t)lt_numel(t)) != 0))
            fail("decoding the same file twice gives different pixels (uninitialised memory?)");
        if (channels) {
            lt_tensor *own = lt_data_image_decode(file, n, 0, FZ_NAME);
            if (!own)
                fail("decodes with a channel count but not with channels 0");
            int cf = (int)lt_shape(own)[0];
            if (lt_ndim(own) != 3 || lt_shape(own)[1] != h || lt_shape(own)[2] != w || cf < 1 ||
                cf > 4)
                fail("channels 0 gives another size");
            bool png = n >= 8 && memcmp(file, png_sig, 8) == 0;
            bool bmp = n >= 2 && file[0] == 'B' && file[1] == 'M';
            bool exact = (bmp && !skip_pixels) || (png && n > 24 && file[24] <= 8);
            for (int64_t p = 0; exact && p < h * w; p++)
                for (int k = 0; k < c; k++)
                    if (px(t, k, p) != converted(own, cf, (int)c, k, p)) {
                        fprintf(stderr,
                                "fuzz_image: %d -> %d channels: pixel %lld channel %d is %d, "
                                "want %d\n",
                                cf, (int)c, (long long)p, k, px(t, k, p),
                                converted(own, cf, (int)c, k, p));
                        abort();
                    }
        }
    }
    fz_leave(st, "image");
    free(file);
    return 0;
}
