// Checks that two networks that differ only in how they lay out or skip
// their intermediate values compute the same: outputs, every parameter's
// gradient, an activity penalty and predict(), to the bit (the penalty's
// sum to rounding).
#pragma once

#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "network.hpp"
#include "reference.hpp"

// Trains one step of both networks on the same data, on two threads, with
// an activity penalty on layer `penalized` (whose output must not be all
// zero), and predicts the same samples. `apart` may have more outputs than
// `same`, after the first, which take no loss; `what` names the case in
// messages.
inline void check_same_networks(lcnn::Network<double>& same, lcnn::Network<double>& apart,
                                std::size_t penalized, std::mt19937_64& rng,
                                const std::string& what) {
  using namespace lcnn;
  const long n = 5;
  const Shape in = same.input_shapes()[0], out = same.output_shapes()[0];
  Tensor<double> x, grad;
  x.resize(in.with_batch(n));
  ref::assign(x.data, ref::random_vector(rng, n * in.size()));
  grad.resize(out.with_batch(n));
  ref::assign(grad.data, ref::random_vector(rng, n * out.size()));
  std::vector<Penalty> activity(same.layer_count());
  activity[penalized] = {0.01, 0.02};
  Context ctx;
  ctx.threads = 2;
  ctx.record = true;
  const Tensor<double> y_same = *same.forward({&x}, ctx).front();
  same.backward({&x}, {&grad}, {false}, ctx, activity);
  const Tensor<double> y_apart = *apart.forward({&x}, ctx).front();
  const std::size_t extra = apart.output_shapes().size() - 1;
  std::vector<const Tensor<double>*> grads(1 + extra, nullptr);
  grads[0] = &grad;
  apart.backward({&x}, grads, std::vector<bool>(1 + extra, false), ctx, activity);
  CHECK_MSG(y_same.data == y_apart.data, what);
  CHECK_MSG(same.activity_penalty(activity) > 0, what);
  CHECK(check::near(same.activity_penalty(activity), apart.activity_penalty(activity), 1e-14));
  for (std::size_t l = 0; l < same.layer_count(); ++l) {
    auto& got = same.layer(l).parameters();
    auto& expected = apart.layer(l).parameters();
    for (std::size_t b = 0; b < got.size(); ++b) {
      CHECK_MSG(got[b].gradient == expected[b].gradient,
                what << ", layer " << l << ", block " << b);
    }
  }
  const auto x_col = ref::random_vector(rng, n * in.size());
  std::vector<std::vector<double>> p_apart(1 + extra);
  std::vector<double*> to;
  for (std::size_t o = 0; o <= extra; ++o) {
    p_apart[o].resize(static_cast<std::size_t>(n * apart.output_shapes()[o].size()));
    to.push_back(p_apart[o].data());
  }
  std::vector<double> p_same(p_apart[0].size());
  same.predict({x_col.data()}, n, 2, Context{}, {p_same.data()});
  apart.predict({x_col.data()}, n, 2, Context{}, to);
  CHECK_MSG(p_same == p_apart[0], what);
}
