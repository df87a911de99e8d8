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

Everything is deterministic: each configuration draws from its own numpy
generator seeded from a fixed base seed and the fixture name.

A separate generator (the "Convolutions" section below) writes fixtures of
tf-keras ``Conv1D`` / ``Conv2D`` layers, in the same format with
``dilation_rate`` and ``groups`` in the config, to ``outdir/conv``.

Usage:
    pip install tensorflow-cpu tf-keras   # matching minor versions, e.g. 2.18
    python tools/make-keras-fixtures.py [outdir]

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
    for geoms in (GEOM_2D, GEOM_1D):
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


def main(argv):
    repo_root = Path(__file__).resolve().parent.parent
    outdir = Path(argv[1]) if len(argv) > 1 else (
        repo_root / "tests" / "testthat" / "fixtures")
    outdir.mkdir(parents=True, exist_ok=True)
    print("tf_keras %s; writing to %s" % (keras.__version__, outdir))

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
