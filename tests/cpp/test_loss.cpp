// loss_and_gradient() over many row blocks: the same loss and gradient for
// any thread count, and the values of a plain serial computation.
#include <cmath>
#include <vector>

#include "check.hpp"
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
                                        target.data.data(), weights.data(), grad, 2);
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
                                       grad_one, 1);
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
                                          no_weights, grad_ce_one, 1);
  for (int threads : {2, 3}) {
    Tensor<double> grad, grad_ce;
    CHECK_EQ(loss_and_gradient(mse, false, prediction, target.data.data(), weights.data(), grad,
                               threads),
             one);
    CHECK(grad.data == grad_one.data);
    CHECK_EQ(loss_and_gradient(crossentropy, false, probabilities, target.data.data(),
                               no_weights, grad_ce, threads),
             ce_one);
    CHECK(grad_ce.data == grad_ce_one.data);
  }
}
