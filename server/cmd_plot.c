/* cmd_plot.c - `synth plot-attention`: heat map (PNG, libpng) of one
 * layer/head's attention weights, and the alpha mixing weights of the
 * mixture variants.
 *
 * Static variants (random, fixed_random, factorized_random): the map is
 * softmax(causal(R)) itself. Input-dependent variants (dense,
 * factorized_dense, vanilla, the mixtures): the average of the attention
 * weights over consecutive windows of a text (--text), each window starting
 * at position 0. Both come from model_attention (model.h). */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"
#include "model.h"

#define CMD "plot-attention"

static const char plot_usage[] =
    "usage: synth plot-attention [-m] MODEL --layer N --head H -o FILE.png [options]\n"
    "       synth plot-attention [-m] MODEL --alpha\n"
    "Heat map of the attention weights of one layer and head (0-based): row i\n"
    "(top to bottom) is the query position, column j the key position; the\n"
    "masked future (j > i) is gray. Static variants (random, fixed_random,\n"
    "factorized_random) show softmax(causal(R)); input-dependent variants\n"
    "(dense, factorized_dense, vanilla, random+vanilla, dense+vanilla) show the\n"
    "average over consecutive windows of the text given with --text.\n"
    "  --text FILE        text whose windows are averaged (required for input-\n"
    "                     dependent variants; ignored by static ones)\n"
    "  --positions N      show positions 0..N-1; also the window length\n"
    "                     (default: the model's context)\n"
    "  --windows N        at most N windows of the text (default 32)\n"
    "  --cell PX          pixels per cell (default: about 512 pixels in all)\n"
    "  --pool K           draw the mean of each K x K block of (causal) weights as\n"
    "                     one cell: smaller pictures of long contexts (default 1)\n"
    "  --vmax X           weight shown with the brightest color (default: the\n"
    "                     99th percentile of the weights on and below the diagonal)\n"
    "  --log              color by log10(weight) over the three decades below vmax\n"
    "  --relative         show (i+1) A[i,j], the weight relative to uniform attention\n"
    "                     over the visible prefix (1 = uniform), instead of A[i,j]\n"
    "  --csv FILE         also write the [N, N] matrix A as CSV (row per line)\n"
    "  --alpha            print sigmoid(alpha) per layer and head (mixture\n"
    "                     variants: the weight of the synthesizer part) and exit\n"
    "The PNG has a color bar on the right (bottom 0, top vmax). A summary line\n"
    "goes to stdout: size, windows, vmax, mean attention distance sum_j A[i,j](i-j)\n"
    "averaged over rows, and mean row entropy (nats).\n";

typedef struct {
    const char *model_path, *out, *text, *csv;
    int layer, head, positions, windows, cell, pool, log, alpha, relative;
    float vmax;
} plot_opts;

/* 0 ok, 1 help printed, -1 bad usage (message printed). */
static int parse(int argc, char **argv, plot_opts *o)
{
    memset(o, 0, sizeof *o);
    o->layer = o->head = -1;
    o->windows = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(plot_usage, stdout); return 1; }
        if (!strcmp(a, "--log")) { o->log = 1; continue; }
        if (!strcmp(a, "--alpha")) { o->alpha = 1; continue; }
        if (!strcmp(a, "--relative")) { o->relative = 1; continue; }
        if (a[0] != '-') {
            if (o->model_path) { fprintf(stderr, "synth " CMD ": unexpected argument '%s'\n", a); return -1; }
            o->model_path = a;
            continue;
        }
        if (!(v = cli_value(CMD, argc, argv, &i))) return -1;
        int bad = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model_path = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->out = v;
        else if (!strcmp(a, "--text")) o->text = v;
        else if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--layer")) bad = cli_int(CMD, a, v, 0, 1 << 20, &o->layer);
        else if (!strcmp(a, "--head")) bad = cli_int(CMD, a, v, 0, 1 << 20, &o->head);
        else if (!strcmp(a, "--positions")) bad = cli_int(CMD, a, v, 2, 1 << 20, &o->positions);
        else if (!strcmp(a, "--windows")) bad = cli_int(CMD, a, v, 1, 1 << 20, &o->windows);
        else if (!strcmp(a, "--cell")) bad = cli_int(CMD, a, v, 1, 64, &o->cell);
        else if (!strcmp(a, "--pool")) bad = cli_int(CMD, a, v, 1, 4096, &o->pool);
        else if (!strcmp(a, "--vmax")) bad = cli_float(CMD, a, v, 1e-9, 1e9, &o->vmax);
        else {
            fprintf(stderr, "synth " CMD ": unknown option '%s' (see --help)\n", a);
            return -1;
        }
        if (bad) return -1;
    }
    if (o->alpha) return 0;
    if (o->layer < 0) { fprintf(stderr, "synth " CMD ": --layer N is required (see --help)\n"); return -1; }
    if (o->head < 0) { fprintf(stderr, "synth " CMD ": --head H is required (see --help)\n"); return -1; }
    if (!o->out) { fprintf(stderr, "synth " CMD ": -o FILE.png is required (see --help)\n"); return -1; }
    return 0;
}

/* ---- alpha ---- */

/* sigmoid(alpha) of every layer and head (model_mix_alpha). */
static int print_alpha(const char *path, const model *m)
{
    const arch_hparams *hp = model_hparams(m);
    if (!arch_has_mix(hp->variant)) {
        fprintf(stderr, "synth " CMD ": %s: variant %s has no mixing weights (only random+vanilla and dense+vanilla)\n",
                path, arch_variant_name(hp->variant));
        return 1;
    }
    printf("# %s: S = (1 - g) vanilla + g synthesizer, g = sigmoid(alpha)\n# layer head alpha g\n",
           arch_variant_name(hp->variant));
    for (int il = 0; il < hp->n_layer; il++) {
        const float *a = model_mix_alpha(m, il); /* [H] */
        for (int h = 0; a && h < hp->n_head; h++)
            printf("%d %d %.6f %.6f\n", il, h, (double)a[h], 1.0 / (1.0 + exp(-(double)a[h])));
    }
    return 0;
}

/* ---- the matrix ---- */

/* A [n, n] = attention of (layer, head): static variants from any tokens
 * (the weights do not depend on them), else the mean over up to `windows`
 * consecutive windows of n tokens of the text. *used = windows averaged. */
static int attention_matrix(model *m, const plot_opts *o, int n, float *A, int *used)
{
    const arch_hparams *hp = model_hparams(m);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = 1;
    if (arch_is_static(hp->variant) || !o->text) {
        if (!arch_is_static(hp->variant)) {
            fprintf(stderr, "synth " CMD ": variant %s computes its attention from the input: give --text FILE\n",
                    arch_variant_name(hp->variant));
            return 1;
        }
        ids = calloc((size_t)n, sizeof *ids);
        if (!ids) { fprintf(stderr, "synth " CMD ": out of memory\n"); return 1; }
        int e = model_attention(m, o->layer, o->head, ids, n, A);
        free(ids);
        if (e) { fprintf(stderr, "synth " CMD ": %s\n", model_strerror(e)); return 1; }
        *used = 0;
        return 0;
    }
    char *text = NULL;
    size_t len = 0;
    if (cli_read_file(CMD, o->text, &text, &len)) return 1;
    int e = tok_encode(model_tok(m), text, len, &ids, &n_ids);
    free(text);
    if (e) { fprintf(stderr, "synth " CMD ": %s: tokenizing failed: %s\n", o->text, tok_strerror(e)); return 1; }
    if (n_ids < (size_t)n) {
        fprintf(stderr, "synth " CMD ": %s: %zu tokens, fewer than one window of %d (lower --positions)\n", o->text,
                n_ids, n);
        free(ids);
        return 1;
    }
    float *W = malloc(sizeof(float) * (size_t)n * n);
    double *sum = calloc((size_t)n * n, sizeof *sum);
    if (!W || !sum) { fprintf(stderr, "synth " CMD ": out of memory\n"); goto done; }
    int nw = 0;
    for (size_t p = 0; p + (size_t)n <= n_ids && nw < o->windows; p += (size_t)n, nw++) {
        if ((e = model_attention(m, o->layer, o->head, ids + p, n, W)) != 0) {
            fprintf(stderr, "synth " CMD ": %s\n", model_strerror(e));
            goto done;
        }
        for (size_t k = 0; k < (size_t)n * n; k++) sum[k] += W[k];
    }
    for (size_t k = 0; k < (size_t)n * n; k++) A[k] = (float)(sum[k] / nw);
    *used = nw;
    rc = 0;
done:
    free(W);
    free(sum);
    free(ids);
    return rc;
}

/* B [nb, nb], nb = ceil(n / k): the mean of the causal entries (j <= i) of
 * each k x k block of A [n, n]; blocks above the diagonal (no causal
 * entry) are 0 and drawn masked, like A's upper triangle. */
static void pool_blocks(const float *A, int n, int k, float *B, int nb)
{
    for (int bi = 0; bi < nb; bi++)
        for (int bj = 0; bj < nb; bj++) {
            double s = 0;
            int c = 0;
            for (int i = bi * k; i < n && i < (bi + 1) * k; i++)
                for (int j = bj * k; j <= i && j < (bj + 1) * k; j++, c++) s += A[(size_t)i * n + j];
            B[(size_t)bi * nb + bj] = c ? (float)(s / c) : 0.0f;
        }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* 99th percentile of the causal entries (so the lone 1.0 of row 0 does not
 * wash the picture out). */
static float default_vmax(const float *A, int n)
{
    size_t cnt = (size_t)n * (n + 1) / 2, k = 0;
    float *v = malloc(sizeof(float) * cnt);
    if (!v) return 1.0f;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) v[k++] = A[(size_t)i * n + j];
    qsort(v, cnt, sizeof *v, cmp_float);
    float r = v[(size_t)(0.99 * (double)(cnt - 1))];
    free(v);
    return r > 1e-9f ? r : 1e-9f;
}

/* ---- the picture ---- */

/* Viridis at five stops (0, 1/4, 1/2, 3/4, 1), linear in between. */
static void colormap(double t, png_byte rgb[3])
{
    static const double stop[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double x = t * 4;
    int k = x >= 4 ? 3 : (int)x;
    double f = x - k;
    for (int c = 0; c < 3; c++) rgb[c] = (png_byte)lround(stop[k][c] + f * (stop[k + 1][c] - stop[k][c]));
}

static double color_pos(double w, double vmax, int logscale)
{
    if (!logscale) return w / vmax;
    if (w <= 0) return 0;
    return (log10(w) - log10(vmax) + 3.0) / 3.0;
}

#define BAR_GAP 6
#define BAR_W 16

/* Write the heat map: n x n cells of `cell` pixels, then a gap and the
 * color bar (bottom 0 / vmax / 1e-3 vmax, top vmax). 0 or 1 (message). */
static int write_png(const char *path, const float *A, int n, int cell, float vmax, int logscale)
{
    const int side = n * cell, width = side + BAR_GAP + BAR_W;
    FILE *fp = fopen(path, "wb");
    if (!fp) { fprintf(stderr, "synth " CMD ": cannot write '%s'\n", path); return 1; }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep row = malloc((size_t)width * 3);
    if (!png || !info || !row) {
        fprintf(stderr, "synth " CMD ": out of memory\n");
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(fp);
        return 1;
    }
    if (setjmp(png_jmpbuf(png))) { /* libpng reports errors by longjmp */
        fprintf(stderr, "synth " CMD ": writing '%s' failed\n", path);
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(fp);
        return 1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)side, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < side; y++) {
        const int i = y / cell;
        for (int x = 0; x < width; x++) {
            png_bytep px = row + (size_t)x * 3;
            if (x < side) {
                const int j = x / cell;
                if (j > i) px[0] = px[1] = px[2] = 200; /* masked future */
                else colormap(color_pos(A[(size_t)i * n + j], vmax, logscale), px);
            } else if (x < side + BAR_GAP) {
                px[0] = px[1] = px[2] = 255;
            } else {
                colormap(1.0 - (double)y / (side > 1 ? side - 1 : 1), px);
            }
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(fp)) { fprintf(stderr, "synth " CMD ": writing '%s' failed\n", path); return 1; }
    return 0;
}

static int write_csv(const char *path, const float *A, int n)
{
    FILE *fp = fopen(path, "w");
    if (!fp) { fprintf(stderr, "synth " CMD ": cannot write '%s'\n", path); return 1; }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) fprintf(fp, "%.6g%c", (double)A[(size_t)i * n + j], j + 1 < n ? ',' : '\n');
    if (fclose(fp)) { fprintf(stderr, "synth " CMD ": writing '%s' failed\n", path); return 1; }
    return 0;
}

int cmd_plot_attention(int argc, char **argv)
{
    plot_opts o;
    int pr = parse(argc, argv, &o);
    if (pr) return pr > 0 ? 0 : 2;
    const char *path = cli_model_path(o.model_path);
    char err[512];
    model *m = NULL;
    int e = model_load(path, &m, err, sizeof err);
    if (e) {
        fprintf(stderr, "synth " CMD ": %s: %s\n", path, err[0] ? err : model_strerror(e));
        return 1;
    }
    if (o.alpha) {
        int rc = print_alpha(path, m);
        model_free(m);
        return rc;
    }
    const arch_hparams *hp = model_hparams(m);
    int rc = 2;
    float *A = NULL;
    if (o.layer >= hp->n_layer) {
        fprintf(stderr, "synth " CMD ": --layer: %d is out of range (the model has %d layers, 0..%d)\n", o.layer,
                hp->n_layer, hp->n_layer - 1);
        goto done;
    }
    if (o.head >= hp->n_head) {
        fprintf(stderr, "synth " CMD ": --head: %d is out of range (the model has %d heads, 0..%d)\n", o.head,
                hp->n_head, hp->n_head - 1);
        goto done;
    }
    const int n = o.positions ? o.positions : hp->n_ctx;
    if (n > hp->n_ctx || n < 2) {
        fprintf(stderr, "synth " CMD ": --positions: %d is out of range (2..%d, the context)\n", n, hp->n_ctx);
        goto done;
    }
    rc = 1;
    const int pool = o.pool > 1 ? o.pool : 1, nb = (n + pool - 1) / pool; /* cells per side */
    const int cell = o.cell ? o.cell : (nb >= 512 ? 1 : 512 / nb);
    if ((int64_t)nb * cell > 16384) {
        fprintf(stderr, "synth " CMD ": --cell: %d x %d cells is wider than 16384 pixels\n", cell, nb);
        rc = 2;
        goto done;
    }
    A = malloc(sizeof(float) * (size_t)n * n);
    if (!A) { fprintf(stderr, "synth " CMD ": out of memory\n"); goto done; }
    int used = 0;
    if (attention_matrix(m, &o, n, A, &used)) goto done;
    double dist = 0, ent = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double w = A[(size_t)i * n + j];
            dist += w * (i - j);
            if (w > 0) ent -= w * log(w);
        }
    if (o.csv && write_csv(o.csv, A, n)) goto done;
    if (o.relative) /* after the statistics and the CSV, which are about A itself */
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) A[(size_t)i * n + j] *= (float)(i + 1);
    if (pool > 1) { /* the picture shows the pooled matrix B in place of A */
        float *B = malloc(sizeof(float) * (size_t)nb * nb);
        if (!B) { fprintf(stderr, "synth " CMD ": out of memory\n"); goto done; }
        pool_blocks(A, n, pool, B, nb);
        free(A);
        A = B;
    }
    const float vmax = o.vmax > 0 ? o.vmax : default_vmax(A, nb);
    if (write_png(o.out, A, nb, cell, vmax, o.log)) goto done;
    char wins[32] = "", pooled[48] = "";
    if (used) snprintf(wins, sizeof wins, " (%d)", used);
    if (pool > 1) snprintf(pooled, sizeof pooled, " (mean of %dx%d blocks)", pool, pool);
    printf("%s: %s layer %d head %d, %d x %d positions%s, %s%s, vmax %.4g%s%s, mean distance %.2f, mean entropy %.3f\n",
           o.out, arch_variant_name(hp->variant), o.layer, o.head, n, n, pooled,
           used ? "mean over text windows" : "static softmax(R)", wins, (double)vmax, o.relative ? " x (i+1)" : "", o.log ? " (log scale)" : "",
           dist / n, ent / n);
    rc = 0;
done:
    free(A);
    model_free(m);
    return rc;
}
