/* Sequential WARP, one positive pair at a time, on CPU threads, for the models whose score is a
 * function of the linear score s = x^T U^T V y alone: f = h(s) = s (c + lam sigmoid(alpha s + beta)).
 * WSABIE is c = 1, lam = 0 (then h is exactly s); AWE's linear sigmoid on the whole score (eq. 6)
 * is c = 0, lam = 1; a constant plus it, c > 0. A pair costs what WSABIE's does.
 *
 * And for the affinities built from the training set (k-NN, RBF, cluster, the neighbour vote),
 * whose G(x, y) is one number per example and label, given as a sparse row per example (its
 * "context": the labels G gives something, sorted, and an offset every label gets in column |Y|):
 *     f = (c + g_scale G) s_in + (c + (prior ? 1 : g_scale G)) s_b + g_added G      (lam = 0)
 * with s_in = x^T U^T V y over the input's features and s_b = U_bias . V y the bias feature's term
 * (the label prior, outside G with prior). k-NN is c = 0, g_scale = 1; a constant beside it, c > 0;
 * the vote, which adds to the linear score, c = 1, g_scale = 0, g_added = its weight. A pair costs
 * WSABIE's plus a binary search in the example's G row per label scored (and a second dot
 * product where the prior stays outside G).
 *
 * And for top-k (eq. 7; max is k = 1), whose G picks the k largest of the pair's terms
 * t_i = x_i U_i . V y (the pair's own item left out), with rest, G of the other terms, a number:
 *     f = (1 - rest) (the sum of the k largest t_i) + rest s_in + s_b
 * A score costs d per input feature, not d: every term is computed to find the k largest.
 *
 * The same loss as awe_tf/tasks/warp.py: for a positive pair (x, y), K labels are drawn
 * uniformly (all K before any is scored, so that their rows load together) and scored in order;
 * draws that hit one of the example's positives are skipped and not counted; the
 * first draw c with f(x, c) > f(x, y) - margin is the violator; with N the counted draws up to
 * and including it, the rank estimate is r = floor((|Y| - |Y_x|) / N) and the pair's loss
 * L(r) (margin - f(x, y) + f(x, c)).
 * Its gradients pass through h: d f / d s = h'(s) = c + lam (g + alpha s g (1 - g)), g the sigmoid;
 * with G, d f / d s_in = c + g_scale G and d f / d s_b = c + (prior ? 1 : g_scale G); with top-k,
 * d f / d s_in = rest and d f / d s_b = 1, and each of the k largest terms adds 1 - rest: to
 * x_i U_i in V y's gradient and to V y in U_i's.
 *
 * What differs from the TensorFlow graph step is the order of updates:
 *   - V (labels) is updated after every pair (plain SGD order, as in the paper's Algorithm 1);
 *   - U (input features) once per example: x^T U = sum_i x_i U_i is computed once per example and
 *     reused by all its pairs ("per-user sums"), their gradients summed, and each U_i updated
 *     once with x_i times that sum (less the pair whose own item is feature i, for
 *     recommendation data, where that pair's input leaves the item out).
 * Rows are projected back into the ball of radius max_norm after each update. Threads share U
 * and V without locks (Hogwild, as LightFM and the original WSABIE code do), so results with
 * more than one thread depend on timing; with one thread they are reproducible.
 *
 * Updates: Adagrad as Keras computes it (acc += g^2; w -= lr g / sqrt(acc + eps)), or plain SGD
 * (acc == NULL).
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    /* data: CSR rows of the (scaled) inputs X and the sorted positive labels Y */
    const int64_t *x_indptr;
    const int32_t *x_indices;
    const float *x_data;
    const int64_t *y_indptr;
    const int32_t *y_indices;
    const int32_t *rows; /* the examples of this call, in training order */
    int64_t n_rows;
    int leave_one_out; /* recommendation data: a pair's input drops its own item */
    int64_t bias_row;  /* U's always-on bias feature, or -1 */
    /* model */
    float *U, *accU, *V, *accV;
    int64_t n_labels;
    int d;
    int K;
    float margin, lr, eps, max_norm;
    float c, lam, alpha, beta; /* f = h(s) = s (c + lam sigmoid(alpha s + beta)) */
    /* G rows (CSR, columns 0 .. n_labels, the last the offset), or NULL: f as the module comment says */
    const int64_t *g_indptr;
    const int32_t *g_indices;
    const float *g_data;
    float g_scale, g_added;
    int prior;
    int top_k;  /* top-k's k (0: no top-k); f as the module comment says */
    float rest; /* top-k's G of the terms outside the k */
    const float *harmonic; /* L(r) for r = 0 .. n_labels */
    uint64_t seed;
    int n_threads;
} Job;

typedef struct {
    const Job *job;
    int thread;
    double stats[4]; /* loss sum, pairs, pairs with a violator, sum of their rank estimates */
    int failed;
} Work;

static inline uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline int64_t below(uint64_t *state, int64_t n) { /* uniform in [0, n), n < 2^32 */
    return (int64_t)(((splitmix64(state) >> 32) * (uint64_t)n) >> 32);
}

static inline float dot(const float *a, const float *b, int d) {
    /* eight partial sums: without -ffast-math the compiler may vectorise only this form */
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int k = 0;
    for (; k + 8 <= d; k += 8)
        for (int j = 0; j < 8; j++) s[j] += a[k + j] * b[k + j];
    float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; k < d; k++) total += a[k] * b[k];
    return total;
}

/* Ask for a row's cache lines ahead of use: at a million rows the tables outgrow the caches and
 * every row a pair touches is a trip to memory; asked for together, those trips overlap. */
static inline void prefetch_row(const float *row, int d) {
    for (int k = 0; k < d; k += 16) __builtin_prefetch(row + k, 0, 1);
    __builtin_prefetch(row + d - 1, 0, 1); /* a row not aligned to 64 bytes ends on one more line */
}

/* An example's row of G: the labels it gives something (sorted) and the offset every label gets. */
typedef struct {
    const int32_t *ids;
    const float *values;
    int64_t n;
    float offset;
} GRow;

static GRow g_row(const Job *job, int64_t row) {
    GRow r = {NULL, NULL, 0, 0.0f};
    if (!job->g_indptr) return r;
    r.ids = job->g_indices + job->g_indptr[row];
    r.values = job->g_data + job->g_indptr[row];
    r.n = job->g_indptr[row + 1] - job->g_indptr[row];
    if (r.n > 0 && r.ids[r.n - 1] == job->n_labels) r.offset = r.values[--r.n];
    return r;
}

static int contains(const int32_t *sorted, int64_t n, int64_t value);

static inline float g_of(const GRow *r, int64_t label) {
    int at = r->n ? contains(r->ids, r->n, label) : -1;
    return r->offset + (at >= 0 ? r->values[at] : 0.0f);
}

/* f = h(s), and h'(s) in *slope when slope is not NULL */
static inline float transformed(const Job *job, float s, float *slope) {
    if (job->lam == 0.0f) {
        if (slope) *slope = job->c;
        return job->c == 1.0f ? s : job->c * s;
    }
    float g = 1.0f / (1.0f + expf(-(job->alpha * s + job->beta)));
    if (slope) *slope = job->c + job->lam * (g + job->alpha * s * g * (1.0f - g));
    return s * (job->c + job->lam * g);
}

/* An example's input, for the terms of top-k: its features, their values and the pair's own item
 * among them (-1: none). */
typedef struct {
    const int32_t *feat;
    const float *weight;
    int64_t nf;
    int64_t self;
} Input;

/* The sum of the k largest terms x_i U_i . v of the input (the own item left out; all of them
 * where there are at most k), their places in the input in top[0 .. *n_top). */
static float top_terms(const Job *job, const Input *in, const float *v, int32_t *top, float *values, int *n_top) {
    int n = 0, d = job->d;
    for (int64_t i = 0; i < in->nf; i++) {
        if (i == in->self) continue;
        float t = in->weight[i] * dot(job->U + (int64_t)in->feat[i] * d, v, d);
        if (n == job->top_k && t <= values[n - 1]) continue;
        int at = n < job->top_k ? n++ : n - 1; /* the smallest kept goes where the list is full */
        while (at > 0 && values[at - 1] < t) { /* kept in descending order */
            values[at] = values[at - 1];
            top[at] = top[at - 1];
            at--;
        }
        values[at] = t;
        top[at] = (int32_t)i;
    }
    float sum = 0.0f;
    for (int j = 0; j < n; j++) sum += values[j];
    *n_top = n;
    return sum;
}

/* f of a label whose row of V is v, and d f / d s_in, d f / d s_b in slope[0], slope[1] when slope is
 * not NULL. x is the input's sum with the bias feature's row in it, unless split: then x is the
 * features' sum alone and xb the bias feature's row (with G, where the prior stays outside it). */
static inline float score(const Job *job, const GRow *r, const Input *in, int32_t *top, float *values, int *n_top,
                          const float *x, const float *xb, int split, const float *v, int64_t label, float *slope) {
    if (job->top_k) { /* top: the k largest terms' places (n_top of them), values: scratch */
        float f = (1.0f - job->rest) * top_terms(job, in, v, top, values, n_top) + job->rest * dot(x, v, job->d);
        if (split) f += dot(xb, v, job->d);
        if (slope) {
            slope[0] = job->rest; /* of s_in; the k largest terms' own slopes, 1 - rest, apart */
            slope[1] = 1.0f;
        }
        return f;
    }
    if (!job->g_indptr) {
        float f = transformed(job, dot(x, v, job->d), slope);
        if (slope) slope[1] = slope[0];
        return f;
    }
    float G = g_of(r, label);
    float a_in = job->c + job->g_scale * G;
    float f = a_in * dot(x, v, job->d) + job->g_added * G;
    float a_b = a_in;
    if (split) {
        a_b = job->c + (job->prior ? 1.0f : job->g_scale * G);
        f += a_b * dot(xb, v, job->d);
    }
    if (slope) {
        slope[0] = a_in;
        slope[1] = a_b;
    }
    return f;
}

static int contains(const int32_t *sorted, int64_t n, int64_t value) {
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = (lo + hi) >> 1;
        if (sorted[mid] < value) lo = mid + 1; else hi = mid;
    }
    return lo < n && sorted[lo] == value ? (int)lo : -1;
}

/* w -= lr * scale * g (Adagrad-scaled when acc), then back into the ball of radius max_norm. */
static void update_row(const Job *job, float *w, float *acc, const float *g, float scale) {
    int d = job->d;
    if (acc) {
        for (int k = 0; k < d; k++) {
            float gk = scale * g[k];
            acc[k] += gk * gk;
            w[k] -= job->lr * gk / sqrtf(acc[k] + job->eps);
        }
    } else {
        for (int k = 0; k < d; k++) w[k] -= job->lr * scale * g[k];
    }
    float norm = sqrtf(dot(w, w, d));
    if (norm > job->max_norm) {
        float shrink = job->max_norm / norm;
        for (int k = 0; k < d; k++) w[k] *= shrink;
    }
}

static void *run(void *arg) {
    Work *work = (Work *)arg;
    const Job *job = work->job;
    int d = job->d;
    int64_t max_feat = 1, max_lab = 1;
    for (int64_t r = work->thread; r < job->n_rows; r += job->n_threads) {
        int64_t row = job->rows[r];
        int64_t nf = job->x_indptr[row + 1] - job->x_indptr[row];
        int64_t nl = job->y_indptr[row + 1] - job->y_indptr[row];
        if (nf > max_feat) max_feat = nf;
        if (nl > max_lab) max_lab = nl;
    }
    float *sum = calloc((size_t)d, sizeof(float));
    float *x = calloc((size_t)d, sizeof(float));
    float *dx = calloc((size_t)d, sizeof(float));
    float *total = calloc((size_t)d, sizeof(float));
    float *total_b = calloc((size_t)d, sizeof(float)); /* the bias feature's, where the prior is outside G */
    float *gv = calloc((size_t)d, sizeof(float));      /* d f / d V y where the prior is outside G */
    float *own = calloc((size_t)(max_feat * d), sizeof(float)); /* gradient of pairs whose item is feature i */
    int32_t *order = malloc((size_t)max_lab * sizeof(int32_t));
    int64_t *draws = malloc((size_t)(job->K > 0 ? job->K : 1) * sizeof(int64_t));
    int n_k = job->top_k > 0 ? (int)(job->top_k < max_feat ? job->top_k : max_feat) : 1; /* at most the features */
    int32_t *top_y = malloc((size_t)n_k * sizeof(int32_t)), *top_c = malloc((size_t)n_k * sizeof(int32_t));
    float *values = malloc((size_t)n_k * sizeof(float)); /* the k largest terms so far */
    float *tk = job->top_k ? calloc((size_t)(max_feat * d), sizeof(float)) : NULL; /* top-k's terms' gradient */
    if (!sum || !x || !dx || !total || !total_b || !gv || !own || !order || !draws || !top_y || !top_c || !values
        || (job->top_k && !tk)) {
        work->failed = 1;
        goto done;
    }
    uint64_t rng = job->seed ^ (0xD1B54A32D192ED03ULL * (uint64_t)(work->thread + 1));
    for (int64_t r = work->thread; r < job->n_rows; r += job->n_threads) {
        int64_t row = job->rows[r];
        const int32_t *feat = job->x_indices + job->x_indptr[row];
        const float *weight = job->x_data + job->x_indptr[row];
        int64_t nf = job->x_indptr[row + 1] - job->x_indptr[row];
        const int32_t *labels = job->y_indices + job->y_indptr[row];
        int64_t nl = job->y_indptr[row + 1] - job->y_indptr[row];
        if (nl == 0) continue;
        for (int64_t i = 0; i < nf; i++) {
            prefetch_row(job->U + (int64_t)feat[i] * d, d);
            if (job->accU) prefetch_row(job->accU + (int64_t)feat[i] * d, d); /* updated at the example's end */
        }
        for (int64_t p = 0; p < nl; p++) {
            prefetch_row(job->V + (int64_t)labels[p] * d, d);
            if (job->accV) prefetch_row(job->accV + (int64_t)labels[p] * d, d);
        }
        GRow G = g_row(job, row);
        /* the prior outside G (or top-k's k): the bias feature's row scored apart from the features' sum */
        int split = ((job->g_indptr && job->prior) || job->top_k) && job->bias_row >= 0;
        Input in = {feat, weight, nf, -1};
        int n_top_y = 0, n_top_c = 0;
        if (job->top_k) memset(tk, 0, (size_t)(nf * d) * sizeof(float));
        const float *xb = split ? job->U + job->bias_row * d : NULL;
        /* x^T U once per example (the bias feature has weight 1) */
        if (job->bias_row >= 0 && !split) memcpy(sum, job->U + job->bias_row * d, (size_t)d * sizeof(float));
        else memset(sum, 0, (size_t)d * sizeof(float));
        for (int64_t i = 0; i < nf; i++) {
            const float *u = job->U + (int64_t)feat[i] * d;
            for (int k = 0; k < d; k++) sum[k] += weight[i] * u[k];
        }
        memset(total, 0, (size_t)d * sizeof(float));
        if (split) memset(total_b, 0, (size_t)d * sizeof(float));
        int any_own = 0;
        for (int64_t p = 0; p < nl; p++) order[p] = (int32_t)p;
        for (int64_t p = nl - 1; p > 0; p--) { /* the example's pairs in a random order */
            int64_t q = below(&rng, p + 1);
            int32_t t = order[p]; order[p] = order[q]; order[q] = t;
        }
        int64_t room = job->n_labels - nl;
        for (int64_t p = 0; p < nl; p++) {
            int64_t y = labels[order[p]];
            int self = job->leave_one_out ? contains(feat, nf, y) : -1;
            memcpy(x, sum, (size_t)d * sizeof(float));
            if (self >= 0) {
                const float *u = job->U + y * d;
                for (int k = 0; k < d; k++) x[k] -= weight[self] * u[k];
            }
            float *vy = job->V + y * d;
            float slope_y[2], slope_c[2] = {0.0f, 0.0f};
            in.self = self;
            float positive = score(job, &G, &in, top_y, values, &n_top_y, x, xb, split, vy, y, slope_y);
            int64_t violator = -1, trials = 0;
            float negative = 0.0f;
            for (int draw = 0; draw < job->K; draw++) { /* all K drawn first, their rows asked for together */
                draws[draw] = below(&rng, job->n_labels);
                prefetch_row(job->V + draws[draw] * d, d);
            }
            for (int draw = 0; draw < job->K; draw++) {
                int64_t c = draws[draw];
                if (contains(labels, nl, c) >= 0) continue;
                trials++;
                float f = score(job, &G, &in, top_c, values, &n_top_c, x, xb, split, job->V + c * d, c, slope_c);
                if (f > positive - job->margin) {
                    violator = c;
                    negative = f;
                    break;
                }
            }
            work->stats[1] += 1.0;
            if (violator < 0) continue;
            int64_t rank = room / trials;
            if (rank > job->n_labels) rank = job->n_labels;
            float weight_r = job->harmonic[rank];
            work->stats[0] += weight_r * (job->margin - positive + negative);
            work->stats[2] += 1.0;
            work->stats[3] += (double)rank;
            float *vc = job->V + violator * d;
            for (int k = 0; k < d; k++) dx[k] = weight_r * (slope_c[0] * vc[k] - slope_y[0] * vy[k]); /* d loss / d x */
            if (split) {
                for (int k = 0; k < d; k++) total_b[k] += weight_r * (slope_c[1] * vc[k] - slope_y[1] * vy[k]);
            }
            if (job->top_k) { /* the k largest terms of each: slope 1 - rest beside the rest's, from V before it moves */
                float kept = 1.0f - job->rest;
                for (int j = 0; j < n_top_c; j++) {
                    float *t = tk + (int64_t)top_c[j] * d;
                    for (int k = 0; k < d; k++) t[k] += weight_r * kept * vc[k];
                }
                for (int j = 0; j < n_top_y; j++) {
                    float *t = tk + (int64_t)top_y[j] * d;
                    for (int k = 0; k < d; k++) t[k] -= weight_r * kept * vy[k];
                }
            }
            if (split || job->top_k) {
                for (int side = 0; side < 2; side++) { /* y, then the violator */
                    const float *slope = side ? slope_c : slope_y;
                    const int32_t *top = side ? top_c : top_y;
                    int n_top = side ? n_top_c : n_top_y;
                    for (int k = 0; k < d; k++) gv[k] = slope[0] * x[k] + (split ? slope[1] * xb[k] : 0.0f);
                    for (int j = 0; j < n_top; j++) {
                        const float *u = job->U + (int64_t)feat[top[j]] * d;
                        float w = (1.0f - job->rest) * weight[top[j]];
                        for (int k = 0; k < d; k++) gv[k] += w * u[k];
                    }
                    int64_t label = side ? violator : y;
                    update_row(job, job->V + label * d, job->accV ? job->accV + label * d : NULL, gv,
                               side ? weight_r : -weight_r);
                }
            } else {
                update_row(job, vy, job->accV ? job->accV + y * d : NULL, x, -weight_r * slope_y[0]);
                update_row(job, vc, job->accV ? job->accV + violator * d : NULL, x, weight_r * slope_c[0]);
            }
            for (int k = 0; k < d; k++) total[k] += dx[k];
            if (self >= 0) {
                float *o = own + (int64_t)self * d;
                if (!any_own) memset(own, 0, (size_t)(nf * d) * sizeof(float));
                any_own = 1;
                for (int k = 0; k < d; k++) o[k] += dx[k];
            }
        }
        /* U_i gets x_i times the summed gradient of the pairs it was an input of */
        for (int64_t i = 0; i < nf; i++) {
            const float *g = total;
            if (any_own) {
                float *o = own + i * d;
                for (int k = 0; k < d; k++) o[k] = total[k] - o[k];
                g = o;
            }
            if (job->top_k) {
                float *t = tk + i * d;
                for (int k = 0; k < d; k++) t[k] += g[k];
                g = t;
            }
            int64_t f = feat[i];
            update_row(job, job->U + f * d, job->accU ? job->accU + f * d : NULL, g, weight[i]);
        }
        if (job->bias_row >= 0)
            update_row(job, job->U + job->bias_row * d, job->accU ? job->accU + job->bias_row * d : NULL,
                       split ? total_b : total, 1.0f);
    }
done:
    free(sum); free(x); free(dx); free(total); free(total_b); free(gv); free(own); free(order); free(draws);
    free(top_y); free(top_c); free(values); free(tk);
    return NULL;
}

/* Train on rows[0 .. n_rows) once. stats: [loss sum, pairs, violated pairs, rank sum].
 * Returns 0, or -1 when memory ran out or a thread could not start. */
int awe_warp_train(const int64_t *x_indptr, const int32_t *x_indices, const float *x_data,
                   const int64_t *y_indptr, const int32_t *y_indices, const int32_t *rows, int64_t n_rows,
                   int leave_one_out, int64_t bias_row, float *U, float *accU, float *V, float *accV,
                   int64_t n_labels, int d, int K, float margin, float lr, float eps, float max_norm,
                   float c, float lam, float alpha, float beta,
                   const int64_t *g_indptr, const int32_t *g_indices, const float *g_data,
                   float g_scale, float g_added, int prior, int top_k, float rest,
                   const float *harmonic, uint64_t seed, int n_threads, double *stats) {
    if (n_threads < 1) n_threads = 1;
    Job job = {x_indptr, x_indices, x_data, y_indptr, y_indices, rows, n_rows, leave_one_out, bias_row,
               U, accU, V, accV, n_labels, d, K, margin, lr, eps, max_norm, c, lam, alpha, beta,
               g_indptr, g_indices, g_data, g_scale, g_added, prior, top_k, rest, harmonic, seed, n_threads};
    Work *work = calloc((size_t)n_threads, sizeof(Work));
    pthread_t *threads = calloc((size_t)n_threads, sizeof(pthread_t));
    if (!work || !threads) {
        free(work); free(threads);
        return -1;
    }
    int started = 0, failed = 0;
    for (int t = 0; t < n_threads; t++) {
        work[t].job = &job;
        work[t].thread = t;
    }
    for (int t = 1; t < n_threads; t++) {
        if (pthread_create(&threads[t], NULL, run, &work[t]) != 0) {
            failed = 1;
            break;
        }
        started = t;
    }
    if (!failed) run(&work[0]);
    for (int t = 1; t <= started; t++) pthread_join(threads[t], NULL);
    for (int t = 0; t < 4; t++) stats[t] = 0.0;
    for (int t = 0; t < n_threads; t++) {
        failed |= work[t].failed;
        for (int s = 0; s < 4; s++) stats[s] += work[t].stats[s];
    }
    free(work); free(threads);
    return failed ? -1 : 0;
}
