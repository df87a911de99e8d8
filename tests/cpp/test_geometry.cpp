// AxisWindow lengths and tap clipping, LocalGeometry shapes and validation.
#include <stdexcept>

#include "check.hpp"
#include "local_geometry.hpp"
#include "reference.hpp"

using namespace lcnn;

TEST(axis_window_output_lengths) {
  // valid: floor((n - k) / s) + 1
  CHECK_EQ(AxisWindow::make(10, 3, 1, Padding::valid).output, 8);
  CHECK_EQ(AxisWindow::make(10, 3, 2, Padding::valid).output, 4);
  CHECK_EQ(AxisWindow::make(10, 3, 3, Padding::valid).output, 3);
  CHECK_EQ(AxisWindow::make(3, 3, 1, Padding::valid).output, 1);
  CHECK_EQ(AxisWindow::make(3, 3, 5, Padding::valid).output, 1);
  CHECK_EQ(AxisWindow::make(32, 3, 1, Padding::valid).output, 30);
  // kernel larger than the input: no valid output
  CHECK(AxisWindow::make(2, 5, 1, Padding::valid).output <= 0);
  CHECK(AxisWindow::make(1, 2, 3, Padding::valid).output <= 0);
  CHECK(AxisWindow::make(4, 5, 2, Padding::valid).output <= 0);
  // same and causal: ceil(n / s), whatever the kernel
  CHECK_EQ(AxisWindow::make(10, 3, 1, Padding::same).output, 10);
  CHECK_EQ(AxisWindow::make(10, 3, 3, Padding::same).output, 4);
  CHECK_EQ(AxisWindow::make(2, 5, 1, Padding::same).output, 2);
  CHECK_EQ(AxisWindow::make(1, 5, 2, Padding::same).output, 1);
  CHECK_EQ(AxisWindow::make(10, 3, 3, Padding::causal).output, 4);
  CHECK_EQ(AxisWindow::make(2, 5, 1, Padding::causal).output, 2);
  CHECK_EQ(AxisWindow::make(7, 2, 2, Padding::causal).output, 4);
}

TEST(axis_window_offsets) {
  // Section 2: LC "same" starts at r*s - floor(k/2) (n=5,k=2,s=1: offset 1;
  // n=6,k=3,s=2: offset 1), causal at r*s - (k-1).
  CHECK_EQ(AxisWindow::make(5, 2, 1, Padding::same).first(0), -1);
  CHECK_EQ(AxisWindow::make(6, 3, 2, Padding::same).first(0), -1);
  CHECK_EQ(AxisWindow::make(6, 3, 2, Padding::same).first(2), 3);
  CHECK_EQ(AxisWindow::make(6, 4, 1, Padding::same).first(0), -2);
  CHECK_EQ(AxisWindow::make(6, 4, 1, Padding::causal).first(0), -3);
  CHECK_EQ(AxisWindow::make(6, 4, 2, Padding::causal).first(2), 1);
  CHECK_EQ(AxisWindow::make(6, 4, 2, Padding::valid).first(1), 2);
  // tap clipping by hand: n=5, k=4, s=1, same (offset 2)
  const AxisWindow w = AxisWindow::make(5, 4, 1, Padding::same);
  CHECK_EQ(w.tap_begin(0), 2);
  CHECK_EQ(w.tap_end(0), 4);
  CHECK_EQ(w.tap_begin(2), 0);
  CHECK_EQ(w.tap_end(2), 4);
  CHECK_EQ(w.tap_begin(4), 0);
  CHECK_EQ(w.tap_end(4), 3);  // taps 0..2 read inputs 2..4
  CHECK_EQ(w.connected(4), 3);
  // kernel larger than the input, both sides clipped
  const AxisWindow big = AxisWindow::make(2, 5, 1, Padding::same);
  CHECK_EQ(big.tap_begin(0), 2);
  CHECK_EQ(big.tap_end(0), 4);
  CHECK_EQ(big.tap_begin(1), 1);
  CHECK_EQ(big.tap_end(1), 3);
}

TEST(axis_window_brute_force) {
  for (const char* pad_name : {"valid", "same", "causal"}) {
    const Padding pad = parse_padding(pad_name);
    for (index_t n = 1; n <= 9; ++n)
      for (index_t k = 1; k <= 6; ++k)
        for (index_t s = 1; s <= 4; ++s) {
          ref::Spec spec;
          spec.n = {n};
          spec.k = {k};
          spec.s = {s};
          spec.padding = pad_name;
          const AxisWindow w = AxisWindow::make(n, k, s, pad);
          const long expected = spec.out_len(0);
          if (expected <= 0) {
            CHECK_MSG(w.output <= 0, pad_name << " n=" << n << " k=" << k << " s=" << s);
            continue;
          }
          CHECK_MSG(w.output == expected, pad_name << " n=" << n << " k=" << k << " s=" << s
                                                   << " got " << w.output);
          bool all_ok = true;
          for (index_t r = 0; r < w.output; ++r) {
            // connected taps from section 2: t in [0, k) with 0 <= start + t < n
            long lo = -1, hi = -1;
            for (long t = 0; t < k; ++t) {
              const long q = spec.start(0, r) + t;
              if (q >= 0 && q < n) {
                if (lo < 0) lo = t;
                hi = t + 1;
              }
            }
            if (w.first(r) != spec.start(0, r) || w.tap_begin(r) != lo || w.tap_end(r) != hi ||
                w.connected(r) != hi - lo || w.connected(r) < 1) {
              all_ok = false;
            }
          }
          CHECK_MSG(all_ok, "taps " << pad_name << " n=" << n << " k=" << k << " s=" << s);
        }
  }
}

TEST(local_geometry_shapes) {
  ref::Spec s2;
  s2.n = {32, 32};
  s2.k = {3, 3};
  s2.s = {1, 1};
  s2.C = 3;
  s2.F = 64;
  LocalGeometry g = ref::geometry_of(s2);
  CHECK(g.output_shape() == (Shape{{30, 30, 64}}));
  CHECK(g.input_shape() == (Shape{{32, 32, 3}}));
  CHECK_EQ(g.positions(), 900);
  CHECK_EQ(g.taps(), 9);
  CHECK_EQ(g.patch(), 27);
  // Section 6: 1,612,800 parameters
  CHECK_EQ(g.kernel_size() + g.bias_size(), 1612800);
  CHECK(g.keras_kernel_shape(1) == (Shape{{900, 27, 64}}));
  CHECK(g.keras_kernel_shape(2) == (Shape{{32, 32, 3, 30, 30, 64}}));
  CHECK(g.keras_kernel_shape(3) == (Shape{{900 * 27 * 64}}));
  CHECK(g.keras_bias_shape() == (Shape{{30, 30, 64}}));
  CHECK_THROWS(g.keras_kernel_shape(4), std::invalid_argument);
  g.format = DataFormat::channels_first;
  CHECK(g.output_shape() == (Shape{{64, 30, 30}}));
  CHECK(g.input_shape() == (Shape{{3, 32, 32}}));
  CHECK(g.keras_kernel_shape(2) == (Shape{{3, 32, 32, 64, 30, 30}}));
  CHECK(g.keras_bias_shape() == (Shape{{30, 30, 64}}));

  ref::Spec s1;
  s1.n = {10};
  s1.k = {3};
  s1.s = {1};
  s1.C = 32;
  s1.F = 64;
  LocalGeometry g1 = ref::geometry_of(s1);
  CHECK(g1.output_shape() == (Shape{{8, 64}}));
  CHECK(g1.input_shape() == (Shape{{10, 32}}));
  CHECK(g1.keras_kernel_shape(1) == (Shape{{8, 96, 64}}));
  CHECK(g1.keras_kernel_shape(2) == (Shape{{10, 32, 8, 64}}));
  CHECK(g1.keras_bias_shape() == (Shape{{8, 64}}));
  g1.format = DataFormat::channels_first;
  CHECK(g1.output_shape() == (Shape{{64, 8}}));
  CHECK(g1.input_shape() == (Shape{{32, 10}}));
  CHECK(g1.keras_kernel_shape(2) == (Shape{{32, 10, 64, 8}}));
}

TEST(local_geometry_validate) {
  ref::Spec s;
  s.n = {4, 5};
  s.k = {5, 2};
  s.s = {1, 1};
  CHECK_THROWS(ref::geometry_of(s).validate(), std::invalid_argument);
  s.k = {2, 2};
  LocalGeometry g = ref::geometry_of(s);
  g.validate();
  CHECK(true);
  g.channels = 0;
  CHECK_THROWS(g.validate(), std::invalid_argument);
  g.channels = 1;
  g.filters = 0;
  CHECK_THROWS(g.validate(), std::invalid_argument);
  // Zero sizes are refused before any division by the stride.
  CHECK_THROWS(AxisWindow::make(5, 2, 0, Padding::same), std::invalid_argument);
  CHECK_THROWS(AxisWindow::make(5, 0, 1, Padding::valid), std::invalid_argument);
  CHECK_THROWS(AxisWindow::make(0, 1, 1, Padding::valid), std::invalid_argument);
  CHECK_THROWS(parse_padding("full"), std::invalid_argument);
  CHECK_THROWS(parse_data_format("channels_middle"), std::invalid_argument);
  CHECK(parse_padding("causal") == Padding::causal);
  CHECK(parse_data_format("channels_first") == DataFormat::channels_first);
}
