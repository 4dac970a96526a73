/*
 * bench/codes/codes_bench.c: measures the compact codes of quant/codes.h on
 * one dataset, for bench/codes.js (which writes the inputs and prints the
 * table).
 *
 *   codes_bench BASE QUERIES GT N NQ DIM METRIC CONFIG...
 *
 * BASE, QUERIES: raw little-endian float32 rows; GT: int32, the exact
 * top-10 ids per query; METRIC: l2 | cosine (rows already unit length).
 * CONFIG: kind[:key=value,...] with kind pq | opq | rabitq | sq4 and keys
 * m, bits, iters, rounds. For each config one JSON line on stdout: code
 * bytes, training and encoding time, recall@10 after re-ranking the R best
 * by code distance (R = 10, 20, 40, 80, 160; a full scan over the codes per
 * query, so only the ranking is measured), the cost of one code distance in
 * random order (as a graph walk asks), of a sequential scan, and of
 * preparing a query. Single-threaded except training (2 threads); per-code
 * and per-query costs are this thread's CPU time, the best of 3 passes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "distance/distance.h"
#include "quant/codes.h"
#include "quant/codes_kern.h"

#define K 10
#define MAX_R 160
#define TRAIN_SAMPLE 16384
static const size_t RS[] = {10, 20, 40, 80, 160};
#define NR (sizeof RS / sizeof RS[0])

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* This thread's CPU time: per-code costs are timed with it, so time spent
 * descheduled on a shared machine does not count. */
static double cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *slurp(const char *path, size_t want) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(2);
  }
  void *b = malloc(want);
  if (!b || fread(b, 1, want, f) != want) {
    fprintf(stderr, "%s: short read\n", path);
    exit(2);
  }
  fclose(f);
  return b;
}

static int parse_config(const char *s, vv_codes_params *p) {
  memset(p, 0, sizeof *p);
  p->seed = 0x5eedc0de;
  p->threads = 2;
  char kind[16] = {0};
  size_t kl = strcspn(s, ":");
  if (kl >= sizeof kind) return -1;
  memcpy(kind, s, kl);
  if (!strcmp(kind, "pq")) p->kind = VV_CODE_PQ;
  else if (!strcmp(kind, "opq")) p->kind = VV_CODE_OPQ;
  else if (!strcmp(kind, "rabitq")) p->kind = VV_CODE_RABITQ;
  else if (!strcmp(kind, "sq4")) p->kind = VV_CODE_SQ4;
  else return -1;
  const char *q = s + kl;
  while (*q == ':' || *q == ',') {
    q++;
    char key[16];
    unsigned val;
    int used;
    if (sscanf(q, "%15[a-z]=%u%n", key, &val, &used) != 2) return -1;
    if (!strcmp(key, "m")) p->m = val;
    else if (!strcmp(key, "bits")) p->bits = val;
    else if (!strcmp(key, "iters")) p->iters = val;
    else if (!strcmp(key, "rounds")) p->rounds = val;
    else return -1;
    q += used;
  }
  return *q ? -1 : 0;
}

/* Indices of the `r` smallest of est[0..n) (a max-heap of size r), sorted by estimate. */
static void smallest(const float *est, size_t n, size_t r, uint32_t *out) {
  size_t h = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (h < r) {
      size_t c = h++;
      out[c] = i;
      while (c && est[out[(c - 1) / 2]] < est[out[c]]) {
        uint32_t t = out[c];
        out[c] = out[(c - 1) / 2];
        out[(c - 1) / 2] = t;
        c = (c - 1) / 2;
      }
    } else if (est[i] < est[out[0]]) {
      out[0] = i;
      for (size_t c = 0;;) {
        size_t l = 2 * c + 1, m = c;
        if (l < h && est[out[l]] > est[out[m]]) m = l;
        if (l + 1 < h && est[out[l + 1]] > est[out[m]]) m = l + 1;
        if (m == c) break;
        uint32_t t = out[c];
        out[c] = out[m];
        out[m] = t;
        c = m;
      }
    }
  }
  /* heap -> ascending by repeated extraction */
  for (size_t end = h; end > 1; end--) {
    uint32_t t = out[0];
    out[0] = out[end - 1];
    out[end - 1] = t;
    for (size_t c = 0;;) {
      size_t l = 2 * c + 1, m = c;
      if (l < end - 1 && est[out[l]] > est[out[m]]) m = l;
      if (l + 1 < end - 1 && est[out[l + 1]] > est[out[m]]) m = l + 1;
      if (m == c) break;
      uint32_t u = out[c];
      out[c] = out[m];
      out[m] = u;
      c = m;
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 9) {
    fprintf(stderr, "usage: codes_bench BASE QUERIES GT N NQ DIM l2|cosine CONFIG...\n");
    return 2;
  }
  size_t n = strtoull(argv[4], NULL, 10), nq = strtoull(argv[5], NULL, 10);
  uint32_t dim = (uint32_t)strtoul(argv[6], NULL, 10);
  int l2 = !strcmp(argv[7], "l2");
  float *base = slurp(argv[1], sizeof(float) * n * dim);
  float *queries = slurp(argv[2], sizeof(float) * nq * dim);
  int32_t *gt = slurp(argv[3], sizeof(int32_t) * nq * K);

  size_t ns = n < TRAIN_SAMPLE ? n : TRAIN_SAMPLE;
  float *sample = malloc(sizeof(float) * ns * dim);
  for (size_t i = 0; i < ns; i++) memcpy(sample + i * dim, base + (i * n / ns) * dim, sizeof(float) * dim);

  /* A random visiting order over the codes, as a graph walk's. */
  uint32_t *perm = malloc(sizeof(uint32_t) * n);
  uint64_t st = 99;
  for (uint32_t i = 0; i < n; i++) perm[i] = i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = vv_splitmix64(&st) % (i + 1);
    uint32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  /* The exact kernel in the same order, for scale. */
  {
    const vv_kernels *kern = vv_kernels_best();
    double sink = 0, t = INFINITY;
    size_t reps = 200000;
    for (int pass = 0; pass < 3; pass++) {
      double t0 = cpu();
      for (size_t i = 0; i < reps; i++)
        sink += (l2 ? kern->l2sq : kern->dot)(queries, base + (size_t)perm[(i + pass * 7919) % n] * dim, dim);
      t = fmin(t, cpu() - t0);
    }
    printf("{\"config\":\"exact-f32\",\"bytes\":%zu,\"ns_random\":%.2f,\"sink\":%g}\n", sizeof(float) * dim,
           t / reps * 1e9, sink);
    fflush(stdout);
  }

  /* Each kernel alone, on codes and tables hot in L1: what the ISA buys
   * without the memory system's share. */
  {
    uint64_t ks = 5;
    uint32_t ms[2] = {dim / 8, dim / 4};
    size_t pbytes = (dim + 7) / 8, ncodes = 64;
    float *table = malloc(sizeof(float) * 256 * ms[1]);
    uint8_t *kc = malloc(4 * pbytes * ncodes), *qu = malloc(vv_codes_qpad(pbytes));
    for (size_t i = 0; i < 256 * (size_t)ms[1]; i++) table[i] = (float)(vv_splitmix64(&ks) % 1000);
    for (size_t i = 0; i < 4 * pbytes * ncodes; i++) kc[i] = (uint8_t)vv_splitmix64(&ks);
    memset(qu, 128, vv_codes_qpad(pbytes));
    for (size_t i = 0; i < dim; i++) qu[i] = (uint8_t)vv_splitmix64(&ks);
    printf("{\"kernels\":[");
    for (int isa = 0; isa < VV_CODE_ISA_COUNT; isa++) {
      const vv_code_kernels *k = vv_code_kernels_for((vv_code_isa)isa);
      if (!k) continue;
      double sink = 0, t[6];
      for (int w = 0; w < 6; w++) {
        size_t reps = isa ? 400000 : 40000;
        t[w] = INFINITY;
        for (int pass = 0; pass < 3; pass++) {
          double t0 = cpu();
          for (size_t r = 0; r < reps; r++) {
            const uint8_t *code = kc + (r % ncodes) * 4 * pbytes;
            sink += w < 2 ? k->adc(table, 256, ms[w], code) : k->planes(code, (uint32_t)w - 1, pbytes, qu);
          }
          t[w] = fmin(t[w], (cpu() - t0) / reps * 1e9);
        }
      }
      printf("%s{\"isa\":\"%s\",\"adc_m%u\":%.2f,\"adc_m%u\":%.2f,\"planes1\":%.2f,\"planes2\":%.2f,"
             "\"planes3\":%.2f,\"planes4\":%.2f,\"sink\":%g}",
             isa ? "," : "", k->name, ms[0], t[0], ms[1], t[1], t[2], t[3], t[4], t[5], sink);
    }
    printf("]}\n");
    fflush(stdout);
    free(table);
    free(kc);
    free(qu);
  }

  for (int a = 8; a < argc; a++) {
    vv_codes_params p;
    if (parse_config(argv[a], &p)) {
      fprintf(stderr, "bad config %s\n", argv[a]);
      return 2;
    }
    vv_codes *c;
    double t0 = now();
    int rc = vv_codes_train(&p, sample, ns, dim, l2, &c);
    double t_train = now() - t0;
    if (rc) {
      printf("{\"config\":\"%s\",\"error\":%d}\n", argv[a], rc);
      continue;
    }
    size_t cb = vv_codes_code_bytes(c);
    uint8_t *codes = malloc(cb * n);
    t0 = now();
    for (size_t i = 0; i < n; i++)
      if (vv_codes_encode(c, base + i * dim, codes + i * cb)) return 3;
    double t_encode = now() - t0;
    void *state = malloc(vv_codes_state_bytes(c));
    float *est = malloc(sizeof(float) * n);
    uint32_t top[MAX_R];
    double hits[NR] = {0}, t_scan = 0, t_query = 0;
    for (size_t qi = 0; qi < nq; qi++) {
      t0 = cpu();
      if (vv_codes_query(c, queries + qi * dim, state)) return 3;
      double t1 = cpu();
      vv_codes_distance_scan(c, state, codes, n, est);
      t_scan += cpu() - t1;
      t_query += t1 - t0;
      smallest(est, n, MAX_R, top);
      for (size_t r = 0; r < NR; r++)
        for (size_t g = 0; g < K; g++)
          for (size_t i = 0; i < RS[r]; i++)
            if ((int32_t)top[i] == gt[qi * K + g]) {
              hits[r]++;
              break;
            }
    }
    /* One code at a time in random order: 3 passes of 20 queries, 2e5
     * codes each; the best pass counts. */
    size_t rq = nq < 20 ? nq : 20, per = n < 200000 ? n : 200000;
    double t_rand = INFINITY, sink = 0;
    for (int pass = 0; pass < 3; pass++) {
      double tp = 0;
      for (size_t qi = 0; qi < rq; qi++) {
        if (vv_codes_query(c, queries + qi * dim, state)) return 3;
        t0 = cpu();
        for (size_t i = 0; i < per; i++)
          sink += vv_codes_distance(c, state, codes + (size_t)perm[(qi * 7919 + pass * 104729 + i) % n] * cb);
        tp += cpu() - t0;
      }
      t_rand = fmin(t_rand, tp);
    }
    printf("{\"config\":\"%s\",\"isa\":\"%s\",\"bytes\":%zu,\"train_s\":%.3f,\"encode_us\":%.2f,\"recall\":[", argv[a],
           vv_codes_isa(c), cb, t_train, t_encode / n * 1e6);
    for (size_t r = 0; r < NR; r++) printf("%s%.4f", r ? "," : "", hits[r] / (K * (double)nq));
    printf("],\"rerank\":[");
    for (size_t r = 0; r < NR; r++) printf("%s%zu", r ? "," : "", RS[r]);
    printf("],\"ns_random\":%.2f,\"ns_scan\":%.2f,\"query_us\":%.2f,\"sink\":%g}\n", t_rand / (rq * per) * 1e9,
           t_scan / ((double)nq * n) * 1e9, t_query / nq * 1e6, sink);
    fflush(stdout);
    free(codes);
    free(state);
    free(est);
    vv_codes_free(c);
  }
  free(base);
  free(queries);
  free(gt);
  free(sample);
  free(perm);
  return 0;
}
