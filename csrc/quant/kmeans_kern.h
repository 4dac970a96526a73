/*
 * quant/kmeans_kern.h: the kernels behind kmeans.c, written once in GNU C
 * vector extensions and instantiated by kmeans.c per vector width: 4 lanes
 * for the portable build (SSE2, NEON, or scalar code where the target has no
 * SIMD) and 8 lanes under target("avx2,fma"). No include guard: kmeans.c is
 * the only includer, once per instance.
 *
 * The instance defines:
 *   KK_VW             floats per vector (4 or 8; VV_KM_BLOCK must divide by it)
 *   KK_FN(name)       the instance's name for `name`
 *   KK_ATTR           attributes for every function (the target ISA)
 *   KK_MADD(a, b, c)  a + b * c on vectors (an FMA where the ISA has one)
 *   KK_MAX(a, b)      lane-wise maximum (either operand if one is NaN)
 *   KK_SPLAT(s)       the vector with s in every lane
 *   KK_PIN(v)         keeps v in a register (stops the compiler folding a
 *                     load shared by several FMAs into each of them)
 * and this file undefines them at its end.
 *
 * All kernels read a blocked codebook (see vv_kmeans_blocked_build): per
 * block of VV_KM_BLOCK centroids, one row of -||c||^2/2 and then d rows of
 * coordinates, each row VV_KM_BLOCK floats. Centroids sit in vector lanes,
 * so the inner loop is a broadcast of x[t] times a row, VV_KM_BLOCK
 * centroids at a time, with no horizontal sums. The nearest centroid
 * maximises the score x.c - ||c||^2/2 (= (||x||^2 - ||x - c||^2) / 2);
 * ties go to the lowest index, padding lanes score -inf and never win.
 */

#define KK_NV (VV_KM_BLOCK / KK_VW) /* vectors per block row */
/* Rows scored per pass: KK_P * KK_NV = 8 independent accumulator chains,
 * enough to keep two FMA pipes busy through the FMA latency, and each
 * codebook row loaded serves KK_P rows. */
#define KK_P (8 / KK_NV)

typedef float KK_FN(vf) __attribute__((vector_size(KK_VW * sizeof(float))));
typedef int32_t KK_FN(vi) __attribute__((vector_size(KK_VW * sizeof(float))));

#define KK_INLINE static inline __attribute__((always_inline)) KK_ATTR

KK_INLINE KK_FN(vf) KK_FN(load)(const float *p) {
  KK_FN(vf) v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* Lane-wise m ? a : b, m from a vector comparison (all ones or zero). */
KK_INLINE KK_FN(vi) KK_FN(select)(KK_FN(vi) m, KK_FN(vi) a, KK_FN(vi) b) { return (a & m) | (b & ~m); }

/* Horizontal max and min as trees, for a short dependency chain. */
KK_INLINE float KK_FN(hmax)(KK_FN(vf) v) {
  float a[KK_VW];
  memcpy(a, &v, sizeof a);
  for (int w = KK_VW / 2; w > 0; w /= 2)
    for (int l = 0; l < w; l++) a[l] = a[l + w] > a[l] ? a[l + w] : a[l];
  return a[0];
}

KK_INLINE int32_t KK_FN(hmin)(KK_FN(vi) v) {
  int32_t a[KK_VW];
  memcpy(a, &v, sizeof a);
  for (int w = KK_VW / 2; w > 0; w /= 2)
    for (int l = 0; l < w; l++) a[l] = a[l + w] < a[l] ? a[l + w] : a[l];
  return a[0];
}

/* Scores of one block for P rows: sc[p][v]. */
KK_INLINE void KK_FN(block_scores)(const float *blk, uint32_t d, const float *const *x, int P,
                                   KK_FN(vf) sc[][KK_NV]) {
  for (int v = 0; v < KK_NV; v++) {
    KK_FN(vf) h = KK_FN(load)(blk + v * KK_VW);
    for (int p = 0; p < P; p++) sc[p][v] = h;
  }
  for (uint32_t t = 0; t < d; t++) {
    const float *row = blk + (size_t)(t + 1) * VV_KM_BLOCK;
    KK_FN(vf) c[KK_NV];
    for (int v = 0; v < KK_NV; v++) {
      KK_FN(vf) cv = KK_FN(load)(row + v * KK_VW);
      if (P > 1) KK_PIN(cv); /* one load for all P rows, not one each */
      c[v] = cv;
    }
    for (int p = 0; p < P; p++) {
      KK_FN(vf) xt = KK_SPLAT(x[p][t]);
      for (int v = 0; v < KK_NV; v++) sc[p][v] = KK_MADD(sc[p][v], c[v], xt);
    }
  }
}

/* sc[v], ix[v] = the better of v and v + w, v on a tie. */
KK_INLINE void KK_FN(merge)(KK_FN(vf) *sc, KK_FN(vi) *ix, int v, int w) {
  KK_FN(vi) gt = sc[v + w] > sc[v];
  sc[v] = KK_MAX(sc[v + w], sc[v]);
  ix[v] = KK_FN(select)(gt, ix[v + w], ix[v]);
}

/*
 * The nearest centroid idx[p] of each of P rows (P a constant). Per row and
 * lane the loop keeps the best score so far and its centroid: the best of
 * the block's vectors (a tree of pairs, the left winning a tie), then
 * against the running best (strictly greater wins, so the earlier block
 * keeps a tie). The end takes the best lane, the lowest index among equal
 * scores. All of it is branch-free, so the end of one call overlaps the
 * next. A row with a NaN gets centroid 0 (every lane keeps its start).
 */
KK_INLINE void KK_FN(nearest_body)(const float *blk, uint32_t nblk, uint32_t d, const float *const *x, int P,
                                   uint32_t *idx) {
  const size_t bstep = (size_t)(d + 1) * VV_KM_BLOCK;
  KK_FN(vf) best[KK_P], sc[KK_P][KK_NV];
  KK_FN(vi) bidx[KK_P], lane, none;
  for (int l = 0; l < KK_VW; l++) {
    lane[l] = l;
    none[l] = INT32_MAX;
  }
  for (int p = 0; p < P; p++) {
    best[p] = KK_SPLAT(-INFINITY);
    bidx[p] = lane;
  }
  for (uint32_t b = 0; b < nblk; b++, lane += VV_KM_BLOCK) {
    KK_FN(block_scores)(blk + b * bstep, d, x, P, sc);
    for (int p = 0; p < P; p++) {
      KK_FN(vi) ix[KK_NV];
      for (int v = 0; v < KK_NV; v++) ix[v] = lane + v * KK_VW;
      for (int v = 0; v < KK_NV; v += 2) KK_FN(merge)(sc[p], ix, v, 1);
      for (int v = 0; v < KK_NV; v += 4) KK_FN(merge)(sc[p], ix, v, 2);
#if KK_NV == 8
      KK_FN(merge)(sc[p], ix, 0, 4);
#elif KK_NV != 4
#error "the merge tree covers 4 or 8 vectors per block row"
#endif
      KK_FN(vi) gt = sc[p][0] > best[p];
      best[p] = KK_MAX(sc[p][0], best[p]);
      bidx[p] = KK_FN(select)(gt, ix[0], bidx[p]);
    }
  }
  for (int p = 0; p < P; p++) {
    KK_FN(vi) at_top = best[p] == KK_SPLAT(KK_FN(hmax)(best[p]));
    idx[p] = (uint32_t)KK_FN(hmin)(KK_FN(select)(at_top, bidx[p], none));
  }
}

/* n rows: KK_P at a time, a short last group repeating its last row; a
 * single row alone, as a group would only repeat the work. rows[i] + off
 * is the sub-vector scored. */
KK_INLINE void KK_FN(nearest_many)(const float *blk, uint32_t nblk, uint32_t d, const float *const *rows, size_t off,
                                   size_t n, uint32_t *idx) {
  if (n == 1) {
    const float *x = rows[0] + off;
    KK_FN(nearest_body)(blk, nblk, d, &x, 1, idx);
    return;
  }
  for (size_t i = 0; i < n; i += KK_P) {
    const float *x[KK_P];
    uint32_t gi[KK_P];
    for (size_t p = 0; p < KK_P; p++) x[p] = rows[i + p < n ? i + p : n - 1] + off;
    KK_FN(nearest_body)(blk, nblk, d, x, KK_P, gi);
    for (size_t p = 0; p < KK_P && i + p < n; p++) idx[i + p] = gi[p];
  }
}

KK_ATTR static void KK_FN(nearest_rows)(const float *blk, uint32_t k, uint32_t d, const float *const *rows,
                                        size_t n, uint32_t *idx) {
  KK_FN(nearest_many)(blk, (k + VV_KM_BLOCK - 1) / VV_KM_BLOCK, d, rows, 0, n, idx);
}

/* Codebook by codebook, so the one in use stays in L1 for every row. */
KK_ATTR static void KK_FN(encode)(const float *blk, uint32_t k, uint32_t d, uint32_t parts, const float *const *rows,
                                  size_t n, uint8_t *const *codes) {
  const uint32_t nblk = (k + VV_KM_BLOCK - 1) / VV_KM_BLOCK;
  const size_t book = (size_t)nblk * (d + 1) * VV_KM_BLOCK;
  enum { CHUNK = 64 };
  uint32_t idx[CHUNK];
  for (uint32_t j = 0; j < parts; j++)
    for (size_t i = 0; i < n; i += CHUNK) {
      size_t m = n - i < CHUNK ? n - i : CHUNK;
      KK_FN(nearest_many)(blk + j * book, nblk, d, rows + i, (size_t)j * d, m, idx);
      for (size_t r = 0; r < m; r++) codes[i + r][j] = (uint8_t)idx[r];
    }
}

/* One codebook's distances; `l2` is a constant at each call site. Bound
 * by reading the codebook from L2, not by arithmetic. */
KK_INLINE void KK_FN(dists_body)(const float *blk, uint32_t k, uint32_t d, const float *x, int l2, float *out) {
  const uint32_t nblk = (k + VV_KM_BLOCK - 1) / VV_KM_BLOCK;
  for (uint32_t b = 0; b < nblk; b++, blk += (size_t)(d + 1) * VV_KM_BLOCK) {
    KK_FN(vf) acc[KK_NV];
    for (int v = 0; v < KK_NV; v++) acc[v] = KK_SPLAT(0.0f);
    for (uint32_t t = 0; t < d; t++) {
      KK_FN(vf) xt = KK_SPLAT(x[t]);
      const float *row = blk + (size_t)(t + 1) * VV_KM_BLOCK;
      for (int v = 0; v < KK_NV; v++) {
        KK_FN(vf) c = KK_FN(load)(row + v * KK_VW), diff = c - xt;
        acc[v] = l2 ? KK_MADD(acc[v], diff, diff) : KK_MADD(acc[v], c, xt);
      }
    }
    float lane[VV_KM_BLOCK];
    for (int v = 0; v < KK_NV; v++) {
      KK_FN(vf) r = l2 ? acc[v] : -acc[v];
      memcpy(lane + v * KK_VW, &r, sizeof r);
    }
    uint32_t c0 = b * VV_KM_BLOCK, nc = k - c0 < VV_KM_BLOCK ? k - c0 : VV_KM_BLOCK;
    memcpy(out + c0, lane, nc * sizeof(float));
  }
}

/* Distances from each of `parts` sub-vectors to every centroid of its
 * codebook, out[j * k + c]: squared L2 (l2 != 0) or negative inner product. */
KK_ATTR static void KK_FN(dists)(const float *blk, uint32_t k, uint32_t d, uint32_t parts, const float *x, int l2,
                                 float *out) {
  const size_t book = (size_t)((k + VV_KM_BLOCK - 1) / VV_KM_BLOCK) * (d + 1) * VV_KM_BLOCK;
  for (uint32_t j = 0; j < parts; j++) {
    if (l2)
      KK_FN(dists_body)(blk + j * book, k, d, x + (size_t)j * d, 1, out + (size_t)j * k);
    else
      KK_FN(dists_body)(blk + j * book, k, d, x + (size_t)j * d, 0, out + (size_t)j * k);
  }
}

#undef KK_NV
#undef KK_P
#undef KK_INLINE
/* The instance's parameters too, ready for the next one. */
#undef KK_VW
#undef KK_FN
#undef KK_ATTR
#undef KK_MADD
#undef KK_MAX
#undef KK_SPLAT
#undef KK_PIN
