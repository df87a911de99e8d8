// BatchNorm forward, moving statistics and backward against a direct
// reference (every axis of a rank-3 sample), float64 and float32; thread
// counts; frozen layers; bad arguments.
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

#include "batch_norm.hpp"
#include "check.hpp"
#include "reference.hpp"

using namespace lcnn;

namespace {

// Index along `axis` (0 = batch) of the column-major flat index `flat`.
long channel_of(const ref::Dims& dims, long flat, long axis) {
  for (long a = 0; a < axis; ++a) flat /= dims[a];
  return flat % dims[axis];
}

struct Reference {
  std::vector<double> y, mean, variance;  // variance: biased
  long n = 0;                             // values per channel
};

// Keras's formulas, written per value: `axis` counts from the batch (0).
Reference reference(const ref::Dims& dims, long axis, const std::vector<double>& x,
                    const std::vector<double>& gamma, const std::vector<double>& beta,
                    const std::vector<double>* moving_mean,
                    const std::vector<double>* moving_variance, double epsilon) {
  const long C = dims[axis];
  Reference r;
  r.mean.assign(C, 0);
  r.variance.assign(C, 0);
  r.n = ref::prod(dims) / C;
  for (long k = 0; k < static_cast<long>(x.size()); ++k) r.mean[channel_of(dims, k, axis)] += x[k];
  for (double& m : r.mean) m /= double(r.n);
  for (long k = 0; k < static_cast<long>(x.size()); ++k) {
    const long c = channel_of(dims, k, axis);
    r.variance[c] += (x[k] - r.mean[c]) * (x[k] - r.mean[c]) / double(r.n);
  }
  const std::vector<double>& m = moving_mean ? *moving_mean : r.mean;
  const std::vector<double>& v = moving_variance ? *moving_variance : r.variance;
  r.y.resize(x.size());
  for (long k = 0; k < static_cast<long>(x.size()); ++k) {
    const long c = channel_of(dims, k, axis);
    const double g = gamma.empty() ? 1.0 : gamma[c], b = beta.empty() ? 0.0 : beta[c];
    r.y[k] = g * (x[k] - m[c]) / std::sqrt(v[c] + epsilon) + b;
  }
  return r;
}

template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <typename T, typename Allocator>
std::vector<double> widen(const std::vector<T, Allocator>& v) {
  return std::vector<double>(v.begin(), v.end());
}

template <typename T>
constexpr double tolerance() {
  return sizeof(T) == 8 ? 1e-12 : 2e-5;
}

struct Case {
  ref::Dims dims;  // batch first
  long axis;       // from the batch
  bool scale, center, unbiased;
};

template <typename T>
void check_case(const Case& cs, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const long C = cs.dims[cs.axis];
  const auto x = ref::random_vector(rng, ref::prod(cs.dims), -2, 3);
  const auto gamma = cs.scale ? ref::random_vector(rng, C, 0.5, 1.5) : std::vector<double>{};
  const auto beta = cs.center ? ref::random_vector(rng, C) : std::vector<double>{};
  const auto mm = ref::random_vector(rng, C), mv = ref::random_vector(rng, C, 0.5, 2);
  Shape sample;
  sample.dims.assign(cs.dims.begin() + 1, cs.dims.end());
  BatchNormOptions opt;
  opt.axis = cs.axis - 1;
  opt.momentum = 0.8;
  opt.epsilon = 1e-3;
  opt.unbiased_moving_variance = cs.unbiased;
  BatchNorm<T> layer(sample, opt, cast<T>(gamma), cast<T>(beta), cast<T>(mm), cast<T>(mv));
  Tensor<T> in, out;
  in.resize(sample.with_batch(cs.dims[0]));
  ref::assign(in.data, cast<T>(x));
  Context ctx;
  ctx.record = true;

  const Reference inference = reference(cs.dims, cs.axis, x, gamma, beta, &mm, &mv, 1e-3);
  layer.forward(in, out, ctx);
  CHECK_MSG(ref::max_rel_error(widen(out.data), inference.y) <= tolerance<T>(),
            "inference axis " << cs.axis);

  ctx.training = true;
  const Reference training = reference(cs.dims, cs.axis, x, gamma, beta, nullptr, nullptr, 1e-3);
  layer.forward(in, out, ctx);
  CHECK_MSG(ref::max_rel_error(widen(out.data), training.y) <= tolerance<T>(),
            "training axis " << cs.axis);
  // Keras's fused kernel leaves a single value's variance (0) as it is.
  const double bessel =
      cs.unbiased && training.n > 1 ? double(training.n) / double(training.n - 1) : 1.0;
  std::vector<double> want_mm(C), want_mv(C);
  for (long c = 0; c < C; ++c) {
    want_mm[c] = 0.8 * mm[c] + 0.2 * training.mean[c];
    want_mv[c] = 0.8 * mv[c] + 0.2 * training.variance[c] * bessel;
  }
  const auto& params = layer.parameters();
  CHECK_MSG(ref::max_rel_error(widen(params[params.size() - 2].values), want_mm) <= tolerance<T>(),
            "moving mean axis " << cs.axis);
  CHECK_MSG(ref::max_rel_error(widen(params.back().values), want_mv) <= tolerance<T>(),
            "moving variance axis " << cs.axis);
}

// Loss sum(w * y) of a training or inference forward, for central differences.
double weighted_output(BatchNorm<double>& layer, const Tensor<double>& in,
                       const Buffer<double>& w, bool training) {
  std::vector<std::vector<double>> saved;
  for (auto& p : layer.parameters()) saved.push_back(p.values);
  Tensor<double> out;
  Context ctx;
  ctx.training = training;
  layer.forward(in, out, ctx);
  for (std::size_t b = 0; b < saved.size(); ++b) layer.parameters()[b].values = saved[b];
  double s = 0;
  for (std::size_t k = 0; k < w.size(); ++k) s += w[k] * out.data[k];
  return s;
}

void check_gradients(const Case& cs, bool training, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const long C = cs.dims[cs.axis];
  Shape sample;
  sample.dims.assign(cs.dims.begin() + 1, cs.dims.end());
  BatchNormOptions opt;
  opt.axis = cs.axis - 1;
  BatchNorm<double> layer(sample, opt,
                          cs.scale ? ref::random_vector(rng, C, 0.5, 1.5) : std::vector<double>{},
                          cs.center ? ref::random_vector(rng, C) : std::vector<double>{},
                          ref::random_vector(rng, C), ref::random_vector(rng, C, 0.5, 2));
  Tensor<double> in, out, grad_out, grad_in;
  in.resize(sample.with_batch(cs.dims[0]));
  ref::assign(in.data, ref::random_vector(rng, ref::prod(cs.dims), -2, 3));
  grad_out.resize(in.shape);
  ref::assign(grad_out.data, ref::random_vector(rng, ref::prod(cs.dims)));
  std::vector<std::vector<double>> saved;
  for (auto& p : layer.parameters()) saved.push_back(p.values);
  Context ctx;
  ctx.training = training;
  ctx.record = true;
  layer.forward(in, out, ctx);
  for (std::size_t b = 0; b < saved.size(); ++b) layer.parameters()[b].values = saved[b];
  layer.backward(in, out, grad_out, &grad_in, ctx, false);
  const double h = 1e-6;
  for (long k = 0; k < static_cast<long>(in.data.size()); k += 3) {
    Tensor<double> up = in, down = in;
    up.data[k] += h;
    down.data[k] -= h;
    const double numeric = (weighted_output(layer, up, grad_out.data, training) -
                            weighted_output(layer, down, grad_out.data, training)) /
                           (2 * h);
    CHECK_MSG(check::near(grad_in.data[k], numeric, 1e-6),
              "dx[" << k << "] axis " << cs.axis << (training ? " training " : " inference ")
                    << grad_in.data[k] << " vs " << numeric);
  }
  for (auto& block : layer.parameters()) {
    for (std::size_t i = 0; i < block.values.size(); ++i) {
      const double v = block.values[i];
      block.values[i] = v + h;
      const double hi = weighted_output(layer, in, grad_out.data, training);
      block.values[i] = v - h;
      const double lo = weighted_output(layer, in, grad_out.data, training);
      block.values[i] = v;
      CHECK_MSG(check::near(block.gradient[i], (hi - lo) / (2 * h), 1e-6),
                block.name << "[" << i << "] axis " << cs.axis
                           << (training ? " training" : " inference"));
    }
  }
}

const std::vector<Case> kCases = {
    {{5, 3}, 1, true, true, false},        {{4, 3, 2}, 1, true, true, false},
    {{4, 3, 2}, 2, true, false, false},    {{3, 2, 3, 4}, 1, false, true, true},
    {{3, 2, 3, 4}, 2, true, true, false},  {{3, 2, 3, 4}, 3, false, false, true},
    {{1, 1, 2}, 2, true, true, true},
};

}  // namespace

TEST(batch_norm_matches_reference) {
  std::uint64_t seed = 71;
  for (const Case& cs : kCases) {
    check_case<double>(cs, seed);
    check_case<float>(cs, seed++);
  }
}

TEST(batch_norm_gradients) {
  std::uint64_t seed = 81;
  for (const Case& cs : kCases) {
    check_gradients(cs, true, seed);
    check_gradients(cs, false, seed++);
  }
}

TEST(batch_norm_same_for_any_thread_count) {
  // 3 channels of 64 * 40 * 30 values: several chunks per channel.
  const Shape sample{{40, 30, 3}};
  auto run = [&](int threads) {
    std::mt19937_64 r(92);
    BatchNormOptions opt;
    opt.axis = 2;
    BatchNorm<float> layer(sample, opt, cast<float>(ref::random_vector(r, 3)),
                           cast<float>(ref::random_vector(r, 3)), std::vector<float>(3, 0.f),
                           std::vector<float>(3, 1.f));
    Tensor<float> in, out, grad_out, grad_in;
    in.resize(sample.with_batch(64));
    ref::assign(in.data, cast<float>(ref::random_vector(r, in.shape.size())));
    grad_out.resize(in.shape);
    ref::assign(grad_out.data, cast<float>(ref::random_vector(r, in.shape.size())));
    Context ctx;
    ctx.threads = threads;
    ctx.training = true;
    ctx.record = true;
    layer.forward(in, out, ctx);
    layer.backward(in, out, grad_out, &grad_in, ctx, false);
    std::vector<float> all = ref::values_of(out.data);
    all.insert(all.end(), grad_in.data.begin(), grad_in.data.end());
    for (const auto& p : layer.parameters()) {
      all.insert(all.end(), p.values.begin(), p.values.end());
      all.insert(all.end(), p.gradient.begin(), p.gradient.end());
    }
    return all;
  };
  const std::vector<float> one = run(1);
  CHECK(one == run(2));
  CHECK(one == run(3));
}

TEST(batch_norm_frozen_uses_moving_statistics) {
  std::mt19937_64 rng(93);
  const Shape sample{{4, 2}};
  BatchNormOptions opt;
  opt.axis = 1;
  opt.frozen = true;
  const std::vector<double> mm{0.5, -1}, mv{2, 0.25};
  BatchNorm<double> layer(sample, opt, {1.5, 0.5}, {0.1, 0.2}, mm, mv);
  Tensor<double> in, out;
  in.resize(sample.with_batch(3));
  ref::assign(in.data, ref::random_vector(rng, 24));
  Context ctx;
  ctx.training = true;
  layer.forward(in, out, ctx);
  const Reference want =
      reference({3, 4, 2}, 2, ref::values_of(in.data), {1.5, 0.5}, {0.1, 0.2}, &mm, &mv, 1e-3);
  CHECK(ref::max_rel_error(out.data, want.y) <= 1e-12);
  CHECK(layer.parameters()[2].values == mm);
  CHECK(layer.parameters()[3].values == mv);
}

TEST(batch_norm_rejects_bad_arguments) {
  const Shape sample{{4, 2}};
  BatchNormOptions opt;
  opt.axis = 2;
  CHECK_THROWS(BatchNorm<double>(sample, opt, {}, {}, {0, 0}, {1, 1}), std::invalid_argument);
  opt.axis = 1;
  CHECK_THROWS(BatchNorm<double>(sample, opt, {1}, {}, {0, 0}, {1, 1}), std::invalid_argument);
  CHECK_THROWS(BatchNorm<double>(sample, opt, {}, {}, {0, 0}, {1}), std::invalid_argument);
  opt.momentum = 1.5;
  CHECK_THROWS(BatchNorm<double>(sample, opt, {}, {}, {0, 0}, {1, 1}), std::invalid_argument);
  opt.momentum = 0.9;
  opt.epsilon = 0;
  CHECK_THROWS(BatchNorm<double>(sample, opt, {}, {}, {0, 0}, {1, 1}), std::invalid_argument);
  BatchNorm<double> layer(sample, BatchNormOptions{1}, {}, {}, {0, 0}, {1, 1});
  Tensor<double> in, out;
  in.resize(Shape{{3, 2, 4}});
  CHECK_THROWS(layer.forward(in, out, Context{}), std::invalid_argument);
}
