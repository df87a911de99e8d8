// Keras weight layouts (section 3): shapes, round trips, agreement of the
// three imports, the documented lcnn layout, and the implementation-2 forward.
#include <set>
#include <vector>

#include "check.hpp"
#include "locally_connected.hpp"
#include "reference.hpp"

using namespace lcnn;

namespace {

std::vector<ref::Spec> layout_specs() {
  std::vector<ref::Spec> specs;
  for (bool last : {true, false}) {
    for (const char* pad : {"valid", "same", "causal"})
      for (long L : {1, 4, 7})
        for (long k : {1, 2, 3, 5})
          for (long st : {1, 2, 3})
            for (long C : {1, 2})
              for (long F : {1, 3}) {
                ref::Spec s;
                s.n = {L};
                s.k = {k};
                s.s = {st};
                s.padding = pad;
                s.last = last;
                s.C = C;
                s.F = F;
                if (s.ok()) specs.push_back(s);
              }
    for (const char* pad : {"valid", "same"})
      for (const auto& n : {ref::Dims{5, 4}, ref::Dims{2, 3}})
        for (const auto& k : {ref::Dims{1, 1}, ref::Dims{2, 3}, ref::Dims{3, 2}, ref::Dims{4, 4}})
          for (const auto& st : {ref::Dims{1, 1}, ref::Dims{2, 1}, ref::Dims{1, 3}})
            for (long C : {1, 3})
              for (long F : {1, 2}) {
                ref::Spec s;
                s.n = n;
                s.k = k;
                s.s = st;
                s.padding = pad;
                s.last = last;
                s.C = C;
                s.F = F;
                if (s.ok()) specs.push_back(s);
              }
  }
  return specs;
}

Shape shape_of(const ref::Dims& d) {
  Shape s;
  for (long v : d) s.dims.push_back(v);
  return s;
}

// Set of connected implementation-1 entries (C-order flat indices of W1).
std::set<long> connected_w1(const ref::Spec& s) {
  std::set<long> c;
  for (const auto& [oi, ii, wi] : ref::connected_entries(s)) c.insert(wi);
  return c;
}

}  // namespace

TEST(keras_shapes) {
  for (const ref::Spec& s : layout_specs()) {
    const LocalGeometry g = ref::geometry_of(s);
    CHECK_MSG(g.keras_kernel_shape(1) == shape_of(s.w1_dims()), s.describe());
    CHECK_MSG(g.keras_kernel_shape(2) == shape_of(s.w2_dims()), s.describe());
    const long n3 = static_cast<long>(ref::connected_entries(s).size());
    CHECK_MSG(g.keras_kernel_shape(3) == shape_of({n3}), s.describe());
    CHECK_MSG(g.keras_bias_shape() == shape_of(s.bias_dims()), s.describe());
    CHECK_MSG(g.output_shape() == shape_of(s.output_dims()), s.describe());
    CHECK_MSG(g.input_shape() == shape_of(s.input_dims()), s.describe());
    if (s.padding == "valid") {
      CHECK_MSG(n3 == s.P() * s.KC() * s.F, s.describe());
    }
  }
}

TEST(kernel_round_trips) {
  std::uint64_t seed = 11;
  for (const ref::Spec& s : layout_specs()) {
    std::mt19937_64 rng(seed++);
    const LocalGeometry g = ref::geometry_of(s);
    if (!CHECK_MSG(ref::same_shapes(g, s), "shapes " << s.describe())) continue;
    const std::vector<double> w1 = ref::random_vector(rng, s.P() * s.KC() * s.F);
    const std::set<long> connected = connected_w1(s);
    std::vector<double> lcnn(static_cast<std::size_t>(g.kernel_size()));

    // impl 1: connected entries survive, unconnected (clipped taps) read back 0
    {
      const auto col = ref::c_to_colmajor(w1, s.w1_dims());
      kernel_from_keras(g, 1, col.data(), lcnn.data());
      std::vector<double> back_col(col.size(), -1.0);
      kernel_to_keras(g, 1, lcnn.data(), back_col.data());
      const auto back = ref::colmajor_to_c(back_col, s.w1_dims());
      bool ok = true;
      for (long i = 0; i < static_cast<long>(w1.size()); ++i)
        if (back[i] != (connected.count(i) ? w1[i] : 0.0)) ok = false;
      CHECK_MSG(ok, "impl 1 " << s.describe());
    }
    // impl 2: dense array with garbage in unconnected entries; those read back 0
    {
      const auto w2 = ref::impl2_from_w1(s, w1, &rng);
      const auto mask = ref::impl2_mask(s);
      const auto col = ref::c_to_colmajor(w2, s.w2_dims());
      kernel_from_keras(g, 2, col.data(), lcnn.data());
      std::vector<double> back_col(col.size(), -1.0);
      kernel_to_keras(g, 2, lcnn.data(), back_col.data());
      const auto back = ref::colmajor_to_c(back_col, s.w2_dims());
      bool ok = true;
      for (std::size_t i = 0; i < w2.size(); ++i)
        if (back[i] != (mask[i] ? w2[i] : 0.0)) ok = false;
      CHECK_MSG(ok, "impl 2 " << s.describe());
    }
    // impl 3: every entry is connected, exact round trip
    {
      const auto w3 = ref::impl3_from_w1(s, w1);
      kernel_from_keras(g, 3, w3.data(), lcnn.data());
      std::vector<double> back(w3.size(), -1.0);
      kernel_to_keras(g, 3, lcnn.data(), back.data());
      CHECK_MSG(back == w3, "impl 3 " << s.describe());
    }
  }
}

TEST(kernel_imports_agree) {
  std::uint64_t seed = 77;
  for (const ref::Spec& s : layout_specs()) {
    std::mt19937_64 rng(seed++);
    const LocalGeometry g = ref::geometry_of(s);
    if (!CHECK_MSG(ref::same_shapes(g, s), "shapes " << s.describe())) continue;
    const std::vector<double> w1 = ref::random_vector(rng, s.P() * s.KC() * s.F);
    const std::size_t n = static_cast<std::size_t>(g.kernel_size());
    std::vector<double> e1(n, -1), e2(n, -2), e3(n, -3);
    const auto c1 = ref::c_to_colmajor(w1, s.w1_dims());
    kernel_from_keras(g, 1, c1.data(), e1.data());
    const auto c2 = ref::c_to_colmajor(ref::impl2_from_w1(s, w1, &rng), s.w2_dims());
    kernel_from_keras(g, 2, c2.data(), e2.data());
    const auto w3 = ref::impl3_from_w1(s, w1);
    kernel_from_keras(g, 3, w3.data(), e3.data());
    CHECK_MSG(e1 == e2, "impl 1 vs 2 " << s.describe());
    CHECK_MSG(e2 == e3, "impl 2 vs 3 " << s.describe());

    // The documented lcnn layout: (p*F + o)*K*C + tap*C + ci, zero when unconnected.
    const std::set<long> connected = connected_w1(s);
    bool ok = true;
    for (long p = 0; p < s.P(); ++p)
      for (long o = 0; o < s.F; ++o)
        for (long tr = 0; tr < s.K(); ++tr)
          for (long ci = 0; ci < s.C; ++ci) {
            const long wi = (p * s.KC() + s.m_index(tr, ci)) * s.F + o;
            const double want = connected.count(wi) ? w1[wi] : 0.0;
            if (e1[(p * s.F + o) * s.KC() + tr * s.C + ci] != want) ok = false;
          }
    CHECK_MSG(ok, "lcnn layout " << s.describe());

    // zero_unconnected keeps connected taps and clears the rest.
    std::vector<double> noisy = ref::random_vector(rng, static_cast<long>(n), 5.0, 6.0);
    for (std::size_t i = 0; i < n; ++i)
      if (e1[i] != 0.0) noisy[i] = e1[i];
    zero_unconnected(g, noisy.data());
    CHECK_MSG(noisy == e1, "zero_unconnected " << s.describe());

    // float import is the rounded double import
    std::vector<float> f3(n);
    kernel_from_keras(g, 3, w3.data(), f3.data());
    bool fok = true;
    for (std::size_t i = 0; i < n; ++i)
      if (f3[i] != static_cast<float>(e1[i])) fok = false;
    CHECK_MSG(fok, "float import " << s.describe());
  }
}

TEST(bias_round_trips) {
  std::uint64_t seed = 99;
  for (const ref::Spec& s : layout_specs()) {
    std::mt19937_64 rng(seed++);
    const LocalGeometry g = ref::geometry_of(s);
    if (!CHECK_MSG(ref::same_shapes(g, s), "shapes " << s.describe())) continue;
    const auto bias = ref::random_vector(rng, s.P() * s.F);
    std::vector<double> lcnn(static_cast<std::size_t>(g.bias_size()), -1), back(bias.size(), -1);
    bias_from_keras(g, bias.data(), lcnn.data());
    bias_to_keras(g, lcnn.data(), back.data());
    CHECK_MSG(back == bias, s.describe());
    // lcnn bias[p*F + o] is what output (p, o) gets (section 3's reshape quirk)
    const auto bias_c = ref::colmajor_to_c(bias, s.bias_dims());
    bool ok = true;
    for (long p = 0; p < s.P(); ++p)
      for (long o = 0; o < s.F; ++o)
        if (lcnn[p * s.F + o] != (s.last ? bias_c[p * s.F + o] : bias_c[o * s.P() + p])) ok = false;
    CHECK_MSG(ok, "bias layout " << s.describe());
  }
}

// Weights imported as implementation 2 give Keras's implementation-2 forward
// (dense masked matmul), a formulation independent of the windowed one.
TEST(forward_matches_impl2_formula) {
  std::uint64_t seed = 123;
  std::size_t act = 0;
  const char* acts[] = {"linear", "softmax", "tanh", "relu"};
  for (const ref::Spec& s : layout_specs()) {
    std::mt19937_64 rng(seed++);
    const LocalGeometry g = ref::geometry_of(s);
    if (!CHECK_MSG(ref::same_shapes(g, s), "shapes " << s.describe())) continue;
    const long B = 3;
    const auto x = ref::random_vector(rng, B * s.N() * s.C);
    const auto w1 = ref::random_vector(rng, s.P() * s.KC() * s.F);
    const auto w2 = ref::impl2_from_w1(s, w1, &rng);
    const auto bias = ref::random_vector(rng, s.P() * s.F);
    const char* a = acts[act++ % 4];
    const auto want = ref::forward_impl2(s, x, B, w2, bias, a);

    std::vector<double> kernel(static_cast<std::size_t>(g.kernel_size())),
        b(static_cast<std::size_t>(g.bias_size()));
    const auto w2_col = ref::c_to_colmajor(w2, s.w2_dims());
    kernel_from_keras(g, 2, w2_col.data(), kernel.data());
    const auto bias_col = ref::c_to_colmajor(bias, s.bias_dims());
    bias_from_keras(g, bias_col.data(), b.data());
    LocallyConnected<double> layer(g, parse_activation(a), kernel, b);
    ref::Dims xdims{B}, ydims{B};
    for (long v : s.input_dims()) xdims.push_back(v);
    for (long v : s.output_dims()) ydims.push_back(v);
    Tensor<double> in, out;
    in.resize(layer.input_shape().with_batch(B));
    ref::assign(in.data, ref::c_to_colmajor(x, xdims));
    layer.forward(in, out, Context{});
    const double err = ref::max_rel_error(ref::colmajor_to_c(out.data, ydims), want);
    CHECK_MSG(err <= 1e-12, s.describe() << " " << a << " error " << err);
  }
}
