/* eval.c - perplexity with sliding windows, and continuation log-likelihood.
 * The protocol is specified in eval.h; `synth score` and the server's /score
 * both go through eval_plan_windows, so their numbers agree. */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t eval_plan_windows(int64_t n_text, int L, eval_window *out, int64_t cap)
{
    if (n_text <= 0 || L < 1) return 0;
    const int64_t stride = L / 2 > 0 ? L / 2 : 1;
    /* Stream s = [eos, t_0 .. t_{n-1}]: inputs s[0 .. n-1], targets s[1 .. n].
     * scored = index in s of the last target already counted. */
    int64_t n = 0, scored = 0;
    for (int64_t start = 0; scored < n_text; start += stride) {
        int64_t len = n_text - start < L ? n_text - start : L;
        if (out && n < cap) {
            out[n].start = start;
            out[n].len = (int)len;
            out[n].first_scored = (int)(scored - start > 0 ? scored - start : 0);
        }
        n++;
        scored = start + len;
    }
    return n;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int64_t eval_count_words(const char *text, size_t len)
{
    int64_t words = 0, lines = 0;
    int in_word = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') lines++;
        if (is_space(c)) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    if (len > 0 && text[len - 1] != '\n') lines++; /* unterminated last line */
    return words + lines;
}

void eval_finish(eval_result *r)
{
    r->perplexity = r->n_tokens > 0 ? exp(r->nll / (double)r->n_tokens) : NAN;
    r->word_perplexity = r->n_words > 0 ? exp(r->nll / (double)r->n_words) : NAN;
    r->bits_per_byte = r->n_bytes > 0 ? r->nll / (log(2.0) * (double)r->n_bytes) : NAN;
}

/* Score windows [w0, w1) of the stream in one model_score call, adding the
 * newly scored targets to r and (optionally) to per-token outputs. */
static int score_windows(model *m, const int32_t *s, const eval_window *w, int nw, float *lp_buf,
                         eval_result *r, float *lp_out)
{
    const int32_t *toks[nw], *tgts[nw];
    int lens[nw];
    for (int i = 0; i < nw; i++) {
        toks[i] = s + w[i].start;
        tgts[i] = s + w[i].start + 1;
        lens[i] = w[i].len;
    }
    int rc = model_score(m, nw, toks, tgts, lens, lp_buf, NULL);
    if (rc) return rc;
    const float *lp = lp_buf;
    for (int i = 0; i < nw; i++) {
        for (int j = w[i].first_scored; j < w[i].len; j++) {
            r->nll -= (double)lp[j];
            r->n_tokens++;
            if (lp_out) lp_out[w[i].start + j] = lp[j]; /* target s[start+1+j] = text token start+j */
        }
        lp += w[i].len;
    }
    return 0;
}

int eval_text(model *m, const char *text, size_t len, int max_batch, eval_result *r, int32_t **ids_out,
              float **lp_out, eval_progress_fn progress, void *ud)
{
    const tok_t *tk = model_tok(m);
    const int L = model_hparams(m)->n_ctx;
    int32_t *ids = NULL, *s = NULL;
    float *lp_buf = NULL, *lps = NULL;
    eval_window *win = NULL;
    size_t n = 0;
    int rc;

    memset(r, 0, sizeof *r);
    if (ids_out) *ids_out = NULL;
    if (lp_out) *lp_out = NULL;
    if (max_batch < 1) max_batch = 1;
    if (tok_eos(tk) < 0) return MODEL_EINVAL; /* the protocol needs an eos token as context */
    size_t skip = tok_eos_text_prefix(tk, text, len); /* it is the context already: no second one */
    text += skip;
    len -= skip;
    if (tok_encode_special(tk, text, len, &ids, &n)) return MODEL_ENOMEM;

    int64_t nw = eval_plan_windows((int64_t)n, L, NULL, 0);
    rc = MODEL_ENOMEM;
    s = malloc((n + 1) * sizeof *s);
    win = malloc((size_t)(nw > 0 ? nw : 1) * sizeof *win);
    lp_buf = malloc((size_t)max_batch * (size_t)L * sizeof *lp_buf);
    if (lp_out) lps = calloc(n > 0 ? n : 1, sizeof *lps);
    if (!s || !win || !lp_buf || (lp_out && !lps)) goto done;
    s[0] = tok_eos(tk);
    memcpy(s + 1, ids, n * sizeof *ids);
    eval_plan_windows((int64_t)n, L, win, nw);

    for (int64_t w = 0; w < nw; w += max_batch) {
        int cnt = (int)(nw - w < max_batch ? nw - w : max_batch);
        rc = score_windows(m, s, win + w, cnt, lp_buf, r, lps);
        if (rc) goto done;
        if (progress) progress(w + cnt, nw, ud);
    }
    r->n_words = eval_count_words(text, len);
    r->n_bytes = (int64_t)len;
    eval_finish(r);
    rc = 0;
    if (ids_out) { *ids_out = ids; ids = NULL; }
    if (lp_out) { *lp_out = lps; lps = NULL; }
done:
    free(ids);
    free(s);
    free(win);
    free(lp_buf);
    free(lps);
    return rc;
}

int eval_plan_continuation(size_t nc, size_t nk, int L, int truncate, size_t *drop, eval_window *w)
{
    *drop = 0;
    if (nk == 0) return EVAL_CONT_EMPTY;
    if (1 + nk > (size_t)L) return EVAL_CONT_LONG;
    if (1 + nc + nk > (size_t)L) {
        if (!truncate) return EVAL_CONT_CONTEXT;
        *drop = 1 + nc + nk - (size_t)L;   /* keep the end of the context */
    }
    w->start = 0;
    w->len = (int)(nc - *drop + nk);
    w->first_scored = (int)(nc - *drop);
    return 0;
}

int eval_continuation(model *m, const char *ctx, size_t ctx_len, const char *cont, size_t cont_len,
                      int truncate, double *logprob, int *is_greedy, int *n_cont_tokens)
{
    const tok_t *tk = model_tok(m);
    const int L = model_hparams(m)->n_ctx;
    int32_t *ci = NULL, *ki = NULL, *seq = NULL;
    size_t nc = 0, nk = 0;
    float *lp = NULL;
    uint8_t *gr = NULL;
    int rc = MODEL_ENOMEM;

    if (tok_eos(tk) < 0) return MODEL_EINVAL;
    size_t skip = tok_eos_text_prefix(tk, ctx, ctx_len); /* as eval_text */
    ctx += skip;
    ctx_len -= skip;
    if (tok_encode_special(tk, ctx, ctx_len, &ci, &nc) || tok_encode_special(tk, cont, cont_len, &ki, &nk)) goto done;
    rc = MODEL_EINVAL;
    size_t drop;
    eval_window win;
    if (eval_plan_continuation(nc, nk, L, truncate, &drop, &win)) goto done;
    memmove(ci, ci + drop, (nc - drop) * sizeof *ci);
    nc -= drop;
    rc = MODEL_ENOMEM;
    int n = (int)(1 + nc + nk);
    seq = malloc((size_t)n * sizeof *seq);
    lp = malloc((size_t)n * sizeof *lp);
    gr = malloc((size_t)n);
    if (!seq || !lp || !gr) goto done;
    seq[0] = tok_eos(tk);
    if (nc) memcpy(seq + 1, ci, nc * sizeof *ci);
    memcpy(seq + 1 + nc, ki, nk * sizeof *ki);

    const int32_t *toks = seq, *tgts = seq + 1;
    int len = n - 1;
    rc = model_score(m, 1, &toks, &tgts, &len, lp, gr);
    if (rc) goto done;
    double sum = 0.0;
    int greedy = 1;
    for (int j = win.first_scored; j < len; j++) {   /* targets seq[nc+1 ..] are the continuation */
        sum += lp[j];
        greedy &= gr[j] != 0;
    }
    *logprob = sum;
    *is_greedy = greedy;
    if (n_cont_tokens) *n_cont_tokens = (int)nk;
    rc = 0;
done:
    free(ci);
    free(ki);
    free(seq);
    free(lp);
    free(gr);
    return rc;
}
