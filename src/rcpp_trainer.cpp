// Glue for training: an engine Trainer (network, loss, metrics, optimizer)
// behind an external pointer; epochs run in the engine and call back into R
// between batches only, for progress and interrupts.
#include <Rcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/device_trainer.hpp"
#include "engine/trainer.hpp"
#include "rcpp_convert.h"
#include "rcpp_result_memory.h"

using namespace lcnn;

namespace {

OptimizerSpec optimizer_from_list(const Rcpp::List& o) {
  OptimizerSpec s;
  s.kind = parse_optimizer(Rcpp::as<std::string>(o["name"]));
  s.learning_rate = Rcpp::as<double>(o["learning_rate"]);
  s.momentum = Rcpp::as<double>(o["momentum"]);
  s.nesterov = Rcpp::as<bool>(o["nesterov"]);
  s.beta_1 = Rcpp::as<double>(o["beta_1"]);
  s.beta_2 = Rcpp::as<double>(o["beta_2"]);
  s.amsgrad = Rcpp::as<bool>(o["amsgrad"]);
  s.rho = Rcpp::as<double>(o["rho"]);
  s.centered = Rcpp::as<bool>(o["centered"]);
  s.initial_accumulator_value = Rcpp::as<double>(o["initial_accumulator_value"]);
  s.epsilon = Rcpp::as<double>(o["epsilon"]);
  return s;
}

// training: list(outputs, optimizer, trainable, l1, l2, constraints) with
// per network output list(loss, from_logits, delta, weight, metrics), and
// one entry per parameter block in the last four, each constraint
// list(name, min_value, max_value, rate, group); and activity_l1,
// activity_l2 with one entry per layer.
TrainingSpec training_from_list(const Rcpp::List& t) {
  TrainingSpec spec;
  for (const Rcpp::List o : Rcpp::List(t["outputs"])) {
    OutputSpec out;
    out.loss = parse_loss(Rcpp::as<std::string>(o["loss"]), Rcpp::as<bool>(o["from_logits"]),
                          Rcpp::as<double>(o["delta"]));
    out.weight = Rcpp::as<double>(o["weight"]);
    for (const std::string& m : Rcpp::as<std::vector<std::string>>(o["metrics"])) {
      out.metrics.push_back(parse_metric(m));
    }
    spec.outputs.push_back(std::move(out));
  }
  spec.optimizer = optimizer_from_list(t["optimizer"]);
  const Rcpp::LogicalVector trainable = t["trainable"];
  const Rcpp::NumericVector l1 = t["l1"], l2 = t["l2"];
  const Rcpp::List constraints = t["constraints"];
  for (R_xlen_t i = 0; i < trainable.size(); ++i) {
    spec.trainable.push_back(trainable[i]);
    spec.penalties.push_back({l1[i], l2[i]});
    const Rcpp::List c = constraints[i];
    ConstraintSpec constraint;
    constraint.kind = parse_constraint(Rcpp::as<std::string>(c["name"]));
    constraint.min_value = Rcpp::as<double>(c["min_value"]);
    constraint.max_value = Rcpp::as<double>(c["max_value"]);
    constraint.rate = Rcpp::as<double>(c["rate"]);
    const Rcpp::NumericVector group = c["group"];
    constraint.group.assign(group.begin(), group.end());
    spec.constraints.push_back(std::move(constraint));
  }
  const Rcpp::NumericVector activity_l1 = t["activity_l1"], activity_l2 = t["activity_l2"];
  for (R_xlen_t i = 0; i < activity_l1.size(); ++i) {
    spec.activity.push_back({activity_l1[i], activity_l2[i]});
  }
  return spec;
}

TrainerBase& trainer_of(SEXP ptr) {
  Rcpp::XPtr<TrainerBase> trainer(ptr);
  if (trainer.get() == nullptr) Rcpp::stop("the engine trainer is no longer valid");
  return *trainer;
}

// xs and ys: lists of R arrays, n samples each.
DataSet data_of(const Rcpp::List& xs, const Rcpp::List& ys,
                const Rcpp::Nullable<Rcpp::NumericVector>& weights, double n) {
  DataSet d;
  d.n = static_cast<index_t>(n);
  for (SEXP x : xs) d.xs.push_back({double_values(x), Rf_xlength(x)});
  for (SEXP y : ys) d.ys.push_back({double_values(y), Rf_xlength(y)});
  if (weights.isNotNull()) d.weights = double_values(weights.get());
  return d;
}

Rcpp::List scores_to_list(const Scores& s) {
  return Rcpp::List::create(Rcpp::_["loss"] = s.loss,
                            Rcpp::_["output_losses"] = Rcpp::wrap(s.output_losses),
                            Rcpp::_["metrics"] = Rcpp::wrap(s.metrics));
}

Rcpp::List blocks_to_list(const std::vector<std::vector<double>>& blocks) {
  Rcpp::List out(blocks.size());
  for (std::size_t i = 0; i < blocks.size(); ++i) out[i] = Rcpp::wrap(blocks[i]);
  return out;
}

// A list of new R vectors, allocate(size) for each of `sizes`, filled by
// copy() where they lie, from their first values' addresses. For the
// parameters and optimizer state that each fit() call copies into R at
// its end: large ones in the results' pool, where the last call's copies
// leave their pages to the next call's (a model of 14.7 million
// parameters: a fit() call of one batch 0.31 -> 0.08 s; bench/NOTES.md),
// on base pages, which this machine faults in for the first time in half
// the time of huge ones, and which a copy written once does not need.
template <typename Pointer, typename Allocate, typename Copy>
Rcpp::List filled_list(const std::vector<index_t>& sizes, Allocate allocate, Copy copy) {
  Rcpp::List out(sizes.size());
  std::vector<Pointer> to;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    auto vector = allocate(static_cast<R_xlen_t>(sizes[k]));
    to.push_back(vector.begin());
    out[k] = vector;
  }
  copy(to.data());
  return out;
}

std::vector<std::vector<double>> list_to_blocks(const Rcpp::List& list) {
  std::vector<std::vector<double>> out;
  for (R_xlen_t i = 0; i < list.size(); ++i) {
    out.push_back(Rcpp::as<std::vector<double>>(list[i]));
  }
  return out;
}

Context context(int threads) {
  Context ctx;
  ctx.threads = threads;
  return ctx;
}

}  // namespace

// device "cuda" takes float32 networks (R checks both first).
// [[Rcpp::export(.trainer_create)]]
SEXP trainer_create(Rcpp::List network, std::string dtype, Rcpp::List training,
                    std::string device, int threads) {
  TrainingSpec spec = training_from_list(training);
  std::unique_ptr<TrainerBase> trainer;
  if (device == "cuda") {
    trainer = std::make_unique<DeviceTrainer>(make_network<float>(network, threads),
                                              std::move(spec));
  } else if (dtype == "float64") {
    trainer = std::make_unique<Trainer<double>>(make_network<double>(network, threads),
                                                std::move(spec));
  } else {
    trainer = std::make_unique<Trainer<float>>(make_network<float>(network, threads),
                                               std::move(spec));
  }
  return Rcpp::XPtr<TrainerBase>(trainer.release(), true);
}

// Whether the CUDA device can run and train a float32 network:
// list(supported, layer (1-based, NA if none), reason).
// [[Rcpp::export(.device_support)]]
Rcpp::List device_support_of(Rcpp::List network, int threads) {
  std::unique_ptr<Network<float>> net = make_network<float>(network, threads);
  const DeviceSupport support = device_support(*net);
  return Rcpp::List::create(
      Rcpp::_["supported"] = support.supported,
      Rcpp::_["layer"] = support.layer < 0 ? NA_INTEGER : static_cast<int>(support.layer + 1),
      Rcpp::_["reason"] = support.reason);
}

// `order` holds 0-based sample indices; progress(batch, scores) is
// called after every `every` batches and returns FALSE to stop.
// [[Rcpp::export(.trainer_fit_epoch)]]
Rcpp::List trainer_fit_epoch(SEXP trainer, Rcpp::List xs, Rcpp::List ys,
                             Rcpp::Nullable<Rcpp::NumericVector> weights, double n,
                             Rcpp::NumericVector order, double batch_size,
                             Rcpp::NumericVector seed, int threads, Rcpp::Function progress,
                             int every) {
  const DataSet data = data_of(xs, ys, weights, n);
  std::vector<index_t> rows(order.begin(), order.end());
  const index_t batches = (static_cast<index_t>(rows.size()) + static_cast<index_t>(batch_size) - 1) /
                          static_cast<index_t>(batch_size);
  bool completed = true;
  const Scores scores = trainer_of(trainer).fit_epoch(
      data, rows, static_cast<index_t>(batch_size), seed_from_r(seed), context(threads),
      [&](index_t batch, const Scores& running) {
        if ((batch + 1) % every != 0 && batch + 1 != batches) return true;
        return Rcpp::as<bool>(progress(static_cast<double>(batch + 1), scores_to_list(running)));
      },
      completed);
  Rcpp::List out = scores_to_list(scores);
  out["completed"] = completed;
  return out;
}

// fit() keeps the data's sample-major copies for its epochs (EpochCopies)
// and lets them go when it returns, into the pool of predict()'s results
// (rcpp_result_memory.cpp) for the next call's copies.
// [[Rcpp::export(.trainer_keep_epoch_copies)]]
void trainer_keep_epoch_copies(SEXP trainer, bool keep) {
  if (!keep) lcnn::watch_collections();
  trainer_of(trainer).keep_epoch_copies(keep);
}

// fit()'s sample-major copies of its data (EpochCopies), made as it checks
// the data, before it builds the model and its trainer, which then takes
// them: list(copies, not_finite), with one flag per array of xs, then of
// ys, for whether it holds NA, NaN, infinite values or values beyond the
// range of `dtype` (then the copies are freed already).
// [[Rcpp::export(.epoch_copies_prepare)]]
Rcpp::List epoch_copies_prepare(Rcpp::List xs, Rcpp::List ys, double n, std::string dtype,
                                int threads) {
  const DataSet data = data_of(xs, ys, R_NilValue, n);
  auto prepared = std::make_unique<PreparedCopies>();
  const std::vector<bool> not_finite = dtype == "float64"
                                           ? prepared->of<double>().prepare(data, threads)
                                           : prepared->of<float>().prepare(data, threads);
  return Rcpp::List::create(
      Rcpp::_["copies"] = Rcpp::XPtr<PreparedCopies>(prepared.release(), true),
      Rcpp::_["not_finite"] = Rcpp::wrap(not_finite));
}

// [[Rcpp::export(.trainer_take_epoch_copies)]]
void trainer_take_epoch_copies(SEXP trainer, SEXP copies) {
  Rcpp::XPtr<PreparedCopies> prepared(copies);
  if (prepared.get() != nullptr) trainer_of(trainer).take_epoch_copies(*prepared);
}

// Frees prepared copies that no trainer took (fit() stopped before), rather
// than at a later collection of R's.
// [[Rcpp::export(.epoch_copies_release)]]
void epoch_copies_release(SEXP copies) {
  Rcpp::XPtr<PreparedCopies> prepared(copies);
  prepared.release();
}

// [[Rcpp::export(.trainer_evaluate)]]
Rcpp::List trainer_evaluate(SEXP trainer, Rcpp::List xs, Rcpp::List ys,
                            Rcpp::Nullable<Rcpp::NumericVector> weights, double n,
                            double batch_size, int threads) {
  return scores_to_list(trainer_of(trainer).evaluate(data_of(xs, ys, weights, n),
                                                     static_cast<index_t>(batch_size),
                                                     context(threads)));
}

// [[Rcpp::export(.trainer_gradients)]]
Rcpp::List trainer_gradients(SEXP trainer, Rcpp::List xs, Rcpp::List ys,
                             Rcpp::Nullable<Rcpp::NumericVector> weights, double n,
                             Rcpp::NumericVector seed, int threads) {
  return blocks_to_list(trainer_of(trainer).gradients(data_of(xs, ys, weights, n),
                                                      seed_from_r(seed), context(threads)));
}

// [[Rcpp::export(.trainer_predict)]]
Rcpp::List trainer_predict(SEXP trainer, Rcpp::List xs, double batch_size, int threads) {
  return predict_arrays(trainer_of(trainer).network(), xs, batch_size, threads);
}

// [[Rcpp::export(.trainer_parameters)]]
Rcpp::List trainer_parameters(SEXP trainer) {
  const TrainerBase& t = trainer_of(trainer);
  return filled_list<double*>(t.parameter_sizes(),
                              [](R_xlen_t n) { return result_vector(n, PageSize::base); },
                              [&](double* const* to) { t.copy_parameters(to); });
}

// [[Rcpp::export(.trainer_set_parameters)]]
void trainer_set_parameters(SEXP trainer, Rcpp::List values) {
  trainer_of(trainer).set_parameters(list_to_blocks(values));
}

// The slots as raw vectors of the engine's values (TrainerBase), which
// only .trainer_restore_optimizer() reads.
// [[Rcpp::export(.trainer_optimizer_state)]]
Rcpp::List trainer_optimizer_state(SEXP trainer) {
  const TrainerBase& t = trainer_of(trainer);
  std::vector<index_t> bytes = t.optimizer_slot_sizes();
  for (index_t& size : bytes) size *= static_cast<index_t>(t.value_bytes());
  return Rcpp::List::create(
      Rcpp::_["iterations"] = t.iterations(), Rcpp::_["learning_rate"] = t.learning_rate(),
      Rcpp::_["slots"] = filled_list<void*>(
          bytes, [](R_xlen_t n) { return result_bytes(n, PageSize::base); },
          [&](void* const* to) { t.copy_optimizer_slots(to); }));
}

// [[Rcpp::export(.trainer_restore_optimizer)]]
void trainer_restore_optimizer(SEXP trainer, double iterations, double learning_rate,
                               Rcpp::List slots) {
  TrainerBase& t = trainer_of(trainer);
  std::vector<ValueBytes> bytes;
  for (R_xlen_t k = 0; k < slots.size(); ++k) {
    SEXP slot = slots[k];
    if (TYPEOF(slot) != RAWSXP) Rcpp::stop("optimizer slot %d is not a raw vector", k + 1);
    bytes.push_back({RAW(slot), static_cast<std::size_t>(Rf_xlength(slot))});
  }
  t.restore_optimizer(iterations, bytes);
  t.set_learning_rate(learning_rate);
}

// The learning rate alone, for the callbacks that read it every epoch:
// the whole optimizer state would copy every slot into R as well.
// [[Rcpp::export(.trainer_learning_rate)]]
double trainer_learning_rate(SEXP trainer) {
  return trainer_of(trainer).learning_rate();
}

// [[Rcpp::export(.trainer_set_learning_rate)]]
void trainer_set_learning_rate(SEXP trainer, double learning_rate) {
  trainer_of(trainer).set_learning_rate(learning_rate);
}
