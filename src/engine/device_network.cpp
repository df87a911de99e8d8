#include "device_network.hpp"

#include <algorithm>

#include "activation_layer.hpp"
#include "batch_norm.hpp"
#include "convolution.hpp"
#include "dense.hpp"
#include "dropout.hpp"
#include "locally_connected.hpp"
#include "pooling.hpp"
#include "reshaping.hpp"

namespace lcnn {

namespace {

using Index = std::int64_t;

// A locally connected layer's patches (and their gradients) are gathered
// for one batched GEMM over positions when the layer has enough filters and
// patch columns for a GEMM to pay, and the patch tensor (B * P * K * C
// floats) stays under this size; else one thread computes each value
// (one channel and one filter, as genomic models have, is the typical case).
constexpr Index kMinGemmFilters = 8;
constexpr Index kMinGemmPatch = 8;
constexpr std::size_t kMaxPatchBytes = std::size_t(2) << 30;

// Values per partial sum of a penalty.
constexpr Index kPenaltyChunk = 4096;

cuda::LocalShape local_shape(const WindowGeometry& g) {
  const TensorStrides st = g.strides();
  return {g.rows.input,    g.cols.input,  g.channels,        g.rows.kernel,     g.cols.kernel,
          g.rows.stride,   g.cols.stride, g.rows.pad_before, g.cols.pad_before, g.rows.output,
          g.cols.output,   g.filters,     st.in_row,         st.in_col,         st.in_channel,
          st.out_position, st.out_filter};
}

class DeviceLocallyConnected : public DeviceLayer {
 public:
  explicit DeviceLocallyConnected(LocallyConnected<float>& layer)
      : DeviceLayer(layer.input_shape(), layer.output_shape(), layer.activation(),
                    layer.parameters()),
        geometry_(layer.geometry()),
        shape_(local_shape(geometry_)) {}

  void forward(const float* input, Index batch, const Context& ctx) override {
    size_output(batch);
    const float* bias = values_.size() > 1 ? values_[1].data() : nullptr;
    if (use_gemm(batch)) {
      const Index P = shape_.positions(), KC = shape_.patch(), F = shape_.filters;
      patches_.resize(static_cast<std::size_t>(batch * P * KC));
      cuda::local_patches(shape_, batch, 0, P, input, patches_.data());
      cuda::local_bias(shape_, batch, bias, output());
      prepare(forward_arrays_, batch, nullptr);
      const PointerArrays& a = forward_arrays_;
      cuda::gemm_batched(false, false, batch, F, KC, a[kPatch], batch, a[kKernel], KC, 1.0f,
                         a.mutable_at(kOutput), batch * shape_.out_filter, P);
    } else {
      cuda::local_forward_direct(shape_, batch, input, values_[0].data(), bias, output());
    }
    activate(batch, ctx.record);
  }

  void backward(const float* input, const float* grad_output, float* grad_input, Index batch,
                bool through_logits) override {
    const float* grad_pre = pre_gradient(grad_output, batch, through_logits);
    if (values_.size() > 1)
      cuda::local_bias_gradient(shape_, batch, grad_pre, gradients_[1].data());
    if (!use_gemm(batch)) {
      cuda::local_kernel_gradient_direct(shape_, batch, input, grad_pre, gradients_[0].data());
      if (grad_input != nullptr) {
        cuda::local_input_gradient(shape_, batch, nullptr, grad_pre, values_[0].data(), grad_input);
      }
      return;
    }
    // forward() left this batch's patches in patches_.
    const Index P = shape_.positions(), KC = shape_.patch(), F = shape_.filters;
    const Index grad_ld = batch * shape_.out_filter;
    if (grad_input != nullptr) patch_grads_.resize(static_cast<std::size_t>(batch * P * KC));
    prepare(backward_arrays_, batch, grad_pre);
    const PointerArrays& a = backward_arrays_;
    // dW_p = X_p' G_p.
    cuda::gemm_batched(true, false, KC, F, batch, a[kPatch], batch, a[kGrad], grad_ld, 0.0f,
                       a.mutable_at(kKernelGrad), KC, P);
    if (grad_input == nullptr) return;
    // dX_p = G_p W_p', then each input sums the terms of its windows.
    cuda::gemm_batched(false, true, batch, KC, F, a[kGrad], grad_ld, a[kKernel], KC, 0.0f,
                       a.mutable_at(kPatchGrad), batch, P);
    cuda::local_input_gradient(shape_, batch, patch_grads_.data(), nullptr, nullptr, grad_input);
  }

 private:
  // The per-position pointer arrays of the batched GEMMs, one after another.
  enum Array { kPatch, kKernel, kOutput, kGrad, kKernelGrad, kPatchGrad, kArrays };

  bool use_gemm(Index batch) const { return device_uses_gemm(geometry_, batch); }

  // The per-position pointer arrays of one pass's batched GEMMs, uploaded
  // again only when a buffer or the batch size changed.
  struct PointerArrays {
    std::vector<const float*> bases;  // the buffers they point into
    Index batch = -1;
    cuda::Buffer<const float*> arrays;  // kArrays runs of P pointers

    const float* const* operator[](Array array) const {
      return arrays.data() + array * (arrays.size() / kArrays);
    }
    float* const* mutable_at(Array array) const {
      return const_cast<float* const*>((*this)[array]);
    }
  };

  void prepare(PointerArrays& arrays, Index batch, const float* grad_pre) {
    const std::vector<const float*> bases = {
        patches_.data(), values_[0].data(),    output(),
        grad_pre,        gradients_[0].data(), patch_grads_.data()};
    if (bases == arrays.bases && batch == arrays.batch) return;
    arrays.bases = bases;
    arrays.batch = batch;
    const Index P = shape_.positions(), KC = shape_.patch(), F = shape_.filters;
    std::vector<const float*> host(static_cast<std::size_t>(kArrays * P), nullptr);
    for (Index p = 0; p < P; ++p) {
      const Index r = p / shape_.out_cols, c = p % shape_.out_cols;
      const Index out_offset = batch * (r + shape_.out_rows * c) * shape_.out_position;
      host[kPatch * P + p] = patches_.data() + p * KC * batch;
      host[kKernel * P + p] = values_[0].data() + p * F * KC;
      host[kOutput * P + p] = output() + out_offset;
      if (grad_pre != nullptr) host[kGrad * P + p] = grad_pre + out_offset;
      host[kKernelGrad * P + p] = gradients_[0].data() + p * F * KC;
      if (patch_grads_.data() != nullptr) {
        host[kPatchGrad * P + p] = patch_grads_.data() + p * KC * batch;
      }
    }
    arrays.arrays.upload(host.data(), host.size());
  }

  LocalGeometry geometry_;
  cuda::LocalShape shape_;
  cuda::Buffer<float> patches_, patch_grads_;
  PointerArrays forward_arrays_, backward_arrays_;
};

class DeviceDense : public DeviceLayer {
 public:
  explicit DeviceDense(Dense<float>& layer)
      : DeviceLayer(layer.input_shape(), layer.output_shape(), layer.activation(),
                    layer.parameters()) {}

  // Batch-innermost storage makes the input an N x D matrix, N = B times
  // the axes before the last.
  void forward(const float* input, Index batch, const Context& ctx) override {
    size_output(batch);
    const Index D = input_.dims.back(), F = output_.dims.back();
    const Index N = batch * input_.size() / D;
    const bool bias = values_.size() > 1;
    if (bias) cuda::broadcast_bias(values_[1].data(), N, F, output());
    cuda::gemm(false, false, N, F, D, input, N, values_[0].data(), D, bias ? 1.0f : 0.0f, output(),
               N);
    activate(batch, ctx.record);
  }

  void backward(const float* input, const float* grad_output, float* grad_input, Index batch,
                bool through_logits) override {
    const float* grad_pre = pre_gradient(grad_output, batch, through_logits);
    const Index D = input_.dims.back(), F = output_.dims.back();
    const Index N = batch * input_.size() / D;
    cuda::gemm(true, false, D, F, N, input, N, grad_pre, N, 0.0f, gradients_[0].data(), D);
    if (values_.size() > 1) cuda::column_sums(grad_pre, N, F, N, gradients_[1].data());
    if (grad_input != nullptr) {
      cuda::gemm(false, true, N, D, F, grad_pre, N, values_[0].data(), D, 0.0f, grad_input, N);
    }
  }
};

class DeviceGather : public DeviceLayer {
 public:
  explicit DeviceGather(Gather<float>& layer)
      : DeviceLayer(layer.input_shape(), layer.output_shape(), Activation::linear, {}),
        covers_input_(layer.covers_input()) {
    source_.upload(layer.source().data(), layer.source().size());
  }

  void forward(const float* input, Index batch, const Context&) override {
    size_output(batch);
    cuda::gather_features(source_.data(), output_.size(), batch, input, output());
  }

  void backward(const float*, const float* grad_output, float* grad_input, Index batch,
                bool) override {
    if (grad_input == nullptr) return;
    if (!covers_input_) {
      cuda::fill_zero(grad_input, static_cast<std::size_t>(batch * input_.size()) * sizeof(float));
    }
    cuda::scatter_features(source_.data(), output_.size(), batch, grad_output, grad_input);
  }

 private:
  cuda::Buffer<std::int64_t> source_;
  bool covers_input_;
};

class DeviceConvolution : public DeviceLayer {
 public:
  explicit DeviceConvolution(Convolution<float>& layer)
      : DeviceLayer(layer.input_shape(), layer.output_shape(), layer.activation(),
                    layer.parameters()),
        shape_(conv_shape(layer.geometry())) {}

  void forward(const float* input, Index batch, const Context& ctx) override {
    size_output(batch);
    const float* bias = values_.size() > 1 ? values_[1].data() : nullptr;
    cuda::conv_forward(shape_, batch, input, values_[0].data(), bias, output());
    activate(batch, ctx.record);
  }

  void backward(const float* input, const float* grad_output, float* grad_input, Index batch,
                bool through_logits) override {
    const float* grad_pre = pre_gradient(grad_output, batch, through_logits);
    cuda::conv_kernel_gradient(shape_, batch, input, grad_pre, gradients_[0].data());
    if (values_.size() > 1) cuda::conv_bias_gradient(shape_, batch, grad_pre, gradients_[1].data());
    if (grad_input != nullptr) {
      cuda::conv_input_gradient(shape_, batch, grad_pre, values_[0].data(), grad_input);
    }
  }

 private:
  static cuda::LocalShape conv_shape(const ConvGeometry& g) {
    cuda::LocalShape shape = local_shape(g);
    shape.dilation_rows = g.rows.dilation;
    shape.dilation_cols = g.cols.dilation;
    shape.groups = g.groups;
    return shape;
  }

  cuda::LocalShape shape_;
};

// Batch normalization: the per-channel sums are taken on the device, in the
// CPU engine's order, and the per-channel arithmetic (statistics, moving
// statistics, coefficients, gradients) is the CPU layer's own, run on its
// host copy of the parameters, which each pass brings up to date (C values
// per block).
class DeviceBatchNorm : public DeviceLayer {
 public:
  explicit DeviceBatchNorm(BatchNorm<float>& layer)
      : DeviceLayer(layer.input_shape(), layer.output_shape(), Activation::linear,
                    layer.parameters()),
        host_(layer) {}

  void forward(const float* input, Index batch, const Context& ctx) override {
    size_output(batch);
    std::vector<ParameterBlock<float>>& blocks = host_.parameters();
    for (std::size_t k = 0; k < blocks.size(); ++k) {
      values_[k].download(blocks[k].values.data(), blocks[k].values.size());
    }
    const ChannelExtent e = host_.extent(batch);
    if (host_.uses_batch_statistics(ctx, batch)) {
      const std::vector<double> sums = channel_sums(e, input, nullptr, {}, {});
      host_.set_batch_statistics(
          sums,
          [&](const std::vector<double>& mean) {
            return channel_sums(e, input, nullptr, mean, {});
          },
          e.per_channel());
      // The moving statistics, the last two blocks, changed.
      for (std::size_t k = blocks.size() - 2; k < blocks.size(); ++k) {
        values_[k].upload(blocks[k].values.data(), blocks[k].values.size());
      }
    } else {
      host_.set_moving_statistics();
    }
    std::vector<float> multiplier, shift;
    host_.affine(multiplier, shift);
    coefficients_.upload(multiplier.data(), multiplier.size());
    shift_.upload(shift.data(), shift.size());
    cuda::channel_affine(runs(e), input, coefficients_.data(), shift_.data(), output());
  }

  void backward(const float* input, const float* grad_output, float* grad_input, Index batch,
                bool) override {
    const ChannelExtent e = host_.extent(batch);
    const std::vector<double> sum_g = channel_sums(e, grad_output, nullptr, {}, {});
    const std::vector<double> sum_gx =
        channel_sums(e, grad_output, input, host_.mean(), host_.inv_std());
    std::vector<float> scale, centered, slope, mean;
    host_.set_gradients(sum_g, sum_gx, e.per_channel(), scale, centered, slope, mean);
    const std::vector<ParameterBlock<float>>& blocks = host_.parameters();
    for (std::size_t k = 0; k < blocks.size(); ++k) {
      gradients_[k].upload(blocks[k].gradient.data(), blocks[k].gradient.size());
    }
    if (grad_input == nullptr) return;
    const std::size_t C = scale.size();
    std::vector<float> all(4 * C);
    std::copy(scale.begin(), scale.end(), all.begin());
    std::copy(centered.begin(), centered.end(), all.begin() + C);
    std::copy(slope.begin(), slope.end(), all.begin() + 2 * C);
    std::copy(mean.begin(), mean.end(), all.begin() + 3 * C);
    coefficients_.upload(all.data(), all.size());
    const float* c = coefficients_.data();
    cuda::channel_input_gradient(runs(e), input, grad_output, c, c + C, c + 2 * C, c + 3 * C,
                                 grad_input);
  }

 private:
  static cuda::ChannelRuns runs(const ChannelExtent& e) {
    return {e.inner, e.channels, e.outer, kBatchNormChunk};
  }

  // Per channel, the sums of cuda::channel_partial_sums() over its chunks,
  // added in order as the CPU layer adds them.
  std::vector<double> channel_sums(const ChannelExtent& e, const float* a, const float* b,
                                   const std::vector<double>& center,
                                   const std::vector<double>& factor) {
    const cuda::ChannelRuns r = runs(e);
    const std::size_t units = static_cast<std::size_t>(r.channels * r.chunks());
    if (!center.empty()) center_.upload(center.data(), center.size());
    if (!factor.empty()) factor_.upload(factor.data(), factor.size());
    partials_.resize(units);
    cuda::channel_partial_sums(r, a, b, center.empty() ? nullptr : center_.data(),
                               factor.empty() ? nullptr : factor_.data(), partials_.data());
    std::vector<double> partial(units);
    partials_.download(partial.data(), units);
    std::vector<double> sums(static_cast<std::size_t>(r.channels), 0.0);
    for (std::size_t u = 0; u < units; ++u) sums[u / r.chunks()] += partial[u];
    return sums;
  }

  BatchNorm<float>& host_;
  cuda::Buffer<float> coefficients_, shift_;
  cuda::Buffer<double> center_, factor_, partials_;
};

class DevicePooling : public DeviceLayer {
 public:
  explicit DevicePooling(Pooling<float>& layer)
      : DeviceLayer(layer.input_shape(), layer.output_shape(), Activation::linear, {}),
        shape_(local_shape(layer.geometry())),
        max_(layer.mode() == PoolMode::max),
        split_ties_(layer.ties() == MaxTies::split) {}

  void forward(const float* input, Index batch, const Context&) override {
    size_output(batch);
    cuda::pool_forward(shape_, max_, batch, input, output());
  }

  void backward(const float* input, const float* grad_output, float* grad_input, Index batch,
                bool) override {
    if (grad_input == nullptr) return;
    cuda::pool_backward(shape_, max_, split_ties_, batch, input, grad_output, grad_input);
  }

 private:
  cuda::LocalShape shape_;
  bool max_, split_ties_;
};

// Dropout's mask is drawn on the host by the CPU engine's dropout_mask()
// (the same values for the same seed) and travels with the batch.
class DeviceDropout : public DeviceLayer {
 public:
  explicit DeviceDropout(Dropout<float>& layer)
      : DeviceLayer(layer.input_shape(), layer.output_shape(), Activation::linear, {}),
        rate_(layer.rate()),
        shared_(layer.shared()),
        salt_(layer.salt()) {}

  void forward(const float* input, Index batch, const Context& ctx) override {
    size_output(batch);
    const Index n = batch * input_.size();
    masked_ = ctx.training && rate_ > 0;
    if (!masked_) {
      cuda::copy_on_device(output(), input, static_cast<std::size_t>(n) * sizeof(float));
      return;
    }
    dropout_mask(input_.with_batch(batch), rate_, shared_, salt_, ctx.seed, host_mask_);
    mask_.upload(host_mask_.data(), host_mask_.size());
    cuda::multiply(input, mask_.data(), output(), n);
  }

  void backward(const float*, const float* grad_output, float* grad_input, Index batch,
                bool) override {
    if (grad_input == nullptr) return;
    const Index n = batch * input_.size();
    if (masked_) {
      cuda::multiply(grad_output, mask_.data(), grad_input, n);
    } else {
      cuda::copy_on_device(grad_input, grad_output, static_cast<std::size_t>(n) * sizeof(float));
    }
  }

 private:
  double rate_;
  std::vector<bool> shared_;
  std::uint64_t salt_;
  bool masked_ = false;
  std::vector<float> host_mask_;
  cuda::Buffer<float> mask_;
};

class DeviceActivation : public DeviceLayer {
 public:
  explicit DeviceActivation(ActivationLayer<float>& layer)
      : DeviceLayer(layer.input_shape(), layer.output_shape(), layer.activation(), {}) {}

  void forward(const float* input, Index batch, const Context& ctx) override {
    size_output(batch);
    cuda::copy_on_device(output(), input,
                         static_cast<std::size_t>(batch * input_.size()) * sizeof(float));
    activate(batch, ctx.record);
  }

  void backward(const float*, const float* grad_output, float* grad_input, Index batch,
                bool through_logits) override {
    if (grad_input == nullptr) return;
    const float* grad_pre = pre_gradient(grad_output, batch, through_logits);
    cuda::copy_on_device(grad_input, grad_pre,
                         static_cast<std::size_t>(batch * input_.size()) * sizeof(float));
  }
};

enum class DeviceKind {
  none,
  locally_connected,
  convolution,
  dense,
  gather,
  activation,
  dropout,
  pooling,
  batch_norm
};

DeviceKind device_kind(Layer<float>& layer) {
  if (dynamic_cast<LocallyConnected<float>*>(&layer)) return DeviceKind::locally_connected;
  if (dynamic_cast<Convolution<float>*>(&layer)) return DeviceKind::convolution;
  if (dynamic_cast<Dense<float>*>(&layer)) return DeviceKind::dense;
  if (dynamic_cast<Gather<float>*>(&layer)) return DeviceKind::gather;
  if (dynamic_cast<ActivationLayer<float>*>(&layer)) return DeviceKind::activation;
  if (dynamic_cast<Dropout<float>*>(&layer)) return DeviceKind::dropout;
  if (dynamic_cast<Pooling<float>*>(&layer)) return DeviceKind::pooling;
  if (dynamic_cast<BatchNorm<float>*>(&layer)) return DeviceKind::batch_norm;
  return DeviceKind::none;
}

// The device twin of one engine layer of a kind other than none.
std::unique_ptr<DeviceLayer> device_layer(Layer<float>& layer) {
  switch (device_kind(layer)) {
    case DeviceKind::locally_connected:
      return std::make_unique<DeviceLocallyConnected>(static_cast<LocallyConnected<float>&>(layer));
    case DeviceKind::convolution:
      return std::make_unique<DeviceConvolution>(static_cast<Convolution<float>&>(layer));
    case DeviceKind::dense:
      return std::make_unique<DeviceDense>(static_cast<Dense<float>&>(layer));
    case DeviceKind::gather:
      return std::make_unique<DeviceGather>(static_cast<Gather<float>&>(layer));
    case DeviceKind::activation:
      return std::make_unique<DeviceActivation>(static_cast<ActivationLayer<float>&>(layer));
    case DeviceKind::dropout:
      return std::make_unique<DeviceDropout>(static_cast<Dropout<float>&>(layer));
    case DeviceKind::pooling:
      return std::make_unique<DevicePooling>(static_cast<Pooling<float>&>(layer));
    case DeviceKind::batch_norm:
      return std::make_unique<DeviceBatchNorm>(static_cast<BatchNorm<float>&>(layer));
    case DeviceKind::none:
      break;
  }
  throw std::logic_error("device_layer() of a layer without a device kind");
}

DeviceSupport refused(std::string reason, long layer = -1) {
  return {false, layer, std::move(reason)};
}

}  // namespace

bool device_uses_gemm(const LocalGeometry& g, index_t batch) {
  const std::size_t patch_bytes = static_cast<std::size_t>(batch) *
                                  static_cast<std::size_t>(g.positions() * g.patch()) *
                                  sizeof(float);
  return g.filters >= kMinGemmFilters && g.patch() >= kMinGemmPatch &&
         patch_bytes <= kMaxPatchBytes;
}

DeviceLayer::DeviceLayer(Shape input, Shape output, Activation activation,
                         const std::vector<ParameterBlock<float>>& parameters)
    : input_(std::move(input)), output_(std::move(output)), activation_(activation) {
  for (const ParameterBlock<float>& block : parameters) {
    values_.emplace_back(block.values.size());
    values_.back().upload(block.values.data(), block.values.size());
    gradients_.emplace_back(block.values.size());
  }
}

void DeviceLayer::size_output(Index batch) {
  output_values_.resize(static_cast<std::size_t>(batch * output_.size()));
}

void DeviceLayer::activate(Index batch, bool record) {
  if (activation_ == Activation::linear) return;
  const Index n = batch * output_.size();
  if (record) {
    pre_.resize(static_cast<std::size_t>(n));
    cuda::copy_on_device(pre_.data(), output(), static_cast<std::size_t>(n) * sizeof(float));
  }
  if (activation_ == Activation::softmax) {
    const Index len = output_.dims.back();
    cuda::softmax(output(), len, n / len);
  } else {
    cuda::activate(activation_, output(), n);
  }
}

const float* DeviceLayer::pre_gradient(const float* grad_output, Index batch, bool through_logits) {
  if (through_logits || activation_ == Activation::linear) return grad_output;
  const Index n = batch * output_.size();
  grad_pre_.resize(static_cast<std::size_t>(n));
  if (activation_ == Activation::softmax) {
    const Index len = output_.dims.back();
    cuda::softmax_gradient(output(), grad_output, grad_pre_.data(), len, n / len);
  } else {
    cuda::activation_gradient(activation_, pre_.data(), output(), grad_output, grad_pre_.data(), n);
  }
  return grad_pre_.data();
}

DeviceSupport device_support(Network<float>& network) {
  const Graph& graph = network.graph();
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1 || graph.nodes.empty() ||
      graph.outputs[0] != graph.nodes.size()) {
    return refused("the CUDA device runs sequential models (one input, one output) only");
  }
  for (const Node& node : graph.nodes) {
    if (node.inputs.size() != 1) {
      return refused("merges have no CUDA kernels yet: the device runs sequential models only",
                     static_cast<long>(node.layer));
    }
  }
  std::vector<bool> seen(network.layer_count(), false);
  for (std::size_t k = 0; k < graph.nodes.size(); ++k) {
    const Node& node = graph.nodes[k];
    if (node.inputs.size() != 1 || node.inputs[0] != k || seen[node.layer]) {
      return refused(
          "the CUDA device runs sequential models only (each layer takes the "
          "previous one's output, and no layer is shared)",
          static_cast<long>(node.layer));
    }
    seen[node.layer] = true;
    if (device_kind(network.node_layer(k)) == DeviceKind::none) {
      return refused(
          "this layer has no CUDA kernels yet (the device runs locally connected, "
          "convolution, dense, activation, dropout, pooling, flatten, reshape, "
          "permute, zero padding and cropping layers)",
          static_cast<long>(node.layer));
    }
  }
  return {};
}

DeviceNetwork::DeviceNetwork(Network<float>& network) {
  const DeviceSupport support = device_support(network);
  if (!support.supported) throw DeviceUnsupported(support.reason);
  cuda::open_blas();
  const Graph& graph = network.graph();
  input_ = graph.inputs[0];
  for (std::size_t k = 0; k < graph.nodes.size(); ++k) {
    layers_.push_back(device_layer(network.node_layer(k)));
    layer_order_.push_back(graph.nodes[k].layer);
  }
  grads_.resize(layers_.size());
}

const float* DeviceNetwork::forward(const float* input, Index batch, const Context& ctx) {
  const float* x = input;
  for (auto& layer : layers_) {
    layer->forward(x, batch, ctx);
    x = layer->output();
  }
  return x;
}

void DeviceNetwork::backward(const float* input, const float* grad_output, Index batch,
                             bool through_logits, const std::vector<Penalty>& activity) {
  const float* grad = grad_output;
  for (std::size_t k = layers_.size(); k-- > 0;) {
    if (penalized(activity, k)) {
      // Layer k's output gradient, in a buffer of the network's, gains the
      // penalty's.
      const Index n = batch * layers_[k]->output_shape().size();
      float* own;
      if (k + 1 == layers_.size()) {
        output_grad_.resize(static_cast<std::size_t>(n));
        own = output_grad_.data();
        cuda::copy_on_device(own, grad, static_cast<std::size_t>(n) * sizeof(float));
      } else {
        own = grads_[k + 1].data();  // where layer k + 1 put it
      }
      const Penalty& p = activity[layer_order_[k]];
      cuda::add_penalty_gradient(layers_[k]->output(), own, n, float(p.l1 / double(batch)),
                                 float(2 * p.l2 / double(batch)));
      grad = own;
    }
    const float* layer_input = k == 0 ? input : layers_[k - 1]->output();
    float* grad_input = nullptr;
    if (k > 0) {
      grads_[k].resize(static_cast<std::size_t>(batch * layers_[k]->input_shape().size()));
      grad_input = grads_[k].data();
    }
    layers_[k]->backward(layer_input, grad, grad_input, batch,
                         through_logits && k + 1 == layers_.size());
    grad = grad_input;
  }
}

double DeviceNetwork::activity_penalty(const std::vector<Penalty>& activity, Index batch) {
  double total = 0;
  for (std::size_t k = 0; k < layers_.size(); ++k) {
    if (!penalized(activity, k)) continue;
    const Index n = batch * layers_[k]->output_shape().size();
    total += device_penalty(layers_[k]->output(), n, activity[layer_order_[k]], partials_) /
             double(batch);
  }
  return total;
}

double device_penalty(const float* values, Index n, const Penalty& penalty,
                      cuda::Buffer<double>& partials) {
  const Index chunks = (n + kPenaltyChunk - 1) / kPenaltyChunk;
  partials.resize(static_cast<std::size_t>(chunks));
  cuda::penalty_partials(values, n, penalty.l1, penalty.l2, kPenaltyChunk, partials.data());
  std::vector<double> host(static_cast<std::size_t>(chunks));
  partials.download(host.data(), host.size());
  double total = 0;
  for (double p : host) total += p;
  return total;
}

std::vector<cuda::Buffer<float>*> DeviceNetwork::parameter_blocks(
    std::vector<cuda::Buffer<float>>& (DeviceLayer::*blocks)()) {
  std::vector<std::size_t> order(layers_.size());
  for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return layer_order_[a] < layer_order_[b]; });
  std::vector<cuda::Buffer<float>*> out;
  for (std::size_t k : order) {
    for (cuda::Buffer<float>& block : ((*layers_[k]).*blocks)()) out.push_back(&block);
  }
  return out;
}

std::vector<cuda::Buffer<float>*> DeviceNetwork::parameter_values() {
  return parameter_blocks(&DeviceLayer::values);
}

std::vector<cuda::Buffer<float>*> DeviceNetwork::parameter_gradients() {
  return parameter_blocks(&DeviceLayer::gradients);
}

void DeviceNetwork::predict(const std::vector<const double*>& xs, index_t n, index_t batch_size,
                            const Context&, const std::vector<double*>& ys) {
  if (xs.size() != 1 || ys.size() != 1) {
    throw std::invalid_argument("predict needs one input and one output array");
  }
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  const index_t in_features = input_.size();
  const index_t out_features = output_shapes()[0].size();
  std::vector<float> host_in, host_out;
  for (index_t start = 0; start < n; start += batch_size) {
    const index_t count = std::min(batch_size, n - start);
    host_in.resize(static_cast<std::size_t>(count * in_features));
    for (index_t f = 0; f < in_features; ++f) {
      for (index_t i = 0; i < count; ++i) {
        host_in[f * count + i] = static_cast<float>(xs[0][f * n + start + i]);
      }
    }
    batch_input_.upload(host_in.data(), host_in.size());
    const float* out = forward(batch_input_.data(), count, Context{});
    host_out.resize(static_cast<std::size_t>(count * out_features));
    cuda::copy_to_host(host_out.data(), out, host_out.size() * sizeof(float));
    for (index_t f = 0; f < out_features; ++f) {
      for (index_t i = 0; i < count; ++i) ys[0][f * n + start + i] = host_out[f * count + i];
    }
  }
}

}  // namespace lcnn
