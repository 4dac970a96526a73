/*
 * test/c/vvtest.h: the whole C test runner, header-only, no framework.
 *
 * Owns: test registration, the check macros and the closing summary line.
 * Each test/c/test_*.c is its own binary:
 *
 *   #include "vvtest.h"
 *   VV_TEST(parses_empty) { VV_CHECK(parse("") == 0); }
 *   VV_TEST_MAIN()
 *
 * VV_CHECK / VV_CHECK_NEAR record a failure and keep going; VV_REQUIRE also
 * returns from the test (use it before dereferencing a result). VV_NOTE sets
 * a context string (e.g. "n=17 isa=avx2") printed with later failures of the
 * same test. Tests run in registration order; `./test_x name...` runs only
 * the named tests. The last stdout line is always "N passed, N failed"
 * (N counts test functions; tests dropped past VVT_MAX_TESTS count as
 * failed) and the exit status is non-zero if any failed or a named test
 * does not exist.
 */
#ifndef VV_TEST_H
#define VV_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VVT_MAX_TESTS 1024
/* Per test: a broken kernel checked in a loop would otherwise print thousands of lines. */
#define VVT_MAX_REPORTS 20

typedef void (*vvt_fn)(void);

struct vvt_case {
  const char *name;
  vvt_fn fn;
};

struct vvt_state {
  struct vvt_case cases[VVT_MAX_TESTS];
  int ncases;
  int overflow;        /* registrations dropped because cases[] was full */
  const char *current; /* name of the running test */
  int failures;        /* failed checks in the running test */
  char note[256];
};

/* Function-local static so the header defines no unused file-scope objects. */
static inline struct vvt_state *vvt_state(void) {
  static struct vvt_state s;
  return &s;
}

static inline void vvt_register(const char *name, vvt_fn fn) {
  struct vvt_state *s = vvt_state();
  if (s->ncases == VVT_MAX_TESTS) {
    s->overflow++;
    return;
  }
  s->cases[s->ncases].name = name;
  s->cases[s->ncases].fn = fn;
  s->ncases++;
}

#if defined(__GNUC__) || defined(__clang__)
#define VVT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define VVT_PRINTF(f, a)
#endif

VVT_PRINTF(3, 4)
static inline void vvt_fail(const char *file, int line, const char *fmt, ...) {
  struct vvt_state *s = vvt_state();
  if (++s->failures > VVT_MAX_REPORTS) {
    if (s->failures == VVT_MAX_REPORTS + 1)
      fprintf(stderr, "%s:%d: [%s] further failures not shown\n", file, line, s->current);
    return;
  }
  fprintf(stderr, "%s:%d: [%s]%s%s ", file, line, s->current,
          s->note[0] ? " " : "", s->note);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

VVT_PRINTF(1, 2)
static inline void vvt_note(const char *fmt, ...) {
  struct vvt_state *s = vvt_state();
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->note, sizeof s->note, fmt, ap);
  va_end(ap);
}

#define VV_TEST(name)                                                \
  static void vvt_test_##name(void);                                 \
  __attribute__((constructor)) static void vvt_register_##name(void) { \
    vvt_register(#name, vvt_test_##name);                            \
  }                                                                  \
  static void vvt_test_##name(void)

#define VV_NOTE(...) vvt_note(__VA_ARGS__)

#define VV_CHECK(cond)                                           \
  do {                                                           \
    if (!(cond))                                                 \
      vvt_fail(__FILE__, __LINE__, "check failed: %s", #cond);   \
  } while (0)

/* Stops the current test; only valid directly inside a VV_TEST body. */
#define VV_REQUIRE(cond)                                         \
  do {                                                           \
    if (!(cond)) {                                               \
      vvt_fail(__FILE__, __LINE__, "required: %s", #cond);       \
      return;                                                    \
    }                                                            \
  } while (0)

/* |a-b| <= tol, compared in double; NaN on either side fails. */
#define VV_CHECK_NEAR(a, b, tol)                                              \
  do {                                                                        \
    double vvt_a_ = (double)(a), vvt_b_ = (double)(b), vvt_t_ = (double)(tol); \
    if (!(vvt_a_ == vvt_b_ || fabs(vvt_a_ - vvt_b_) <= vvt_t_))               \
      vvt_fail(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, |diff| %.3g > %.3g", \
               #a, vvt_a_, #b, vvt_b_, fabs(vvt_a_ - vvt_b_), vvt_t_);         \
  } while (0)

static inline int vvt_selected(int argc, char **argv, const char *name) {
  if (argc < 2)
    return 1;
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], name) == 0)
      return 1;
  return 0;
}

static inline int vvt_run(int argc, char **argv) {
  struct vvt_state *s = vvt_state();
  int passed = 0, failed = 0, bad_args = 0;

  /* Failures go to stderr; keep stdout in step with them when piped. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (s->overflow) {
    fprintf(stderr, "vvtest: %d tests dropped, raise VVT_MAX_TESTS\n", s->overflow);
    failed += s->overflow;
  }
  for (int i = 1; i < argc; i++) {
    int known = 0;
    for (int j = 0; j < s->ncases; j++)
      known |= strcmp(argv[i], s->cases[j].name) == 0;
    if (!known) {
      fprintf(stderr, "vvtest: no test named '%s'\n", argv[i]);
      bad_args = 1;
    }
  }
  for (int i = 0; i < s->ncases; i++) {
    if (!vvt_selected(argc, argv, s->cases[i].name))
      continue;
    s->current = s->cases[i].name;
    s->failures = 0;
    s->note[0] = '\0';
    s->cases[i].fn();
    if (s->failures) {
      fprintf(stderr, "FAIL %s\n", s->current);
      failed++;
    } else {
      passed++;
    }
  }
  fflush(stderr);
  printf("%d passed, %d failed\n", passed, failed);
  return failed || bad_args ? 1 : 0;
}

#define VV_TEST_MAIN() \
  int main(int argc, char **argv) { return vvt_run(argc, argv); }

#endif
