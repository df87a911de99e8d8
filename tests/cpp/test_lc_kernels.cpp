// LocallyConnected backward through both kernels (the direct loops for small
// per-position products, one GEMM per position otherwise) against the
// implementation-1 reference gradients; which geometries take the direct
// path by default; results of both kernels independent of threads.
#include <algorithm>
#include <string>
#include <vector>

#include "activation_formulas.hpp"
#include "check.hpp"
#include "locally_connected.hpp"
#include "locally_connected_direct.hpp"
#include "reference.hpp"

using namespace lcnn;

namespace {

// Engine outputs and gradients, all as C-order Keras arrays.
struct Run {
  std::vector<double> y, dx, dw1, dbias;
};

// With other_batch > 0, a forward pass that does not record, of another
// input of that batch, comes between the recording one and backward(): the
// gradients must still be those of x. backward() runs twice, the first
// time with another output gradient.
template <typename T>
Run run_layer(const ref::Spec& s, long B, const std::vector<double>& x,
              const std::vector<double>& w1, const std::vector<double>& bias,
              const std::vector<double>& g, LocalKernels kernels, int threads,
              long other_batch = 0, Activation activation = Activation::linear) {
  const LocalGeometry geometry = ref::geometry_of(s);
  std::vector<T> kernel(static_cast<std::size_t>(geometry.kernel_size()));
  const std::vector<double> w1_col = ref::c_to_colmajor(w1, s.w1_dims());
  kernel_from_keras(geometry, 1, w1_col.data(), kernel.data());
  std::vector<T> b;
  if (!bias.empty()) {
    b.resize(static_cast<std::size_t>(geometry.bias_size()));
    const std::vector<double> bias_col = ref::c_to_colmajor(bias, s.bias_dims());
    bias_from_keras(geometry, bias_col.data(), b.data());
  }
  LocallyConnected<T> layer(geometry, activation, kernel, b, kernels);
  ref::Dims xdims{B}, ydims{B};
  for (long v : s.input_dims()) xdims.push_back(v);
  for (long v : s.output_dims()) ydims.push_back(v);
  auto tensor_of = [](const Shape& shape, const std::vector<double>& values) {
    Tensor<T> t;
    t.resize(shape);
    std::copy(values.begin(), values.end(), t.data.begin());
    return t;
  };
  const Tensor<T> in = tensor_of(layer.input_shape().with_batch(B), ref::c_to_colmajor(x, xdims));
  Tensor<T> out, grad_in;
  Context ctx;
  ctx.threads = threads;
  ctx.record = true;
  ctx.training = true;
  layer.forward(in, out, ctx);
  if (other_batch > 0) {
    Tensor<T> other, other_out;
    other.resize(layer.input_shape().with_batch(other_batch));
    for (std::size_t i = 0; i < other.data.size(); ++i) other.data[i] = T(0.5) + T(i % 7);
    Context predict = ctx;
    predict.record = false;
    predict.training = false;
    layer.forward(other, other_out, predict);
  }
  // A backward() of another output gradient first: the gradients must keep
  // nothing of it (the input gradient's buffer comes back unzeroed).
  Tensor<T> other_grad = tensor_of(out.shape, ref::c_to_colmajor(g, ydims));
  for (T& value : other_grad.data) value = T(1) - value;
  layer.backward(in, out, other_grad, &grad_in, ctx, false);
  const Tensor<T> grad_out = tensor_of(out.shape, ref::c_to_colmajor(g, ydims));
  layer.backward(in, out, grad_out, &grad_in, ctx, false);
  const auto& params = layer.parameters();
  std::vector<double> w1_grad(static_cast<std::size_t>(geometry.keras_kernel_shape(1).size()));
  kernel_to_keras(geometry, 1, params[0].gradient.data(), w1_grad.data());
  Run r{ref::colmajor_to_c(out.data, ydims), ref::colmajor_to_c(grad_in.data, xdims),
        ref::colmajor_to_c(w1_grad, s.w1_dims()), {}};
  if (params.size() > 1) {
    std::vector<double> bias_grad(static_cast<std::size_t>(geometry.bias_size()));
    bias_to_keras(geometry, params[1].gradient.data(), bias_grad.data());
    r.dbias = ref::colmajor_to_c(bias_grad, s.bias_dims());
  }
  return r;
}

const char* name_of(LocalKernels kernels) {
  return kernels == LocalKernels::direct ? "direct" : "gemm";
}

// Both kernels against the reference for one geometry, batch and bias choice.
template <typename T>
void check_gradients(const ref::Spec& s, long B, bool use_bias, std::mt19937_64& rng,
                     long other_batch = 0) {
  const auto x = ref::random_vector(rng, B * s.N() * s.C);
  const auto w1 = ref::random_vector(rng, s.P() * s.KC() * s.F);
  const auto bias = use_bias ? ref::random_vector(rng, s.P() * s.F) : std::vector<double>{};
  const auto g = ref::random_vector(rng, B * s.P() * s.F);
  const ref::Gradients want = ref::backward_impl1(s, x, B, w1, g);
  const double tol = sizeof(T) == 8 ? 1e-12 : 2e-5;
  for (LocalKernels kernels : {LocalKernels::direct, LocalKernels::gemm}) {
    const Run got = run_layer<T>(s, B, x, w1, bias, g, kernels, 1, other_batch);
    const std::string what =
        std::string(sizeof(T) == 8 ? "float64 " : "float32 ") + name_of(kernels) + " " +
        s.describe() + " B=" + std::to_string(B) + (use_bias ? "" : " no bias") +
        (other_batch > 0 ? " after a forward of B=" + std::to_string(other_batch) : "");
    CHECK_MSG(ref::max_rel_error(got.y, ref::forward_impl1(s, x, B, w1, bias, "linear")) <= tol,
              what << " output");
    CHECK_MSG(ref::max_rel_error(got.dx, want.dx) <= tol, what << " input gradient");
    CHECK_MSG(ref::max_rel_error(got.dw1, want.dw1) <= tol, what << " kernel gradient");
    if (use_bias) {
      CHECK_MSG(ref::max_rel_error(got.dbias, want.dbias) <= tol, what << " bias gradient");
    } else {
      CHECK_MSG(got.dbias.empty(), what << " has a bias gradient");
    }
  }
}

ref::Spec spec(ref::Dims n, ref::Dims k, ref::Dims st, const char* padding, bool last, long C,
               long F) {
  ref::Spec s;
  s.n = std::move(n);
  s.k = std::move(k);
  s.s = std::move(st);
  s.padding = padding;
  s.last = last;
  s.C = C;
  s.F = F;
  return s;
}

// 1D and 2D, every padding, strides below, at and above the kernel, both
// data formats, with and without bias; batches below one lane block (32
// floats, 16 doubles), between and above.
template <typename T>
void gradient_sweep() {
  std::mt19937_64 rng(sizeof(T));
  long round = 0;
  for (bool last : {true, false})
    for (const char* pad : {"valid", "same", "causal"})
      for (long k : {1, 3, 4})
        for (long st : {1, 2, 5})
          for (long C : {1, 2})
            for (long F : {1, 3}) {
              const ref::Spec s1 = spec({11}, {k}, {st}, pad, last, C, F);
              if (s1.ok()) check_gradients<T>(s1, round % 3 == 0 ? 1 : 37, round % 4 != 0, rng);
              ++round;
              if (std::string(pad) == "causal") continue;
              const ref::Spec s2 = spec({6, 5}, {k, k == 4 ? 2 : k}, {st, st == 5 ? 1 : st}, pad,
                                        last, C, F);
              if (s2.ok()) check_gradients<T>(s2, round % 3 == 0 ? 70 : 5, round % 4 != 1, rng);
              ++round;
            }
}

// Patches of more than 64 columns (80 in 1D, 72 in 2D: whole squares of
// the kernel gradient's transposing copy, and part of one) and fewer than
// 64 filters, from windows in one run of the input (valid) or with gaps
// that padding leaves, strides and both data formats, on batches of 5 and
// 32 samples (part of a vector, or whole ones). The 2D cases have a
// forward pass that does not record before backward(), of the same batch
// size or not: backward() may reuse the recording pass's copy of the input
// only while the copy still holds that input.
template <typename T>
void wide_patch_gradient_sweep() {
  std::mt19937_64 rng(40 + sizeof(T));
  long round = 0;
  for (bool last : {true, false})
    for (const char* pad : {"valid", "same"})
      for (long st : {1, 2}) {
        const ref::Spec s1 = spec({12}, {5}, {st}, pad, last, 16, 5);
        check_gradients<T>(s1, round % 2 == 0 ? 5 : 32, true, rng);
        const ref::Spec s2 = spec({7, 6}, {3, 3}, {st, 1}, pad, last, 8, 5);
        const long B = round % 2 == 0 ? 32 : 5;
        check_gradients<T>(s2, B, round % 3 != 0, rng, round % 2 == 0 ? B : 3);
        ++round;
      }
}

}  // namespace

TEST(lc_kernels_gradients_float64) { gradient_sweep<double>(); }
TEST(lc_kernels_gradients_float32) { gradient_sweep<float>(); }
TEST(lc_kernels_wide_patch_gradients_float64) { wide_patch_gradient_sweep<double>(); }
TEST(lc_kernels_wide_patch_gradients_float32) { wide_patch_gradient_sweep<float>(); }

// The degenerate workloads take the direct path, real GEMM shapes do not.
TEST(lc_kernels_default_path) {
  const LocalGeometry w5 = ref::geometry_of(spec({50000}, {5}, {1}, "valid", true, 1, 1));
  const LocalGeometry w1 = ref::geometry_of(spec({32, 32}, {3, 3}, {1, 1}, "valid", true, 3, 64));
  const LocalGeometry small = ref::geometry_of(spec({8, 8}, {3, 3}, {1, 1}, "same", false, 2, 3));
  CHECK(direct_path_fits(w5));
  CHECK(direct_path_fits(small));
  CHECK(!direct_path_fits(w1));
}

// The direct kernels over many blocks of positions and input elements give
// bitwise the same outputs and gradients for any thread count.
TEST(lc_kernels_direct_threads_agree_exactly) {
  std::mt19937_64 rng(17);
  for (const ref::Spec& s : {spec({3001}, {5}, {1}, "valid", true, 1, 1),
                             spec({40, 31}, {3, 2}, {2, 1}, "same", false, 2, 3),
                             spec({900}, {4}, {3}, "causal", true, 3, 2)}) {
    const long B = 37;
    const auto x = ref::random_vector(rng, B * s.N() * s.C);
    const auto w1 = ref::random_vector(rng, s.P() * s.KC() * s.F);
    const auto bias = ref::random_vector(rng, s.P() * s.F);
    const auto g = ref::random_vector(rng, B * s.P() * s.F);
    const Run one = run_layer<float>(s, B, x, w1, bias, g, LocalKernels::direct, 1);
    for (int threads : {2, 3, 5}) {
      const Run many = run_layer<float>(s, B, x, w1, bias, g, LocalKernels::direct, threads);
      CHECK_MSG(many.y == one.y && many.dx == one.dx && many.dw1 == one.dw1 &&
                    many.dbias == one.dbias,
                s.describe() << " with " << threads << " threads");
    }
  }
}

// The GEMM path shares its positions out in tiles, those of the input
// gradient class by class: bitwise the same outputs and gradients for any
// thread count (each input takes its terms in the same order), and the
// reference's input gradient. Patches of at most one column tile (read
// without a copy) and wider; tiles of one position and of several (3 x 3),
// in three, four and nine colour classes; batches of part of a vector and
// of several.
TEST(lc_kernels_gemm_threads_agree_exactly) {
  std::mt19937_64 rng(18);
  for (const ref::Spec& s : {spec({20}, {3}, {1}, "valid", true, 2, 4),
                             spec({30}, {5}, {2}, "same", false, 2, 3),
                             spec({13, 13}, {3, 3}, {2, 2}, "valid", true, 4, 6),
                             spec({20, 19}, {3, 3}, {1, 1}, "same", false, 2, 3),
                             spec({6, 6}, {3, 3}, {1, 1}, "valid", true, 3, 2)}) {
    for (long B : {5, 37, 70}) {
      const auto x = ref::random_vector(rng, B * s.N() * s.C);
      const auto w1 = ref::random_vector(rng, s.P() * s.KC() * s.F);
      const auto bias = ref::random_vector(rng, s.P() * s.F);
      const auto g = ref::random_vector(rng, B * s.P() * s.F);
      const Run one = run_layer<float>(s, B, x, w1, bias, g, LocalKernels::gemm, 1);
      CHECK_MSG(ref::max_rel_error(one.dx, ref::backward_impl1(s, x, B, w1, g).dx) <= 2e-5,
                s.describe() << " B=" << B << " input gradient");
      for (int threads : {2, 3, 5}) {
        const Run many = run_layer<float>(s, B, x, w1, bias, g, LocalKernels::gemm, threads);
        CHECK_MSG(many.y == one.y && many.dx == one.dx && many.dw1 == one.dw1 &&
                      many.dbias == one.dbias,
                  s.describe() << " B=" << B << " with " << threads << " threads");
      }
    }
  }
}

// backward()'s tiles for its threads: one 4 x 4 grid in four classes on two
// threads, as order_tiles() says (the first worker's runs forwards, the
// second's backwards); and on any grid and thread count, every tile once,
// each share's tiles class after class, and shares of sizes within one
// class's run of each other.
TEST(lc_kernels_tile_order) {
  TileGrid grid;
  grid.down = grid.across = 4;
  grid.row_colours = grid.col_colours = 2;
  std::vector<index_t> order, ends;
  order_tiles(grid, 2, order, ends);
  CHECK(ends == std::vector<index_t>({8, 16}));
  CHECK(order == std::vector<index_t>({0, 2, 1, 3, 4, 6, 5, 7, 10, 8, 11, 9, 14, 12, 15, 13}));
  for (index_t down : {1, 5, 6}) {
    for (index_t across : {1, 4, 7}) {
      for (index_t row_colours : {1, 2, 3}) {
        for (index_t col_colours : {1, 3}) {
          grid.down = down;
          grid.across = across;
          grid.row_colours = std::min(down, row_colours);
          grid.col_colours = std::min(across, col_colours);
          for (int workers : {1, 2, 3, 5}) {
            order_tiles(grid, workers, order, ends);
            std::vector<int> seen(static_cast<std::size_t>(down * across));
            bool in_class_order = true;
            index_t smallest = down * across, largest = 0, start = 0;
            for (int w = 0; w < workers; ++w) {
              for (index_t i = start; i < ends[w]; ++i) {
                ++seen[static_cast<std::size_t>(order[i])];
                const auto colour = [&](index_t tile) {
                  return grid.colour(tile / across, tile % across);
                };
                if (i > start && colour(order[i]) < colour(order[i - 1])) in_class_order = false;
              }
              smallest = std::min(smallest, ends[w] - start);
              largest = std::max(largest, ends[w] - start);
              start = ends[w];
            }
            const std::string what = std::to_string(down) + "x" + std::to_string(across) +
                                     " tiles, " + std::to_string(grid.colours()) + " classes, " +
                                     std::to_string(workers) + " workers";
            CHECK_MSG(start == down * across && order.size() == seen.size(), what);
            CHECK_MSG(std::count(seen.begin(), seen.end(), 1) == down * across, what);
            CHECK_MSG(in_class_order, what);
            CHECK_MSG(largest - smallest <= 1 + grid.colours() / 2, what);
          }
        }
      }
    }
  }
}

// Activations that take each value on its own are differentiated position by
// position on the GEMM path, in a pass of their own on the direct path:
// both give the reference's gradients for the output gradient times the
// activation's derivative at the linear output. Channels last (a position's
// gradient in one run) and first (a run per filter), bias or none.
TEST(lc_kernels_activation_gradients) {
  std::mt19937_64 rng(19);
  for (Activation activation :
       {Activation::relu, Activation::sigmoid, Activation::tanh, Activation::elu,
        Activation::selu, Activation::softplus, Activation::softsign, Activation::swish,
        Activation::gelu, Activation::hard_sigmoid, Activation::exponential}) {
    for (const ref::Spec& s : {spec({12}, {3}, {2}, "same", true, 3, 4),
                               spec({7, 6}, {3, 2}, {1, 2}, "valid", false, 2, 5)}) {
      const long B = 9;
      const bool use_bias = s.last;
      const auto x = ref::random_vector(rng, B * s.N() * s.C);
      const auto w1 = ref::random_vector(rng, s.P() * s.KC() * s.F);
      const auto bias = use_bias ? ref::random_vector(rng, s.P() * s.F) : std::vector<double>{};
      const auto g = ref::random_vector(rng, B * s.P() * s.F);
      const std::vector<double> z = ref::forward_impl1(s, x, B, w1, bias, "linear");
      std::vector<double> g_pre(g.size());
      for (std::size_t i = 0; i < g.size(); ++i) {
        const double y = activation_value(activation, z[i]);
        g_pre[i] = g[i] * activation_derivative(activation, z[i], y);
      }
      const ref::Gradients want = ref::backward_impl1(s, x, B, w1, g_pre);
      for (LocalKernels kernels : {LocalKernels::direct, LocalKernels::gemm}) {
        const Run got = run_layer<double>(s, B, x, w1, bias, g, kernels, 2, 0, activation);
        const std::string what = std::string(name_of(kernels)) + " " + s.describe() +
                                 " activation " + std::to_string(static_cast<int>(activation));
        CHECK_MSG(ref::max_rel_error(got.dx, want.dx) <= 1e-12, what << " input gradient");
        CHECK_MSG(ref::max_rel_error(got.dw1, want.dw1) <= 1e-12, what << " kernel gradient");
        if (use_bias) {
          CHECK_MSG(ref::max_rel_error(got.dbias, want.dbias) <= 1e-12, what << " bias gradient");
        }
      }
    }
  }
}
