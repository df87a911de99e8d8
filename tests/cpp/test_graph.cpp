// Networks that are not chains: two inputs, a shared layer, merges; a dense
// layer reading through the flatten before it.
#include <memory>
#include <stdexcept>
#include <vector>

#include "check.hpp"
#include "dense.hpp"
#include "flatten.hpp"
#include "locally_connected.hpp"
#include "merge.hpp"
#include "network.hpp"
#include "reference.hpp"
#include "same_networks.hpp"

using namespace lcnn;

namespace {

// A 1D channels_last layer 7x2 -> 5x3 with random weights.
struct SharedLayer {
  ref::Spec spec;
  std::vector<double> w1, bias;
  LocalGeometry g;
  std::vector<double> kernel, engine_bias;

  explicit SharedLayer(std::mt19937_64& rng) {
    spec.n = {7};
    spec.k = {3};
    spec.s = {1};
    spec.padding = "valid";
    spec.last = true;
    spec.C = 2;
    spec.F = 3;
    w1 = ref::random_vector(rng, spec.P() * spec.KC() * spec.F);
    bias = ref::random_vector(rng, spec.P() * spec.F);
    g = ref::geometry_of(spec);
    kernel.resize(static_cast<std::size_t>(g.kernel_size()));
    engine_bias.resize(static_cast<std::size_t>(g.bias_size()));
    const auto col = ref::c_to_colmajor(w1, spec.w1_dims());
    kernel_from_keras(g, 1, col.data(), kernel.data());
    const auto bcol = ref::c_to_colmajor(bias, spec.bias_dims());
    bias_from_keras(g, bcol.data(), engine_bias.data());
  }
  std::unique_ptr<Layer<double>> make() const {
    return std::make_unique<LocallyConnected<double>>(g, Activation::tanh, kernel, engine_bias);
  }
};

// inputs a, b -> shared(a), shared(b) -> [add, concatenate on the steps].
std::unique_ptr<Network<double>> siamese(const SharedLayer& layer) {
  Graph graph;
  graph.inputs = {Shape{{7, 2}}, Shape{{7, 2}}};
  std::vector<std::unique_ptr<Layer<double>>> nodes;
  nodes.push_back(layer.make());
  nodes.push_back(layer.make());
  nodes.push_back(std::make_unique<Merge<double>>(MergeKind::add,
                                                  std::vector<Shape>{{{5, 3}}, {{5, 3}}}));
  nodes.push_back(std::make_unique<Merge<double>>(MergeKind::concatenate,
                                                  std::vector<Shape>{{{5, 3}}, {{5, 3}}}, 0));
  graph.nodes = {{0, {0}}, {0, {1}}, {1, {2, 3}}, {2, {2, 3}}};
  graph.outputs = {4, 5};
  return std::make_unique<Network<double>>(std::move(graph), std::move(nodes));
}

}  // namespace

TEST(graph_shared_layer_and_merges_forward) {
  std::mt19937_64 rng(11);
  const SharedLayer layer(rng);
  auto net = siamese(layer);
  const long n = 3;
  const ref::Dims in_dims{n, 7, 2}, out_dims{n, 5, 3};
  const auto a = ref::random_vector(rng, ref::prod(in_dims));
  const auto b = ref::random_vector(rng, ref::prod(in_dims));
  const auto ya = ref::forward_impl1(layer.spec, a, n, layer.w1, layer.bias, "tanh");
  const auto yb = ref::forward_impl1(layer.spec, b, n, layer.w1, layer.bias, "tanh");
  std::vector<double> sum(ya.size()), joined;
  for (std::size_t i = 0; i < sum.size(); ++i) sum[i] = ya[i] + yb[i];
  for (long s = 0; s < n; ++s) {  // C order: sample, then 5 steps x 3 of a, then of b
    joined.insert(joined.end(), ya.begin() + s * 15, ya.begin() + (s + 1) * 15);
    joined.insert(joined.end(), yb.begin() + s * 15, yb.begin() + (s + 1) * 15);
  }
  const auto a_col = ref::c_to_colmajor(a, in_dims), b_col = ref::c_to_colmajor(b, in_dims);
  std::vector<double> added(static_cast<std::size_t>(ref::prod(out_dims))), concat(2 * added.size());
  net->predict({a_col.data(), b_col.data()}, n, 2, Context{}, {added.data(), concat.data()});
  CHECK(ref::max_rel_error(ref::colmajor_to_c(added, out_dims), sum) <= 1e-12);
  CHECK(ref::max_rel_error(ref::colmajor_to_c(concat, {n, 10, 3}), joined) <= 1e-12);
}

TEST(graph_shared_layer_gradient_is_the_sum_over_calls) {
  std::mt19937_64 rng(12);
  const SharedLayer layer(rng);
  auto net = siamese(layer);
  const long n = 4;
  Tensor<double> a, b, grad_add, grad_concat;
  a.resize(Shape{{n, 7, 2}});
  b.resize(Shape{{n, 7, 2}});
  ref::assign(a.data, ref::random_vector(rng, ref::prod({n, 7, 2})));
  ref::assign(b.data, ref::random_vector(rng, ref::prod({n, 7, 2})));
  grad_add.resize(Shape{{n, 5, 3}});
  ref::assign(grad_add.data, ref::random_vector(rng, ref::prod({n, 5, 3})));
  grad_concat.resize(Shape{{n, 10, 3}});
  ref::assign(grad_concat.data, ref::random_vector(rng, ref::prod({n, 10, 3})));
  Context ctx;
  ctx.record = true;
  net->forward({&a, &b}, ctx);
  net->backward({&a, &b}, {&grad_add, &grad_concat}, {false, false}, ctx);
  const auto& total = net->layer(0).parameters()[0].gradient;

  // The same by hand: each call's output gradient is the add's plus its
  // half of the concatenation's (steps 0-4 from a, 5-9 from b).
  std::vector<double> expected(total.size(), 0.0);
  for (int call = 0; call < 2; ++call) {
    auto single = layer.make();
    Tensor<double> out, grad_out;
    single->forward(call == 0 ? a : b, out, ctx);
    grad_out = grad_add;
    for (long s = 0; s < 5 * 3; ++s) {
      const long step = s % 5, channel = s / 5;
      for (long i = 0; i < n; ++i) {
        grad_out.data[static_cast<std::size_t>(s * n + i)] +=
            grad_concat.data[static_cast<std::size_t>((channel * 10 + step + 5 * call) * n + i)];
      }
    }
    single->backward(call == 0 ? a : b, out, grad_out, nullptr, ctx, false);
    const auto& g = single->parameters()[0].gradient;
    for (std::size_t k = 0; k < g.size(); ++k) expected[k] += g[k];
  }
  CHECK(ref::max_rel_error(total, expected) <= 1e-12);
}

TEST(graph_errors) {
  std::mt19937_64 rng(13);
  const SharedLayer layer(rng);
  auto build = [&](Graph graph, int layers) {
    std::vector<std::unique_ptr<Layer<double>>> nodes;
    for (int i = 0; i < layers; ++i) nodes.push_back(layer.make());
    return Network<double>(std::move(graph), std::move(nodes));
  };
  Graph reads_later{{Shape{{7, 2}}}, {{0, {2}}, {0, {0}}}, {1}};
  CHECK_THROWS(build(reads_later, 2), std::invalid_argument);
  Graph wrong_shape{{Shape{{7, 3}}}, {{0, {0}}}, {1}};
  CHECK_THROWS(build(wrong_shape, 1), std::invalid_argument);
  Graph skipped_layer{{Shape{{7, 2}}}, {{1, {0}}}, {1}};
  CHECK_THROWS(build(skipped_layer, 1), std::invalid_argument);
  Graph no_output{{Shape{{7, 2}}}, {{0, {0}}}, {5}};
  CHECK_THROWS(build(no_output, 1), std::invalid_argument);
  CHECK_THROWS(Merge<double>(MergeKind::subtract, {Shape{{2}}, Shape{{2}}, Shape{{2}}}),
               std::invalid_argument);
  CHECK_THROWS(Merge<double>(MergeKind::add, {Shape{{2}}, Shape{{3}}}), std::invalid_argument);
  CHECK_THROWS(Merge<double>(MergeKind::concatenate, {Shape{{2, 3}}, Shape{{2, 4}}}, 0),
               std::invalid_argument);
}

namespace {

// input (7, 2) -> [locally connected (5, 3), when `local`] -> flatten ->
// dense (4 units); with `flatten_out`, the flatten's output is an output of
// the network too, so that nothing reads through it.
std::unique_ptr<Network<double>> flatten_into_dense(const SharedLayer& layer, bool local,
                                                    bool flatten_out, std::mt19937_64& rng) {
  Graph graph;
  graph.inputs = {Shape{{7, 2}}};
  std::vector<std::unique_ptr<Layer<double>>> nodes;
  const Shape before = local ? Shape{{5, 3}} : Shape{{7, 2}};
  if (local) nodes.push_back(layer.make());
  nodes.push_back(std::make_unique<Flatten<double>>(before, false));
  nodes.push_back(std::make_unique<Dense<double>>(Shape{{before.size()}}, 4, Activation::tanh,
                                                  ref::random_vector(rng, before.size() * 4),
                                                  ref::random_vector(rng, 4)));
  for (std::size_t k = 0; k < nodes.size(); ++k) graph.nodes.push_back({k, {k}});
  graph.outputs = {nodes.size()};
  if (flatten_out) graph.outputs.push_back(nodes.size() - 1);
  return std::make_unique<Network<double>>(std::move(graph), std::move(nodes));
}

}  // namespace

// The network skips a flatten that only a dense layer reads, from a layer or
// from the network's input, with the same outputs, gradients and activity
// penalties (to the bit, the penalty's sum to rounding) as when it runs.
TEST(graph_dense_reads_through_a_flatten) {
  std::mt19937_64 rng(14);
  const SharedLayer layer(rng);
  for (const bool local : {true, false}) {
    std::mt19937_64 weights(15);
    auto through = flatten_into_dense(layer, local, false, weights);
    weights.seed(15);
    auto apart = flatten_into_dense(layer, local, true, weights);
    const std::size_t flatten = local ? 1 : 0, dense = flatten + 1;
    CHECK(through->read_through(flatten));
    CHECK(!through->read_through(dense));
    CHECK(!apart->read_through(flatten));
    if (local) CHECK(!through->read_through(0));
    check_same_networks(*through, *apart, flatten, rng,
                        local ? "from a layer" : "from the network's input");
  }
}
