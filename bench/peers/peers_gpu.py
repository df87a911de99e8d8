#!/usr/bin/env python3
"""Times lcnn's GPU peers on the locally connected workloads W1-W6 (DESIGN.md §3).

Bench tooling only (the lcnn package never needs Python); for a GPU host,
next to `make -C tests/cpp bench-cuda`, which times lcnn itself there:

  python3 bench/peers/peers_gpu.py > bench/out/peers-gpu.md

Peers, float32, batch 64, on the first CUDA device:
  torch  PyTorch F.unfold + per-position einsum (the usual workaround)
  jax    jax.lax.conv_general_dilated_local under jax.jit

Each measures a training step as lcnn's bench does: forward, mean squared
error against a fixed random target, the gradient for the layer's weights
and bias, and an SGD update; the median of repeated synchronised steps after
warm-up. A peer that is not installed, or fails (out of memory), is reported
as such. Prints a markdown table for bench/RESULTS.md.
"""
import statistics
import sys
import time

BATCH = 64
WORKLOADS = [
    # id, rank, input (rows, cols, channels), filters, kernel, padding
    ("W1", 2, (32, 32, 3), 64, (3, 3), "valid"),
    ("W2", 2, (30, 30, 64), 32, (3, 3), "valid"),
    ("W3", 2, (25, 25, 16), 16, (5, 5), "valid"),
    ("W4", 2, (63, 63, 16), 16, (9, 9), "valid"),
    ("W5", 1, (50000, 1, 1), 1, (5, 1), "valid"),
    ("W6", 2, (7, 7, 1024), 256, (3, 3), "same"),
]


def output_size(n, k, padding):
    return n if padding == "same" else n - k + 1


def timed(step, warmup=3, reps=20, synchronize=lambda: None):
    for _ in range(warmup):
        step()
    synchronize()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_step(workload):
    import torch
    import torch.nn.functional as F

    _, rank, (h, w, c), filters, (kh, kw), padding = workload
    device = torch.device("cuda")
    oh, ow = output_size(h, kh, padding), output_size(w, kw, padding)
    positions, patch = oh * ow, kh * kw * c
    x = torch.randn(BATCH, c, h, w, device=device)
    target = torch.randn(BATCH, positions, filters, device=device)
    weight = (0.05 * torch.randn(positions, patch, filters, device=device)).requires_grad_()
    bias = torch.zeros(positions, filters, device=device, requires_grad=True)
    pad = (kh // 2, kw // 2) if padding == "same" else (0, 0)

    def step():
        # Keras's locally connected "same" centres window r on r (k // 2 before).
        patches = F.unfold(x, (kh, kw), padding=pad).transpose(1, 2)  # B, P, patch
        out = torch.einsum("bpk,pkf->bpf", patches, weight) + bias
        loss = ((out - target) ** 2).mean()
        gw, gb = torch.autograd.grad(loss, (weight, bias))
        with torch.no_grad():
            weight.sub_(0.01 * gw)
            bias.sub_(0.01 * gb)

    return timed(step, synchronize=torch.cuda.synchronize)


def jax_step(workload):
    import jax
    import jax.numpy as jnp

    _, rank, (h, w, c), filters, (kh, kw), padding = workload
    oh, ow = output_size(h, kh, padding), output_size(w, kw, padding)
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (BATCH, c, h, w), jnp.float32)
    target = jax.random.normal(key, (BATCH, filters, oh, ow), jnp.float32)
    params = {
        "w": 0.05 * jax.random.normal(key, (oh, ow, c * kh * kw, filters), jnp.float32),
        "b": jnp.zeros((filters, oh, ow), jnp.float32),
    }
    pads = [(kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2)] if padding == "same" \
        else "VALID"

    def apply(p, inputs):
        out = jax.lax.conv_general_dilated_local(
            inputs, p["w"], window_strides=(1, 1), padding=pads, filter_shape=(kh, kw),
            dimension_numbers=("NCHW", "HWIO", "NCHW"))
        return out + p["b"]

    @jax.jit
    def sgd(p, inputs, target):
        grads = jax.grad(lambda q: jnp.mean((apply(q, inputs) - target) ** 2))(p)
        return jax.tree_util.tree_map(lambda a, g: a - 0.01 * g, p, grads)

    state = {"p": params}

    def step():
        state["p"] = sgd(state["p"], x, target)

    return timed(step, synchronize=lambda: jax.block_until_ready(state["p"]))


def device_name():
    try:
        import torch
        return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - any failure means: unknown
        return "unknown"


def main():
    rows = []
    for workload in WORKLOADS:
        cells = []
        for peer in (torch_step, jax_step):
            try:
                cells.append(f"{peer(workload) * 1e3:.3f}")
            except ImportError as e:
                cells.append(f"not installed ({e.name})")
            except Exception as e:  # noqa: BLE001 - report and go on
                cells.append(f"failed: {type(e).__name__}")
            print(f"{workload[0]} {peer.__name__}: {cells[-1]}", file=sys.stderr)
        rows.append((workload[0], *cells))
    print(f"GPU peers on {device_name()}, training step in ms, batch {BATCH}, float32\n")
    print("| id | PyTorch unfold + einsum | JAX conv_general_dilated_local |")
    print("|---|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
