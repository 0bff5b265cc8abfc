/*
 * svg.h: the figures the tools write, shared by tools/attribute and
 * tools/report.
 *
 * SVG CHARTS are written by hand (no library): a white canvas, a title, a
 * plot area with axes, "nice" ticks (1, 2, 2.5 or 5 times a power of ten),
 * light grid lines, axis labels and, for several series, a legend. Two
 * kinds:
 *
 *   fig_boxplot    one box per group: the median, the quartiles (linear
 *                  interpolation between order statistics, NumPy's
 *                  default), whiskers to the furthest value within 1.5 IQR
 *                  of the box (Tukey), and every value as a jittered dot
 *                  (a strip plot over the box) or, without dots, the
 *                  outliers as open circles. NaN values are skipped.
 *   fig_linechart  one polyline with markers per series over a numeric x
 *                  axis whose ticks are the x values given.
 *
 * Each element carries a class and the series' names appear as text, so a
 * test can find them; the files are plain SVG 1.1 that any browser opens.
 *
 * THE COLOUR MAP for heat maps (fig_colormap) is "turbo"-like (dark blue,
 * cyan, green, yellow, red), linear between eight anchors; fig_diverging is
 * blue-white-red for signed maps.
 *
 * Everything here is static inline, so a tool that uses part of it compiles
 * without unused-function warnings. Functions that write return 0, or -1
 * with errno set by the failing stdio call; they never print.
 */
#ifndef TOOLS_SVG_H
#define TOOLS_SVG_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tableau's ten colours (matplotlib's default cycle). */
static inline const char *fig_color(int i)
{
    static const char *c[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                              "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    return c[((i % 10) + 10) % 10];
}

/* Write s with XML's five special characters escaped. */
static inline void fig_xml(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Ticks covering [lo, hi]: a step of 1, 2, 2.5 or 5 times a power of ten
 * giving at most max_ticks intervals; *lo and *hi are widened to multiples
 * of the step. Returns the step. */
static inline double fig_nice_ticks(double *lo, double *hi, int max_ticks)
{
    if (!(*hi > *lo)) {
        double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
        *lo -= d;
        *hi += d;
    }
    double raw = (*hi - *lo) / (max_ticks > 0 ? max_ticks : 5);
    double p = pow(10, floor(log10(raw)));
    static const double m[] = {1, 2, 2.5, 5, 10};
    double step = 10 * p;
    for (int i = 0; i < 5; i++)
        if (m[i] * p >= raw * (1 - 1e-9)) {
            step = m[i] * p;
            break;
        }
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
    return step;
}

/* A tick label: no trailing zeros, at most 3 decimals, "0" not "-0". */
static inline void fig_fmt(char *buf, size_t n, double v)
{
    if (fabs(v) < 1e-9)
        v = 0;
    snprintf(buf, n, "%.3f", v);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *e = buf + strlen(buf) - 1;
        while (e > dot && *e == '0')
            *e-- = '\0';
        if (e == dot)
            *e = '\0';
    }
}

/* The open canvas and its plot area (pixels; y grows downwards). */
typedef struct fig_plot {
    FILE *f;
    double W, H;
    double left, top, right, bottom; /* plot area */
    double ymin, ymax;
    double xmin, xmax;
} fig_plot;

static inline double fig_py(const fig_plot *p, double y)
{
    return p->bottom - (y - p->ymin) / (p->ymax - p->ymin) * (p->bottom - p->top);
}

static inline double fig_px(const fig_plot *p, double x)
{
    return p->left + (x - p->xmin) / (p->xmax - p->xmin) * (p->right - p->left);
}

/* Open path and write the header, the background and the title. */
static inline int fig_open(fig_plot *p, const char *path, double W, double H, const char *title)
{
    memset(p, 0, sizeof *p);
    p->f = fopen(path, "w");
    if (!p->f)
        return -1;
    p->W = W;
    p->H = H;
    fprintf(p->f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%g\" height=\"%g\" "
            "viewBox=\"0 0 %g %g\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
            "<rect class=\"background\" x=\"0\" y=\"0\" width=\"%g\" height=\"%g\" fill=\"white\"/>\n"
            "<text class=\"title\" x=\"%g\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">",
            W, H, W, H, W, H, W / 2);
    fig_xml(p->f, title);
    fputs("</text>\n", p->f);
    return 0;
}

/* Finish the file; 0, or -1 if anything failed to write. */
static inline int fig_close(fig_plot *p)
{
    if (!p->f)
        return -1;
    fputs("</svg>\n", p->f);
    int bad = ferror(p->f);
    if (fclose(p->f) != 0)
        bad = 1;
    p->f = NULL;
    return bad ? -1 : 0;
}

/* The y axis over [p->ymin, p->ymax] (already nice), its grid and label. */
static inline void fig_y_axis(fig_plot *p, double step, const char *label)
{
    FILE *f = p->f;
    char b[32];
    fputs("<g class=\"y-axis\">\n", f);
    for (double v = p->ymin; v <= p->ymax + step * 1e-6; v += step) {
        double y = fig_py(p, v);
        fig_fmt(b, sizeof b, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n", p->left, y,
                p->right, y);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", p->left - 5, y,
                p->left, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", p->left - 8, y + 4, b);
    }
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", p->left, p->top,
            p->left, p->bottom);
    fprintf(f, "<text class=\"axis-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">",
            18.0, (p->top + p->bottom) / 2, 18.0, (p->top + p->bottom) / 2);
    fig_xml(f, label);
    fputs("</text>\n</g>\n", f);
}

/* The x axis line at the bottom of the plot area, and its label. */
static inline void fig_x_line(fig_plot *p, const char *label)
{
    fprintf(p->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", p->left, p->bottom,
            p->right, p->bottom);
    if (label && *label) {
        fprintf(p->f, "<text class=\"axis-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                (p->left + p->right) / 2, p->H - 10);
        fig_xml(p->f, label);
        fputs("</text>\n", p->f);
    }
}

/* ---- statistics ---- */

static inline int fig_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Copy the finite values of v into a new sorted array (*n_out of them);
 * NULL when there are none (or on out-of-memory). The caller frees it. */
static inline double *fig_sorted(const double *v, int n, int *n_out)
{
    *n_out = 0;
    double *s = n > 0 ? malloc((size_t)n * sizeof *s) : NULL;
    if (!s)
        return NULL;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            s[(*n_out)++] = v[i];
    if (*n_out == 0) {
        free(s);
        return NULL;
    }
    qsort(s, (size_t)*n_out, sizeof *s, fig_cmp_double);
    return s;
}

/* Quantile q of sorted s (n >= 1): linear between order statistics at
 * position q (n - 1), NumPy's default ("linear"). */
static inline double fig_quantile(const double *s, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1)
        return s[n - 1];
    return s[i] + (pos - i) * (s[i + 1] - s[i]);
}

/* ---- box plot ---- */

/* groups boxes, one per name; values[g] holds counts[g] values (NaN
 * skipped). dots: draw every value as a jittered dot. zero_line: a dashed
 * line at y = 0 when 0 is in range. Returns 0 or -1 (errno). */
static inline int fig_boxplot(const char *path, const char *title, const char *ylabel, int groups,
                              const char *const *names, const double *const *values, const int *counts, bool dots,
                              bool zero_line)
{
    double lo = INFINITY, hi = -INFINITY;
    size_t longest = 0;
    for (int g = 0; g < groups; g++) {
        for (int i = 0; i < counts[g]; i++)
            if (isfinite(values[g][i])) {
                lo = fmin(lo, values[g][i]);
                hi = fmax(hi, values[g][i]);
            }
        longest = strlen(names[g]) > longest ? strlen(names[g]) : longest;
    }
    if (!isfinite(lo)) {
        lo = 0;
        hi = 1;
    }
    bool nonneg = lo >= 0;
    double pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    if (nonneg && lo < 0)
        lo = 0; /* a ratio or an accuracy: no negative ticks */
    double step = fig_nice_ticks(&lo, &hi, 6);
    int ng = groups > 0 ? groups : 1;
    double W = fmax(90 + (groups > 6 ? 90 : 120) * ng + 30, 8.0 * (double)strlen(title) + 40);
    double slot = (W - 120) / ng;
    bool rotate = (double)longest * 7.0 > slot - 10;
    double bottom_margin = rotate ? 40 + 6.0 * (double)(longest < 30 ? longest : 30) : 60;
    fig_plot p;
    if (fig_open(&p, path, W, 40 + 320 + bottom_margin, title) < 0)
        return -1;
    p.left = 90;
    p.right = p.W - 30;
    p.top = 40;
    p.bottom = 40 + 320;
    p.ymin = lo;
    p.ymax = hi;
    fig_y_axis(&p, step, ylabel);
    fig_x_line(&p, NULL);
    FILE *f = p.f;
    if (zero_line && lo < 0 && hi > 0)
        fprintf(f, "<line class=\"zero\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" "
                   "stroke-dasharray=\"4 3\"/>\n",
                p.left, fig_py(&p, 0), p.right, fig_py(&p, 0));
    for (int g = 0; g < groups; g++) {
        double cx = p.left + slot * (g + 0.5), bw = slot * 0.45;
        const char *col = fig_color(g);
        fprintf(f, "<g class=\"series\" data-name=\"");
        fig_xml(f, names[g]);
        fputs("\">\n", f);
        int n = 0;
        double *s = fig_sorted(values[g], counts[g], &n);
        if (s) {
            double q1 = fig_quantile(s, n, 0.25), med = fig_quantile(s, n, 0.5), q3 = fig_quantile(s, n, 0.75);
            double iqr = q3 - q1, wlo = q1, whi = q3;
            for (int i = 0; i < n; i++) {
                if (s[i] >= q1 - 1.5 * iqr && s[i] < wlo)
                    wlo = s[i];
                if (s[i] <= q3 + 1.5 * iqr && s[i] > whi)
                    whi = s[i];
            }
            fprintf(f,
                    "<line class=\"whisker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n"
                    "<line class=\"whisker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n"
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n"
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n",
                    cx, fig_py(&p, whi), cx, fig_py(&p, q3), cx, fig_py(&p, q1), cx, fig_py(&p, wlo), cx - bw / 4,
                    fig_py(&p, whi), cx + bw / 4, fig_py(&p, whi), cx - bw / 4, fig_py(&p, wlo), cx + bw / 4,
                    fig_py(&p, wlo));
            fprintf(f,
                    "<rect class=\"box\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
                    "fill-opacity=\"0.35\" stroke=\"%s\" stroke-width=\"1.5\"/>\n"
                    "<line class=\"median\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\" "
                    "stroke-width=\"2\"/>\n",
                    cx - bw / 2, fig_py(&p, q3), bw, fmax(fig_py(&p, q1) - fig_py(&p, q3), 0.5), col, col, cx - bw / 2,
                    fig_py(&p, med), cx + bw / 2, fig_py(&p, med));
            for (int i = 0; i < n; i++) {
                bool outlier = s[i] < wlo || s[i] > whi;
                if (dots) {
                    /* deterministic jitter: a scrambled index in [-1, 1) */
                    uint32_t h = (uint32_t)(i + 1) * 2654435761u;
                    double j = ((double)(h >> 8) / (double)(1u << 24)) * 2 - 1;
                    fprintf(f, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\" "
                               "fill-opacity=\"0.8\" stroke=\"white\" stroke-width=\"0.5\"/>\n",
                            cx + j * bw * 0.35, fig_py(&p, s[i]), col);
                } else if (outlier) {
                    fprintf(f, "<circle class=\"outlier\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"none\" "
                               "stroke=\"%s\"/>\n",
                            cx, fig_py(&p, s[i]), col);
                }
            }
            free(s);
        }
        double ly = p.bottom + 16;
        if (rotate)
            fprintf(f, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" transform=\"rotate(-35 %.1f %.1f)\">",
                    cx, ly, cx, ly);
        else
            fprintf(f, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", cx, ly);
        fig_xml(f, names[g]);
        fprintf(f, "</text>\n<text class=\"count\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#666\" "
                   "font-size=\"10\">n=%d</text>\n</g>\n",
                cx, p.top - 4, n);
    }
    return fig_close(&p);
}

/* ---- line chart ---- */

/* series polylines; series s has npts[s] points (xs[s][i], ys[s][i]);
 * non-finite y values break nothing (the point is skipped). The x ticks are
 * the distinct x values of all series (at most 16; otherwise nice ticks).
 * ymin/ymax: the y range, or NaN for one fitted to the data. */
static inline int fig_linechart(const char *path, const char *title, const char *xlabel, const char *ylabel,
                                int series, const char *const *names, const int *npts, const double *const *xs,
                                const double *const *ys, double ymin, double ymax)
{
    double xlo = INFINITY, xhi = -INFINITY, lo = INFINITY, hi = -INFINITY;
    int total = 0;
    for (int s = 0; s < series; s++)
        for (int i = 0; i < npts[s]; i++) {
            total++;
            if (isfinite(xs[s][i])) {
                xlo = fmin(xlo, xs[s][i]);
                xhi = fmax(xhi, xs[s][i]);
            }
            if (isfinite(ys[s][i])) {
                lo = fmin(lo, ys[s][i]);
                hi = fmax(hi, ys[s][i]);
            }
        }
    if (!isfinite(xlo)) {
        xlo = 0;
        xhi = 1;
    }
    if (!isfinite(lo)) {
        lo = 0;
        hi = 1;
    }
    if (isfinite(ymin))
        lo = ymin;
    if (isfinite(ymax))
        hi = ymax;
    double step = fig_nice_ticks(&lo, &hi, 6);
    if (!(xhi > xlo))
        xhi = xlo + 1;
    size_t longest = 4;
    for (int s = 0; s < series; s++)
        longest = strlen(names[s]) > longest ? strlen(names[s]) : longest;
    double legend_w = 40 + 7.0 * (double)(longest < 40 ? longest : 40);
    fig_plot p;
    if (fig_open(&p, path, fmax(90 + 480 + legend_w + 20, 8.0 * (double)strlen(title) + 40), 40 + 320 + 60, title) < 0)
        return -1;
    p.left = 90;
    p.right = 90 + 480;
    p.top = 40;
    p.bottom = 40 + 320;
    p.ymin = lo;
    p.ymax = hi;
    p.xmin = xlo;
    p.xmax = xhi;
    fig_y_axis(&p, step, ylabel);
    fig_x_line(&p, xlabel);
    FILE *f = p.f;
    /* x ticks: the distinct x values when there are few of them */
    double *ux = total > 0 ? malloc((size_t)total * sizeof *ux) : NULL;
    int nu = 0;
    for (int s = 0; ux && s < series; s++)
        for (int i = 0; i < npts[s]; i++) {
            bool seen = !isfinite(xs[s][i]);
            for (int k = 0; k < nu && !seen; k++)
                seen = ux[k] == xs[s][i];
            if (!seen)
                ux[nu++] = xs[s][i];
        }
    char b[32];
    fputs("<g class=\"x-axis\">\n", f);
    if (ux && nu <= 16) {
        for (int k = 0; k < nu; k++) {
            double x = fig_px(&p, ux[k]);
            fig_fmt(b, sizeof b, ux[k]);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                    x, p.bottom, x, p.bottom + 5, x, p.bottom + 18, b);
        }
    } else {
        double a = xlo, z = xhi, st = fig_nice_ticks(&a, &z, 8);
        for (double v = a; v <= z + st * 1e-6; v += st) {
            if (v < xlo - 1e-9 || v > xhi + 1e-9)
                continue;
            double x = fig_px(&p, v);
            fig_fmt(b, sizeof b, v);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                    x, p.bottom, x, p.bottom + 5, x, p.bottom + 18, b);
        }
    }
    fputs("</g>\n", f);
    free(ux);
    for (int s = 0; s < series; s++) {
        const char *col = fig_color(s);
        fputs("<g class=\"series\" data-name=\"", f);
        fig_xml(f, names[s]);
        fprintf(f, "\">\n<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
        for (int i = 0; i < npts[s]; i++)
            if (isfinite(xs[s][i]) && isfinite(ys[s][i]))
                fprintf(f, "%.1f,%.1f ", fig_px(&p, xs[s][i]), fig_py(&p, ys[s][i]));
        fputs("\"/>\n", f);
        for (int i = 0; i < npts[s]; i++)
            if (isfinite(xs[s][i]) && isfinite(ys[s][i]))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", fig_px(&p, xs[s][i]),
                        fig_py(&p, ys[s][i]), col);
        /* legend entry */
        double ly = p.top + 10 + 20 * s, lx = p.right + 20;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n"
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n"
                "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">",
                lx, ly, lx + 24, ly, col, lx + 12, ly, col, lx + 30, ly + 4);
        fig_xml(f, names[s]);
        fputs("</text>\n</g>\n", f);
    }
    return fig_close(&p);
}

/* ---- colour maps for PNG heat maps ---- */

/* t in [0,1] (clamped) to RGB, a turbo-like ramp. */
static inline void fig_colormap(double t, uint8_t rgb[3])
{
    static const double a[8][3] = {{48, 18, 59},   {70, 107, 227}, {40, 187, 236}, {50, 241, 152},
                                   {164, 252, 60}, {238, 207, 58}, {251, 128, 34}, {122, 4, 3}};
    t = isfinite(t) ? fmin(fmax(t, 0), 1) : 0;
    double x = t * 7;
    int i = (int)x;
    if (i >= 7)
        i = 6;
    double u = x - i;
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)lround(a[i][c] + u * (a[i + 1][c] - a[i][c]));
}

/* t in [-1,1] (clamped) to blue (-1), white (0), red (+1). */
static inline void fig_diverging(double t, uint8_t rgb[3])
{
    t = isfinite(t) ? fmin(fmax(t, -1), 1) : 0;
    static const double neg[3] = {33, 102, 172}, pos[3] = {178, 24, 43};
    const double *e = t < 0 ? neg : pos;
    double u = fabs(t);
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)lround(255 + u * (e[c] - 255));
}

#endif
