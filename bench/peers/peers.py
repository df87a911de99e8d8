#!/usr/bin/env python3
"""Times lcnn's peers on one locally connected workload (DESIGN.md section 3).

Bench tooling only: the lcnn package never needs Python. bench/run.R calls
this once per workload with the interpreter of the environment that
bench/peers/setup.sh made.

Peers (all float32, on the CPU):
  tf1, tf2, tf3  tf-keras 2.18 LocallyConnected1D/2D, implementation 1, 2, 3
  torch          PyTorch F.unfold + per-position einsum, the usual workaround
  jax            jax.lax.conv_general_dilated_local under jax.jit

For each peer a fresh child process (so no compilation cache helps) measures,
in this order, and prints one JSON line per measure:
  first_output  layer creation (weights initialised) plus the first forward
                pass, compilation or tracing included; imports and the input
                data are made before the clock starts
  forward       the forward pass on one batch, synchronised (the output is
                materialised), as the median of repeated calls after warm-up
  train_step    forward, backward and an SGD update (learning rate 0.01) of a
                mean squared error loss against a fixed random target; the
                gradient is taken for the layer's weights only, not the input.
                `peak_extra_mb` is the process's peak resident memory over the
                training steps (warm-up included) minus its resident memory
                just before the first one (Linux VmHWM, reset through
                /proc/self/clear_refs)

Limits: a measure whose estimated tensor memory exceeds --memory-limit-gb is
not run; a child whose resident memory passes 1.5 times that limit is killed;
a measure that has not finished --time-limit seconds after the previous one is
killed with its peer. Each case prints a record with status "skipped" and the
reason. Threads: --threads for every peer (TF intra-op threads and one
inter-op thread, torch.set_num_threads and one inter-op thread, XLA's flags
when 1), and the child's CPU affinity narrowed to that many CPUs when the
machine has more, which bounds every thread pool alike.

Usage:
  peers.py --versions
  peers.py --workload JSON --threads N [--peers tf1,tf2,tf3,torch,jax]
           [--min-time S] [--min-reps N] [--max-reps N]
           [--time-limit S] [--memory-limit-gb G]
JSON: {"id": "W1", "rank": 2, "input": [32, 32, 3], "filters": 64,
       "kernel": [3, 3], "strides": [1, 1], "padding": "valid", "batch": 64}
(input is the spatial dimensions then the channels; strides default to 1.)
"""

import argparse
import json
import math
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time

PEERS = ["tf1", "tf2", "tf3", "torch", "jax"]
MEASURES = ["first_output", "forward", "train_step"]
LEARNING_RATE = 0.01


# --- workload geometry ------------------------------------------------------

class Geometry:
    """Shapes of a workload as Keras computes them (channels last)."""

    def __init__(self, w):
        self.id = w["id"]
        self.rank = int(w["rank"])
        self.spatial = [int(d) for d in w["input"][: self.rank]]
        self.channels = int(w["input"][self.rank])
        self.filters = int(w["filters"])
        self.kernel = [int(k) for k in w["kernel"]]
        self.strides = [int(s) for s in w.get("strides", [1] * self.rank)]
        self.padding = w["padding"].lower()
        self.batch = int(w["batch"])
        if self.padding == "valid":
            self.out = [(n - k) // s + 1
                        for n, k, s in zip(self.spatial, self.kernel, self.strides)]
            self.pads = [(0, 0)] * self.rank
        else:
            self.out = [-(-n // s) for n, s in zip(self.spatial, self.strides)]
            # TensorFlow's "same": any odd padding goes after the input.
            self.pads = []
            for n, k, s, o in zip(self.spatial, self.kernel, self.strides, self.out):
                total = max((o - 1) * s + k - n, 0)
                self.pads.append((total // 2, total - total // 2))
        self.positions = math.prod(self.out)
        self.patch = math.prod(self.kernel) * self.channels
        self.in_elems = math.prod(self.spatial) * self.channels
        self.out_elems = self.positions * self.filters

    def input_shape(self):
        return [self.batch] + self.spatial + [self.channels]

    def output_shape(self):
        return [self.batch] + self.out + [self.filters]


def estimated_bytes(peer, g):
    """Rough peak tensor memory of (forward, training) for a peer.

    From how each peer computes the layer: tf1 concatenates per-position
    slices (patches twice); tf2 keeps a dense in x out kernel, made from an
    initializer's temporary and multiplied by its mask on every call (W6's
    creation was seen to pass 9 GB with a 2.5 GB kernel);
    tf3 builds its index list in Python (about 120 bytes per entry) and its
    values' gradient gathers batch x entries twice; torch and jax form the
    patch tensor and a reordered copy.
    """
    f = 4
    nnz = g.positions * g.patch * g.filters
    weights = f * nnz
    patches = f * g.batch * g.positions * g.patch
    acts = f * g.batch * (g.in_elems + g.out_elems)
    if peer == "tf1":
        return weights + 2 * patches + acts, 2 * weights + 4 * patches + 2 * acts
    if peer == "tf2":
        dense = f * g.in_elems * g.out_elems
        return 4 * dense + acts, 6 * dense + 2 * acts
    if peer == "tf3":
        index = 140 * nnz
        return index + acts, index + 2 * weights + 3 * f * g.batch * nnz + 2 * acts
    return weights + 2 * patches + 2 * acts, 2 * weights + 3 * patches + 3 * acts


# --- timing -----------------------------------------------------------------

def repeat_timed(fn, warmup, min_reps, max_reps, min_time):
    """Seconds of each timed call, after `warmup` untimed ones; repeats until
    both min_reps calls and min_time seconds are reached (as bench/run.R)."""
    for _ in range(warmup):
        fn()
    times = []
    started = time.perf_counter()
    while len(times) < max_reps and (
            len(times) < min_reps or time.perf_counter() - started < min_time):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def memory_kib(field):
    with open("/proc/self/status") as f:
        m = re.search(field + r":\s+(\d+)", f.read())
    return int(m.group(1)) if m else 0


def reset_peak_memory():
    """Resets VmHWM to the current resident size (Linux 4.0+); False if not."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --- the peers (each imported only in its own child process) -----------------

def random_inputs(g):
    import numpy as np
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, g.input_shape()).astype(np.float32)
    y = rng.standard_normal(g.output_shape()).astype(np.float32)
    return x, y


def tf_keras_peer(g, threads, implementation):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import tf_keras

    x_np, y_np = random_inputs(g)
    x, y = tf.constant(x_np), tf.constant(y_np)
    layer_class = (tf_keras.layers.LocallyConnected2D if g.rank == 2
                   else tf_keras.layers.LocallyConnected1D)

    def create():
        layer = layer_class(g.filters, g.kernel, strides=g.strides, padding=g.padding,
                            implementation=implementation, dtype="float32")
        layer.build(tuple([None] + g.input_shape()[1:]))
        predict = tf.function(lambda inputs: layer(inputs))
        optimizer = tf_keras.optimizers.SGD(learning_rate=LEARNING_RATE)

        @tf.function
        def step(inputs, target):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.square(layer(inputs, training=True) - target))
            grads = tape.gradient(loss, layer.trainable_variables)
            optimizer.apply_gradients(zip(grads, layer.trainable_variables))
            return loss

        return (lambda: predict(x).numpy()), (lambda: step(x, y).numpy())

    return create


def torch_peer(g, threads):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)

    x_np, y_np = random_inputs(g)
    # PyTorch users hold images channels first.
    x = torch.from_numpy(x_np).movedim(-1, 1).contiguous()
    y = torch.from_numpy(y_np)
    kernel = g.kernel if g.rank == 2 else g.kernel + [1]
    strides = g.strides if g.rank == 2 else g.strides + [1]
    # F.pad lists the last dimension first: (left, right, top, bottom).
    pad = [p for pair in reversed(g.pads) for p in pair]
    if g.rank == 1:
        pad = [0, 0] + pad

    class UnfoldLocallyConnected(torch.nn.Module):
        def __init__(self):
            super().__init__()
            bound = math.sqrt(6.0 / (g.patch + g.filters))  # Glorot uniform
            self.weight = torch.nn.Parameter(
                torch.empty(g.positions, g.patch, g.filters).uniform_(-bound, bound))
            self.bias = torch.nn.Parameter(torch.zeros(g.positions, g.filters))

        def forward(self, inputs):
            if g.rank == 1:  # F.unfold wants 4-D: a width-1 image
                inputs = inputs.unsqueeze(-1)
            if any(pad):
                inputs = F.pad(inputs, pad)
            patches = F.unfold(inputs, kernel, stride=strides)  # (B, C*K, P)
            out = torch.einsum("bkp,pkf->bpf", patches, self.weight) + self.bias
            return out.reshape(g.output_shape())

    def create():
        model = UnfoldLocallyConnected()
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)

        def predict():
            with torch.no_grad():
                return model(x).numpy()

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = torch.mean((model(x) - y) ** 2)
            loss.backward()
            optimizer.step()
            return loss.item()

        return predict, step

    return create


def jax_peer(g, threads):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if threads == 1:
        # XLA's own switch for one thread (jax issues 743, 1539); for more,
        # the child's CPU affinity bounds its pool.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false"
                                   " intra_op_parallelism_threads=1").strip()
    import jax
    import jax.numpy as jnp

    x_np, y_np = random_inputs(g)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    specs = ("NHWC", "HWIO", "NHWC") if g.rank == 2 else ("NWC", "WIO", "NWC")

    def apply(params, inputs):
        out = jax.lax.conv_general_dilated_local(
            inputs, params["kernel"], window_strides=g.strides, padding=g.pads,
            filter_shape=g.kernel, dimension_numbers=specs)
        return out + params["bias"]

    def loss(params, inputs, target):
        return jnp.mean((apply(params, inputs) - target) ** 2)

    def sgd(params, inputs, target):
        grads = jax.grad(loss)(params, inputs, target)
        return jax.tree_util.tree_map(lambda p, d: p - LEARNING_RATE * d, params, grads)

    def create():
        # Unfolded kernel: output positions, then input channels x taps, filters.
        bound = math.sqrt(6.0 / (g.patch + g.filters))
        params = {
            "kernel": jax.random.uniform(jax.random.PRNGKey(0),
                                         tuple(g.out + [g.patch, g.filters]),
                                         jnp.float32, -bound, bound),
            "bias": jnp.zeros(tuple(g.out + [g.filters]), jnp.float32),
        }
        predict = jax.jit(apply)
        # Donating the parameters lets XLA update them in place, as the others do.
        step = jax.jit(sgd, donate_argnums=0)
        state = {"params": params}

        def train():
            state["params"] = step(state["params"], x, y)
            return jax.block_until_ready(state["params"])

        return (lambda: predict(state["params"], x).block_until_ready()), train

    return create


def make_peer(name, g, threads):
    if name.startswith("tf"):
        return tf_keras_peer(g, threads, int(name[2:]))
    if name == "torch":
        return torch_peer(g, threads)
    if name == "jax":
        return jax_peer(g, threads)
    raise ValueError("unknown peer " + name)


def limit_cpus(threads):
    """Narrows this process to `threads` CPUs, which bounds every framework's
    thread pools alike (they size themselves from the affinity mask)."""
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])


def run_child(args):
    """Measures one peer in this (fresh) process; prints a record per measure."""
    g = Geometry(json.loads(args.workload))
    limit_cpus(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    measures = args.measures.split(",")
    base = {"workload": g.id, "peer": args.child, "threads": args.threads}

    def emit(measure, **fields):
        print(json.dumps(dict(base, measure=measure, status="ok", **fields)), flush=True)

    create = make_peer(args.child, g, args.threads)
    t0 = time.perf_counter()
    predict, step = create()
    t1 = time.perf_counter()
    predict()
    t2 = time.perf_counter()
    emit("first_output", seconds=t2 - t0, create_seconds=t1 - t0, reps=1)

    times = repeat_timed(predict, 1, args.min_reps, args.max_reps, args.min_time)
    emit("forward", seconds=median(times), min_seconds=min(times), reps=len(times))

    if "train_step" in measures:
        before = memory_kib("VmRSS")
        peak_known = reset_peak_memory()
        times = repeat_timed(step, 2, args.min_reps, args.max_reps, args.min_time)
        extra = (memory_kib("VmHWM") - before) / 1024 if peak_known else None
        emit("train_step", seconds=median(times), min_seconds=min(times), reps=len(times),
             peak_extra_mb=extra)


# --- the parent: one child per peer, with the limits -------------------------

def child_rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            m = re.search(r"VmRSS:\s+(\d+)", f.read())
        return int(m.group(1)) * 1024 if m else 0
    except OSError:
        return 0


def skipped(g, peer, measure, threads, reason):
    return {"workload": g.id, "peer": peer, "measure": measure, "threads": threads,
            "status": "skipped", "reason": reason}


def run_peer(peer, g, args):
    """Records for one peer: the child's, plus a skipped one for each measure
    it did not report."""
    limit = args.memory_limit_gb * 1e9
    forward_bytes, train_bytes = estimated_bytes(peer, g)
    if forward_bytes > limit:
        reason = (f"estimated memory {forward_bytes / 1e9:.1f} GB exceeds the "
                  f"{args.memory_limit_gb:g} GB limit")
        return [skipped(g, peer, m, args.threads, reason) for m in MEASURES]
    measures = list(MEASURES)
    records = []
    if train_bytes > limit:
        measures.remove("train_step")
        records.append(skipped(g, peer, "train_step", args.threads,
                               f"estimated memory {train_bytes / 1e9:.1f} GB exceeds the "
                               f"{args.memory_limit_gb:g} GB limit"))

    cmd = [sys.executable, os.path.abspath(__file__), "--child", peer,
           "--workload", args.workload, "--threads", str(args.threads),
           "--measures", ",".join(measures), "--min-time", str(args.min_time),
           "--min-reps", str(args.min_reps), "--max-reps", str(args.max_reps)]
    with tempfile.TemporaryFile(mode="w+") as err:
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        lines = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(l) for l in child.stdout],
                                  daemon=True)
        reader.start()
        reported = []
        killed_for = None
        last = time.monotonic()
        while True:
            try:
                line = lines.get(timeout=0.05)
                rec = json.loads(line)
                reported.append(rec["measure"])
                records.append(rec)
                last = time.monotonic()
                continue
            except queue.Empty:
                pass
            except json.JSONDecodeError:
                continue  # a peer's own chatter on stdout
            if child.poll() is not None and not reader.is_alive():
                break
            rss = child_rss_bytes(child.pid)
            if rss > 1.5 * limit:
                killed_for = (f"resident memory reached {rss / 1e9:.1f} GB "
                              f"(watchdog at 1.5 x the {args.memory_limit_gb:g} GB limit)")
            elif time.monotonic() - last > args.time_limit:
                killed_for = f"exceeded the time limit of {args.time_limit:g} s"
            if killed_for:
                child.kill()
                child.wait()
                break
        err.seek(0)
        error_lines = [l.strip() for l in err.read().splitlines() if l.strip()]

    pending = [m for m in measures if m not in reported]
    for i, m in enumerate(pending):
        if killed_for:
            reason = (killed_for if i == 0 else
                      f"not run: {pending[0].replace('_', ' ')} stopped, {killed_for}")
        else:
            # The child failed: the last line of its error output says why.
            reason = "failed: " + (error_lines[-1] if error_lines else
                                   f"exit status {child.returncode}")
        records.append(skipped(g, peer, m, args.threads, reason[:300]))
    return records


def versions():
    """Versions of the peers in this environment (None where absent)."""
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": sys.version.split()[0]}
    for name in ["numpy", "tensorflow", "tf_keras", "torch", "jax", "jaxlib"]:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--versions", action="store_true")
    p.add_argument("--workload")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--min-time", type=float, default=2.0)
    p.add_argument("--min-reps", type=int, default=5)
    p.add_argument("--max-reps", type=int, default=200)
    p.add_argument("--time-limit", type=float, default=120.0)
    p.add_argument("--memory-limit-gb", type=float, default=6.0)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--measures", default=",".join(MEASURES), help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.versions:
        print(json.dumps(versions()))
        return
    if not args.workload:
        p.error("--workload is required")
    if args.child:
        run_child(args)
        return
    g = Geometry(json.loads(args.workload))
    for peer in args.peers.split(","):
        for rec in run_peer(peer.strip(), g, args):
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
