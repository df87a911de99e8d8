// Convolution: TensorFlow's window maths, forward and backward against naive
// loops written from the definitions (on the engine's column-major arrays,
// batch first), float64 and float32, and results independent of threads.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "convolution.hpp"

using namespace lcnn;

namespace {

struct ConvCase {
  long B;
  std::vector<long> n, k, s, d;  // one per spatial axis (1 in 1D)
  const char* padding;
  bool last;
  long C, F, groups;
  bool bias;
};

// One axis from the definitions: span (k - 1) d + 1; "same" pads
// max((out - 1) s + span - n, 0) in all, half (rounded down) before;
// "causal" pads span - 1 before.
struct NaiveAxis {
  long n, k, d, s, out, pad;
  NaiveAxis(long n_, long k_, long s_, long d_, const std::string& padding)
      : n(n_), k(k_), d(d_), s(s_) {
    const long span = (k - 1) * d + 1;
    if (padding == "valid") {
      out = n >= span ? (n - span) / s + 1 : 0;
      pad = 0;
    } else {
      out = (n + s - 1) / s;
      pad = padding == "same" ? std::max((out - 1) * s + span - n, 0L) / 2 : span - 1;
    }
  }
  long at(long r, long i) const { return r * s - pad + i * d; }
};

struct Naive {
  ConvCase c;
  NaiveAxis rows, cols;
  long H, W, OR, OC, kh, kw, Cg, Fg;

  explicit Naive(const ConvCase& cc)
      : c(cc),
        rows(cc.n[0], cc.k[0], cc.s[0], cc.d[0], cc.padding),
        cols(cc.n.size() > 1 ? cc.n[1] : 1, cc.n.size() > 1 ? cc.k[1] : 1,
             cc.n.size() > 1 ? cc.s[1] : 1, cc.n.size() > 1 ? cc.d[1] : 1, cc.padding),
        H(rows.n), W(cols.n), OR(rows.out), OC(cols.out), kh(rows.k), kw(cols.k),
        Cg(cc.C / cc.groups), Fg(cc.F / cc.groups) {}

  // Column-major offsets of (B, H, W, C) / (B, C, H, W) inputs, the outputs
  // likewise, and the (kh, kw, C / groups, F) kernel.
  long x_at(long b, long h, long w, long ch) const {
    return c.last ? b + c.B * (h + H * (w + W * ch)) : b + c.B * (ch + c.C * (h + H * w));
  }
  long y_at(long b, long r, long q, long f) const {
    return c.last ? b + c.B * (r + OR * (q + OC * f)) : b + c.B * (f + c.F * (r + OR * q));
  }
  long w_at(long i, long j, long cl, long f) const { return i + kh * (j + kw * (cl + Cg * f)); }

  // Calls visit(x offset, y offset, w offset) for every product of the sum.
  template <typename Visit>
  void each_term(Visit visit) const {
    for (long b = 0; b < c.B; ++b)
      for (long r = 0; r < OR; ++r)
        for (long q = 0; q < OC; ++q)
          for (long f = 0; f < c.F; ++f)
            for (long i = 0; i < kh; ++i)
              for (long j = 0; j < kw; ++j) {
                const long h = rows.at(r, i), w = cols.at(q, j);
                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                for (long cl = 0; cl < Cg; ++cl) {
                  visit(x_at(b, h, w, (f / Fg) * Cg + cl), y_at(b, r, q, f), w_at(i, j, cl, f));
                }
              }
  }

  ConvGeometry geometry() const {
    const Padding pad = parse_padding(c.padding);
    ConvGeometry g;
    g.rows = AxisWindow::convolution(H, kh, rows.s, rows.d, pad);
    g.cols = AxisWindow::convolution(W, kw, cols.s, cols.d, pad);
    g.channels = c.C;
    g.filters = c.F;
    g.groups = c.groups;
    g.format = c.last ? DataFormat::channels_last : DataFormat::channels_first;
    g.one_d = c.n.size() == 1;
    return g;
  }
  long x_size() const { return c.B * H * W * c.C; }
  long y_size() const { return c.B * OR * OC * c.F; }
  long w_size() const { return kh * kw * Cg * c.F; }
};

std::vector<double> random_values(std::mt19937_64& rng, long n) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (double& e : v) e = u(rng);
  return v;
}

template <typename T>
Tensor<T> tensor_of(const Shape& shape, const std::vector<double>& values) {
  Tensor<T> t;
  t.resize(shape);
  std::copy(values.begin(), values.end(), t.data.begin());
  return t;
}

struct Results {
  std::vector<double> y, dx, dw, db;
};

// Engine forward and backward (linear activation) for input x, weights
// (w, b) and output gradient g.
template <typename T>
Results run_engine(const Naive& nv, const std::vector<double>& x, const std::vector<double>& w,
                   const std::vector<double>& b, const std::vector<double>& g, int threads) {
  Convolution<T> layer(nv.geometry(), Activation::linear, std::vector<T>(w.begin(), w.end()),
                       std::vector<T>(b.begin(), b.end()));
  const Tensor<T> in = tensor_of<T>(layer.input_shape().with_batch(nv.c.B), x);
  Tensor<T> out, grad_in;
  Context ctx;
  ctx.threads = threads;
  ctx.record = true;
  layer.forward(in, out, ctx);
  const Tensor<T> grad_out = tensor_of<T>(out.shape, g);
  layer.backward(in, out, grad_out, &grad_in, ctx, false);
  const auto& params = layer.parameters();
  Results r{std::vector<double>(out.data.begin(), out.data.end()),
            std::vector<double>(grad_in.data.begin(), grad_in.data.end()),
            std::vector<double>(params[0].gradient.begin(), params[0].gradient.end()),
            {}};
  if (params.size() > 1) r.db.assign(params[1].gradient.begin(), params[1].gradient.end());
  return r;
}

void check_close(const std::vector<double>& actual, const std::vector<double>& expected,
                 double tol, const std::string& what) {
  if (!CHECK_MSG(actual.size() == expected.size(),
                 what << ": " << actual.size() << " values, expected " << expected.size())) {
    return;
  }
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (!CHECK_MSG(check::near(actual[i], expected[i], tol),
                   what << "[" << i << "] " << actual[i] << " vs " << expected[i])) {
      return;
    }
  }
}

std::string describe(const ConvCase& c) {
  std::ostringstream os;
  os << c.n.size() << "D " << c.padding << (c.last ? " last" : " first") << " B=" << c.B
     << " n0=" << c.n[0] << " k0=" << c.k[0] << " s0=" << c.s[0] << " d0=" << c.d[0]
     << " C=" << c.C << " F=" << c.F << " groups=" << c.groups;
  return os.str();
}

const std::vector<ConvCase> kCases = {
    {3, {6, 5}, {3, 2}, {1, 1}, {1, 1}, "valid", true, 2, 3, 1, true},
    {2, {7, 6}, {3, 3}, {2, 2}, {1, 1}, "same", false, 4, 6, 2, true},
    {3, {8, 7}, {2, 3}, {1, 1}, {3, 2}, "same", true, 3, 2, 1, false},
    {2, {5, 7}, {4, 2}, {3, 1}, {1, 1}, "valid", false, 4, 4, 4, true},
    {1, {3, 4}, {3, 4}, {2, 3}, {1, 1}, "same", true, 1, 2, 1, true},
    {4, {11}, {3}, {1}, {2}, "causal", true, 4, 6, 2, true},
    {2, {10}, {4}, {3}, {1}, "same", false, 3, 3, 3, false},
    {2, {9}, {2}, {1}, {1}, "causal", false, 2, 2, 1, true},
    // Many samples and positions: several tiles, sample chunks and blocks.
    {70, {12, 11}, {3, 3}, {1, 1}, {1, 1}, "same", true, 3, 2, 1, true},
    {37, {20, 18}, {3, 3}, {1, 1}, {1, 1}, "same", false, 4, 4, 2, true},
};

}  // namespace

TEST(convolution_axis_windows) {
  // TensorFlow SAME: n = 6, k = 4, s = 2 -> out 3, one pad before.
  const AxisWindow same = AxisWindow::convolution(6, 4, 2, 1, Padding::same);
  CHECK_EQ(same.output, 3);
  CHECK_EQ(same.pad_before, 1);
  // n = 5, k = 2, s = 1: total pad 1, all after (the centred LC window pads 1 before).
  CHECK_EQ(AxisWindow::convolution(5, 2, 1, 1, Padding::same).pad_before, 0);
  CHECK_EQ(AxisWindow::make(5, 2, 1, Padding::same).pad_before, 1);
  // Dilation: span (3 - 1) * 2 + 1 = 5.
  const AxisWindow dilated = AxisWindow::convolution(9, 3, 1, 2, Padding::valid);
  CHECK_EQ(dilated.output, 5);
  CHECK_EQ(dilated.at(4, 2), 8);
  CHECK_EQ(AxisWindow::convolution(9, 3, 1, 2, Padding::causal).pad_before, 4);
  CHECK(AxisWindow::convolution(4, 3, 1, 2, Padding::valid).output <= 0);
  CHECK_THROWS(AxisWindow::convolution(4, 3, 1, 0, Padding::valid), std::invalid_argument);
  for (const char* padding : {"valid", "same", "causal"}) {
    for (long n = 1; n <= 9; ++n)
      for (long k = 1; k <= 4; ++k)
        for (long s = 1; s <= 3; ++s)
          for (long d = 1; d <= 3; ++d) {
            const NaiveAxis expected(n, k, s, d, padding);
            const AxisWindow w = AxisWindow::convolution(n, k, s, d, parse_padding(padding));
            if (!CHECK_MSG(w.output == expected.out && w.pad_before == expected.pad,
                           padding << " n=" << n << " k=" << k << " s=" << s << " d=" << d)) {
              continue;
            }
            for (long r = 0; r < w.output; ++r) {
              long inside = 0, first_inside = k;
              for (long i = k - 1; i >= 0; --i) {
                const long at = expected.at(r, i);
                if (at >= 0 && at < n) {
                  ++inside;
                  first_inside = i;
                }
              }
              CHECK_MSG(w.connected(r) == inside && (inside == 0 || w.tap_begin(r) == first_inside),
                        padding << " n=" << n << " k=" << k << " s=" << s << " d=" << d
                                << " r=" << r);
            }
          }
  }
}

TEST(convolution_geometry_validation) {
  ConvGeometry g;
  g.rows = AxisWindow::convolution(6, 3, 1, 1, Padding::valid);
  g.cols = AxisWindow::convolution(5, 2, 1, 1, Padding::valid);
  g.channels = 4;
  g.filters = 6;
  g.groups = 2;
  g.validate();
  CHECK(g.kernel_shape() == (Shape{{3, 2, 2, 6}}));
  g.groups = 3;
  CHECK_THROWS(g.validate(), std::invalid_argument);
  g.groups = 4;
  CHECK_THROWS(g.validate(), std::invalid_argument);
  g.groups = 1;
  g.rows = AxisWindow::convolution(2, 3, 1, 1, Padding::valid);
  CHECK_THROWS(g.validate(), std::invalid_argument);
  g.rows = AxisWindow::convolution(6, 3, 1, 1, Padding::valid);
  CHECK_THROWS(Convolution<double>(g, Activation::linear, std::vector<double>(10), {}),
               std::invalid_argument);
}

TEST(convolution_forward_backward_against_naive) {
  std::mt19937_64 rng(7);
  for (const ConvCase& c : kCases) {
    const Naive nv(c);
    const auto x = random_values(rng, nv.x_size());
    const auto w = random_values(rng, nv.w_size());
    const auto b = c.bias ? random_values(rng, c.F) : std::vector<double>();
    const auto g = random_values(rng, nv.y_size());
    Results expected{std::vector<double>(nv.y_size(), 0.0),
                     std::vector<double>(nv.x_size(), 0.0),
                     std::vector<double>(nv.w_size(), 0.0),
                     std::vector<double>(c.bias ? c.F : 0, 0.0)};
    nv.each_term([&](long xi, long yi, long wi) {
      expected.y[yi] += x[xi] * w[wi];
      expected.dx[xi] += g[yi] * w[wi];
      expected.dw[wi] += g[yi] * x[xi];
    });
    if (c.bias) {
      for (long bi = 0; bi < c.B; ++bi)
        for (long r = 0; r < nv.OR; ++r)
          for (long q = 0; q < nv.OC; ++q)
            for (long f = 0; f < c.F; ++f) {
              expected.y[nv.y_at(bi, r, q, f)] += b[f];
              expected.db[f] += g[nv.y_at(bi, r, q, f)];
            }
    }
    const std::string what = describe(c);
    const Results r64 = run_engine<double>(nv, x, w, b, g, 2);
    check_close(r64.y, expected.y, 1e-12, what + " y");
    check_close(r64.dx, expected.dx, 1e-12, what + " dx");
    check_close(r64.dw, expected.dw, 1e-12, what + " dw");
    check_close(r64.db, expected.db, 1e-12, what + " db");
    const Results r32 = run_engine<float>(nv, x, w, b, g, 2);
    check_close(r32.y, expected.y, 1e-4, what + " float y");
    check_close(r32.dx, expected.dx, 1e-4, what + " float dx");
    check_close(r32.dw, expected.dw, 1e-4, what + " float dw");
    check_close(r32.db, expected.db, 1e-4, what + " float db");
  }
}

TEST(convolution_threads_agree_exactly) {
  std::mt19937_64 rng(8);
  for (const ConvCase& c : {kCases[8], kCases[9]}) {
    const Naive nv(c);
    const auto x = random_values(rng, nv.x_size());
    const auto w = random_values(rng, nv.w_size());
    const auto b = random_values(rng, c.F);
    const auto g = random_values(rng, nv.y_size());
    const Results one = run_engine<float>(nv, x, w, b, g, 1);
    for (int threads : {2, 3, 5}) {
      const Results many = run_engine<float>(nv, x, w, b, g, threads);
      CHECK_MSG(many.y == one.y && many.dx == one.dx && many.dw == one.dw && many.db == one.db,
                describe(c) << " with " << threads << " threads");
    }
  }
}
