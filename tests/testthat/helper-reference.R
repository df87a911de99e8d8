# Naive references written from KERAS_SEMANTICS.md, independent of the
# engine: plain loops over Keras-layout arrays in float64. Indices in the
# comments are 0-based as in the spec; R indexing adds 1.

# Output length and first tap of output r along one axis (section 2).
ref_axis <- function(n, k, s, padding) {
  out <- switch(padding,
    valid = floor((n - k) / s) + 1,
    same = ceiling(n / s),
    causal = ceiling(n / s)
  )
  pad <- switch(padding, valid = 0, same = k %/% 2, causal = k - 1)
  list(n = n, k = k, s = s, out = out, first = function(r) r * s - pad)
}

# The geometry of a 1D or 2D layer on per-sample shape `shape` (Keras order).
ref_geometry <- function(shape, kernel_size, strides, padding, data_format) {
  last <- data_format == "channels_last"
  spatial <- if (last) shape[-length(shape)] else shape[-1]
  channels <- if (last) shape[length(shape)] else shape[1]
  if (length(spatial) == 1) {
    spatial <- c(spatial, 1)
    kernel_size <- c(kernel_size, 1)
    strides <- c(strides, 1)
  }
  list(rows = ref_axis(spatial[1], kernel_size[1], strides[1], padding),
       cols = ref_axis(spatial[2], kernel_size[2], strides[2], padding),
       channels = channels, one_d = length(shape) == 2, last = last)
}

# x as (B, H, W, C) whatever its data format and rank.
ref_as_bhwc <- function(x, g) {
  d <- dim(x)
  if (g$one_d) {
    if (g$last) array(x, c(d[1], d[2], 1, d[3])) else array(aperm(x, c(1, 3, 2)), c(d[1], d[3], 1, d[2]))
  } else if (g$last) x else aperm(x, c(1, 3, 4, 2))
}

# y from (B, OR, OC, F) to the data format's Keras output shape.
ref_from_borcf <- function(y, g) {
  d <- dim(y)
  if (g$one_d) {
    y <- array(y, d[c(1, 2, 4)])
    if (g$last) y else aperm(y, c(1, 3, 2))
  } else if (g$last) y else aperm(y, c(1, 4, 2, 3))
}

ref_activations <- list(
  linear = function(x) x,
  relu = function(x) pmax(x, 0),
  sigmoid = function(x) 1 / (1 + exp(-x)),
  tanh = tanh,
  elu = function(x) ifelse(x > 0, x, exp(x) - 1),
  selu = function(x) 1.0507009873554804934193349852946 *
    ifelse(x > 0, x, 1.6732632423543772848170429916717 * (exp(x) - 1)),
  softplus = function(x) log1p(exp(x)),
  softsign = function(x) x / (abs(x) + 1),
  swish = function(x) x / (1 + exp(-x)),
  gelu = function(x) x * pnorm(x),
  hard_sigmoid = function(x) pmin(1, pmax(0, 0.2 * x + 0.5)),
  exponential = exp
)

# Softmax over the last axis of an array, whatever its rank.
ref_softmax_last <- function(y) {
  d <- dim(y)
  m <- matrix(y, ncol = d[length(d)])
  m <- exp(m - apply(m, 1, max))
  array(m / rowSums(m), d)
}

# Bias add (with the channels_first reshape quirk of section 3) and
# activation on an output already in the data format's shape.
ref_finish <- function(y, bias, g, activation) {
  if (!is.null(bias)) {
    d <- dim(y)
    per_sample <- if (g$last) {
      # bias (OR, OC, F) [or (OL, F)] lines up with y[b, ...].
      as.vector(bias)
    } else {
      # C-order flattening of the stored bias, reinterpreted as (F, OR, OC).
      flat <- as.vector(aperm(bias, rev(seq_along(dim(bias)))))
      as.vector(aperm(array(flat, rev(d[-1])), rev(seq_along(d[-1]))))
    }
    y <- y + rep(per_sample, each = d[1])
  }
  if (activation == "softmax") ref_softmax_last(y) else ref_activations[[activation]](y)
}

# Implementation 1: kernel (P, K*C, F), section 3.
ref_lc_impl1 <- function(x, kernel, bias, kernel_size, strides, padding, data_format,
                         activation = "linear", ...) {
  g <- ref_geometry(dim(x)[-1], kernel_size, strides, padding, data_format)
  xl <- ref_as_bhwc(x, g)
  k0 <- g$rows$k; k1 <- g$cols$k; C <- g$channels
  OR <- g$rows$out; OC <- g$cols$out; F <- dim(kernel)[3]; B <- dim(x)[1]
  y <- array(0, c(B, OR, OC, F))
  for (r in 0:(OR - 1)) for (c in 0:(OC - 1)) {
    p <- r * OC + c
    for (i in 0:(k0 - 1)) for (j in 0:(k1 - 1)) {
      ir <- g$rows$first(r) + i; ic <- g$cols$first(c) + j
      if (ir < 0 || ir >= g$rows$n || ic < 0 || ic >= g$cols$n) next
      for (ci in 0:(C - 1)) {
        m <- if (g$last) (i * k1 + j) * C + ci else (ci * k0 + i) * k1 + j
        for (o in 0:(F - 1)) {
          y[, r + 1, c + 1, o + 1] <- y[, r + 1, c + 1, o + 1] +
            xl[, ir + 1, ic + 1, ci + 1] * kernel[p + 1, m + 1, o + 1]
        }
      }
    }
  }
  ref_finish(ref_from_borcf(y, g), bias, g, activation)
}

# Is input (ir, ic) in the window of output (r, c)?
ref_connected <- function(g, r, c, ir, ic) {
  fr <- g$rows$first(r); fc <- g$cols$first(c)
  ir >= fr & ir < fr + g$rows$k & ic >= fc & ic < fc + g$cols$k
}

# C-order reshape of an array to a matrix: the first `row_axes` axes index
# rows, the rest columns.
c_order_matrix <- function(a, row_axes) {
  d <- dim(a)
  n <- length(d)
  rows <- seq_len(row_axes)
  cols <- setdiff(seq_len(n), rows)
  m <- aperm(a, c(rev(rows), rev(cols)))
  matrix(m, prod(d[rows]), prod(d[cols]))
}

# Implementation 2: dense masked kernel; y = x %*% (W2 * mask) with C-order
# reshapes in the data format's own axis order.
ref_lc_impl2 <- function(x, kernel, bias, kernel_size, strides, padding, data_format,
                         activation = "linear", ...) {
  g <- ref_geometry(dim(x)[-1], kernel_size, strides, padding, data_format)
  n_in <- length(dim(x)) - 1
  kd <- dim(kernel)
  mask <- array(0, kd)
  # Index grids over the kernel's axes, named by role.
  idx <- arrayInd(seq_along(mask), kd) - 1
  if (g$one_d) {
    roles <- if (g$last) c("ir", "ci", "r", "o") else c("ci", "ir", "o", "r")
    colnames(idx) <- roles
    keep <- ref_connected(g, idx[, "r"], 0, idx[, "ir"], 0)
  } else {
    roles <- if (g$last) c("ir", "ic", "ci", "r", "c", "o") else c("ci", "ir", "ic", "o", "r", "c")
    colnames(idx) <- roles
    keep <- ref_connected(g, idx[, "r"], idx[, "c"], idx[, "ir"], idx[, "ic"])
  }
  mask[keep] <- 1
  xm <- c_order_matrix(x, 1)
  wm <- c_order_matrix(kernel * mask, n_in)
  ym <- xm %*% wm
  out_dims <- kd[(n_in + 1):length(kd)]
  y <- aperm(array(ym, c(dim(x)[1], rev(out_dims))), c(1, rev(seq_along(out_dims)) + 1))
  ref_finish(y, bias, g, activation)
}

# Implementation 3: weights of the connected (out_idx, in_idx) pairs in
# sorted order, indices as in section 3.
ref_lc_impl3 <- function(x, kernel, bias, kernel_size, strides, padding, data_format,
                         activation = "linear", filters) {
  g <- ref_geometry(dim(x)[-1], kernel_size, strides, padding, data_format)
  H <- g$rows$n; W <- g$cols$n; C <- g$channels
  OR <- g$rows$out; OC <- g$cols$out; F <- filters; B <- dim(x)[1]
  pairs <- expand.grid(ci = 0:(C - 1), ic = 0:(W - 1), ir = 0:(H - 1), o = 0:(F - 1),
                       c = 0:(OC - 1), r = 0:(OR - 1))
  pairs <- pairs[ref_connected(g, pairs$r, pairs$c, pairs$ir, pairs$ic), ]
  if (g$last) {
    out_idx <- (pairs$r * OC + pairs$c) * F + pairs$o
    in_idx <- (pairs$ir * W + pairs$ic) * C + pairs$ci
  } else {
    out_idx <- (pairs$o * OR + pairs$r) * OC + pairs$c
    in_idx <- (pairs$ci * H + pairs$ir) * W + pairs$ic
  }
  ord <- order(out_idx, in_idx)
  out_idx <- out_idx[ord]; in_idx <- in_idx[ord]
  stopifnot(length(kernel) == length(ord))
  xm <- c_order_matrix(x, 1)
  ym <- matrix(0, B, OR * OC * F)
  for (n in seq_along(ord)) {
    ym[, out_idx[n] + 1] <- ym[, out_idx[n] + 1] + xm[, in_idx[n] + 1] * kernel[n]
  }
  out_dims <- if (g$one_d) {
    if (g$last) c(OR, F) else c(F, OR)
  } else {
    if (g$last) c(OR, OC, F) else c(F, OR, OC)
  }
  y <- aperm(array(ym, c(B, rev(out_dims))), c(1, rev(seq_along(out_dims)) + 1))
  ref_finish(y, bias, g, activation)
}

ref_lc <- function(implementation, ...) {
  switch(implementation, ref_lc_impl1(...), ref_lc_impl2(...), ref_lc_impl3(...))
}

# An R array from a fixture tensor: list(shape, values in C order).
fixture_array <- function(entry) {
  shape <- unlist(entry$shape)
  values <- unlist(entry$values)
  if (length(shape) == 1) return(array(values, shape))
  aperm(array(values, rev(shape)), rev(seq_along(shape)))
}

# Reads a tf-keras fixture.
read_fixture <- function(path) {
  f <- jsonlite::fromJSON(path, simplifyVector = FALSE)
  f$input_array <- fixture_array(f$input)
  f$output_array <- fixture_array(f$output)
  f$weight_arrays <- lapply(f$weights, fixture_array)
  f
}

# A fixture's Keras keyword arguments as R arguments: JSON lists of numbers
# become vectors, lists of lists become lists of vectors, null stays NULL.
fixture_arguments <- function(args) {
  lapply(args, function(a) {
    if (!is.list(a)) return(a)
    if (all(lengths(a) == 1) && !any(vapply(a, is.list, logical(1)))) return(unlist(a))
    lapply(a, unlist)
  })
}

random_array <- function(dims, min = -1, max = 1) array(runif(prod(dims), min, max), dims)

expect_close <- function(actual, expected, tolerance = 1e-10) {
  expect_equal(dim(actual), dim(expected))
  expect_equal(as.vector(actual), as.vector(expected), tolerance = tolerance)
}

# Batch normalization as Keras's BatchNormalization, on an R array x (batch
# first) along `axis` (0 is the batch, as in Keras): per channel c,
# gamma[c] * (x - mean[c]) / sqrt(variance[c] + epsilon) + beta[c];
# NULL gamma / beta: no scale / no centering.
ref_batch_norm <- function(x, axis, mean, variance, gamma = NULL, beta = NULL,
                           epsilon = 0.001) {
  channel <- arrayInd(seq_along(x), dim(x))[, axis + 1]
  y <- x
  for (k in seq_along(x)) {
    c <- channel[k]
    scale <- if (is.null(gamma)) 1 else gamma[c]
    shift <- if (is.null(beta)) 0 else beta[c]
    y[k] <- scale * (x[k] - mean[c]) / sqrt(variance[c] + epsilon) + shift
  }
  y
}

# ---- Pooling and shape layers --------------------------------------------

# A 1D or 2D sample batch as (B, H, W, C) whatever its data format (1D: W = 1),
# and back.
ref_to_bhwc <- function(x, data_format) {
  if (data_format == "channels_first") x <- aperm(x, c(1, seq_along(dim(x))[-(1:2)], 2))
  d <- dim(x)
  if (length(d) == 3) array(x, c(d[1], d[2], 1, d[3])) else x
}

ref_from_bhwc <- function(y, data_format, one_d) {
  d <- dim(y)
  if (one_d) y <- array(y, d[c(1, 2, 4)])
  if (data_format == "channels_first") aperm(y, c(1, length(dim(y)), 2:(length(dim(y)) - 1))) else y
}

# TensorFlow's windows along one axis (pooling and convolutions): "same"
# gives ceiling(n / s) outputs and pads max((out - 1) * s + k - n, 0) in
# all, the smaller half before.
ref_tf_axis <- function(n, k, s, padding) {
  if (padding == "valid") return(list(out = floor((n - k) / s) + 1, pad = 0))
  out <- ceiling(n / s)
  list(out = out, pad = max((out - 1) * s + k - n, 0) %/% 2)
}

# Calls visit(b, r, q, ch, taps) for every output of a pooling layer, where
# taps is a two-column matrix of the (row, col) input indices (1-based) of
# the window inside the input, in row-major order.
ref_pool_windows <- function(xl, pool_size, strides, padding, visit) {
  d <- dim(xl)
  k <- rep_len(pool_size, 2); s <- rep_len(strides, 2)
  if (length(pool_size) == 1) { k[2] <- 1; s[2] <- 1 }
  rows <- ref_tf_axis(d[2], k[1], s[1], padding)
  cols <- ref_tf_axis(d[3], k[2], s[2], padding)
  for (b in seq_len(d[1])) for (r in 0:(rows$out - 1)) for (q in 0:(cols$out - 1)) {
    taps <- NULL
    for (i in 0:(k[1] - 1)) for (j in 0:(k[2] - 1)) {
      ir <- r * s[1] - rows$pad + i; ic <- q * s[2] - cols$pad + j
      if (ir >= 0 && ir < d[2] && ic >= 0 && ic < d[3]) taps <- rbind(taps, c(ir + 1, ic + 1))
    }
    for (ch in seq_len(d[4])) visit(b, r + 1, q + 1, ch, taps)
  }
  c(rows$out, cols$out)
}

# Max or average pooling: over the window's entries inside the input only.
ref_pool <- function(x, mode, pool_size, strides = pool_size, padding = "valid",
                     data_format = "channels_last") {
  xl <- ref_to_bhwc(x, data_format)
  d <- dim(xl)
  y <- array(0, c(d[1], d[2], d[3], d[4]))
  out <- ref_pool_windows(xl, pool_size, strides, padding, function(b, r, q, ch, taps) {
    values <- xl[cbind(b, taps, ch)]
    y[b, r, q, ch] <<- if (mode == "max") max(values) else mean(values)
  })
  y <- y[, seq_len(out[1]), seq_len(out[2]), , drop = FALSE]
  ref_from_bhwc(y, data_format, length(dim(x)) == 3)
}

# d sum(upstream * pool(x)) / dx: the average spreads over the window's
# entries inside the input; the maximum goes to its first entry in
# row-major window order (TensorFlow's max pooling).
ref_pool_gradient <- function(x, upstream, mode, pool_size, strides = pool_size,
                              padding = "valid", data_format = "channels_last") {
  xl <- ref_to_bhwc(x, data_format)
  ul <- ref_to_bhwc(upstream, data_format)
  grad <- array(0, dim(xl))
  ref_pool_windows(xl, pool_size, strides, padding, function(b, r, q, ch, taps) {
    values <- xl[cbind(b, taps, ch)]
    chosen <- if (mode == "max") which(values == max(values))[1] else seq_along(values)
    for (t in chosen) {
      at <- cbind(b, taps[t, 1], taps[t, 2], ch)
      grad[at] <<- grad[at] + ul[b, r, q, ch] / length(chosen)
    }
  })
  ref_from_bhwc(grad, data_format, length(dim(x)) == 3)
}

# Global pooling: per sample and channel, over every position.
ref_global_pool <- function(x, mode, data_format = "channels_last", keepdims = FALSE) {
  xl <- ref_to_bhwc(x, data_format)
  d <- dim(xl)
  y <- matrix(0, d[1], d[4])
  for (b in seq_len(d[1])) for (ch in seq_len(d[4])) {
    values <- xl[b, , , ch]
    y[b, ch] <- if (mode == "max") max(values) else mean(values)
  }
  if (!keepdims) return(y)
  spatial <- rep(1, length(dim(x)) - 2)
  if (data_format == "channels_last") array(y, c(d[1], spatial, d[4])) else
    array(y, c(d[1], d[4], spatial))
}

# Its input gradient: TensorFlow's reduce_max splits the gradient of a
# maximum evenly among the entries holding it.
ref_global_pool_gradient <- function(x, upstream, mode, data_format = "channels_last") {
  xl <- ref_to_bhwc(x, data_format)
  d <- dim(xl)
  upstream <- matrix(upstream, d[1], d[4])
  grad <- array(0, d)
  for (b in seq_len(d[1])) for (ch in seq_len(d[4])) {
    values <- xl[b, , , ch]
    share <- if (mode == "max") (values == max(values)) / sum(values == max(values)) else
      array(1 / length(values), dim(values))
    grad[b, , , ch] <- upstream[b, ch] * share
  }
  ref_from_bhwc(grad, data_format, length(dim(x)) == 3)
}

# Zero padding (amounts > 0) or cropping (amounts < 0) of the spatial axes:
# `before` and `after` hold one amount per spatial axis (1D: one).
ref_pad_crop <- function(x, before, after, data_format = "channels_last") {
  xl <- ref_to_bhwc(x, data_format)
  d <- dim(xl)
  before <- c(before, 0)[1:2]; after <- c(after, 0)[1:2]
  out <- d[2:3] + before + after
  y <- array(0, c(d[1], out, d[4]))
  for (r in seq_len(out[1])) for (q in seq_len(out[2])) {
    ir <- r - before[1]; ic <- q - before[2]
    if (ir >= 1 && ir <= d[2] && ic >= 1 && ic <= d[3]) y[, r, q, ] <- xl[, ir, ic, ]
  }
  ref_from_bhwc(y, data_format, length(dim(x)) == 3)
}

# Keras's Reshape: each sample's values in C order, refilled in C order.
ref_reshape <- function(x, target_shape) {
  n <- prod(dim(x)[-1])
  target_shape[target_shape == -1] <- n / prod(target_shape[target_shape != -1])
  y <- array(0, c(dim(x)[1], target_shape))
  in_index <- arrayInd(seq_len(n), rev(dim(x)[-1]))[, rev(seq_along(dim(x)[-1])), drop = FALSE]
  out_index <- arrayInd(seq_len(n), rev(target_shape))[, rev(seq_along(target_shape)), drop = FALSE]
  for (b in seq_len(dim(x)[1])) {
    for (k in seq_len(n)) y[rbind(c(b, out_index[k, ]))] <- x[rbind(c(b, in_index[k, ]))]
  }
  y
}

# Per channel of `axis`, the mean and biased variance over every other axis;
# n is the number of values per channel.
ref_batch_moments <- function(x, axis) {
  channel <- arrayInd(seq_along(x), dim(x))[, axis + 1]
  channels <- dim(x)[axis + 1]
  n <- length(x) / channels
  mean <- variance <- numeric(channels)
  for (k in seq_along(x)) mean[channel[k]] <- mean[channel[k]] + x[k] / n
  for (k in seq_along(x)) {
    variance[channel[k]] <- variance[channel[k]] + (x[k] - mean[channel[k]])^2 / n
  }
  list(mean = mean, variance = variance, n = n)
}

# Keras's Permute: output axis a is input axis dims[a] (1-based, no batch).
ref_permute <- function(x, dims) {
  out <- c(dim(x)[1], dim(x)[-1][dims])
  y <- array(0, out)
  for (k in seq_along(y)) {
    o <- arrayInd(k, out)
    i <- integer(length(o))
    i[1] <- o[1]
    i[dims + 1] <- o[-1]
    y[k] <- x[rbind(i)]
  }
  y
}

# A convolution's axis as TensorFlow pads it (Keras Conv1D/Conv2D): window
# span (k - 1) * d + 1; "same" pads max((out - 1) * s + span - n, 0) in
# all, half of it (rounded down) before; "causal" pads span - 1 before and
# then works as "valid" on the padded input.
ref_conv_axis <- function(n, k, s, d, padding) {
  span <- (k - 1) * d + 1
  out <- switch(padding,
    valid = floor((n - span) / s) + 1,
    same = ceiling(n / s),
    causal = floor((n + span - 1 - span) / s) + 1
  )
  pad <- switch(padding,
    valid = 0,
    same = max((out - 1) * s + span - n, 0) %/% 2,
    causal = span - 1
  )
  list(n = n, k = k, out = out, tap = function(r, i) r * s - pad + i * d)
}

# Conv1D/Conv2D from the definition: y[b, r, c, o] = bias[o] + the sum over
# taps (i, j) and the channels ci of o's group of
# x[b, tap_r(r, i), tap_c(c, j), ci] * kernel[i, j, ci - first channel, o],
# taps outside the input reading zero.
ref_conv <- function(x, kernel, bias, kernel_size, strides = 1, padding = "valid",
                     data_format = "channels_last", dilation_rate = 1, groups = 1,
                     activation = "linear") {
  one_d <- length(dim(x)) == 3
  rank <- if (one_d) 1 else 2
  kernel_size <- rep_len(kernel_size, rank)
  strides <- rep_len(strides, rank)
  dilation_rate <- rep_len(dilation_rate, rank)
  if (one_d) {
    kernel_size <- c(kernel_size, 1)
    strides <- c(strides, 1)
    dilation_rate <- c(dilation_rate, 1)
    kernel <- array(kernel, c(dim(kernel)[1], 1, dim(kernel)[2:3]))
  }
  g <- ref_geometry(dim(x)[-1], kernel_size, strides, "valid", data_format)
  xl <- ref_as_bhwc(x, g)
  rows <- ref_conv_axis(g$rows$n, kernel_size[1], strides[1], dilation_rate[1], padding)
  cols <- ref_conv_axis(g$cols$n, kernel_size[2], strides[2], dilation_rate[2], padding)
  B <- dim(x)[1]; Cg <- dim(kernel)[3]; F <- dim(kernel)[4]; Fg <- F / groups
  y <- array(0, c(B, rows$out, cols$out, F))
  for (r in 0:(rows$out - 1)) for (c in 0:(cols$out - 1)) for (o in 0:(F - 1)) {
    first_channel <- (o %/% Fg) * Cg
    for (i in 0:(rows$k - 1)) for (j in 0:(cols$k - 1)) {
      ir <- rows$tap(r, i); ic <- cols$tap(c, j)
      if (ir < 0 || ir >= rows$n || ic < 0 || ic >= cols$n) next
      for (ci in 0:(Cg - 1)) {
        y[, r + 1, c + 1, o + 1] <- y[, r + 1, c + 1, o + 1] +
          xl[, ir + 1, ic + 1, first_channel + ci + 1] * kernel[i + 1, j + 1, ci + 1, o + 1]
      }
    }
    if (!is.null(bias)) y[, r + 1, c + 1, o + 1] <- y[, r + 1, c + 1, o + 1] + bias[o + 1]
  }
  ref_finish(ref_from_borcf(y, g), NULL, g, activation)
}
