/* Exact top-k by brute force, for benchmark ground truth at a million rows
 * where plain JS takes most of an hour on two cores. It computes what
 * bench/data.js's bruteForceRange computes (float64 accumulation of float32
 * products; l2 = squared distance, cosine = 1 - cos, dot = -dot) and writes
 * data.js's .gt format: magic "VVGT", version 1, nq, k, then int32 ids and
 * float64 distances, row-major by query.
 *
 * usage: bruteforce BASE.f32 N QUERIES.f32 NQ DIM METRIC K THREADS OUT
 * Blocks of QB queries share each base row while it sits in cache; threads
 * split the queries. Built by bench/lazy/gt.js with the system compiler. */

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QB 16

enum { L2, COSINE, DOT };

struct job {
  const float *base, *queries;
  const double *bnorm, *qnorm;
  long n, dim, k, q0, q1;
  int metric;
  int32_t *ids;
  double *dists;
};

static double dot(const float *a, const float *b, long dim) {
  double s = 0;
  for (long j = 0; j < dim; j++) s += (double)a[j] * (double)b[j];
  return s;
}

static double l2sq(const float *a, const float *b, long dim) {
  double s = 0;
  for (long j = 0; j < dim; j++) {
    double d = (double)a[j] - (double)b[j];
    s += d * d;
  }
  return s;
}

static void *run(void *arg) {
  struct job *J = arg;
  long k = J->k;
  for (long qb = J->q0; qb < J->q1; qb += QB) {
    long m = J->q1 - qb < QB ? J->q1 - qb : QB;
    double *D = J->dists + qb * k;
    int32_t *I = J->ids + qb * k;
    for (long t = 0; t < m * k; t++) { D[t] = INFINITY; I[t] = -1; }
    for (long i = 0; i < J->n; i++) {
      const float *b = J->base + i * J->dim;
      for (long t = 0; t < m; t++) {
        const float *q = J->queries + (qb + t) * J->dim;
        double d;
        if (J->metric == L2) d = l2sq(q, b, J->dim);
        else {
          double p = dot(q, b, J->dim);
          if (J->metric == DOT) d = -p;
          else {
            double den = J->qnorm[qb + t] * J->bnorm[i];
            d = den > 0 ? 1 - p / den : 1;
          }
        }
        double *Dt = D + t * k;
        int32_t *It = I + t * k;
        if (d >= Dt[k - 1]) continue;
        long p = k - 1;
        while (p > 0 && Dt[p - 1] > d) { Dt[p] = Dt[p - 1]; It[p] = It[p - 1]; p--; }
        Dt[p] = d;
        It[p] = (int32_t)i;
      }
    }
  }
  return NULL;
}

static float *readf32(const char *file, long count) {
  FILE *f = fopen(file, "rb");
  if (!f) { perror(file); return NULL; }
  float *v = malloc((size_t)count * sizeof(float));
  if (!v || fread(v, sizeof(float), (size_t)count, f) != (size_t)count) {
    fprintf(stderr, "%s: short read\n", file);
    fclose(f);
    free(v);
    return NULL;
  }
  fclose(f);
  return v;
}

static double *norms(const float *v, long n, long dim) {
  double *out = malloc((size_t)n * sizeof(double));
  if (!out) return NULL;
  for (long i = 0; i < n; i++) out[i] = sqrt(dot(v + i * dim, v + i * dim, dim));
  return out;
}

int main(int argc, char **argv) {
  if (argc != 10) {
    fprintf(stderr, "usage: bruteforce BASE.f32 N QUERIES.f32 NQ DIM METRIC K THREADS OUT\n");
    return 2;
  }
  long n = atol(argv[2]), nq = atol(argv[4]), dim = atol(argv[5]), k = atol(argv[7]), threads = atol(argv[8]);
  int metric = !strcmp(argv[6], "l2") ? L2 : !strcmp(argv[6], "cosine") ? COSINE : !strcmp(argv[6], "dot") ? DOT : -1;
  if (n <= 0 || nq <= 0 || dim <= 0 || k <= 0 || k > n || threads <= 0 || metric < 0) {
    fprintf(stderr, "bruteforce: bad arguments\n");
    return 2;
  }
  float *base = readf32(argv[1], n * dim), *queries = readf32(argv[3], nq * dim);
  int32_t *ids = malloc((size_t)(nq * k) * sizeof(int32_t));
  double *dists = malloc((size_t)(nq * k) * sizeof(double));
  double *bn = metric == COSINE && base ? norms(base, n, dim) : NULL;
  double *qn = metric == COSINE && queries ? norms(queries, nq, dim) : NULL;
  if (!base || !queries || !ids || !dists || (metric == COSINE && (!bn || !qn))) return 1;

  pthread_t tid[64];
  struct job jobs[64];
  if (threads > 64) threads = 64;
  long per = (nq + threads - 1) / threads;
  /* Blocks of QB queries per thread: round the split up to a block. */
  per = (per + QB - 1) / QB * QB;
  long started = 0;
  for (long w = 0; w < threads && w * per < nq; w++) {
    jobs[w] = (struct job){ base, queries, bn, qn, n, dim, k, w * per, (w + 1) * per < nq ? (w + 1) * per : nq, metric, ids, dists };
    if (pthread_create(&tid[w], NULL, run, &jobs[w])) { fprintf(stderr, "bruteforce: pthread_create failed\n"); return 1; }
    started++;
  }
  for (long w = 0; w < started; w++) pthread_join(tid[w], NULL);

  FILE *f = fopen(argv[9], "wb");
  if (!f) { perror(argv[9]); return 1; }
  uint32_t head[4] = { 0x54475656, 1, (uint32_t)nq, (uint32_t)k };
  int bad = fwrite(head, sizeof head, 1, f) != 1 ||
            fwrite(ids, sizeof(int32_t), (size_t)(nq * k), f) != (size_t)(nq * k) ||
            fwrite(dists, sizeof(double), (size_t)(nq * k), f) != (size_t)(nq * k);
  if (fclose(f) || bad) { fprintf(stderr, "bruteforce: write failed\n"); return 1; }
  return 0;
}
