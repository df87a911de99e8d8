// Dense layer products against naive sums, on shapes whose parallel blocks
// split each product by rows and by columns, and the same results for any
// thread count; a dense layer reading a flatten's input through it.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "check.hpp"
#include "dense.hpp"
#include "flatten.hpp"
#include "reference.hpp"

using namespace lcnn;

namespace {

struct DenseResults {
  std::vector<double> output, kernel_grad, bias_grad, input_grad;
};

// Forward and backward of a linear dense layer on N samples of D features
// with F units; the kernel is D x F column-major, as the engine keeps it.
DenseResults dense_results(index_t N, index_t D, index_t F, const std::vector<double>& x,
                           const std::vector<double>& kernel, const std::vector<double>& bias,
                           const std::vector<double>& grad_output, int threads) {
  Dense<double> layer(Shape{{D}}, F, Activation::linear, kernel, bias);
  Tensor<double> input, output, grad, grad_input;
  input.resize(Shape{{N, D}});
  ref::assign(input.data, x);
  grad.resize(Shape{{N, F}});
  ref::assign(grad.data, grad_output);
  Context ctx;
  ctx.threads = threads;
  ctx.record = true;
  layer.forward(input, output, ctx);
  layer.backward(input, output, grad, &grad_input, ctx, false);
  return {ref::values_of(output.data), layer.parameters()[0].gradient,
          layer.parameters()[1].gradient, ref::values_of(grad_input.data)};
}

// The largest difference between the engine's values and naive sums.
double worst_error(index_t N, index_t D, index_t F, const std::vector<double>& x,
                   const std::vector<double>& w, const std::vector<double>& b,
                   const std::vector<double>& g, const DenseResults& got) {
  double worst = 0;
  auto compare = [&](double expected, double value) {
    worst = std::max(worst, std::abs(expected - value));
  };
  for (index_t i = 0; i < N; ++i) {
    for (index_t f = 0; f < F; ++f) {
      double y = b[f];
      for (index_t d = 0; d < D; ++d) y += x[i + d * N] * w[d + f * D];
      compare(y, got.output[i + f * N]);
    }
  }
  for (index_t d = 0; d < D; ++d) {
    for (index_t f = 0; f < F; ++f) {
      double dw = 0;
      for (index_t i = 0; i < N; ++i) dw += x[i + d * N] * g[i + f * N];
      compare(dw, got.kernel_grad[d + f * D]);
    }
  }
  for (index_t f = 0; f < F; ++f) {
    double db = 0;
    for (index_t i = 0; i < N; ++i) db += g[i + f * N];
    compare(db, got.bias_grad[f]);
  }
  for (index_t i = 0; i < N; ++i) {
    for (index_t d = 0; d < D; ++d) {
      double dx = 0;
      for (index_t f = 0; f < F; ++f) dx += g[i + f * N] * w[d + f * D];
      compare(dx, got.input_grad[i + d * N]);
    }
  }
  return worst;
}

}  // namespace

TEST(dense_products_in_blocks_match_naive_sums_for_any_thread_count) {
  // (N, D, F): the first splits its forward pass and input gradient by
  // rows (three blocks of 67, 67 and 66 samples) and its kernel gradient by
  // rows of eight uneven blocks; the second splits its forward pass and
  // kernel gradient by columns; the third its forward pass and input
  // gradient by columns and its kernel gradient by rows. These multiply
  // with column products; the last two, with Eigen's GEMMs (more samples
  // than a tile through a kernel of 2^18 values or more), split the fourth's
  // forward pass by columns and the fifth's by rows, and both kernel
  // gradients by rows and input gradients by columns.
  const std::vector<std::vector<index_t>> shapes = {
      {200, 530, 40}, {40, 50, 300}, {96, 1000, 70}, {130, 600, 440}, {72, 600, 440}};
  const std::vector<bool> column_products = {true, true, true, false, false};
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> uniform(-1, 1);
  auto random_values = [&](index_t count) {
    std::vector<double> v(static_cast<std::size_t>(count));
    for (double& value : v) value = uniform(rng);
    return v;
  };
  for (std::size_t shape = 0; shape < shapes.size(); ++shape) {
    const index_t N = shapes[shape][0], D = shapes[shape][1], F = shapes[shape][2];
    CHECK(dense_column_products(N, D * F) == column_products[shape]);
    const std::vector<double> x = random_values(N * D), w = random_values(D * F),
                              b = random_values(F), g = random_values(N * F);
    const DenseResults one = dense_results(N, D, F, x, w, b, g, 1);
    CHECK(worst_error(N, D, F, x, w, b, g, one) < 1e-10);
    for (int threads : {2, 3}) {
      const DenseResults more = dense_results(N, D, F, x, w, b, g, threads);
      CHECK(more.output == one.output);
      CHECK(more.kernel_grad == one.kernel_grad);
      CHECK(more.bias_grad == one.bias_grad);
      CHECK(more.input_grad == one.input_grad);
    }
  }
}

// A dense layer that reads through a flatten (Dense::read_through()) gives
// what the flatten and the dense layer give one after the other, to the
// bit: the same sums in the same order, with column products (a batch of
// 5) and with Eigen's GEMMs (66 samples through 2^18 weights), whose input
// and input gradient the layer gathers and scatters itself.
TEST(dense_reads_through_a_flatten_as_if_it_had_run) {
  std::mt19937_64 rng(12);
  const Shape image{{8, 8, 16}};
  const index_t D = image.size(), F = 256;
  CHECK(D * F == (index_t(1) << 18));
  for (const index_t B : {5, 66}) {
    const std::vector<double> x = ref::random_vector(rng, B * D),
                              w = ref::random_vector(rng, D * F),
                              b = ref::random_vector(rng, F), g = ref::random_vector(rng, B * F);
    Context ctx;
    ctx.threads = 2;
    ctx.record = true;
    Tensor<double> input, grad_output;
    input.resize(image.with_batch(B));
    ref::assign(input.data, x);
    grad_output.resize(Shape{{B, F}});
    ref::assign(grad_output.data, g);

    Flatten<double> flatten(image, false);
    Dense<double> apart(Shape{{D}}, F, Activation::relu, w, b);
    Tensor<double> flat, out_apart, grad_flat, grad_apart;
    flatten.forward(input, flat, ctx);
    apart.forward(flat, out_apart, ctx);
    apart.backward(flat, out_apart, grad_output, &grad_flat, ctx, false);
    flatten.backward(input, flat, grad_flat, &grad_apart, ctx, false);

    Dense<double> through(Shape{{D}}, F, Activation::relu, w, b);
    CHECK(through.read_through(flatten));
    Tensor<double> out_through, grad_through;
    through.forward(input, out_through, ctx);
    through.backward(input, out_through, grad_output, &grad_through, ctx, false);
    CHECK_MSG(dense_column_products(B, D * F) == (B == 5), "batch " << B);
    CHECK(out_through.data == out_apart.data);
    CHECK(through.parameters()[0].gradient == apart.parameters()[0].gradient);
    CHECK(through.parameters()[1].gradient == apart.parameters()[1].gradient);
    CHECK(grad_through.shape == input.shape);
    CHECK(grad_through.data == grad_apart.data);
    // The input as the flatten's output lays it out is not its input.
    CHECK_THROWS(through.forward(flat, out_through, ctx), std::invalid_argument);
  }
}

// Only a gather that permutes its input's features into a dense layer's
// input of rank 1.
TEST(dense_reads_through_only_a_permutation_into_its_input) {
  const std::vector<double> w(12 * 2, 0.5), b(2, 0.0);
  Dense<double> dense(Shape{{12}}, 2, Activation::linear, w, b);
  CHECK(!dense.read_through(PadCrop<double>(Shape{{10}}, {1}, {1})));
  CHECK(!dense.read_through(Flatten<double>(Shape{{2, 5}}, false)));
  Dense<double> on_last_axis(Shape{{3, 4}}, 2, Activation::linear, std::vector<double>(8, 0.5),
                             b);
  CHECK(!on_last_axis.read_through(Reshape<double>(Shape{{4, 3}}, Shape{{3, 4}})));
  CHECK(dense.read_through(Permute<double>(Shape{{12}}, {0})));
  CHECK(dense.read_through(Flatten<double>(Shape{{3, 2, 2}}, true)));
}
