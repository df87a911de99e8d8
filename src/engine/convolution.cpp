#include "convolution.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "eigen_maps.hpp"
#include "gemm.hpp"
#include "parallel.hpp"

namespace lcnn {

void ConvGeometry::validate() const {
  validate_sizes("convolution layer");
  if (groups < 1 || channels % groups != 0 || filters % groups != 0) {
    throw std::invalid_argument("convolution groups (" + std::to_string(groups) +
                                ") must divide the input channels (" + std::to_string(channels) +
                                ") and the filters (" + std::to_string(filters) + ")");
  }
}

Shape ConvGeometry::kernel_shape() const {
  if (one_d) return Shape{{rows.kernel, group_channels(), filters}};
  return Shape{{rows.kernel, cols.kernel, group_channels(), filters}};
}

namespace {

// Values of one tile's patch matrix, sized to stay in a core's L2 cache.
constexpr index_t kTileValues = index_t(1) << 15;
// Samples per forward tile: long contiguous runs to copy, bounded tiles.
constexpr index_t kForwardSamples = 64;
// backward() gives each sample chunk, run by one thread, its own kernel
// gradient, summed in chunk order at the end: at most kMaxChunks chunks,
// their partial gradients together at most kPartialValues values, and each
// chunk at least kChunkValues patch values (smaller work is not worth a
// thread).
constexpr index_t kMaxChunks = 16;
constexpr index_t kPartialValues = index_t(1) << 22;
constexpr index_t kChunkValues = index_t(1) << 14;
// Values per parallel block when converting layouts or summing gradients.
constexpr index_t kValueBlock = 4096;

// A block of samples x output positions. Its rows in the patch and output
// matrices run over the samples first, then the positions.
struct Tile {
  index_t sample0, samples, position0, positions;
  index_t rows() const { return samples * positions; }
};

// The batch cut into chunks of `samples`, the output positions into blocks
// of `positions`; tile (c, q) is chunk c, block q. Tilings depend only on
// the problem's sizes, never on the thread count, so results do not either.
struct Tiling {
  index_t batch, samples, all_positions, positions;

  Tiling(const ConvGeometry& g, index_t batch_size, index_t chunk_samples)
      : batch(batch_size),
        samples(std::max<index_t>(1, chunk_samples)),
        all_positions(g.positions()),
        positions(std::clamp<index_t>(kTileValues / (samples * g.patch()), 1, g.positions())) {}

  index_t chunks() const { return (batch + samples - 1) / samples; }
  index_t blocks() const { return (all_positions + positions - 1) / positions; }
  Tile tile(index_t chunk, index_t block) const {
    const index_t s0 = chunk * samples, p0 = block * positions;
    return {s0, std::min(samples, batch - s0), p0, std::min(positions, all_positions - p0)};
  }
};

// Samples per chunk of backward().
index_t backward_chunk_samples(const ConvGeometry& g, index_t batch, index_t kernel_size) {
  const index_t chunks = std::max<index_t>(
      1, std::min({batch, kMaxChunks, kPartialValues / kernel_size,
                   batch * g.positions() * g.patch() / kChunkValues}));
  return std::max<index_t>(1, (batch + chunks - 1) / chunks);
}

// Collects runs of values to copy between two buffers, joining each run to
// the previous one when it continues it in both (runs of zeros, marked by a
// source offset of -1, join runs of zeros), and hands the joined runs to
// visit(source_offset, target_offset, length).
template <typename Visit>
class RunJoiner {
 public:
  explicit RunJoiner(Visit& visit) : visit_(visit) {}
  void add(index_t source, index_t target, index_t length) {
    const bool continues = length_ > 0 && target == target_ + length_ &&
                           (source < 0 ? source_ < 0 : source_ >= 0 && source == source_ + length_);
    if (!continues) {
      flush();
      source_ = source;
      target_ = target;
    }
    length_ += length;
  }
  void flush() {
    if (length_ > 0) visit_(source_, target_, length_);
    length_ = 0;
  }

 private:
  Visit& visit_;
  index_t source_ = 0, target_ = 0, length_ = 0;
};

// Calls visit(input_offset, patch_offset, length) for the runs of values
// that the tile's patch matrix copies from the input: column
// i + kh * (j + kw * c) holds tap (i, j) of input channel c, so the columns
// of group k are the block [k * K * C / groups, (k + 1) * K * C / groups).
// Taps outside the input get input_offset -1 (zero padding). Each position
// gives a run of tile.samples values; successive positions join when they
// are also successive in the input (stride 1 along the rows of a whole
// batch or chunk, channels last).
template <typename Visit>
void for_each_patch_run(const ConvGeometry& g, index_t batch, const Tile& tile, Visit visit) {
  const TensorStrides st = g.strides();
  const index_t kh = g.rows.kernel, kw = g.cols.kernel, OR = g.rows.output;
  const index_t rows = tile.rows(), n = tile.samples;
  RunJoiner<Visit> runs(visit);
  for (index_t c = 0; c < g.channels; ++c) {
    for (index_t j = 0; j < kw; ++j) {
      for (index_t i = 0; i < kh; ++i) {
        const index_t column = rows * (i + kh * (j + kw * c));
        for (index_t q = 0; q < tile.positions; ++q) {
          const index_t p = tile.position0 + q;
          const index_t h = g.rows.at(p % OR, i), w = g.cols.at(p / OR, j);
          const bool inside = h >= 0 && h < g.rows.input && w >= 0 && w < g.cols.input;
          const index_t offset = h * st.in_row + w * st.in_col + c * st.in_channel;
          runs.add(inside ? tile.sample0 + batch * offset : -1, column + n * q, n);
        }
        runs.flush();
      }
    }
  }
}

// Calls visit(output_offset, row_offset, length) for the runs of values
// that the tile's rows x F matrix shares with an output-shaped tensor.
template <typename Visit>
void for_each_output_run(const ConvGeometry& g, index_t batch, const Tile& tile, Visit visit) {
  const TensorStrides st = g.strides();
  const index_t rows = tile.rows(), n = tile.samples;
  RunJoiner<Visit> runs(visit);
  for (index_t f = 0; f < g.filters; ++f) {
    for (index_t q = 0; q < tile.positions; ++q) {
      const index_t p = tile.position0 + q;
      const index_t offset = p * st.out_position + f * st.out_filter;
      runs.add(tile.sample0 + batch * offset, rows * f + n * q, n);
    }
    runs.flush();
  }
}

template <typename T>
void gather_patches(const ConvGeometry& g, const T* x, index_t batch, const Tile& tile,
                    T* patch) {
  for_each_patch_run(g, batch, tile, [&](index_t in, index_t out, index_t length) {
    if (in < 0) {
      std::fill(patch + out, patch + out + length, T(0));
    } else {
      std::copy(x + in, x + in + length, patch + out);
    }
  });
}

// Adds a patch-shaped gradient back onto the inputs it was gathered from.
template <typename T>
void scatter_patches(const ConvGeometry& g, const T* patch, index_t batch, const Tile& tile,
                     T* grad_x) {
  for_each_patch_run(g, batch, tile, [&](index_t in, index_t out, index_t length) {
    if (in < 0) return;
    for (index_t e = 0; e < length; ++e) grad_x[in + e] += patch[out + e];
  });
}

template <typename T>
void gather_rows(const ConvGeometry& g, const T* y, index_t batch, const Tile& tile, T* rows) {
  for_each_output_run(g, batch, tile, [&](index_t in, index_t out, index_t length) {
    std::copy(y + in, y + in + length, rows + out);
  });
}

template <typename T>
void scatter_rows(const ConvGeometry& g, const T* rows, index_t batch, const Tile& tile, T* y) {
  for_each_output_run(g, batch, tile, [&](index_t out, index_t in, index_t length) {
    std::copy(rows + in, rows + in + length, y + out);
  });
}

// body(start, count) over blocks of [0, n), in parallel.
template <typename Body>
void for_each_value_block(index_t n, int threads, Body body) {
  for_each_block(n, kValueBlock, threads, body);
}

// Chunked layout: a batch-innermost tensor of `batch` samples with `size`
// values each, cut into chunks of `samples` samples (the last one maybe
// smaller), each stored as a batch-innermost tensor of its own, one chunk
// after another; chunk c starts at c * samples * size. Calls
// copy(batched_offset, chunked_offset, n) for every run of n samples the two
// layouts share, reading or writing whole rows of the batch.
template <typename Copy>
void for_each_chunk_run(index_t batch, index_t samples, index_t size, int threads, Copy copy) {
  for_each_value_block(size, threads, [&](index_t start, index_t count) {
    for (index_t e = start; e < start + count; ++e) {
      for (index_t first = 0; first < batch; first += samples) {
        const index_t n = std::min(samples, batch - first);
        copy(batch * e + first, first * size + n * e, n);
      }
    }
  });
}

// `batched` in the chunked layout: itself when it is one chunk, else
// converted into `buffer`.
template <typename T>
const T* in_chunks(const Buffer<T>& batched, index_t batch, index_t samples, index_t size,
                   Buffer<T>& buffer, int threads) {
  if (samples >= batch) return batched.data();
  buffer.resize(batched.size());
  for_each_chunk_run(batch, samples, size, threads, [&](index_t from, index_t to, index_t n) {
    std::copy(batched.data() + from, batched.data() + from + n, buffer.data() + to);
  });
  return buffer.data();
}

// out[e] = the sum over chunks c of partials[c * n + e], added in chunk order.
template <typename T>
void sum_chunks(const std::vector<T>& partials, index_t chunks, std::vector<T>& out,
                int threads) {
  const index_t n = static_cast<index_t>(out.size());
  for_each_value_block(n, threads, [&](index_t start, index_t count) {
    std::fill(out.begin() + start, out.begin() + start + count, T(0));
    for (index_t c = 0; c < chunks; ++c) {
      const T* part = partials.data() + c * n + start;
      for (index_t e = 0; e < count; ++e) out[start + e] += part[e];
    }
  });
}

}  // namespace

template <typename T>
Convolution<T>::Convolution(const ConvGeometry& geometry, Activation activation,
                            std::vector<T> kernel, std::vector<T> bias)
    : geometry_(geometry), activation_(activation) {
  geometry_.validate();
  const index_t kernel_size = geometry_.kernel_shape().size();
  if (static_cast<index_t>(kernel.size()) != kernel_size) {
    throw std::invalid_argument("convolution kernel has " + std::to_string(kernel.size()) +
                                " values, expected " + std::to_string(kernel_size));
  }
  if (!bias.empty() && static_cast<index_t>(bias.size()) != geometry_.filters) {
    throw std::invalid_argument("convolution bias has " + std::to_string(bias.size()) +
                                " values, expected " + std::to_string(geometry_.filters));
  }
  parameters_.push_back({"kernel", std::move(kernel), {}});
  if (!bias.empty()) parameters_.push_back({"bias", std::move(bias), {}});
}

// im2col over tiles of samples x positions (never a whole-batch patch
// matrix): gather the tile's patches, one GEMM per group with the group's
// (K * C / groups) x (F / groups) kernel block, then copy the tile's rows
// into the output. Tiles write disjoint outputs and run in parallel.
template <typename T>
void Convolution<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) {
  const ConvGeometry& g = geometry_;
  if (input.shape != g.input_shape().with_batch(input.batch())) {
    throw std::invalid_argument("convolution layer expected input " + g.input_shape().to_string() +
                                " per sample, got " + input.shape.to_string());
  }
  const index_t B = input.batch();
  output.resize(g.output_shape().with_batch(B));
  if (B == 0) return;
  const index_t F = g.filters, Fg = g.group_filters(), KCg = g.taps() * g.group_channels();
  const T* kernel = parameters_[0].values.data();
  const T* bias = parameters_.size() > 1 ? parameters_[1].values.data() : nullptr;
  const Tiling tiles(g, B, std::min(B, kForwardSamples));
  const index_t n_tiles = tiles.chunks() * tiles.blocks();

  parallel_region(n_tiles, ctx.threads, [&](WorkItems& items) {
    Matrix<T> patch, result;
    for (index_t t; items.next(t);) {
      const Tile tile = tiles.tile(t / tiles.blocks(), t % tiles.blocks());
      patch.resize(tile.rows(), g.patch());
      gather_patches(g, input.data.data(), B, tile, patch.data());
      result.resize(tile.rows(), F);
      for (index_t k = 0; k < g.groups; ++k) {
        gemm(Op::none, Op::none, tile.rows(), Fg, KCg, patch.data() + k * KCg * tile.rows(),
             tile.rows(), kernel + k * Fg * KCg, KCg, result.data() + k * Fg * tile.rows(),
             tile.rows(), false);
      }
      if (bias != nullptr) result.rowwise() += ConstRowMap<T>(bias, F);
      scatter_rows(g, result.data(), B, tile, output.data.data());
    }
  });
  activation_.apply(output, ctx.record, ctx.threads);
}

// Per tile: dW += patches' G and db += column sums of G (G = dLoss/dPre of the
// tile's rows), and the input gradient G W' scattered back onto the windows.
// Each chunk of samples runs on one thread, tile after tile, into its own
// partial kernel gradient, so no two threads add to the same value (chunks
// hold different samples, hence different inputs) and the partials are
// summed in chunk order: the same results for any thread count. The input,
// G and the input gradient pass through the chunked layout, so that a
// chunk's short runs of samples lie next to each other in memory.
template <typename T>
void Convolution<T>::backward(const Tensor<T>& input, const Tensor<T>& output,
                              const Tensor<T>& grad_output, Tensor<T>* grad_input,
                              const Context& ctx, bool through_logits) {
  const ConvGeometry& g = geometry_;
  const index_t B = input.batch();
  const Tensor<T>& grad_pre =
      activation_.pre_gradient(output, grad_output, through_logits, grad_pre_, ctx.threads);
  const index_t F = g.filters, Fg = g.group_filters(), KCg = g.taps() * g.group_channels();
  const index_t in_size = g.input_shape().size(), out_size = g.output_shape().size();
  ParameterBlock<T>& kernel = parameters_[0];
  const index_t kernel_size = static_cast<index_t>(kernel.values.size());
  const T* w = kernel.values.data();
  const bool has_bias = parameters_.size() > 1;
  const index_t samples = backward_chunk_samples(g, B, kernel_size);
  const index_t chunks = (B + samples - 1) / samples;
  kernel_partials_.assign(static_cast<std::size_t>(chunks * kernel_size), T(0));
  bias_partials_.assign(static_cast<std::size_t>(chunks * F), T(0));
  const T* x_chunks = in_chunks(input.data, B, samples, in_size, x_chunks_, ctx.threads);
  const T* grad_chunks = in_chunks(grad_pre.data, B, samples, out_size, grad_chunks_, ctx.threads);
  T* dx_chunks = nullptr;
  if (grad_input != nullptr) {
    grad_input->resize(input.shape);
    Buffer<T>& target = chunks == 1 ? grad_input->data : dx_chunks_;
    target.assign(input.data.size(), T(0));
    dx_chunks = target.data();
  }

  parallel_region(chunks, ctx.threads, [&](WorkItems& items) {
    Matrix<T> patch, grad;
    for (index_t c; items.next(c);) {
      const index_t first = c * samples, n = std::min(samples, B - first);
      const T* x = x_chunks + first * in_size;
      const T* chunk_grad = grad_chunks + first * out_size;
      T* dw = kernel_partials_.data() + c * kernel_size;
      const Tiling tiles(g, n, n);
      for (index_t q = 0; q < tiles.blocks(); ++q) {
        const Tile tile = tiles.tile(0, q);
        grad.resize(tile.rows(), F);
        gather_rows(g, chunk_grad, n, tile, grad.data());
        patch.resize(tile.rows(), g.patch());
        gather_patches(g, x, n, tile, patch.data());
        for (index_t k = 0; k < g.groups; ++k) {
          gemm(Op::transpose, Op::none, KCg, Fg, tile.rows(),
               patch.data() + k * KCg * tile.rows(), tile.rows(),
               grad.data() + k * Fg * tile.rows(), tile.rows(), dw + k * Fg * KCg, KCg, true);
        }
        if (has_bias) RowMap<T>(bias_partials_.data() + c * F, F) += grad.colwise().sum();
        if (grad_input == nullptr) continue;
        // The patches are used up: their gradient takes their place.
        for (index_t k = 0; k < g.groups; ++k) {
          gemm(Op::none, Op::transpose, tile.rows(), KCg, Fg,
               grad.data() + k * Fg * tile.rows(), tile.rows(), w + k * Fg * KCg, KCg,
               patch.data() + k * KCg * tile.rows(), tile.rows(), false);
        }
        scatter_patches(g, patch.data(), n, tile, dx_chunks + first * in_size);
      }
    }
  });
  if (grad_input != nullptr && chunks > 1) {
    T* dx = grad_input->data.data();
    for_each_chunk_run(B, samples, in_size, ctx.threads, [&](index_t to, index_t from, index_t n) {
      std::copy(dx_chunks + from, dx_chunks + from + n, dx + to);
    });
  }
  kernel.gradient.resize(kernel.values.size());
  sum_chunks(kernel_partials_, chunks, kernel.gradient, ctx.threads);
  if (has_bias) {
    parameters_[1].gradient.resize(static_cast<std::size_t>(F));
    sum_chunks(bias_partials_, chunks, parameters_[1].gradient, ctx.threads);
  }
}

template class Convolution<float>;
template class Convolution<double>;

}  // namespace lcnn
