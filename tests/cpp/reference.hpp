// Naive references written from /work/shared/KERAS_SEMANTICS.md, independent of
// the engine's code: arrays here are C-order (row-major) as Keras/NumPy hold
// them, and only the final hand-over to the engine converts to column-major
// (the layout R, and hence the engine's Keras-array interface, uses).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "local_geometry.hpp"

namespace ref {

using Dims = std::vector<long>;

inline long prod(const Dims& d) {
  long n = 1;
  for (long v : d) n *= v;
  return n;
}

// Column-major offset of a multi-index (first index fastest).
inline long colmajor_offset(const Dims& dims, const Dims& idx) {
  long off = 0;
  for (long a = static_cast<long>(dims.size()) - 1; a >= 0; --a) off = off * dims[a] + idx[a];
  return off;
}

// Multi-index of C-order flat index `flat`.
inline Dims unravel_c(const Dims& dims, long flat) {
  Dims idx(dims.size());
  for (long a = static_cast<long>(dims.size()) - 1; a >= 0; --a) {
    idx[a] = flat % dims[a];
    flat /= dims[a];
  }
  return idx;
}

inline long ravel_c(const Dims& dims, const Dims& idx) {
  long flat = 0;
  for (std::size_t a = 0; a < dims.size(); ++a) flat = flat * dims[a] + idx[a];
  return flat;
}

inline std::vector<double> c_to_colmajor(const std::vector<double>& c, const Dims& dims) {
  std::vector<double> out(c.size());
  for (long f = 0; f < static_cast<long>(c.size()); ++f) {
    out[colmajor_offset(dims, unravel_c(dims, f))] = c[f];
  }
  return out;
}

template <typename T, typename Allocator>
std::vector<double> colmajor_to_c(const std::vector<T, Allocator>& col, const Dims& dims) {
  std::vector<double> out(col.size());
  for (long f = 0; f < static_cast<long>(col.size()); ++f) {
    out[f] = static_cast<double>(col[colmajor_offset(dims, unravel_c(dims, f))]);
  }
  return out;
}

// One locally connected layer as Keras describes it. nd = 1 or 2 spatial dims.
struct Spec {
  Dims n, k, s;  // per spatial dim
  std::string padding = "valid";
  bool last = true;  // channels_last
  long C = 1, F = 1;

  int nd() const { return static_cast<int>(n.size()); }
  long out_len(int d) const {
    if (padding == "valid") {
      // floor((n - k) / s) + 1 with floor toward -infinity.
      long num = n[d] - k[d];
      long q = num >= 0 ? num / s[d] : -((-num + s[d] - 1) / s[d]);
      return q + 1;
    }
    return (n[d] + s[d] - 1) / s[d];  // same and causal: ceil(n / s)
  }
  long offset(int d) const {
    if (padding == "same") return k[d] / 2;
    if (padding == "causal") return k[d] - 1;
    return 0;
  }
  long start(int d, long r) const { return r * s[d] - offset(d); }
  Dims out() const {
    Dims o;
    for (int d = 0; d < nd(); ++d) o.push_back(out_len(d));
    return o;
  }
  long P() const { return prod(out()); }
  long K() const { return prod(k); }
  long N() const { return prod(n); }
  long KC() const { return K() * C; }
  bool ok() const {
    for (int d = 0; d < nd(); ++d)
      if (out_len(d) <= 0) return false;
    return true;
  }

  // Keras-order dims without batch.
  Dims input_dims() const {
    Dims d;
    if (!last) d.push_back(C);
    d.insert(d.end(), n.begin(), n.end());
    if (last) d.push_back(C);
    return d;
  }
  Dims output_dims() const {
    Dims d, o = out();
    if (!last) d.push_back(F);
    d.insert(d.end(), o.begin(), o.end());
    if (last) d.push_back(F);
    return d;
  }
  Dims w1_dims() const { return {P(), KC(), F}; }
  Dims bias_dims() const {
    Dims d = out();
    d.push_back(F);
    return d;
  }
  Dims w2_dims() const {
    Dims d, o = out();
    if (last) {
      d = n;
      d.push_back(C);
      d.insert(d.end(), o.begin(), o.end());
      d.push_back(F);
    } else {
      d.push_back(C);
      d.insert(d.end(), n.begin(), n.end());
      d.push_back(F);
      d.insert(d.end(), o.begin(), o.end());
    }
    return d;
  }

  // Input position q (spatial multi-index) for output pos and tap t, and
  // whether it is inside the input (the tap is connected).
  bool tap_input(const Dims& pos, const Dims& t, Dims& q) const {
    q.resize(nd());
    bool inside = true;
    for (int d = 0; d < nd(); ++d) {
      q[d] = start(d, pos[d]) + t[d];
      if (q[d] < 0 || q[d] >= n[d]) inside = false;
    }
    return inside;
  }
  // Middle index of the implementation-1 kernel for tap rank tr, channel ci.
  long m_index(long tr, long ci) const { return last ? tr * C + ci : ci * K() + tr; }

  std::string describe() const {
    std::ostringstream os;
    os << nd() << "D " << (last ? "channels_last" : "channels_first") << " " << padding
       << " n=(";
    for (int d = 0; d < nd(); ++d) os << (d ? "," : "") << n[d];
    os << ") k=(";
    for (int d = 0; d < nd(); ++d) os << (d ? "," : "") << k[d];
    os << ") s=(";
    for (int d = 0; d < nd(); ++d) os << (d ? "," : "") << s[d];
    os << ") C=" << C << " F=" << F;
    return os.str();
  }
};

inline std::vector<std::tuple<long, long, long>> connected_entries(const Spec& s);

// Engine geometry for a spec (1D: a 2D geometry whose column axis has length 1).
inline lcnn::LocalGeometry geometry_of(const Spec& s) {
  const lcnn::Padding pad = lcnn::parse_padding(s.padding);
  lcnn::LocalGeometry g;
  g.rows = lcnn::AxisWindow::make(s.n[0], s.k[0], s.s[0], pad);
  g.cols = s.nd() == 2 ? lcnn::AxisWindow::make(s.n[1], s.k[1], s.s[1], pad)
                       : lcnn::AxisWindow::make(1, 1, 1, pad);
  g.channels = s.C;
  g.filters = s.F;
  g.format = s.last ? lcnn::DataFormat::channels_last : lcnn::DataFormat::channels_first;
  g.one_d = s.nd() == 1;
  return g;
}

// True when the engine's geometry has the reference's shapes; tests skip a
// configuration otherwise, so that a wrong size fails a check instead of
// reading or writing out of bounds.
inline bool same_shapes(const lcnn::LocalGeometry& g, const Spec& s) {
  auto to_shape = [](const Dims& d) {
    lcnn::Shape sh;
    for (long v : d) sh.dims.push_back(v);
    return sh;
  };
  return g.output_shape() == to_shape(s.output_dims()) &&
         g.input_shape() == to_shape(s.input_dims()) &&
         g.keras_kernel_shape(1) == to_shape(s.w1_dims()) &&
         g.keras_kernel_shape(2) == to_shape(s.w2_dims()) &&
         g.keras_kernel_shape(3).size() == static_cast<long>(connected_entries(s).size()) &&
         g.keras_bias_shape() == to_shape(s.bias_dims()) &&
         g.kernel_size() == s.P() * s.KC() * s.F && g.bias_size() == s.P() * s.F;
}

// Keras 2 activation definitions, applied to a C-order output with Keras dims
// `dims` (batch first); softmax is over the last axis.
inline double act1(const std::string& a, double x) {
  auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  if (a == "linear") return x;
  if (a == "relu") return x > 0 ? x : 0.0;
  if (a == "sigmoid") return sig(x);
  if (a == "tanh") return std::tanh(x);
  if (a == "elu") return x > 0 ? x : std::exp(x) - 1.0;
  if (a == "selu") {
    const double alpha = 1.6732632423543772848170429916717;
    const double scale = 1.0507009873554804934193349852946;
    return x > 0 ? scale * x : scale * alpha * (std::exp(x) - 1.0);
  }
  if (a == "softplus") return std::log(1.0 + std::exp(x));
  if (a == "softsign") return x / (1.0 + std::abs(x));
  if (a == "swish" || a == "silu") return x * sig(x);
  if (a == "gelu") return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
  if (a == "hard_sigmoid") return std::min(1.0, std::max(0.0, 0.2 * x + 0.5));
  if (a == "exponential") return std::exp(x);
  throw std::invalid_argument("reference: unknown activation " + a);
}

inline void activate(const std::string& a, std::vector<double>& y, const Dims& dims) {
  if (a != "softmax") {
    for (double& v : y) v = act1(a, v);
    return;
  }
  const long len = dims.back();
  for (long g = 0; g < static_cast<long>(y.size()) / len; ++g) {
    double* v = y.data() + g * len;
    double total = 0;
    for (long i = 0; i < len; ++i) total += std::exp(v[i]);
    for (long i = 0; i < len; ++i) v[i] = std::exp(v[i]) / total;
  }
}

// Implementation-1 forward (section 3) with the windows of section 2 and the
// channels_first bias reshape. x: C-order (B, input_dims); w1: C-order
// (P, K*C, F); bias: C-order (out..., F) or empty. Returns C-order (B, output_dims).
inline std::vector<double> forward_impl1(const Spec& s, const std::vector<double>& x, long B,
                                         const std::vector<double>& w1,
                                         const std::vector<double>& bias,
                                         const std::string& activation) {
  const Dims o = s.out();
  const long P = s.P(), K = s.K(), KC = s.KC(), F = s.F, C = s.C;
  Dims xdims{B};
  for (long v : s.input_dims()) xdims.push_back(v);
  Dims ydims{B};
  for (long v : s.output_dims()) ydims.push_back(v);
  std::vector<double> y(static_cast<std::size_t>(prod(ydims)));
  Dims q;
  for (long b = 0; b < B; ++b) {
    for (long p = 0; p < P; ++p) {
      const Dims pos = unravel_c(o, p);
      for (long f = 0; f < F; ++f) {
        double acc = 0;
        for (long tr = 0; tr < K; ++tr) {
          const Dims t = unravel_c(s.k, tr);
          if (!s.tap_input(pos, t, q)) continue;
          for (long ci = 0; ci < C; ++ci) {
            Dims xi{b};
            if (!s.last) xi.push_back(ci);
            xi.insert(xi.end(), q.begin(), q.end());
            if (s.last) xi.push_back(ci);
            acc += x[ravel_c(xdims, xi)] * w1[(p * KC + s.m_index(tr, ci)) * F + f];
          }
        }
        if (!bias.empty()) acc += s.last ? bias[p * F + f] : bias[f * P + p];
        Dims yi{b};
        if (!s.last) yi.push_back(f);
        yi.insert(yi.end(), pos.begin(), pos.end());
        if (s.last) yi.push_back(f);
        y[ravel_c(ydims, yi)] = acc;
      }
    }
  }
  activate(activation, y, ydims);
  return y;
}

// Gradients of the implementation-1 forward with a linear activation, given
// the output gradient g (C-order (B, output_dims)): dx C-order (B,
// input_dims), dw1 C-order (P, K*C, F) (zero at unconnected taps), dbias
// C-order (out..., F) with forward_impl1's channels_first reshape.
struct Gradients {
  std::vector<double> dx, dw1, dbias;
};

inline Gradients backward_impl1(const Spec& s, const std::vector<double>& x, long B,
                                const std::vector<double>& w1, const std::vector<double>& g) {
  const Dims o = s.out();
  const long P = s.P(), K = s.K(), KC = s.KC(), F = s.F, C = s.C;
  Dims xdims{B};
  for (long v : s.input_dims()) xdims.push_back(v);
  Dims ydims{B};
  for (long v : s.output_dims()) ydims.push_back(v);
  Gradients r{std::vector<double>(x.size()), std::vector<double>(w1.size()),
              std::vector<double>(static_cast<std::size_t>(P * F))};
  Dims q;
  for (long b = 0; b < B; ++b) {
    for (long p = 0; p < P; ++p) {
      const Dims pos = unravel_c(o, p);
      for (long f = 0; f < F; ++f) {
        Dims yi{b};
        if (!s.last) yi.push_back(f);
        yi.insert(yi.end(), pos.begin(), pos.end());
        if (s.last) yi.push_back(f);
        const double gy = g[ravel_c(ydims, yi)];
        r.dbias[s.last ? p * F + f : f * P + p] += gy;
        for (long tr = 0; tr < K; ++tr) {
          const Dims t = unravel_c(s.k, tr);
          if (!s.tap_input(pos, t, q)) continue;
          for (long ci = 0; ci < C; ++ci) {
            Dims xi{b};
            if (!s.last) xi.push_back(ci);
            xi.insert(xi.end(), q.begin(), q.end());
            if (s.last) xi.push_back(ci);
            const long wi = (p * KC + s.m_index(tr, ci)) * F + f;
            r.dw1[wi] += x[ravel_c(xdims, xi)] * gy;
            r.dx[ravel_c(xdims, xi)] += w1[wi] * gy;
          }
        }
      }
    }
  }
  return r;
}

// Flat C-order output / input indices of section 3 (implementation 3 ordering,
// also the row/column of the implementation-2 matrix).
inline long out_index(const Spec& s, long p, long f) { return s.last ? p * s.F + f : f * s.P() + p; }
inline long in_index(const Spec& s, const Dims& q, long ci) {
  const long qf = ravel_c(s.n, q);
  return s.last ? qf * s.C + ci : ci * s.N() + qf;
}

// Every connected (output, input) weight: (out_idx, in_idx, w1 C-order flat index).
inline std::vector<std::tuple<long, long, long>> connected_entries(const Spec& s) {
  std::vector<std::tuple<long, long, long>> e;
  const Dims o = s.out();
  Dims q;
  for (long p = 0; p < s.P(); ++p) {
    const Dims pos = unravel_c(o, p);
    for (long tr = 0; tr < s.K(); ++tr) {
      if (!s.tap_input(pos, unravel_c(s.k, tr), q)) continue;
      for (long ci = 0; ci < s.C; ++ci)
        for (long f = 0; f < s.F; ++f)
          e.emplace_back(out_index(s, p, f), in_index(s, q, ci),
                         (p * s.KC() + s.m_index(tr, ci)) * s.F + f);
    }
  }
  return e;
}

// Implementation-2 dense array (C-order, w2_dims) built from w1; entries that
// are not connected get `fill` (callers pass garbage to check they are ignored).
inline std::vector<double> impl2_from_w1(const Spec& s, const std::vector<double>& w1,
                                         std::mt19937_64* garbage) {
  std::vector<double> w2(static_cast<std::size_t>(prod(s.w2_dims())), 0.0);
  if (garbage != nullptr) {
    std::uniform_real_distribution<double> u(100.0, 200.0);
    for (double& v : w2) v = u(*garbage);
  }
  const long PF = s.P() * s.F;
  // C-order (in_idx, out_idx) of the (N*C) x (P*F) reshape: in_idx * PF + out_idx.
  for (const auto& [oi, ii, wi] : connected_entries(s)) w2[ii * PF + oi] = w1[wi];
  return w2;
}

inline std::vector<bool> impl2_mask(const Spec& s) {
  std::vector<bool> mask(static_cast<std::size_t>(prod(s.w2_dims())), false);
  const long PF = s.P() * s.F;
  for (const auto& [oi, ii, wi] : connected_entries(s)) mask[ii * PF + oi] = true;
  return mask;
}

// Implementation-3 vector: connected weights ordered by sorted (out_idx, in_idx).
inline std::vector<double> impl3_from_w1(const Spec& s, const std::vector<double>& w1) {
  auto e = connected_entries(s);
  std::sort(e.begin(), e.end());
  std::vector<double> w3;
  for (const auto& [oi, ii, wi] : e) w3.push_back(w1[wi]);
  return w3;
}

// Implementation-2 forward (section 3): y = x_flat %*% (W2 * mask) + bias,
// the bias reshaped (not transposed) into the output's C order.
inline std::vector<double> forward_impl2(const Spec& s, const std::vector<double>& x, long B,
                                         const std::vector<double>& w2,
                                         const std::vector<double>& bias,
                                         const std::string& activation) {
  const long NC = s.N() * s.C, PF = s.P() * s.F;
  const std::vector<bool> mask = impl2_mask(s);
  std::vector<double> y(static_cast<std::size_t>(B * PF), 0.0);
  for (long b = 0; b < B; ++b)
    for (long i = 0; i < NC; ++i)
      for (long o = 0; o < PF; ++o)
        if (mask[i * PF + o]) y[b * PF + o] += x[b * NC + i] * w2[i * PF + o];
  if (!bias.empty())
    for (long b = 0; b < B; ++b)
      for (long o = 0; o < PF; ++o) y[b * PF + o] += bias[o];
  Dims ydims{B};
  for (long v : s.output_dims()) ydims.push_back(v);
  activate(activation, y, ydims);
  return y;
}

inline std::vector<double> random_vector(std::mt19937_64& rng, long n, double lo = -1.0,
                                         double hi = 1.0) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (double& x : v) x = u(rng);
  return v;
}

// A tensor's storage (lcnn::Buffer, a vector of another allocator) set
// from `values`, and copied out as a std::vector.
template <typename Storage, typename Values>
void assign(Storage& storage, const Values& values) {
  storage.assign(values.begin(), values.end());
}
template <typename T, typename Allocator>
std::vector<T> values_of(const std::vector<T, Allocator>& storage) {
  return std::vector<T>(storage.begin(), storage.end());
}

// Largest |a - b| / (1 + |b|); a or b may be a tensor's storage.
template <typename A, typename B>
double max_rel_error(const std::vector<double, A>& a, const std::vector<double, B>& b) {
  if (a.size() != b.size()) return INFINITY;
  double e = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(a[i] - b[i]) / (1.0 + std::abs(b[i]));
    if (!(d <= e)) e = d;  // NaN propagates as a failure
  }
  return e;
}

}  // namespace ref
