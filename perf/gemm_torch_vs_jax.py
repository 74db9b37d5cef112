"""Per-shape GEMM time, torch (``th.mm(out=)``) vs JAX (jitted ``a @ b``), 1 thread, on the 28 products of one
[400, 300] DDPG update (shapes from a perf.py result JSON). One backend per process; run both in the same minute
(study paused) and compare, e.g.::

    python perf/gemm_torch_vs_jax.py torch
    /path/to/sbx_venv/bin/python perf/gemm_torch_vs_jax.py jax     # a venv with jax (pip install sbx-rl)

Prints the time of all 28 in sequence (and, for JAX, in one jitted function) and the median time of each product.
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("PJRT_NPROC", "1")
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
import numpy as np

RESULT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "results", "2026-12-07_HalfCheetah-v5_400x300_compiled_a1b7db6.json"
)
with open(RESULT) as f:
    shapes = json.load(f)["config"]["gemm_shapes"]
parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
parser.add_argument("backend", choices=["torch", "jax"])
which = parser.parse_args().backend
rng = np.random.default_rng(0)
mats = [(rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)) for m, k, n in shapes]
REP = 30
if which == "torch":
    import torch as th

    th.set_num_threads(1)
    ops = [(th.from_numpy(a), th.from_numpy(b), th.empty(a.shape[0], b.shape[1])) for a, b in mats]

    def run():
        for a, b, c in ops:
            th.mm(a, b, out=c)

    # transposed layouts as the update actually calls them
    def per(i):
        a, b, c = ops[i]
        ts = []
        for _ in range(REP):
            t0 = time.perf_counter()
            for _ in range(5):
                th.mm(a, b, out=c)
            ts.append((time.perf_counter() - t0) / 5)
        return statistics.median(ts)
else:
    import jax
    import jax.numpy as jnp

    ops = [(jnp.asarray(a), jnp.asarray(b)) for a, b in mats]
    f = jax.jit(lambda a, b: a @ b)
    for a, b in ops:
        f(a, b).block_until_ready()

    def run():
        for a, b in ops:
            f(a, b).block_until_ready()

    def per(i):
        a, b = ops[i]
        ts = []
        for _ in range(REP):
            t0 = time.perf_counter()
            for _ in range(5):
                f(a, b).block_until_ready()
            ts.append((time.perf_counter() - t0) / 5)
        return statistics.median(ts)

    # all 28 in one jitted function (as sbx's update would)
    g = jax.jit(lambda xs: [a @ b for a, b in xs])
    jax.block_until_ready(g(ops))
    ts = []
    for _ in range(REP):
        t0 = time.perf_counter()
        jax.block_until_ready(g(ops))
        ts.append(time.perf_counter() - t0)
    print("jax one-jit all 28: %.3f ms" % (1000 * statistics.median(ts)))
run()
ts = []
for _ in range(REP):
    t0 = time.perf_counter()
    run()
    ts.append(time.perf_counter() - t0)
print(which, "all 28 sequential: %.3f ms" % (1000 * statistics.median(ts)))
every = list(range(len(shapes)))
print(which, "per product (ms):", " ".join(f"{tuple(shapes[i])}:{1000 * per(i):.3f}" for i in every))
