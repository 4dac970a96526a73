/*
 * distance/dispatch.c: picks the kernel set for this CPU.
 *
 * Owns: the per-ISA kernel tables, vv_kernels_best() (decided once, cached),
 * vv_kernels_for() and vv_isa_name(). The only place that knows which
 * SIMD variants exist and how to detect them.
 *
 * VECVAULT_ISA=scalar|avx2|neon forces a set for tests and benchmarks. It is
 * read once, on the first vv_kernels_best() call; a value naming an ISA this
 * build or CPU cannot run is ignored (we fall back to detection rather than
 * fault with SIGILL later).
 */
#include "distance.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const vv_kernels vv_kernels_scalar = {
  VV_ISA_SCALAR, vv_l2sq_f32_scalar, vv_dot_f32_scalar
};

#if defined(__x86_64__) || defined(_M_X64)
static const vv_kernels vv_kernels_avx2 = {
  VV_ISA_AVX2, vv_l2sq_f32_avx2, vv_dot_f32_avx2
};
#endif

#if defined(__aarch64__)
static const vv_kernels vv_kernels_neon = {
  VV_ISA_NEON, vv_l2sq_f32_neon, vv_dot_f32_neon
};
#endif

#if defined(__x86_64__) || defined(_M_X64)
static int vv_cpu_has_avx2_fma(void) {
#if defined(__GNUC__) || defined(__clang__)
  /* Only strictly needed before constructors have run, but cheap and harmless. */
  __builtin_cpu_init();
  /* Both: the kernels use FMA, and a few CPUs (and VMs) expose AVX2 without it. */
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  /* No portable cpuid here; MSVC builds take the scalar path. */
  return 0;
#endif
}
#endif

const vv_kernels *vv_kernels_for(vv_isa isa) {
  switch (isa) {
  case VV_ISA_SCALAR:
    return &vv_kernels_scalar;
  case VV_ISA_AVX2:
#if defined(__x86_64__) || defined(_M_X64)
    if (vv_cpu_has_avx2_fma())
      return &vv_kernels_avx2;
#endif
    return NULL;
  case VV_ISA_NEON:
#if defined(__aarch64__)
    return &vv_kernels_neon;
#else
    return NULL;
#endif
  }
  return NULL;
}

const char *vv_isa_name(vv_isa isa) {
  switch (isa) {
  case VV_ISA_SCALAR:
    return "scalar";
  case VV_ISA_AVX2:
    return "avx2";
  case VV_ISA_NEON:
    return "neon";
  }
  return "unknown";
}

static const vv_kernels *vv_kernels_detect(void) {
  const vv_kernels *k = vv_kernels_for(VV_ISA_AVX2);
  if (k == NULL)
    k = vv_kernels_for(VV_ISA_NEON);
  if (k == NULL)
    k = &vv_kernels_scalar;
  return k;
}

static const vv_kernels *vv_kernels_forced(void) {
  const char *want = getenv("VECVAULT_ISA");
  if (want == NULL)
    return NULL;
  if (strcmp(want, "scalar") == 0)
    return vv_kernels_for(VV_ISA_SCALAR);
  if (strcmp(want, "avx2") == 0)
    return vv_kernels_for(VV_ISA_AVX2);
  if (strcmp(want, "neon") == 0)
    return vv_kernels_for(VV_ISA_NEON);
  return NULL;
}

/* Written only inside pthread_once, which also publishes it to other threads. */
static const vv_kernels *vv_best;
static pthread_once_t vv_best_once = PTHREAD_ONCE_INIT;

static void vv_best_init(void) {
  const vv_kernels *k = vv_kernels_forced();
  vv_best = k != NULL ? k : vv_kernels_detect();
}

const vv_kernels *vv_kernels_best(void) {
  pthread_once(&vv_best_once, vv_best_init);
  return vv_best;
}
