#!/usr/bin/env python3
"""Generate reference fixtures for lcnn from real Keras 2 (tf-keras).

For every configuration in the grid below this script builds a tf-keras
``LocallyConnected1D`` / ``LocallyConnected2D`` layer on a small known input
shape (batch size 2), REPLACES all of its weights with values drawn by numpy
(uniform in [-1, 1], same shapes as ``layer.get_weights()``; for
``implementation=2`` this deliberately fills the masked/unused entries of the
dense kernel with junk, which a correct reimplementation must ignore), draws a
random input (uniform in [-1, 1]), runs ``layer(x)`` and writes everything to
one JSON file per configuration:

    {
      "keras_version": "<tf_keras.__version__>",
      "layer": "LocallyConnected2D" | "LocallyConnected1D",
      "config": {"filters", "kernel_size", "strides", "padding", "data_format",
                 "implementation", "use_bias", "activation", "dtype"},
      "count_params": int,
      "input":   {"shape": [B, ...], "values": [... C/row-major order ...]},
      "weights": [{"shape": [...], "values": [...]}, ...],  # = get_weights()
      "output":  {"shape": [B, ...], "values": [...]}
    }

Floats are written with full precision (repr of the Python float holding the
exact float32/float64 value), so they round-trip exactly.

The grid covers implementations 1/2/3, channels_last/channels_first, "valid"
and "same" padding (tf-keras rejects "same" with implementation 1; those
attempts are reported and skipped), kernels smaller/equal/larger than the
stride, odd and even input sizes, use_bias on/off, every built-in activation
that matters (incl. softmax with channels_first, which Keras applies on the
last -- spatial -- axis), and a few float64 layers.

A separate section at the end of this file writes the BatchNormalization
fixtures (``bn_*.json``, see there).

Everything is deterministic: each configuration draws from its own numpy
generator seeded from a fixed base seed and the fixture name.

A separate generator (the "Convolutions" section below) writes fixtures of
tf-keras ``Conv1D`` / ``Conv2D`` layers, in the same format with
``dilation_rate`` and ``groups`` in the config, to ``outdir/conv``.

Usage:
    pip install tensorflow-cpu tf-keras   # matching minor versions, e.g. 2.18
    python tools/make-keras-fixtures.py [--shape-layers-only] [outdir]

A second generator (section "Pooling and shape layers" below) writes the
"pool_*" and "shape_*" fixtures of the layers without weights.

``outdir`` defaults to ``tests/testthat/fixtures`` relative to the repository
root (the parent of the directory containing this script).  Configurations
that raise inside tf-keras are skipped with a note; the run does not fail.
"""

import json
import os
import sys
import zlib
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

BASE_SEED = 20240611
BATCH = 2

# ---------------------------------------------------------------------------
# Geometries: (spatial input dims, channels, filters, kernel, strides)
# Shapes are kept small so the implementation-2 dense kernel stays < ~100 KB.
# ---------------------------------------------------------------------------
GEOM_2D = [
    ((5, 4), 2, 3, (3, 2), (1, 1)),
    ((6, 4), 2, 3, (3, 2), (2, 1)),
    ((4, 7), 2, 3, (2, 3), (1, 3)),
    ((5, 5), 2, 3, (2, 2), (2, 2)),  # odd input dims
    ((6, 4), 2, 3, (2, 2), (2, 2)),  # even input dims
    ((4, 3), 2, 3, (1, 1), (1, 1)),
    ((6, 5), 1, 1, (3, 3), (2, 2)),  # C = 1, F = 1
]

GEOM_1D = [
    ((9,), 2, 3, (1,), (1,)),
    ((9,), 2, 3, (2,), (1,)),
    ((9,), 2, 3, (3,), (2,)),
    ((9,), 2, 3, (4,), (3,)),  # kernel > stride
    ((9,), 2, 3, (2,), (3,)),  # kernel < stride
    ((8,), 2, 3, (1,), (2,)),  # kernel < stride, even length
    ((8,), 1, 1, (3,), (2,)),  # C = 1, F = 1, even length
]

# Wider per-position products (filters x kernel x channels > 64), which lcnn
# computes with one GEMM per position; the geometries above take its direct
# kernels.
GEOM_2D_WIDE = [
    ((4, 4), 2, 9, (2, 2), (2, 1)),
    ((4, 3), 3, 6, (2, 2), (1, 1)),
]

GEOM_1D_WIDE = [
    ((9,), 3, 8, (4,), (1,)),
    ((10,), 4, 6, (3,), (2,)),
]

ACTIVATIONS = [
    "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus",
    "softsign", "swish", "gelu", "hard_sigmoid", "exponential",
]

DATA_FORMATS = ["channels_last", "channels_first"]


def build_grid():
    """Return the list of configuration dicts to generate."""
    grid = []
    counter = [0]

    def add(geom, impl, df, padding, activation="linear", dtype="float32",
            use_bias=None):
        spatial, chans, filters, k, s = geom
        if use_bias is None:
            # use_bias False for roughly every fifth geometry configuration
            use_bias = (counter[0] % 5) != 3
            counter[0] += 1
        grid.append(dict(
            layer="LocallyConnected%dD" % len(spatial),
            spatial=tuple(spatial), channels=chans, filters=filters,
            kernel_size=tuple(k), strides=tuple(s), padding=padding,
            data_format=df, implementation=impl, use_bias=use_bias,
            activation=activation, dtype=dtype,
        ))

    # Geometry grid: each implementation sees every geometry once per padding
    # mode, alternating the data format so both formats get every geometry.
    for geoms in (GEOM_2D, GEOM_1D, GEOM_2D_WIDE, GEOM_1D_WIDE):
        for impl in (1, 2, 3):
            for padding in ("valid", "same"):
                for gi, geom in enumerate(geoms):
                    df = DATA_FORMATS[(gi + impl) % 2]
                    if padding == "same" and impl == 1:
                        # tf-keras refuses this; attempt a single one so the
                        # refusal is demonstrated (and skipped) each run.
                        if gi != 0:
                            continue
                    add(geom, impl, df, padding)

    # Activations: 2D, valid, channels_last, alternating implementation 1/3.
    for ai, act in enumerate(ACTIVATIONS):
        add(GEOM_2D[0], 1 if ai % 2 == 0 else 3, "channels_last", "valid",
            activation=act, use_bias=True)
    # softmax with channels_first: Keras applies it on the LAST axis, which is
    # a spatial axis for channels_first.
    add(GEOM_2D[0], 3, "channels_first", "valid", activation="softmax",
        use_bias=True)
    add(GEOM_1D[2], 1, "channels_first", "valid", activation="softmax",
        use_bias=True)

    # float64 layers.
    add(GEOM_2D[0], 1, "channels_last", "valid", dtype="float64", use_bias=True)
    add(GEOM_2D[1], 2, "channels_first", "same", dtype="float64", use_bias=True)
    add(GEOM_2D[2], 3, "channels_last", "same", dtype="float64", use_bias=True)
    add(GEOM_1D[3], 1, "channels_first", "valid", dtype="float64",
        use_bias=True)
    add(GEOM_1D[2], 2, "channels_last", "same", dtype="float64", use_bias=True)
    add(GEOM_1D[4], 3, "channels_first", "same", dtype="float64",
        use_bias=False)
    return grid


def fixture_name(cfg):
    nd = len(cfg["spatial"])
    j = "x".join
    parts = [
        "lc%dd" % nd,
        "impl%d" % cfg["implementation"],
        # "last"/"first": keeps paths within R CMD build's 100-byte limit.
        cfg["data_format"].replace("channels_", ""),
        cfg["padding"],
        "k" + j(str(v) for v in cfg["kernel_size"]),
        "s" + j(str(v) for v in cfg["strides"]),
        "in" + j(str(v) for v in cfg["spatial"] + (cfg["channels"],)),
        "f%d" % cfg["filters"],
        "bias" if cfg["use_bias"] else "nobias",
    ]
    if cfg["activation"] != "linear":
        parts.append(cfg["activation"])
    if cfg["dtype"] != "float32":
        parts.append(cfg["dtype"])
    return "_".join(parts).lower()


def input_shape(cfg):
    if cfg["data_format"] == "channels_last":
        return (BATCH,) + cfg["spatial"] + (cfg["channels"],)
    return (BATCH, cfg["channels"]) + cfg["spatial"]


def tensor_json(arr):
    arr = np.asarray(arr)
    return {
        "shape": [int(d) for d in arr.shape],
        "values": [float(v) for v in arr.ravel(order="C")],
    }


def make_fixture(cfg, name):
    rng = np.random.default_rng([BASE_SEED, zlib.crc32(name.encode())])
    np_dtype = np.dtype(cfg["dtype"])
    cls = getattr(keras.layers, cfg["layer"])
    kwargs = dict(
        filters=cfg["filters"],
        kernel_size=cfg["kernel_size"],
        strides=cfg["strides"],
        padding=cfg["padding"],
        data_format=cfg["data_format"],
        activation=cfg["activation"],
        use_bias=cfg["use_bias"],
        implementation=cfg["implementation"],
    )
    if cfg["dtype"] != "float32":
        kwargs["dtype"] = cfg["dtype"]
    layer = cls(**kwargs)
    shape = input_shape(cfg)
    layer.build(shape)

    new_weights = [
        rng.uniform(-1.0, 1.0, size=w.shape).astype(w.dtype)
        for w in layer.get_weights()
    ]
    layer.set_weights(new_weights)
    weights = layer.get_weights()
    for w_new, w in zip(new_weights, weights):
        assert w.dtype == np_dtype, (w.dtype, np_dtype)
        assert np.array_equal(w_new, w)

    x = rng.uniform(-1.0, 1.0, size=shape).astype(np_dtype)
    y = np.asarray(layer(x))
    assert y.dtype == np_dtype, (y.dtype, np_dtype)
    assert np.all(np.isfinite(y))

    lc = layer.get_config()
    act_name = lc["activation"]
    if not isinstance(act_name, str):
        act_name = cfg["activation"]
    return {
        "keras_version": keras.__version__,
        "layer": cfg["layer"],
        "config": {
            "filters": int(lc["filters"]),
            "kernel_size": [int(v) for v in lc["kernel_size"]],
            "strides": [int(v) for v in lc["strides"]],
            "padding": lc["padding"],
            "data_format": lc["data_format"],
            "implementation": int(lc["implementation"]),
            "use_bias": bool(lc["use_bias"]),
            "activation": act_name,
            "dtype": cfg["dtype"],
        },
        "count_params": int(layer.count_params()),
        "input": tensor_json(x),
        "weights": [tensor_json(w) for w in weights],
        "output": tensor_json(y),
    }


def dump(obj, path):
    """Compact JSON with one top-level key per line (full-precision floats)."""
    keys = list(obj)
    lines = ["{"]
    for i, key in enumerate(keys):
        sep = "," if i < len(keys) - 1 else ""
        val = json.dumps(obj[key], separators=(",", ":"), allow_nan=False)
        lines.append(" %s: %s%s" % (json.dumps(key), val, sep))
    lines.append("}")
    path.write_text("\n".join(lines) + "\n")


def check_file(path):
    with open(path) as fh:
        d = json.load(fh)
    tensors = [d["input"], d["output"]] + d["weights"]
    for t in tensors:
        assert int(np.prod(t["shape"])) == len(t["values"]), path
    assert d["count_params"] == sum(len(w["values"]) for w in d["weights"])
    return d


def make_functional_fixture():
    """A two-input, two-output functional model in float64: a shared
    LocallyConnected1D, every merge, two Concatenates; its summary, outputs,
    and one SGD step with per-output losses and loss weights."""
    keras.backend.set_floatx("float64")
    try:
        keras.backend.clear_session()
        rng = np.random.default_rng([BASE_SEED, zlib.crc32(b"functional")])
        a = keras.Input(shape=(6, 2), name="a")
        b = keras.Input(shape=(6, 2), name="b")
        shared = keras.layers.LocallyConnected1D(3, 2, activation="tanh", name="shared")
        ha, hb = shared(a), shared(b)
        merged = [cls()([ha, hb]) for cls in (
            keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply,
            keras.layers.Average, keras.layers.Maximum, keras.layers.Minimum)]
        along_steps = keras.layers.Concatenate(axis=1)(merged)
        along_channels = keras.layers.Concatenate()([ha, hb])
        label = keras.layers.Dense(2, activation="softmax", name="label")(
            keras.layers.Flatten()(along_steps))
        value = keras.layers.Dense(1, name="value")(
            keras.layers.Flatten()(along_channels))
        model = keras.Model([a, b], [label, value], name="siamese")
        model.set_weights([rng.uniform(-1.0, 1.0, size=w.shape) for w in model.get_weights()])
        weights = model.get_weights()
        n = 4
        xs = [rng.uniform(-1.0, 1.0, size=(n, 6, 2)) for _ in range(2)]
        ys = [rng.integers(0, 2, size=(n,)).astype("float64"), rng.uniform(-1.0, 1.0, (n, 1))]
        outputs = model.predict(xs, verbose=0)
        lines = []
        model.summary(print_fn=lines.append)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1),
                      loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5])
        losses = model.train_on_batch(xs, ys, return_dict=True)
        return {
            "keras_version": keras.__version__,
            "summary": lines,
            "inputs": [tensor_json(x) for x in xs],
            "weights": [tensor_json(w) for w in weights],
            "outputs": [tensor_json(y) for y in outputs],
            "targets": [tensor_json(y) for y in ys],
            "learning_rate": 0.1,
            "loss_weights": [1.0, 0.5],
            "losses": {k: float(v) for k, v in losses.items()},
            "weights_after": [tensor_json(w) for w in model.get_weights()],
        }
    finally:
        keras.backend.set_floatx("float32")


# ---------------------------------------------------------------------------
# BatchNormalization fixtures ("bn_*.json"), separate from the locally
# connected grid above.
#
# Layer fixtures: a BatchNormalization layer built on a known input shape
# (batch first), its weights replaced by numpy draws (gamma, beta, moving
# mean uniform in [-1, 1] / [0.5, 1.5]; moving variance in [0.5, 1.5]), then
#
#   "inference_output":  layer(x, training=False)   (moving statistics)
#   "training_output":   layer(x, training=True)    (batch statistics)
#   "weights_after_training": get_weights() after that call (the updated
#                        moving statistics)
#
# plus "fused": whether tf-keras picked its fused kernel (whose moving
# variance follows the unbiased batch variance).
#
# Fit fixtures: Sequential([BatchNormalization, (Flatten,) Dense]) with
# random weights, compiled with SGD(learning_rate) and mse, fitted for one
# epoch with shuffle=False; "weights_after_fit" holds every weight after it
# and "prediction_after_fit" model.predict(x). With "trainable": false the
# BatchNormalization layer is frozen before compile().
# ---------------------------------------------------------------------------

BN_LAYER_GRID = [
    dict(shape=(6, 3), axis=-1, momentum=0.9),
    dict(shape=(6, 3), axis=-1, momentum=0.5, scale=False),
    dict(shape=(6, 3), axis=1, momentum=0.9, center=False, scale=False),
    dict(shape=(5, 4, 3), axis=-1, momentum=0.9),
    dict(shape=(5, 4, 3), axis=1, momentum=0.8, epsilon=0.01),
    dict(shape=(4, 3, 5, 2), axis=-1, momentum=0.9),
    dict(shape=(4, 3, 5, 2), axis=1, momentum=0.7),
    dict(shape=(4, 3, 5, 2), axis=2, momentum=0.9),
    dict(shape=(4, 3, 5, 2), axis=-1, momentum=0.9, center=False),
    dict(shape=(4, 3, 5, 2), axis=3, momentum=0.6, dtype="float64"),
    dict(shape=(4, 3, 5, 2), axis=-1, momentum=0.9, synchronized=True),
    dict(shape=(3, 2, 3, 4, 2), axis=1, momentum=0.9),
    dict(shape=(3, 2, 3, 4, 2), axis=-2, momentum=0.9),
]

BN_FIT_GRID = [
    dict(shape=(8, 3), axis=-1, momentum=0.8, batch_size=8),
    dict(shape=(8, 4, 3), axis=1, momentum=0.8, batch_size=4),
    dict(shape=(6, 3, 3, 2), axis=-1, momentum=0.8, batch_size=3),
    dict(shape=(4, 2, 3, 3), axis=1, momentum=0.8, batch_size=4),
    dict(shape=(4, 3, 3, 2), axis=-1, momentum=0.8, batch_size=4, trainable=False),
]


def bn_config(cfg):
    return dict(
        axis=cfg["axis"], momentum=cfg.get("momentum", 0.99),
        epsilon=cfg.get("epsilon", 0.001), center=cfg.get("center", True),
        scale=cfg.get("scale", True),
        synchronized=cfg.get("synchronized", False),
        dtype=cfg.get("dtype", "float32"),
    )


def bn_name(prefix, cfg):
    c = bn_config(cfg)
    parts = [prefix, "in" + "x".join(str(d) for d in cfg["shape"]),
             "axis%s" % str(c["axis"]).replace("-", "m")]
    if not c["center"]:
        parts.append("nocenter")
    if not c["scale"]:
        parts.append("noscale")
    if c["synchronized"]:
        parts.append("sync")
    if c["dtype"] != "float32":
        parts.append(c["dtype"])
    if not cfg.get("trainable", True):
        parts.append("frozen")
    return "_".join(parts)


def bn_layer(c):
    kwargs = {k: v for k, v in c.items() if k != "dtype"}
    if c["dtype"] != "float32":
        kwargs["dtype"] = c["dtype"]
    return keras.layers.BatchNormalization(**kwargs)


def bn_random_weights(rng, layer):
    out = []
    for w in layer.weights:
        lo, hi = (0.5, 1.5) if w.name.split("/")[-1].startswith(
            ("moving_variance", "gamma")) else (-1.0, 1.0)
        out.append(rng.uniform(lo, hi, size=w.shape).astype(w.dtype.name))
    return out


def make_bn_layer_fixture(cfg, name):
    rng = np.random.default_rng([BASE_SEED, zlib.crc32(name.encode())])
    c = bn_config(cfg)
    layer = bn_layer(c)
    layer.build(cfg["shape"])
    layer.set_weights(bn_random_weights(rng, layer))
    weights = layer.get_weights()
    x = rng.uniform(-2.0, 3.0, size=cfg["shape"]).astype(c["dtype"])
    inference = np.asarray(layer(x, training=False))
    assert all(np.array_equal(a, b) for a, b in zip(weights, layer.get_weights()))
    training = np.asarray(layer(x, training=True))
    return {
        "keras_version": keras.__version__,
        "layer": "BatchNormalization",
        "config": c,
        "fused": bool(layer.fused),
        "count_params": int(layer.count_params()),
        "input": tensor_json(x),
        "weights": [tensor_json(w) for w in weights],
        "inference_output": tensor_json(inference),
        "training_output": tensor_json(training),
        "weights_after_training": [tensor_json(w) for w in layer.get_weights()],
    }


def make_bn_fit_fixture(cfg, name, learning_rate=0.1, units=2):
    rng = np.random.default_rng([BASE_SEED, zlib.crc32(name.encode())])
    c = bn_config(cfg)
    layers = [keras.Input(shape=cfg["shape"][1:]), bn_layer(c)]
    if len(cfg["shape"]) > 2:
        layers.append(keras.layers.Flatten())
    layers.append(keras.layers.Dense(units))
    model = keras.Sequential(layers)
    model.set_weights(bn_random_weights(rng, model.layers[0]) + [
        rng.uniform(-1.0, 1.0, size=w.shape).astype("float32")
        for w in model.layers[-1].get_weights()])
    weights = model.get_weights()
    model.layers[0].trainable = cfg.get("trainable", True)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate),
                  loss="mse")
    x = rng.uniform(-2.0, 3.0, size=cfg["shape"]).astype("float32")
    y = rng.uniform(-1.0, 1.0, size=(cfg["shape"][0], units)).astype("float32")
    model.fit(x, y, batch_size=cfg["batch_size"], epochs=1, shuffle=False,
              verbose=0)
    return {
        "keras_version": keras.__version__,
        "layer": "BatchNormalization",
        "config": dict(c, trainable=cfg.get("trainable", True)),
        "fit": {"learning_rate": learning_rate, "units": units,
                "batch_size": cfg["batch_size"], "loss": "mse"},
        "input": tensor_json(x),
        "target": tensor_json(y),
        "weights": [tensor_json(w) for w in weights],
        "weights_after_fit": [tensor_json(w) for w in model.get_weights()],
        "prediction_after_fit": tensor_json(model.predict(x, verbose=0)),
    }


def write_batchnorm_fixtures(outdir):
    written = []
    for prefix, grid, make in (("bn", BN_LAYER_GRID, make_bn_layer_fixture),
                               ("bn_fit", BN_FIT_GRID, make_bn_fit_fixture)):
        for cfg in grid:
            name = bn_name(prefix, cfg)
            path = outdir / (name + ".json")
            dump(make(cfg, name), path)
            written.append(path)
    print("wrote %d BatchNormalization fixture files" % len(written))
# ---------------------------------------------------------------------------
# Pooling and shape layers (fixtures "pool_*" and "shape_*"): no weights.
# Each fixture holds the constructor's keyword arguments ("args", named as
# the R arguments), the input and the output; pooling fixtures also hold an
# upstream gradient w and the input gradient of sum(w * output) from
# tf.GradientTape, where TensorFlow's CPU kernels can compute it (not the
# gradient of 2D max pooling with channels_first). "ties" inputs are small
# integers, so that windows hold several maxima and the gradient shows
# which one TensorFlow picks.
# ---------------------------------------------------------------------------
POOL_2D = [  # (spatial, channels, pool_size, strides, padding)
    ((5, 6), 2, (2, 2), None, "valid"),
    ((5, 6), 2, (2, 2), None, "same"),
    ((7, 5), 3, (3, 2), (2, 1), "valid"),
    ((7, 5), 3, (3, 2), (2, 1), "same"),
    ((6, 7), 1, (2, 3), (3, 2), "same"),   # stride > pool on the rows
    ((4, 4), 2, (3, 3), (1, 1), "same"),
    ((5, 5), 2, (1, 1), (2, 2), "valid"),  # pool < stride
]

POOL_1D = [
    ((9,), 2, (3,), None, "valid"),
    ((9,), 2, (3,), None, "same"),
    ((8,), 3, (3,), (2,), "same"),
    ((10,), 2, (2,), (3,), "valid"),       # pool < stride
    ((10,), 2, (4,), (1,), "same"),        # even pool, stride 1
    ((7,), 1, (5,), (2,), "same"),
]


def shape_grid():
    """(name, layer class, args, per-sample input shape, dtype, ties)."""
    grid = []

    def fmt_tag(df):
        return df.replace("channels_", "")

    def j(v):
        return "x".join(str(d) for d in v)

    for geoms, nd in ((POOL_2D, 2), (POOL_1D, 1)):
        for gi, (spatial, chans, pool, strides, padding) in enumerate(geoms):
            for mode in ("max", "average"):
                formats = ["channels_last"] + (["channels_first"] if gi % 2 == 0 else [])
                for df in formats:
                    cls = "%sPooling%dD" % ("Max" if mode == "max" else "Average", nd)
                    shape = spatial + (chans,) if df == "channels_last" else (chans,) + spatial
                    args = dict(pool_size=list(pool), strides=None if strides is None
                                else list(strides), padding=padding, data_format=df)
                    name = "pool_%s%dd_%s_%s_p%s_s%s_in%s" % (
                        mode, nd, fmt_tag(df), padding, j(pool),
                        "none" if strides is None else j(strides), j(shape))
                    grid.append((name, cls, args, shape, "float32", False))
    # Ties: overlapping windows of small integers, both ranks and paddings.
    for nd, spatial, chans, pool, strides in (
            (2, (5, 6), 2, (3, 2), (1, 1)), (1, (9,), 2, (3,), (1,))):
        for padding in ("valid", "same"):
            cls = "MaxPooling%dD" % nd
            args = dict(pool_size=list(pool), strides=list(strides), padding=padding,
                        data_format="channels_last")
            name = "pool_max%dd_last_%s_p%s_s%s_in%s_ties" % (
                nd, padding, j(pool), j(strides), j(spatial + (chans,)))
            grid.append((name, cls, args, spatial + (chans,), "float32", True))
    grid.append(("pool_average2d_last_same_p3x2_s2x1_in7x5x3_float64", "AveragePooling2D",
                 dict(pool_size=[3, 2], strides=[2, 1], padding="same",
                      data_format="channels_last"), (7, 5, 3), "float64", False))
    grid.append(("pool_max1d_last_same_p4_s1_in10x2_float64", "MaxPooling1D",
                 dict(pool_size=[4], strides=[1], padding="same",
                      data_format="channels_last"), (10, 2), "float64", False))

    for nd, spatial, chans in ((1, (7,), 3), (2, (4, 5), 3)):
        for mode in ("Max", "Average"):
            for df in ("channels_last", "channels_first"):
                for keepdims in (False, True):
                    shape = spatial + (chans,) if df == "channels_last" else (chans,) + spatial
                    name = "pool_global_%s%dd_%s_%s_in%s" % (
                        mode.lower(), nd, fmt_tag(df), "keep" if keepdims else "drop", j(shape))
                    grid.append((name, "Global%sPooling%dD" % (mode, nd),
                                 dict(data_format=df, keepdims=keepdims), shape, "float32",
                                 mode == "Max" and nd == 2 and df == "channels_last"))

    for padding in (1, [2, 0], [0, 3]):
        grid.append(("shape_zeropad1d_%s_in6x2" % j(np.atleast_1d(padding)), "ZeroPadding1D",
                     dict(padding=padding), (6, 2), "float32", False))
    for cropping in ([1, 1], 2, [0, 3]):
        grid.append(("shape_crop1d_%s_in7x2" % j(np.atleast_1d(cropping)), "Cropping1D",
                     dict(cropping=cropping), (7, 2), "float32", False))
    for df in ("channels_last", "channels_first"):
        shape = (4, 5, 2) if df == "channels_last" else (2, 4, 5)
        for tag, padding in (("1", 1), ("1x2", [1, 2]), ("10x23", [[1, 0], [2, 3]])):
            grid.append(("shape_zeropad2d_%s_%s" % (fmt_tag(df), tag), "ZeroPadding2D",
                         dict(padding=padding, data_format=df), shape, "float32", False))
        for tag, cropping in (("default", [[0, 0], [0, 0]]), ("1", 1), ("1x2", [1, 2]),
                              ("10x21", [[1, 0], [2, 1]])):
            grid.append(("shape_crop2d_%s_%s" % (fmt_tag(df), tag), "Cropping2D",
                         dict(cropping=cropping, data_format=df), shape, "float32", False))
    for shape, target in (((4, 6), [3, 8]), ((4, 6), [-1, 2]), ((4, 6), [2, 3, 4]),
                          ((2, 3, 4), [24]), ((2, 3, 4), [4, -1, 3])):
        name = "shape_reshape_in%s_to%s" % (j(shape), j(target).replace("-1", "m1"))
        grid.append((name, "Reshape", dict(target_shape=target), shape, "float32", False))
    for shape, dims in (((3, 4), [2, 1]), ((2, 3, 4), [3, 1, 2]), ((2, 3, 4), [2, 3, 1]),
                        ((2, 3, 4), [1, 3, 2])):
        name = "shape_permute_in%s_dims%s" % (j(shape), j(dims))
        grid.append((name, "Permute", dict(dims=dims), shape, "float32", False))
    return grid


def keras_kwargs(args):
    """The R-style arguments as Keras takes them (lists become tuples)."""
    def tup(v):
        return tuple(tup(e) for e in v) if isinstance(v, list) else v
    return {k: tup(v) for k, v in args.items()}


def make_shape_fixture(name, cls_name, args, shape, dtype, ties):
    rng = np.random.default_rng([BASE_SEED, zlib.crc32(name.encode())])
    kwargs = keras_kwargs(args)
    if dtype != "float32":
        kwargs["dtype"] = dtype
    layer = getattr(keras.layers, cls_name)(**kwargs)
    full = (BATCH,) + tuple(shape)
    if ties:
        x = rng.integers(0, 3, size=full).astype(dtype)
    else:
        x = rng.uniform(-1.0, 1.0, size=full).astype(dtype)
    x_t = tf.constant(x)
    y = np.asarray(layer(x_t))
    assert y.dtype == np.dtype(dtype), (y.dtype, dtype)
    out = {
        "keras_version": keras.__version__,
        "layer": cls_name,
        "args": args,
        "dtype": dtype,
        "input": tensor_json(x),
        "weights": [],
        "output": tensor_json(y),
    }
    if cls_name.startswith(("Max", "Average", "Global")):
        w = rng.uniform(-1.0, 1.0, size=y.shape).astype(dtype)
        try:
            with tf.GradientTape() as tape:
                tape.watch(x_t)
                total = tf.reduce_sum(layer(x_t) * w)
            grad = tape.gradient(total, x_t)
        except tf.errors.InvalidArgumentError as exc:
            print("  no gradient for %s: %s" % (name, exc.message.splitlines()[0][:80]))
        else:
            out["upstream"] = tensor_json(w)
            out["input_gradient"] = tensor_json(np.asarray(grad))
    return out


def make_shape_fixtures(outdir):
    written = []
    for name, cls_name, args, shape, dtype, ties in shape_grid():
        try:
            obj = make_shape_fixture(name, cls_name, args, shape, dtype, ties)
        except Exception as exc:  # noqa: BLE001 -- skip, do not fail the run
            print("SKIP %s: %s: %s" % (name, type(exc).__name__, str(exc).splitlines()[0]))
            continue
        path = outdir / (name + ".json")
        dump(obj, path)
        written.append(path)
    with_grad = sum("input_gradient" in json.loads(p.read_text()) for p in written)
    print("wrote %d pooling/shape fixtures (%d with input gradients)"
          % (len(written), with_grad))


def main(argv):
    repo_root = Path(__file__).resolve().parent.parent
    # --shape-layers-only: just the pooling and shape fixtures.
    only_shape_layers = "--shape-layers-only" in argv
    argv = [a for a in argv if a != "--shape-layers-only"]
    outdir = Path(argv[1]) if len(argv) > 1 else (
        repo_root / "tests" / "testthat" / "fixtures")
    outdir.mkdir(parents=True, exist_ok=True)
    print("tf_keras %s; writing to %s" % (keras.__version__, outdir))
    make_shape_fixtures(outdir)
    if only_shape_layers:
        return 0

    written, skipped = [], []
    seen = set()
    for cfg in build_grid():
        name = fixture_name(cfg)
        assert name not in seen, "duplicate fixture name " + name
        seen.add(name)
        try:
            obj = make_fixture(cfg, name)
        except Exception as exc:  # noqa: BLE001 -- skip, do not fail the run
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            print("SKIP %s: %s: %s" % (name, type(exc).__name__, msg))
            skipped.append(name)
            continue
        path = outdir / (name + ".json")
        dump(obj, path)
        written.append(path)

    # Verify everything loads back.
    total = 0
    by_layer = {}
    for path in written:
        d = check_file(path)
        total += path.stat().st_size
        key = (d["layer"], d["config"]["implementation"])
        by_layer[key] = by_layer.get(key, 0) + 1
    for (layer, impl), n in sorted(by_layer.items()):
        print("  %-18s impl %d: %d files" % (layer, impl, n))
    print("wrote %d fixture files (%.1f KB total, largest %.1f KB), "
          "skipped %d configurations"
          % (len(written), total / 1024.0,
             max(p.stat().st_size for p in written) / 1024.0, len(skipped)))
    dump(make_functional_fixture(), outdir / "functional_siamese.json")
    write_batchnorm_fixtures(outdir)
    write_conv_fixtures(outdir / "conv")
    return 0


# ---------------------------------------------------------------------------
# Convolutions: tf-keras Conv1D / Conv2D, written to <outdir>/conv.
# Geometries: (spatial input dims, channels, filters, kernel, strides,
# dilation_rate, groups).
# ---------------------------------------------------------------------------
CONV_GEOM_2D = [
    ((6, 5), 2, 3, (3, 2), (1, 1), (1, 1), 1),
    ((7, 6), 4, 6, (3, 3), (2, 2), (1, 1), 2),  # groups with strides
    ((8, 7), 2, 4, (3, 2), (1, 1), (2, 3), 1),  # dilation
    ((6, 6), 4, 4, (2, 2), (2, 1), (1, 1), 4),  # depthwise, even kernel
    ((5, 7), 3, 2, (4, 3), (3, 2), (1, 1), 1),  # kernel > stride
    ((7, 7), 6, 6, (3, 3), (1, 1), (2, 2), 3),  # dilation with groups
    ((4, 5), 1, 1, (1, 1), (1, 1), (1, 1), 1),  # C = 1, F = 1, 1 x 1
]

CONV_GEOM_1D = [
    ((9,), 2, 3, (3,), (1,), (1,), 1),
    ((10,), 4, 4, (4,), (2,), (1,), 2),  # even kernel, stride, groups
    ((11,), 2, 4, (3,), (1,), (3,), 2),  # dilation with groups
    ((9,), 3, 3, (2,), (3,), (1,), 3),  # kernel < stride, depthwise
    ((12,), 1, 2, (5,), (1,), (2,), 1),  # span 9 of 12
]


def build_conv_grid():
    """Return the list of convolution configuration dicts to generate."""
    grid = []

    def add(geom, df, padding, use_bias, activation="linear", dtype="float32"):
        spatial, chans, filters, k, s, d, groups = geom
        grid.append(dict(
            layer="Conv%dD" % len(spatial),
            spatial=tuple(spatial), channels=chans, filters=filters,
            kernel_size=tuple(k), strides=tuple(s), dilation_rate=tuple(d),
            groups=groups, padding=padding, data_format=df, use_bias=use_bias,
            activation=activation, dtype=dtype,
        ))

    # Each geometry with every padding, alternating the data format so that
    # every geometry is seen in both.
    for geoms, paddings in ((CONV_GEOM_2D, ("valid", "same")),
                            (CONV_GEOM_1D, ("valid", "same", "causal"))):
        for gi, geom in enumerate(geoms):
            for pi, padding in enumerate(paddings):
                add(geom, DATA_FORMATS[(gi + pi) % 2], padding,
                    use_bias=(gi + pi) % 3 != 2)
    add(CONV_GEOM_2D[1], "channels_last", "same", True, activation="relu")
    add(CONV_GEOM_2D[0], "channels_first", "valid", True,
        activation="softmax")
    add(CONV_GEOM_2D[5], "channels_last", "same", True, dtype="float64")
    add(CONV_GEOM_1D[2], "channels_first", "causal", True, dtype="float64")
    return grid


def conv_fixture_name(cfg):
    j = "x".join
    parts = [
        "conv%dd" % len(cfg["spatial"]),
        cfg["data_format"].replace("channels_", ""),
        cfg["padding"],
        "k" + j(str(v) for v in cfg["kernel_size"]),
        "s" + j(str(v) for v in cfg["strides"]),
    ]
    # Dilation and groups only where they are not 1, keeping paths short.
    if max(cfg["dilation_rate"]) > 1:
        parts.append("d" + j(str(v) for v in cfg["dilation_rate"]))
    if cfg["groups"] > 1:
        parts.append("g%d" % cfg["groups"])
    parts += [
        "in" + j(str(v) for v in cfg["spatial"] + (cfg["channels"],)),
        "f%d" % cfg["filters"],
        "bias" if cfg["use_bias"] else "nobias",
    ]
    if cfg["activation"] != "linear":
        parts.append(cfg["activation"])
    if cfg["dtype"] != "float32":
        parts.append(cfg["dtype"])
    return "_".join(parts).lower()


def make_conv_fixture(cfg, name):
    rng = np.random.default_rng([BASE_SEED, zlib.crc32(name.encode())])
    np_dtype = np.dtype(cfg["dtype"])
    cls = getattr(keras.layers, cfg["layer"])
    kwargs = dict(
        filters=cfg["filters"],
        kernel_size=cfg["kernel_size"],
        strides=cfg["strides"],
        padding=cfg["padding"],
        data_format=cfg["data_format"],
        dilation_rate=cfg["dilation_rate"],
        groups=cfg["groups"],
        activation=cfg["activation"],
        use_bias=cfg["use_bias"],
        dtype=cfg["dtype"],
    )
    layer = cls(**kwargs)
    shape = input_shape(cfg)
    layer.build(shape)
    new_weights = [
        rng.uniform(-1.0, 1.0, size=w.shape).astype(w.dtype)
        for w in layer.get_weights()
    ]
    layer.set_weights(new_weights)
    weights = layer.get_weights()
    x = rng.uniform(-1.0, 1.0, size=shape).astype(np_dtype)
    y = np.asarray(layer(x))
    assert y.dtype == np_dtype, (y.dtype, np_dtype)
    assert np.all(np.isfinite(y))

    lc = layer.get_config()
    return {
        "keras_version": keras.__version__,
        "layer": cfg["layer"],
        "config": {
            "filters": int(lc["filters"]),
            "kernel_size": [int(v) for v in lc["kernel_size"]],
            "strides": [int(v) for v in lc["strides"]],
            "padding": lc["padding"],
            "data_format": lc["data_format"],
            "dilation_rate": [int(v) for v in lc["dilation_rate"]],
            "groups": int(lc["groups"]),
            "use_bias": bool(lc["use_bias"]),
            "activation": cfg["activation"],
            "dtype": cfg["dtype"],
        },
        "count_params": int(layer.count_params()),
        "input": tensor_json(x),
        "weights": [tensor_json(w) for w in weights],
        "output": tensor_json(y),
    }


def write_conv_fixtures(outdir):
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for cfg in build_conv_grid():
        name = conv_fixture_name(cfg)
        try:
            obj = make_conv_fixture(cfg, name)
        except Exception as exc:  # noqa: BLE001 -- skip, do not fail the run
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            print("SKIP %s: %s: %s" % (name, type(exc).__name__, msg))
            continue
        path = outdir / (name + ".json")
        dump(obj, path)
        check_file(path)
        written.append(path)
    print("wrote %d convolution fixture files to %s (%.1f KB total)"
          % (len(written), outdir,
             sum(p.stat().st_size for p in written) / 1024.0))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
