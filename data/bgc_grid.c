/*
 * bgc_grid.c: a PNG grid of sample images per Backgrounds Challenge
 * variant (lt_data_bgc_grid in data.h), with the variant names written on
 * the left and the class folder names above, in a 5x7 bitmap font drawn
 * here (no font library).
 */
#include "data_internal.h"

#include <string.h>

#define OP "bgc_grid"
#define GAP 2
#define SCALE 1 /* font pixel size */

/* 5x7 glyphs, one string of 35 cells ('#' ink) per character. */
static const struct glyph {
    char c;
    const char *rows;
} font[] = {
    {'a', ".....""....."".###.""....#"".####""#...#"".####"},
    {'b', "#....""#....""####.""#...#""#...#""#...#""####."},
    {'c', "....."".....""..###"".#...""#....""#...."".####"},
    {'d', "....#""....#"".####""#...#""#...#""#...#"".####"},
    {'e', "....."".....""###..""#...#""#####""#....""####."},
    {'f', "..##."".#..#"".#...""###..""#....""#....""#...."},
    {'g', ".....""....."".####""#...#"".####""....#"".###."},
    {'h', "#....""#....""####.""#...#""#...#""#...#""#...#"},
    {'i', "..#..""....."".##..""..#..""..#..""..#.."".###."},
    {'j', "...#.""....."".###.""...#.""...#.""#..#."".##.."},
    {'k', "#....""#....""#..#.""#.#..""##...""#.#..""#..#."},
    {'l', ".##..""..#..""..#..""..#..""..#..""..#.."".###."},
    {'m', "....."".....""##.#.""#.#.#""#.#.#""#.#.#""#.#.#"},
    {'n', "....."".....""####.""#...#""#...#""#...#""#...#"},
    {'o', ".....""....."".###.""#...#""#...#""#...#"".###."},
    {'p', "....."".....""####.""#...#""####.""#....""#...."},
    {'q', ".....""....."".####""#...#"".####""....#""....#"},
    {'r', "....."".....""#.##.""##..#""#....""#....""#...."},
    {'s', ".....""....."".####""#...."".###.""....#""####."},
    {'t', ".#...""###.."".#..."".#..."".#..."".#..#""..##."},
    {'u', "....."".....""#...#""#...#""#...#""#..##"".##.#"},
    {'v', "....."".....""#...#""#...#""#...#"".#.#.""..#.."},
    {'w', "....."".....""#...#""#...#""#.#.#""#.#.#"".#.#."},
    {'x', "....."".....""#...#"".#.#.""..#.."".#.#.""#...#"},
    {'y', "....."".....""#...#""#...#"".####""....#"".###."},
    {'z', "....."".....""#####""...#.""..#.."".#...""#####"},
    {'0', ".###.""#...#""#..##""#.#.#""##..#""#...#"".###."},
    {'1', "..#.."".##..""..#..""..#..""..#..""..#.."".###."},
    {'2', ".###.""#...#""....#""...#.""..#.."".#...""#####"},
    {'3', "#####""...#.""..#.."".###.""....#""#...#"".###."},
    {'4', "...#."".##..""#..#.""#..#.""#####""...#.""...#."},
    {'5', "#####""#....""####.""....#""....#""#...#"".###."},
    {'6', "..##."".#...""#....""####.""#...#""#...#"".###."},
    {'7', "#####""....#""...#.""..#.."".#..."".#..."".#..."},
    {'8', ".###.""#...#""#...#"".###.""#...#""#...#"".###."},
    {'9', ".###.""#...#""#...#"".####""....#""...#."".##.."},
    {'_', "....."".....""....."".....""....."".....""#####"},
    {'-', "....."".....""....."".###.""....."".....""....."},
};

static const char *glyph_of(char c)
{
    if (c >= 'A' && c <= 'Z')
        c = (char)(c - 'A' + 'a');
    for (size_t i = 0; i < sizeof font / sizeof font[0]; i++)
        if (font[i].c == c)
            return font[i].rows;
    return NULL; /* blank */
}

/* Draw text at (x, y) in a planar RGB canvas (cw x ch), dark gray ink;
 * clipped to the canvas. Each character is 6 pixels wide. */
static void draw_text(uint8_t *rgb, int64_t cw, int64_t chh, int64_t x, int64_t y, const char *s)
{
    size_t plane = (size_t)(cw * chh);
    for (; *s; s++, x += 6 * SCALE) {
        const char *g = glyph_of(*s);
        if (!g)
            continue;
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < 5; c++) {
                if (g[r * 5 + c] != '#')
                    continue;
                for (int dy = 0; dy < SCALE; dy++)
                    for (int dx = 0; dx < SCALE; dx++) {
                        int64_t px = x + c * SCALE + dx, py = y + r * SCALE + dy;
                        if (px < 0 || py < 0 || px >= cw || py >= chh)
                            continue;
                        for (int k = 0; k < 3; k++)
                            rgb[k * plane + (size_t)(py * cw + px)] = 40;
                    }
            }
    }
}

int lt_data_bgc_grid(const char *root, const char *png_path, int cell)
{
    static const char *const rows[] = {"original",   "only_fg",    "no_fg",
                                       "only_bg_b",  "only_bg_t",  "mixed_same",
                                       "mixed_rand", "mixed_next"};
    enum { NROWS = 8 };
    if (!root || !png_path) {
        lt_set_error(OP ": NULL root or output path");
        return -1;
    }
    if (cell < 8 || cell > 512) {
        lt_set_error(OP ": cell size %d outside 8..512", cell);
        return -1;
    }
    size_t mark = lt_frame_push();
    int rc = -1;
    lt_data_list *lists[NROWS] = {0};
    for (int r = 0; r < NROWS; r++)
        if (!(lists[r] = lt_data_in9_list(root, rows[r], "val", LT_DATA_MASKS_NONE)))
            goto done;
    int ncols = lists[0]->nclasses;
    int64_t label_w = 11 * 6 + 4, label_h = 7 + 4;
    int64_t cw = label_w + ncols * (cell + GAP) + GAP;
    int64_t chh = label_h + NROWS * (cell + GAP) + GAP;
    lt_tensor *canvas = lt_full(3, (int64_t[]){3, chh, cw}, 255, LT_U8);
    if (!canvas)
        goto done;
    uint8_t *px = lt_data(canvas);
    size_t plane = (size_t)(cw * chh);
    for (int c = 0; c < ncols; c++) {
        /* the class folder name without its NN_ prefix, cut to the cell */
        const char *name = lists[0]->classes[c];
        const char *us = strchr(name, '_');
        char cut[32];
        snprintf(cut, sizeof cut, "%.*s", (cell + 1) / 6 < 31 ? (cell + 1) / 6 : 31,
                 us && us[1] ? us + 1 : name);
        draw_text(px, cw, chh, label_w + GAP + c * (cell + GAP), 2, cut);
    }
    for (int r = 0; r < NROWS; r++) {
        draw_text(px, cw, chh, 2, label_h + GAP + r * (cell + GAP) + (cell - 7) / 2, rows[r]);
        if (lists[r]->nclasses != ncols) {
            lt_set_error(OP ": %s/%s/val has %d classes, original has %d", root, rows[r],
                         lists[r]->nclasses, ncols);
            goto done;
        }
        for (int c = 0; c < ncols; c++) {
            const lt_data_sample *s = NULL;
            for (size_t i = 0; i < lists[r]->n && !s; i++)
                if (lists[r]->samples[i].label == c)
                    s = &lists[r]->samples[i];
            size_t m2 = lt_frame_push();
            lt_tensor *img = s ? lt_data_image_read(s->path, 3) : NULL;
            if (!img || lt_data_resize(&img, NULL, cell, cell) < 0) {
                lt_frame_pop(m2);
                goto done;
            }
            const uint8_t *ip = lt_data(img);
            int64_t x0 = label_w + GAP + c * (cell + GAP), y0 = label_h + GAP + r * (cell + GAP);
            for (int k = 0; k < 3; k++)
                for (int y = 0; y < cell; y++)
                    memcpy(px + k * plane + (size_t)((y0 + y) * cw + x0),
                           ip + ((size_t)k * (size_t)cell + (size_t)y) * (size_t)cell,
                           (size_t)cell);
            lt_frame_pop(m2);
        }
    }
    rc = lt_data_png_write(png_path, canvas);
done:
    for (int r = 0; r < NROWS; r++)
        lt_data_list_free(lists[r]);
    lt_frame_pop(mark);
    return rc;
}
