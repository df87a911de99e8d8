// LocallyConnected forward against the section 2/3 reference, float64 and
// float32, through both the direct kernels and the per-position GEMMs;
// weights enter through kernel_from_keras/bias_from_keras (impl 1).
#include <stdexcept>
#include <string>
#include <vector>

#include "check.hpp"
#include "locally_connected.hpp"
#include "reference.hpp"

using namespace lcnn;

namespace {

const std::vector<std::string> kActivations = {
    "linear", "relu",   "sigmoid",  "tanh",  "softmax",      "elu",        "selu",
    "softplus", "softsign", "swish", "gelu", "hard_sigmoid", "exponential"};

// Engine forward with R-style (column-major) Keras arrays built from C-order
// ones; returns the C-order output.
template <typename T>
std::vector<double> engine_forward(const ref::Spec& s, const std::vector<double>& x, long B,
                                   const std::vector<double>& w1, const std::vector<double>& bias,
                                   const std::string& activation,
                                   LocalKernels kernels = LocalKernels::automatic,
                                   int threads = 1) {
  const LocalGeometry g = ref::geometry_of(s);
  if (!ref::same_shapes(g, s)) throw std::runtime_error("engine shapes differ: " + s.describe());
  std::vector<T> kernel(static_cast<std::size_t>(g.kernel_size()));
  const std::vector<double> w1_col = ref::c_to_colmajor(w1, s.w1_dims());
  kernel_from_keras(g, 1, w1_col.data(), kernel.data());
  std::vector<T> b;
  if (!bias.empty()) {
    b.resize(static_cast<std::size_t>(g.bias_size()));
    const std::vector<double> bias_col = ref::c_to_colmajor(bias, s.bias_dims());
    bias_from_keras(g, bias_col.data(), b.data());
  }
  LocallyConnected<T> layer(g, parse_activation(activation), kernel, b, kernels);
  ref::Dims xdims{B}, ydims{B};
  for (long v : s.input_dims()) xdims.push_back(v);
  for (long v : s.output_dims()) ydims.push_back(v);
  Tensor<T> in;
  in.resize(layer.input_shape().with_batch(B));
  const std::vector<double> x_col = ref::c_to_colmajor(x, xdims);
  for (std::size_t i = 0; i < x_col.size(); ++i) in.data[i] = static_cast<T>(x_col[i]);
  Tensor<T> out;
  Context ctx;
  ctx.threads = threads;
  layer.forward(in, out, ctx);
  Shape expected;
  for (long v : ydims) expected.dims.push_back(v);
  if (out.shape != expected) {
    throw std::runtime_error("engine output shape " + out.shape.to_string() + ", expected " +
                             expected.to_string());
  }
  return ref::colmajor_to_c(out.data, ydims);
}

template <typename T>
constexpr double tolerance() {
  return sizeof(T) == 8 ? 1e-12 : 2e-5;
}

// One configuration: random x, W1 (including garbage in unconnected taps,
// which must not matter), bias; engine vs reference, with either kernels.
template <typename T>
void check_config(const ref::Spec& s, long B, const std::string& activation, bool use_bias,
                  std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto x = ref::random_vector(rng, B * s.N() * s.C);
  const auto w1 = ref::random_vector(rng, s.P() * s.KC() * s.F);
  const auto bias = use_bias ? ref::random_vector(rng, s.P() * s.F) : std::vector<double>{};
  const auto want = ref::forward_impl1(s, x, B, w1, bias, activation);
  if (!CHECK_MSG(ref::same_shapes(ref::geometry_of(s), s), "shapes " << s.describe())) return;
  for (LocalKernels kernels : {LocalKernels::direct, LocalKernels::gemm}) {
    const auto got = engine_forward<T>(s, x, B, w1, bias, activation, kernels);
    const double err = ref::max_rel_error(got, want);
    CHECK_MSG(err <= tolerance<T>(),
              (sizeof(T) == 8 ? "float64 " : "float32 ")
                  << (kernels == LocalKernels::direct ? "direct " : "gemm ") << s.describe()
                  << " B=" << B << " " << activation << (use_bias ? "" : " no bias") << " error "
                  << err);
  }
}

template <typename T>
void sweep_1d() {
  std::uint64_t seed = 1;
  std::size_t act = 0;
  for (bool last : {true, false})
    for (const char* pad : {"valid", "same", "causal"})
      for (long L : {1, 3, 8})
        for (long k : {1, 2, 3, 4})
          for (long st : {1, 2, 3})
            for (long C : {1, 3})
              for (long F : {1, 4})
                for (long B : {1, 5, 37}) {
                  ref::Spec s;
                  s.n = {L};
                  s.k = {k};
                  s.s = {st};
                  s.padding = pad;
                  s.last = last;
                  s.C = C;
                  s.F = F;
                  if (!s.ok()) {
                    std::vector<T> kernel(1), bias;
                    CHECK_THROWS(LocallyConnected<T>(ref::geometry_of(s), Activation::linear,
                                                     kernel, bias),
                                 std::invalid_argument);
                    continue;
                  }
                  const std::string& a = kActivations[act++ % kActivations.size()];
                  check_config<T>(s, B, a, (seed % 4) != 0, seed);
                  ++seed;
                }
}

template <typename T>
void sweep_2d() {
  std::uint64_t seed = 1000;
  std::size_t act = 3;
  const std::vector<std::pair<long, long>> inputs = {{5, 6}, {2, 3}};
  const std::vector<std::pair<long, long>> kernels = {{1, 1}, {1, 3}, {2, 2}, {3, 2}, {4, 4}};
  const std::vector<std::pair<long, long>> strides = {{1, 1}, {2, 1}, {1, 3}, {3, 2}, {2, 2}};
  for (bool last : {true, false})
    for (const char* pad : {"valid", "same"})
      for (const auto& [H, W] : inputs)
        for (const auto& [k0, k1] : kernels)
          for (const auto& [s0, s1] : strides)
            for (long C : {1, 2})
              for (long F : {1, 3})
                for (long B : {1, 5, 37}) {
                  ref::Spec s;
                  s.n = {H, W};
                  s.k = {k0, k1};
                  s.s = {s0, s1};
                  s.padding = pad;
                  s.last = last;
                  s.C = C;
                  s.F = F;
                  if (!s.ok()) {
                    std::vector<T> kernel(1), bias;
                    CHECK_THROWS(LocallyConnected<T>(ref::geometry_of(s), Activation::linear,
                                                     kernel, bias),
                                 std::invalid_argument);
                    continue;
                  }
                  const std::string& a = kActivations[act++ % kActivations.size()];
                  check_config<T>(s, B, a, (seed % 4) != 0, seed);
                  ++seed;
                }
}

// Every activation with both data formats, 1D and 2D, valid and same: softmax
// runs over the filters for channels_last and the last spatial axis otherwise.
template <typename T>
void activation_sweep() {
  std::uint64_t seed = 5000;
  for (const std::string& a : kActivations)
    for (int nd : {1, 2})
      for (bool last : {true, false})
        for (const char* pad : {"valid", "same"}) {
          ref::Spec s;
          s.n = nd == 1 ? ref::Dims{9} : ref::Dims{6, 7};
          s.k = nd == 1 ? ref::Dims{3} : ref::Dims{3, 2};
          s.s = nd == 1 ? ref::Dims{2} : ref::Dims{1, 2};
          s.padding = pad;
          s.last = last;
          s.C = 2;
          s.F = 3;
          check_config<T>(s, 5, a, true, seed++);
        }
}

// Batches of whole vectors and more filters than a column tile: the shapes
// where the column product reads a block of patch columns in place when
// they lie in few runs (an input laid out with channels inner), and copies
// it when they do not (padding's null columns, more than 8 runs in a
// block: 12 kernel rows of 2 columns).
template <typename T>
void in_place_sweep() {
  std::uint64_t seed = 7000;
  struct Case {
    ref::Dims n, k;
    long C;
  };
  const std::vector<Case> cases = {{{9}, {3}, 20},          {{40}, {5}, 3},
                                   {{8, 7}, {3, 3}, 20},    {{9, 9}, {5, 5}, 3},
                                   {{14, 3}, {12, 2}, 1},   {{6, 6}, {4, 4}, 1}};
  for (const Case& c : cases)
    for (bool last : {true, false})
      for (const char* pad : {"valid", "same"})
        for (long B : {16L, 32L}) {
          ref::Spec s;
          s.n = c.n;
          s.k = c.k;
          s.s = ref::Dims(c.n.size(), 1);
          s.padding = pad;
          s.last = last;
          s.C = c.C;
          s.F = 9;
          check_config<T>(s, B, "linear", (seed % 2) != 0, seed);
          ++seed;
        }
}

}  // namespace

// Which inputs the GEMM path reads as they are and which it copies with
// channels inner first; the sweeps above check that both give the
// reference's values.
TEST(forward_reads_input_as_is_where_a_copy_gains_nothing) {
  const auto reads_as_is = [](ref::Dims n, long C, bool last) {
    ref::Spec s;
    s.n = n;
    s.k = ref::Dims(n.size(), 1);
    s.s = ref::Dims(n.size(), 1);
    s.last = last;
    s.C = C;
    return reads_input_as_is(ref::geometry_of(s));
  };
  // One channel: the copy would only swap rows and columns.
  CHECK(reads_as_is({6, 5}, 1, true));
  CHECK(reads_as_is({6, 5}, 1, false));
  CHECK(reads_as_is({7}, 1, true));
  // Channels first: channels are inner, then rows, so an input of one
  // column (every 1D input) or one row lies as the copy would.
  CHECK(reads_as_is({7}, 3, false));
  CHECK(reads_as_is({6, 1}, 3, false));
  CHECK(reads_as_is({1, 5}, 3, false));
  CHECK(!reads_as_is({6, 5}, 3, false));
  // Channels last: channels are a feature map apart.
  CHECK(!reads_as_is({7}, 3, true));
  CHECK(!reads_as_is({6, 5}, 3, true));
  CHECK(reads_as_is({1, 1}, 3, true));
}

TEST(forward_in_place_blocks_float64) { in_place_sweep<double>(); }
TEST(forward_in_place_blocks_float32) { in_place_sweep<float>(); }
TEST(forward_1d_float64) { sweep_1d<double>(); }
TEST(forward_1d_float32) { sweep_1d<float>(); }
TEST(forward_2d_float64) { sweep_2d<double>(); }
TEST(forward_2d_float32) { sweep_2d<float>(); }
TEST(forward_activations_float64) { activation_sweep<double>(); }
TEST(forward_activations_float32) { activation_sweep<float>(); }

// Hand-computed anchors, so the reference itself is checked against section 2.
TEST(forward_hand_computed_windows) {
  auto run = [](const char* pad, long L, long k, long st, std::vector<double> x) {
    ref::Spec s;
    s.n = {L};
    s.k = {k};
    s.s = {st};
    s.padding = pad;
    const std::vector<double> w1(static_cast<std::size_t>(s.P() * s.KC()), 1.0);
    return engine_forward<double>(s, x, 1, w1, {}, "linear");
  };
  const std::vector<double> x5 = {1, 2, 3, 4, 5}, x6 = {1, 2, 3, 4, 5, 6};
  CHECK(run("valid", 5, 2, 1, x5) == (std::vector<double>{3, 5, 7, 9}));
  CHECK(run("same", 5, 2, 1, x5) == (std::vector<double>{1, 3, 5, 7, 9}));   // offset 1
  CHECK(run("same", 5, 3, 1, x5) == (std::vector<double>{3, 6, 9, 12, 9}));
  CHECK(run("causal", 5, 3, 1, x5) == (std::vector<double>{1, 3, 6, 9, 12}));
  CHECK(run("same", 6, 3, 2, x6) == (std::vector<double>{3, 9, 15}));        // offset 1
  CHECK(run("causal", 6, 3, 2, x6) == (std::vector<double>{1, 6, 12}));
  CHECK(run("valid", 6, 3, 2, x6) == (std::vector<double>{6, 12}));
  CHECK(run("same", 2, 5, 1, {1, 2}) == (std::vector<double>{3, 3}));
}

TEST(forward_channels_first_bias_is_reshaped) {
  // 1D, L = 2, k = 1, F = 2, zero kernel: the (OL, F) bias [[10, 20], [30, 40]]
  // is reshaped to (F, OL), so filter 0 gets (10, 20), not (10, 30).
  for (bool last : {true, false}) {
    ref::Spec s;
    s.n = {2};
    s.k = {1};
    s.s = {1};
    s.last = last;
    s.F = 2;
    const std::vector<double> x = {1, 1}, w1(4, 0.0), bias = {10, 20, 30, 40};
    const auto y = engine_forward<double>(s, x, 1, w1, bias, "linear");
    // channels_last y[l, o] = bias[l, o]; channels_first y[o, l] = flat[o*2 + l]
    CHECK(y == (std::vector<double>{10, 20, 30, 40}));
  }
  // 2D channels_first, OR = 2, OC = 3, F = 2: y[o, r, c] = flat[(o*2 + r)*3 + c]
  ref::Spec s;
  s.n = {2, 3};
  s.k = {1, 1};
  s.s = {1, 1};
  s.last = false;
  s.F = 2;
  std::vector<double> bias(12), x(6, 0.0), w1(12, 0.0);
  for (int i = 0; i < 12; ++i) bias[i] = i;
  const auto y = engine_forward<double>(s, x, 1, w1, bias, "linear");
  CHECK(y == bias);
}

TEST(forward_softmax_axis) {
  // channels_first 1D: softmax over the length axis, each filter sums to 1.
  ref::Spec s;
  s.n = {4};
  s.k = {1};
  s.s = {1};
  s.last = false;
  s.F = 2;
  std::mt19937_64 rng(7);
  const auto x = ref::random_vector(rng, 4);
  const auto w1 = ref::random_vector(rng, 8);
  const auto y = engine_forward<double>(s, x, 1, w1, {}, "softmax");
  CHECK_NEAR(y[0] + y[1] + y[2] + y[3], 1.0, 1e-14);
  CHECK_NEAR(y[4] + y[5] + y[6] + y[7], 1.0, 1e-14);
  s.last = true;
  const auto z = engine_forward<double>(s, x, 1, w1, {}, "softmax");
  for (int l = 0; l < 4; ++l) CHECK_NEAR(z[2 * l] + z[2 * l + 1], 1.0, 1e-14);
}

TEST(forward_rejects_bad_input) {
  ref::Spec s;
  s.n = {4, 4};
  s.k = {2, 2};
  s.s = {1, 1};
  const LocalGeometry g = ref::geometry_of(s);
  LocallyConnected<double> layer(g, Activation::relu,
                                 std::vector<double>(static_cast<std::size_t>(g.kernel_size())),
                                 {});
  Tensor<double> in, out;
  in.resize(Shape{{2, 4, 5, 1}});
  Context ctx;
  CHECK_THROWS(layer.forward(in, out, ctx), std::invalid_argument);
  in.resize(Shape{{2, 4, 4}});
  CHECK_THROWS(layer.forward(in, out, ctx), std::invalid_argument);
  in.resize(Shape{{0, 4, 4, 1}});
  layer.forward(in, out, ctx);
  CHECK(out.shape == (Shape{{0, 3, 3, 1}}));
  CHECK_EQ(layer.parameters().size(), 1u);
  CHECK_THROWS(parse_activation("leaky"), std::invalid_argument);
  CHECK(parse_activation("silu") == Activation::swish);
}
