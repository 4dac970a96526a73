// hnswlib's index of a raw float32 file, built on every core: hnswlib-node
// inserts from JS on one thread only, which at 1M on a shared 2-core machine
// takes hours. Compiled by bench/lazy/prepare.js against the hnswlib headers
// that hnswlib-node ships, so saveIndex writes the file its readIndex reads.
// The space is the one hnswlib-node picks: l2, or inner product on
// normalised vectors for cosine (hnswlib-node normalises in addPoint too).
//
// usage: hnswbuild BASE.f32 N DIM l2|cosine M EF_CONSTRUCTION THREADS OUT

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "hnswlib/hnswlib.h"

int main(int argc, char **argv) {
  if (argc != 9) {
    std::fprintf(stderr, "usage: hnswbuild BASE.f32 N DIM l2|cosine M EF_CONSTRUCTION THREADS OUT\n");
    return 2;
  }
  const size_t n = std::strtoull(argv[2], nullptr, 10), dim = std::strtoull(argv[3], nullptr, 10);
  const bool cosine = !std::strcmp(argv[4], "cosine");
  const size_t m = std::strtoull(argv[5], nullptr, 10), efc = std::strtoull(argv[6], nullptr, 10);
  const unsigned threads = static_cast<unsigned>(std::strtoul(argv[7], nullptr, 10));
  if (!n || !dim || !m || !efc || !threads || (!cosine && std::strcmp(argv[4], "l2"))) {
    std::fprintf(stderr, "hnswbuild: bad arguments\n");
    return 2;
  }
  std::vector<float> base(n * dim);
  FILE *f = std::fopen(argv[1], "rb");
  if (!f || std::fread(base.data(), sizeof(float), base.size(), f) != base.size()) {
    std::fprintf(stderr, "hnswbuild: cannot read %s\n", argv[1]);
    return 1;
  }
  std::fclose(f);
  if (cosine) {
    for (size_t i = 0; i < n; i++) {
      float *v = &base[i * dim];
      float s = 0;
      for (size_t j = 0; j < dim; j++) s += v[j] * v[j];
      const float inv = 1.0f / (std::sqrt(s) + 1e-30f); // hnswlib-node's normalizePoint
      for (size_t j = 0; j < dim; j++) v[j] *= inv;
    }
  }
  hnswlib::L2Space l2(dim);
  hnswlib::InnerProductSpace ip(dim);
  hnswlib::SpaceInterface<float> *space = cosine ? static_cast<hnswlib::SpaceInterface<float> *>(&ip) : &l2;
  hnswlib::HierarchicalNSW<float> index(space, n, m, efc, 100);
  std::atomic<size_t> next(0), done(0);
  auto work = [&]() {
    for (size_t i; (i = next++) < n;) {
      index.addPoint(&base[i * dim], i);
      if (++done % 50000 == 0) std::fprintf(stderr, "[hnswbuild] %zu/%zu\n", done.load(), n);
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; t++) pool.emplace_back(work);
  for (auto &t : pool) t.join();
  index.saveIndex(argv[8]);
  return 0;
}
