/*
 * test/c/test_distance.c: distance kernels and the ISA dispatcher.
 *
 * Every kernel set this CPU can run is checked against a double-precision
 * reference and the scalar kernels, on random data at lengths around every
 * unroll boundary, aligned and misaligned, with buffers sized exactly so ASan
 * catches any read past n. Integer-valued inputs give exact expected sums.
 */
#include "vvtest.h"

#include "distance/distance.h"

#include <stdint.h>

#if defined(__linux__)
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
extern char **environ;
#endif

static const size_t lengths[] = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63,
                                 64, 65, 100, 127, 128, 383, 384, 385, 784, 1000,
                                 1536, 4096};
#define NLENGTHS (sizeof lengths / sizeof lengths[0])

static const vv_isa all_isas[] = {VV_ISA_SCALAR, VV_ISA_AVX2, VV_ISA_NEON};
#define NISAS (sizeof all_isas / sizeof all_isas[0])

/* Deterministic so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static float rand_unit(void) { /* uniform in [-1, 1) */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  z ^= z >> 31;
  return (float)((double)(z >> 40) / (double)(1u << 23) - 1.0);
}

/*
 * Exactly `offset + n` floats; the vector starts at `offset`, so with
 * offset 1 it is 4 bytes off malloc's alignment and ends at the allocation's
 * last byte, where ASan flags any over-read.
 */
static float *alloc_vec(size_t n, size_t offset, float **base) {
  *base = malloc((n + offset) * sizeof(float));
  return *base ? *base + offset : NULL;
}

static vv_isa expected_auto_isa(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return VV_ISA_AVX2;
  return VV_ISA_SCALAR;
#elif defined(__aarch64__)
  return VV_ISA_NEON;
#else
  return VV_ISA_SCALAR;
#endif
}

/* Checks one kernel set on one (a, b, n) against references computed in double. */
static void check_against_reference(const vv_kernels *k, const float *a,
                                    const float *b, size_t n) {
  double l2 = 0.0, l2_mag = 0.0, dot = 0.0, dot_mag = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)a[i] - (double)b[i];
    double p = (double)a[i] * (double)b[i];
    l2 += d * d;
    l2_mag += d * d;
    dot += p;
    dot_mag += fabs(p);
  }
  /*
   * Tolerance relative to the sum of |terms|, not to the result: a dot
   * product can cancel to near zero while each float ordering still carries
   * rounding error proportional to the terms' size.
   */
  double l2_tol = 1e-4 * l2_mag, dot_tol = 1e-4 * dot_mag;
  float l2_k = k->l2sq(a, b, n), dot_k = k->dot(a, b, n);
  VV_CHECK_NEAR(l2_k, l2, l2_tol);
  VV_CHECK_NEAR(dot_k, dot, dot_tol);
  VV_CHECK_NEAR(l2_k, vv_l2sq_f32_scalar(a, b, n), l2_tol);
  VV_CHECK_NEAR(dot_k, vv_dot_f32_scalar(a, b, n), dot_tol);
  VV_CHECK(l2_k >= 0.0f);
}

static void check_random(size_t offset) {
  for (size_t li = 0; li < NLENGTHS; li++) {
    size_t n = lengths[li];
    float *abase, *bbase;
    float *a = alloc_vec(n, offset, &abase);
    float *b = alloc_vec(n, offset, &bbase);
    VV_CHECK(a != NULL && b != NULL);
    if (a == NULL || b == NULL) {
      free(abase);
      free(bbase);
      return;
    }
    for (size_t i = 0; i < n; i++) {
      a[i] = rand_unit();
      b[i] = rand_unit();
    }
    for (size_t j = 0; j < NISAS; j++) {
      const vv_kernels *k = vv_kernels_for(all_isas[j]);
      if (k == NULL)
        continue;
      VV_NOTE("isa=%s n=%zu offset=%zu", vv_isa_name(k->isa), n, offset);
      check_against_reference(k, a, b, n);
    }
    free(abase);
    free(bbase);
  }
}

VV_TEST(random_inputs_match_reference_aligned) { check_random(0); }

VV_TEST(random_inputs_match_reference_unaligned) { check_random(1); }

/*
 * Small integers make every partial sum exactly representable, so all ISAs
 * must agree bit for bit whatever their summation order; this pins down
 * tail handling (a dropped or doubled element shows as an exact mismatch).
 */
VV_TEST(integer_inputs_are_exact) {
  for (size_t li = 0; li < NLENGTHS; li++) {
    size_t n = lengths[li];
    float *abase, *bbase;
    float *a = alloc_vec(n, 1, &abase);
    float *b = alloc_vec(n, 1, &bbase);
    VV_REQUIRE(a != NULL && b != NULL);
    float l2 = 0.0f, dot = 0.0f;
    for (size_t i = 0; i < n; i++) {
      a[i] = (float)((int)(i % 7) - 3);
      b[i] = (float)((int)((i * 5 + 2) % 6) - 2);
      l2 += (a[i] - b[i]) * (a[i] - b[i]);
      dot += a[i] * b[i];
    }
    for (size_t j = 0; j < NISAS; j++) {
      const vv_kernels *k = vv_kernels_for(all_isas[j]);
      if (k == NULL)
        continue;
      VV_NOTE("isa=%s n=%zu", vv_isa_name(k->isa), n);
      VV_CHECK(k->l2sq(a, b, n) == l2);
      VV_CHECK(k->dot(a, b, n) == dot);
    }
    free(abase);
    free(bbase);
  }
}

VV_TEST(known_values_on_tiny_inputs) {
  const float a[3] = {1.0f, 2.0f, 3.0f};
  const float b[3] = {4.0f, 5.0f, 6.0f};
  const float x[1] = {-2.5f};
  for (size_t j = 0; j < NISAS; j++) {
    const vv_kernels *k = vv_kernels_for(all_isas[j]);
    if (k == NULL)
      continue;
    VV_NOTE("isa=%s", vv_isa_name(k->isa));
    VV_CHECK(k->l2sq(a, b, 3) == 27.0f);
    VV_CHECK(k->dot(a, b, 3) == 32.0f);
    VV_CHECK(k->l2sq(a, a, 3) == 0.0f);
    VV_CHECK(k->dot(a, a, 3) == 14.0f);
    VV_CHECK(k->l2sq(a, b, 0) == 0.0f);
    VV_CHECK(k->dot(a, b, 0) == 0.0f);
    VV_CHECK(k->l2sq(x, a, 1) == 12.25f);
    VV_CHECK(k->dot(x, b, 1) == -10.0f);
  }
}

VV_TEST(normalize_zero_vector_is_untouched) {
  float v[5] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  VV_CHECK(vv_normalize_f32(v, 5) == 0.0);
  for (int i = 0; i < 5; i++)
    VV_CHECK(v[i] == 0.0f);
  VV_CHECK(vv_normalize_f32(v, 0) == 0.0);
}

VV_TEST(normalize_gives_unit_length) {
  float v[2] = {3.0f, 4.0f};
  VV_CHECK(vv_normalize_f32(v, 2) == 5.0);
  VV_CHECK_NEAR(v[0], 0.6, 1e-7);
  VV_CHECK_NEAR(v[1], 0.8, 1e-7);

  /* The squares overflow float; double accumulation must still get it right. */
  float big[2] = {3e30f, 4e30f};
  VV_CHECK_NEAR(vv_normalize_f32(big, 2), 5e30, 5e30 * 1e-6);
  VV_CHECK_NEAR(big[0], 0.6, 1e-7);
  VV_CHECK_NEAR(big[1], 0.8, 1e-7);

  size_t n = 1536;
  float *v2 = malloc(n * sizeof(float));
  VV_REQUIRE(v2 != NULL);
  for (size_t i = 0; i < n; i++)
    v2[i] = 10.0f * rand_unit();
  double norm = vv_normalize_f32(v2, n);
  VV_CHECK(norm > 0.0);
  double ss = 0.0;
  for (size_t i = 0; i < n; i++)
    ss += (double)v2[i] * (double)v2[i];
  VV_CHECK_NEAR(sqrt(ss), 1.0, 1e-6);
  VV_CHECK_NEAR(vv_kernels_best()->dot(v2, v2, n), 1.0, 1e-5);
  free(v2);
}

VV_TEST(kernel_tables_are_consistent) {
  const vv_kernels *s = vv_kernels_for(VV_ISA_SCALAR);
  VV_REQUIRE(s != NULL);
  VV_CHECK(s->isa == VV_ISA_SCALAR);
  VV_CHECK(s->l2sq == vv_l2sq_f32_scalar);
  VV_CHECK(s->dot == vv_dot_f32_scalar);
  for (size_t j = 0; j < NISAS; j++) {
    const vv_kernels *k = vv_kernels_for(all_isas[j]);
    if (k == NULL)
      continue;
    VV_CHECK(k->isa == all_isas[j]);
    VV_CHECK(k->l2sq != NULL && k->dot != NULL);
    VV_CHECK(vv_kernels_for(all_isas[j]) == k); /* stable pointer */
  }
  VV_CHECK(vv_kernels_for((vv_isa)99) == NULL);
  VV_CHECK(strcmp(vv_isa_name(VV_ISA_SCALAR), "scalar") == 0);
  VV_CHECK(strcmp(vv_isa_name(VV_ISA_AVX2), "avx2") == 0);
  VV_CHECK(strcmp(vv_isa_name(VV_ISA_NEON), "neon") == 0);
  VV_CHECK(strcmp(vv_isa_name((vv_isa)99), "unknown") == 0);
}

VV_TEST(isa_availability_matches_arch) {
#if defined(__x86_64__)
  VV_CHECK(vv_kernels_for(VV_ISA_NEON) == NULL);
  VV_CHECK((vv_kernels_for(VV_ISA_AVX2) != NULL) == (expected_auto_isa() == VV_ISA_AVX2));
#elif defined(__aarch64__)
  VV_CHECK(vv_kernels_for(VV_ISA_AVX2) == NULL);
  VV_CHECK(vv_kernels_for(VV_ISA_NEON) != NULL);
#endif
}

/*
 * The best set is detection's choice unless VECVAULT_ISA names an ISA that
 * is available. Run as is, this checks detection (AVX2 on an AVX2+FMA CPU);
 * env_var_forces_isa re-runs just this test in a child under each setting.
 */
VV_TEST(best_kernels_follow_env) {
  const vv_kernels *best = vv_kernels_best();
  VV_REQUIRE(best != NULL);
  vv_isa want = expected_auto_isa();
  const char *env = getenv("VECVAULT_ISA");
  if (env != NULL) {
    VV_NOTE("VECVAULT_ISA=%s", env);
    for (size_t j = 0; j < NISAS; j++)
      if (strcmp(env, vv_isa_name(all_isas[j])) == 0 && vv_kernels_for(all_isas[j]))
        want = all_isas[j];
  }
  VV_CHECK(best->isa == want);
  VV_CHECK(best == vv_kernels_for(want));
  VV_CHECK(vv_kernels_best() == best); /* cached */
}

#if defined(__linux__)
/* Runs this binary's best_kernels_follow_env in a fresh process, since the choice is cached per process. */
static int run_child(const char *isa) {
  posix_spawn_file_actions_t fa;
  char *args[] = {"/proc/self/exe", "best_kernels_follow_env", NULL};
  pid_t pid;
  int status = -1;
  const char *saved = getenv("VECVAULT_ISA");
  char *saved_copy = saved ? strdup(saved) : NULL;

  setenv("VECVAULT_ISA", isa, 1);
  posix_spawn_file_actions_init(&fa);
  /* Keep the child's summary line out of ours; its failures still reach stderr. */
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, args, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (saved_copy) {
    setenv("VECVAULT_ISA", saved_copy, 1);
    free(saved_copy);
  } else {
    unsetenv("VECVAULT_ISA");
  }
  if (rc != 0 || waitpid(pid, &status, 0) != pid)
    return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

VV_TEST(env_var_forces_isa) {
  const char *settings[] = {"scalar", "avx2", "neon", "bogus", ""};
  for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
    VV_NOTE("VECVAULT_ISA=%s", settings[i]);
    VV_CHECK(run_child(settings[i]) == 0);
  }
}
#endif

VV_TEST_MAIN()
