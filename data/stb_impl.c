/*
 * stb_impl.c: the one translation unit that compiles stb_image and
 * stb_image_write (Debian libstb-dev headers, public domain / MIT).
 *
 * Why here and static: with STB_IMAGE_STATIC the decoder's symbols stay
 * private to this file, so a program that links libtensor and its own copy
 * of stb (or -lstb) sees no duplicate symbols, and libtensor needs no -lstb.
 * Third-party code does not follow our warning flags, so the warnings that
 * stb trips (unused static functions, GCC's maybe-uninitialized false
 * positives after inlining) are silenced for this file only; the callers in
 * image.c see two small wrappers.
 *
 * stb_image_write's JPEG bit writer shifts signed ints past the sign bit
 * (stbiw__jpg_writeBits: bitBuf |= bs[0] << (24 - bitCnt); bitBuf <<= 8),
 * which UBSan flags in the sanitizer build. GCC defines that shift under
 * -fwrapv, so this file alone is compiled with it (optimize pragma below);
 * the bytes written are the same.
 *
 * stb allocates through lt_data__malloc, i.e. the allocator hook, and keeps
 * its failure reason in a thread-local, so decoding is thread safe.
 */
#include "data_internal.h"

#pragma GCC optimize("wrapv")
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wshadow"

#define STBI_MALLOC(sz) lt_data__malloc(sz)
#define STBI_REALLOC(p, newsz) lt_data__realloc(p, newsz)
#define STBI_FREE(p) lt_data__mfree(p)
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_FAILURE_USERMSG
#define STBI_MAX_DIMENSIONS LT_DATA_IMAGE_MAX_DIM
#include <stb_image.h>

#define STBIW_MALLOC(sz) lt_data__malloc(sz)
#define STBIW_REALLOC(p, newsz) lt_data__realloc(p, newsz)
#define STBIW_FREE(p) lt_data__mfree(p)
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>

uint8_t *lt_data__stbi_decode(const uint8_t *buf, int len, int req, int *w, int *h,
                              int *comp_in_file, const char **why)
{
    *w = *h = *comp_in_file = 0;
    uint8_t *px = stbi_load_from_memory(buf, len, w, h, comp_in_file, req);
    if (!px)
        *why = stbi_failure_reason();
    return px;
}

int lt_data__stbi_write_jpg(lt_data__write_fn *write, void *ctx, int w, int h, int comp,
                            const uint8_t *pixels, int quality)
{
    return stbi_write_jpg_to_func(write, ctx, w, h, comp, pixels, quality);
}
