// loss_and_gradient() over many row blocks: the same loss and gradient for
// any thread count, and the values of a plain serial computation.
#include <cmath>
#include <vector>

#include "check.hpp"
#include "gemm.hpp"
#include "kernel_sets.hpp"
#include "loss.hpp"
#include "random.hpp"

using namespace lcnn;

namespace {

// `samples` x 50 positions x 10 values: 50 * samples rows of 10, several blocks.
Tensor<double> random_tensor(Rng& rng, bool probabilities, index_t samples = 64) {
  Tensor<double> t;
  t.resize(Shape{{samples, 50, 10}});
  for (double& v : t.data) v = probabilities ? 0.05 + 0.9 * rng.uniform() : rng.uniform() * 4 - 2;
  return t;
}

}  // namespace

// 50 samples: the second block of an elementwise loss starts in the middle
// of a batch (16,384 is not a multiple of 50), so each value's sample weight
// must follow from its position, not from the block's start.
TEST(weighted_mse_blocks_that_start_mid_batch) {
  Rng rng(9);
  const index_t B = 50, K = 10;
  const Tensor<double> prediction = random_tensor(rng, false, B);
  const Tensor<double> target = random_tensor(rng, false, B);
  std::vector<double> weights(static_cast<std::size_t>(B));
  for (double& w : weights) w = rng.uniform() + 0.5;
  const index_t R = prediction.shape.size() / K;
  double serial = 0;
  for (index_t r = 0; r < R; ++r) {
    for (index_t k = 0; k < K; ++k) {
      const double e = prediction.data[r + k * R] - target.data[r + k * R];
      serial += weights[r % B] * e * e / K;
    }
  }
  serial /= R;
  Tensor<double> grad;
  const double loss = loss_and_gradient(parse_loss("mse", false, 1.0), false, prediction,
                                        target.data.data(), weights.data(), &grad, 2);
  CHECK_NEAR(loss, serial, 1e-12);
  bool gradient_right = true;
  for (index_t i = 0; i < prediction.shape.size(); ++i) {
    const double want = weights[(i % R) % B] * 2 * (prediction.data[i] - target.data[i]) / K / R;
    gradient_right = gradient_right && check::near(grad.data[i], want, 1e-12);
  }
  CHECK(gradient_right);
}

TEST(loss_blocks_agree_across_threads_and_with_a_serial_sum) {
  Rng rng(5);
  const Tensor<double> prediction = random_tensor(rng, false);
  const Tensor<double> target = random_tensor(rng, false);
  std::vector<double> weights(64);
  for (double& w : weights) w = rng.uniform() + 0.5;
  const index_t K = 10, R = prediction.shape.size() / K;

  double serial = 0;
  for (index_t r = 0; r < R; ++r) {
    double row = 0;
    for (index_t k = 0; k < K; ++k) {
      const double e = prediction.data[r + k * R] - target.data[r + k * R];
      row += e * e / K;
    }
    serial += weights[r % 64] * row;
  }
  serial /= R;

  const LossSpec mse = parse_loss("mse", false, 1.0);
  Tensor<double> grad_one;
  const double one = loss_and_gradient(mse, false, prediction, target.data.data(), weights.data(),
                                       &grad_one, 1);
  CHECK_NEAR(one, serial, 1e-12);
  bool gradient_right = true;
  for (index_t i = 0; i < prediction.shape.size(); ++i) {
    const double want = weights[(i % R) % 64] * 2 * (prediction.data[i] - target.data[i]) / K / R;
    gradient_right = gradient_right && check::near(grad_one.data[i], want, 1e-12);
  }
  CHECK(gradient_right);

  const LossSpec crossentropy = parse_loss("categorical_crossentropy", false, 1.0);
  const Tensor<double> probabilities = random_tensor(rng, true);
  Tensor<double> grad_ce_one;
  const double* no_weights = nullptr;
  const double ce_one = loss_and_gradient(crossentropy, false, probabilities, target.data.data(),
                                          no_weights, &grad_ce_one, 1);
  for (int threads : {2, 3}) {
    Tensor<double> grad, grad_ce;
    CHECK_EQ(loss_and_gradient(mse, false, prediction, target.data.data(), weights.data(), &grad,
                               threads),
             one);
    CHECK(grad.data == grad_one.data);
    CHECK_EQ(loss_and_gradient(crossentropy, false, probabilities, target.data.data(),
                               no_weights, &grad_ce, threads),
             ce_one);
    CHECK(grad_ce.data == grad_ce_one.data);
  }
}

// Targets read in place from R's array (a batch of the whole data) against
// the same targets in a float batch tensor: every loss, its gradient and
// every metric bit for bit the same, and each loss computed alone (no
// gradient) too. The targets are doubles that float cannot hold, so reading
// them unrounded would show. 9 samples x 40 positions x 50 values: the
// elementwise losses take two blocks, the second starting mid-run. With
// every kernel set.
TEST(targets_read_in_place_match_gathered_targets) {
  Rng rng(21);
  const index_t B = 9, P = 40, K = 50;
  const Shape shape{{B, P, K}}, sparse_shape{{B, P}};
  auto in_float = [&](const std::vector<double>& data, const Shape& to) {
    Tensor<float> batch;
    batch.resize(to);
    for (std::size_t i = 0; i < data.size(); ++i) batch.data[i] = float(data[i]);
    return batch;
  };
  std::vector<double> dense(static_cast<std::size_t>(B * P * K)),
      classes(static_cast<std::size_t>(B * P));
  for (double& t : dense) t = rng.uniform();
  for (double& c : classes) c = std::floor(rng.uniform() * K);
  Tensor<float> logits, probabilities;
  logits.resize(shape);
  probabilities.resize(shape);
  for (float& z : logits.data) z = float(rng.uniform() * 6 - 3);
  for (float& p : probabilities.data) p = float(0.02 + 0.96 * rng.uniform());
  std::vector<float> weights(static_cast<std::size_t>(B));
  for (float& w : weights) w = float(rng.uniform() + 0.5);

  struct Case {
    const char* loss;
    bool from_logits;
    bool sparse;
  };
  // Each kernel set (the elementwise losses run in them).
  for_each_kernel_set([&](const std::string& kernels) {
    for (const Case& c : {Case{"mse", false, false}, Case{"mae", false, false},
                          Case{"huber", false, false}, Case{"binary_crossentropy", false, false},
                          Case{"binary_crossentropy", true, false},
                          Case{"categorical_crossentropy", false, false},
                          Case{"categorical_crossentropy", true, false},
                          Case{"sparse_categorical_crossentropy", false, true},
                          Case{"sparse_categorical_crossentropy", true, true}}) {
      const LossSpec loss = parse_loss(c.loss, c.from_logits, 0.3);
      const std::vector<double>& data = c.sparse ? classes : dense;
      const Tensor<float> batch = in_float(data, c.sparse ? sparse_shape : shape);
      const Tensor<float>& input = c.from_logits ? logits : probabilities;
      Tensor<float> grad_batch, grad_in_place;
      const double loss_batch = loss_and_gradient(loss, c.from_logits, input, batch.data.data(),
                                                  weights.data(), &grad_batch, 2);
      const double loss_in_place = loss_and_gradient(loss, c.from_logits, input, data.data(),
                                                     weights.data(), &grad_in_place, 2);
      CHECK_MSG(loss_in_place == loss_batch,
                kernels << " " << c.loss << (c.from_logits ? " from logits" : ""));
      CHECK_MSG(grad_in_place.data == grad_batch.data, kernels << " " << c.loss);
      // The loss alone (evaluation: no gradient) is the same loss.
      Tensor<float>* const no_gradient = nullptr;
      CHECK_MSG(loss_and_gradient(loss, c.from_logits, input, data.data(), weights.data(),
                                  no_gradient, 2) == loss_batch,
                kernels << " " << c.loss << " without a gradient");
    }
  });
  for (MetricKind metric :
       {MetricKind::binary_accuracy, MetricKind::categorical_accuracy,
        MetricKind::sparse_categorical_accuracy, MetricKind::mae, MetricKind::mse}) {
    const bool sparse = metric == MetricKind::sparse_categorical_accuracy;
    const std::vector<double>& data = sparse ? classes : dense;
    const Tensor<float> batch = in_float(data, sparse ? sparse_shape : shape);
    double total_batch = 0, count_batch = 0, total_in_place = 0, count_in_place = 0;
    accumulate_metric(metric, probabilities, batch.data.data(), weights.data(), total_batch,
                      count_batch);
    accumulate_metric(metric, probabilities, data.data(), weights.data(), total_in_place,
                      count_in_place);
    CHECK_MSG(total_in_place == total_batch, "metric " << static_cast<int>(metric));
    CHECK_EQ(count_in_place, count_batch);
  }
}

// The kernel sets' elementwise sweep refuses the categorical losses, which
// loss_and_gradient() takes row by row.
TEST(elementwise_loss_refuses_categorical_losses) {
  const std::vector<float> values(4, 0.5f);
  for (const char* name : {"categorical_crossentropy", "sparse_categorical_crossentropy"}) {
    CHECK_THROWS(elementwise_loss(parse_loss(name, false, 1), false, values.data(), 2, 4,
                                  values.data(), static_cast<const float*>(nullptr), 0, 4,
                                  static_cast<float*>(nullptr)),
                 std::invalid_argument);
  }
}

// elementwise_loss() in every kernel set against each loss's term and
// slope written out in double: 13 samples (whole vector steps and a tail
// in every set) at 7 positions, weighted, Huber's values on both sides of
// delta, both binary crossentropies, a block starting mid-run. Targets
// come as doubles that the sweep rounds to float first.
TEST(elementwise_losses_of_every_kernel_set_match_their_terms) {
  Rng rng(23);
  const index_t B = 13, size = B * 7, first = 5, count = size - 5;
  std::vector<float> p(size), z(size), w(B);
  std::vector<double> t(size);
  for (index_t v = 0; v < size; ++v) {
    p[v] = float(0.01 + 0.98 * rng.uniform());
    z[v] = float(rng.uniform() * 8 - 4);
    t[v] = rng.uniform();
  }
  for (float& weight : w) weight = float(0.5 + rng.uniform());
  const double delta = 0.3;
  struct Case {
    const char* loss;
    bool logits;
  };
  for_each_kernel_set([&](const std::string& kernels) {
    for (const Case& c : {Case{"mse", false}, Case{"mae", false}, Case{"huber", false},
                          Case{"binary_crossentropy", false}, Case{"binary_crossentropy", true}}) {
      const std::string name = c.loss;
      const std::vector<float>& input = c.logits ? z : p;
      std::vector<float> grad(size, 0.0f);
      const double sum = elementwise_loss(parse_loss(name, c.logits, delta), c.logits,
                                          input.data(), B, size, t.data(), w.data(), first,
                                          count, grad.data());
      double want_sum = 0;
      bool near = true;
      for (index_t v = first; v < first + count; ++v) {
        const double x = input[v], y = double(float(t[v])), weight = w[v % B], e = x - y;
        double value = 0, slope = 0;
        if (name == "mse") {
          value = e * e;
          slope = 2 * e;
        } else if (name == "mae") {
          value = std::abs(e);
          slope = e > 0 ? 1 : e < 0 ? -1 : 0;
        } else if (name == "huber") {
          value = std::abs(e) <= delta ? 0.5 * e * e : delta * (std::abs(e) - 0.5 * delta);
          slope = std::abs(e) <= delta ? e : (e > 0 ? delta : -delta);
        } else if (c.logits) {
          value = std::max(x, 0.0) - x * y + std::log1p(std::exp(-std::abs(x)));
          slope = 1 / (1 + std::exp(-x)) - y;
        } else {
          value = -(y * std::log(x + kLossEpsilon) + (1 - y) * std::log(1 - x + kLossEpsilon));
          slope = -(y / (x + kLossEpsilon) - (1 - y) / (1 - x + kLossEpsilon));
        }
        want_sum += weight * value;
        near = near && check::near(double(grad[v]) * size, weight * slope, 1e-6);
      }
      CHECK_MSG(check::near(sum, want_sum, 1e-12), kernels << " " << name << ": " << sum
                                                           << " against " << want_sum);
      CHECK_MSG(near, kernels << " " << name << " gradient");
      for (index_t v = 0; v < first; ++v) CHECK_MSG(grad[v] == 0.0f, kernels << " wrote before");
    }
  });
}
