"""Speed of the DDPG update and of end-to-end training: vanilla SB3 vs ``sb3_ddpg_ext.DDPG`` (a script, not a test).

    python perf/perf.py [--env HalfCheetah-v5 --net 400 300 --batch 256 --threads 1 2 --rounds 5]
                        [--updates 30 --env-steps 300 --fill 1000 --out perf.json]
                        [--gym-packages PKG ...] [--e2e-only] [--no-sbx] [--profile]

The small-network configuration of the issue "Small-network DDPG at the CPU limit" (1 thread, [64, 64]):

    python perf/perf.py --env HalfCheetah-v5 --net 64 64 --threads 1
    python perf/perf.py --env HopperBulletEnv-v0 --net 64 64 --threads 1

Add ``--e2e-only`` for a quick end-to-end comparison. ``--gym-packages`` imports packages that register
environments before ``gym.make`` (as the zoo's option does); ``pybullet_envs_gymnasium`` is imported automatically
for env ids containing ``Bullet``, as the benchmark runner does.

Everything runs in one process and is interleaved: each round times every variant once (at each thread count) so
that load from other processes hits all variants alike; the JSON reports per-round values and their medians.

Measured, per thread count:

- ``ms_per_update``: ``model.train(n, batch)`` on a buffer pre-filled with real transitions (random actions), for
  vanilla SB3 ``DDPG``, ours in ``exact`` and ``fast`` mode, ours ``fast`` with ``LnMlpPolicy`` (LayerNorm overhead),
  and ours ``fast`` with action-space / parameter-space target noise (skipped with ``--e2e-only``);
- ``env_steps_per_s``: ``model.learn(n)`` after ``--fill`` random steps and 10 learning steps (then every env step
  is: action, env step, buffer add, one update), for SB3, exact, fast, fast + ``ParameterNoiseCallback``
  (parameter-noise overhead) and, when installed, sbx's ``DDPG`` (below). This is a real ``learn()`` with
  evaluation off: no ``EvalCallback`` and no evaluation env are involved (the only callback is
  ``ParameterNoiseCallback`` of ``fast_param_noise``), ``verbose=0``, no action noise (the SB3 / sbx default);
- ``gemm_floor_ms``: the same matrix multiplications as one DDPG update (forward, backward, targets; 28 GEMMs for
  one critic) in a loop on preallocated tensors, i.e. what the update would cost with zero overhead (also measured
  with ``--e2e-only``);
- with ``--profile``: ``fast_update_profile`` (matrix products vs everything else in the fast update, torch
  profiler) and ``env_step_profile`` (per variant: ms per env step in the update, acting, the env, the replay
  buffer and the rest of SB3's loop, from stage timers around those methods; see :func:`profile_env_step`);
- ``cpu_ms_per_update`` / ``env_steps_per_cpu_s``: the same with process CPU time (all threads) instead of wall time,
  less sensitive to other processes on a shared machine;
- ratios: SB3 / ours for both quantities and ours / floor (ratios of the medians), and ``paired_ratios``: the
  median over rounds of the same ratios within each round (more robust when the machine's speed drifts), among
  them ``e2e_speedup_fast_vs_sbx`` (ours ``fast`` env-steps/s over sbx's) and ``e2e_speedup_sbx_vs_sb3``.

sbx (the JAX implementation of SB3's algorithms, PyPI ``sbx-rl``) is an optional peer in the end-to-end
comparison, never a dependency of the package: it is measured when ``import sbx`` works (and ``--no-sbx`` is not
given), else skipped with a message, and the JSON's ``"sbx"`` says why (e.g. ``"not installed (pip install
sbx-rl)"``). Install it in a separate venv that sees the benchmark environment, so that torch and SB3 stay as
they are (see ``perf/README.md``). Its model has the same settings as ours: env, ``net_arch`` (a list: the same
layers for actor and critic in sbx as in SB3), one critic (sbx's ``DDPG`` default), buffer size,
``learning_starts``, batch size, seed, no action noise, and learning rate 1e-3 for actor and critic (SB3's DDPG
default; sbx's ``DDPG`` defaults to 3e-4 for the actor). sbx's ``DDPG`` still draws target-policy noise and clips it
to zero in every update, and its replay buffer is SB3's (torch) one.

JAX's CPU thread pool is sized once, when its backend starts, so sbx is measured at 1 thread only: the script sets
``PJRT_NPROC=1`` before importing sbx (and jax), and skips sbx, with a message, at other thread counts (and
entirely when ``--threads`` has no 1). ``PJRT_NPROC`` is what sizes the intra-op pool of jax 0.10's CPU client
(checked on jaxlib 0.10.2: with it, one thread runs a jitted matmul; without it, the pool's workers share it).
The often-quoted ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"`` does not limit
jax 0.10 (the matmul still runs on the pool's workers; the second item is not even read as a flag), and an XLA flag
that a later jaxlib drops makes jax abort at start-up, so the script sets no ``XLA_FLAGS``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch as th

UPDATE_VARIANTS = ("sb3", "exact", "fast", "fast_compiled", "fast_ln", "fast_tn_action", "fast_tn_param_batch")
E2E_VARIANTS = ("sb3", "exact", "fast", "fast_compiled", "fast_param_noise")
#: The optional end-to-end peer (sbx's ``DDPG``), measured at 1 thread only.
SBX_VARIANT = "sbx"
SBX_INSTALL_HINT = "pip install sbx-rl"
#: Versions recorded (in ``versions``) when sbx is measured.
SBX_PACKAGES = ("sbx-rl", "jax", "jaxlib", "flax", "optax")


def make_model(variant: str, env_id: str, net: list[int], batch: int, seed: int, learning_starts: int) -> Any:
    """
    Build the model of a variant (buffer of 100k transitions, learning starts after ``learning_starts`` steps).

    :param variant: one of :data:`UPDATE_VARIANTS`, :data:`E2E_VARIANTS` or :data:`SBX_VARIANT` (needs sbx)
    :param env_id: Gymnasium env id
    :param net: hidden layer sizes of actor and critic
    :param batch: batch size
    :param seed: seed of the model
    :param learning_starts: env steps of random actions before the first update
    :return: the model
    """
    common: dict[str, Any] = {
        "buffer_size": 100_000,
        "learning_starts": learning_starts,
        "batch_size": batch,
        "seed": seed,
        "verbose": 0,
    }
    # A list: the same layers for actor and critic, in SB3 and in sbx alike.
    policy_kwargs: dict[str, Any] = {"net_arch": list(net)}
    if variant == SBX_VARIANT:
        from sbx import DDPG as SbxDDPG

        # sbx's DDPG defaults to learning_rate=3e-4 (actor) and qf_learning_rate=1e-3: SB3's DDPG uses 1e-3 for both.
        return SbxDDPG("MlpPolicy", env_id, learning_rate=1e-3, qf_learning_rate=1e-3, policy_kwargs=policy_kwargs, **common)
    from stable_baselines3 import DDPG as SB3DDPG

    from sb3_ddpg_ext.ddpg import DDPG

    if variant == "sb3":
        return SB3DDPG("MlpPolicy", env_id, policy_kwargs=policy_kwargs, **common)
    extra: dict[str, Any] = {"update_mode": "exact" if variant == "exact" else "fast"}
    policy = "MlpPolicy"
    if variant == "fast_ln":
        policy = "LnMlpPolicy"
    elif variant == "fast_tn_action":
        extra.update(target_policy_noise=0.2)
    elif variant == "fast_tn_param_batch":
        extra.update(target_policy_noise=0.05, target_noise_space="parameter", target_noise_sampling="per_batch")
    elif variant == "fast_compiled":
        extra.update(compile_update=True)
    return DDPG(policy, env_id, policy_kwargs=policy_kwargs, **common, **extra)


def sbx_status(no_sbx: bool, threads: list[int]) -> tuple[bool, str]:
    """
    Whether sbx is measured, and why (or why not), as recorded in the JSON's ``"sbx"``. When it may be measured,
    sets ``PJRT_NPROC=1`` (JAX's CPU thread pool: 1 thread) and then imports sbx, so this must run before anything
    imports jax.

    :param no_sbx: ``--no-sbx`` was given
    :param threads: the thread counts measured
    :return: ``(measured, status)``
    """
    if no_sbx:
        return False, "disabled (--no-sbx)"
    if 1 not in threads:
        return False, f"skipped: measured at 1 thread only and --threads {' '.join(map(str, threads))} has no 1"
    os.environ["PJRT_NPROC"] = "1"
    try:
        import sbx  # noqa: F401
    except ModuleNotFoundError as error:
        if error.name == "sbx":
            return False, f"not installed ({SBX_INSTALL_HINT})"
        return False, f"not importable: {error}"
    except ImportError as error:
        return False, f"not importable: {error}"
    return True, "measured at 1 thread only (PJRT_NPROC=1)"


def package_versions_with(extra: tuple[str, ...]) -> dict[str, Optional[str]]:
    """
    The runner's :func:`package_versions` and those of ``extra``.

    :param extra: further distribution names
    :return: name -> version (``None`` when not installed)
    """
    from importlib import metadata

    from sb3_ddpg_ext.benchmarks.runner import package_versions

    versions = package_versions()
    for name in extra:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def gemm_shapes(obs_dim: int, act_dim: int, net: list[int], batch: int, n_critics: int = 1) -> list[tuple[int, int, int]]:
    """
    The (m, k, n) products of one DDPG/TD3 update (policy_delay 1): target actor + target critics forward; critics
    forward + backward (weight grads of every layer, input grads of all but the first); actor forward, critic-1
    forward and input grads (all layers, the action needs one), actor backward (weight grads, input grads but the
    first). Forward ``(B, k) x (k, n)``, weight grad ``(n, B) x (B, k)``, input grad ``(B, n) x (n, k)``.
    """
    actor = list(zip([obs_dim, *net], [*net, act_dim]))
    critic = list(zip([obs_dim + act_dim, *net], [*net, 1]))
    fwd = lambda layers: [(batch, k, n) for k, n in layers]  # noqa: E731
    wgrad = lambda layers: [(n, batch, k) for k, n in layers]  # noqa: E731
    igrad = lambda layers: [(batch, n, k) for k, n in layers]  # noqa: E731
    shapes = fwd(actor) + n_critics * fwd(critic)  # targets
    shapes += n_critics * (fwd(critic) + wgrad(critic) + igrad(critic[1:]))  # critic step
    shapes += fwd(actor) + fwd(critic) + igrad(critic) + wgrad(actor) + igrad(actor[1:])  # actor step
    return shapes


def gemm_floor_ms(shapes: list[tuple[int, int, int]], repeats: int = 20) -> float:
    """Median time (ms) of one pass over the products, on preallocated float32 tensors with ``out=``."""
    gen = th.Generator().manual_seed(0)
    ops = [(th.randn(m, k, generator=gen), th.randn(k, n, generator=gen), th.empty(m, n)) for m, k, n in shapes]
    for a, b, c in ops:  # warm-up
        th.mm(a, b, out=c)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for a, b, c in ops:
            th.mm(a, b, out=c)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def profile_update(model: Any, updates: int, batch: int) -> dict[str, float]:
    """
    Where one update's time goes (torch profiler, self CPU time per update): matrix products (``addmm``/``mm``) vs
    everything else (elementwise ops, Adam, polyak, sampling, Python). The profiler adds a few microseconds per op,
    so ``other_ms`` is an upper bound.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.train(updates, batch_size=batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1000 / updates
    gemm = sum(e.self_cpu_time_total for e in events if e.key in ("aten::addmm", "aten::mm")) / 1000 / updates
    return {"gemm_ms": gemm, "other_ms": total - gemm, "total_ms": total}


#: The stages of :func:`profile_env_step`: the method of the model (or of its VecEnv) each one times.
E2E_STAGES = {"update": "train", "acting": "_sample_action", "env": "step", "buffer": "_store_transition"}


def profile_env_step(model: Any, env_steps: int) -> dict[str, float]:
    """
    Where one env step of ``model.learn()`` goes, in ms per env step (wall clock, stage timers around methods, so
    no profiler overhead beyond two clock reads per call): ``update`` (``train``: replay sampling, gradient steps,
    logging), ``acting`` (``_sample_action``: actor forward, action noise), ``env`` (``VecEnv.step``: the simulator
    plus the Monitor and gymnasium wrappers), ``buffer`` (``_store_transition``) and ``rest`` (SB3's rollout loop,
    callbacks, the eval-mode switch, progress and episode bookkeeping: the total minus the stages).

    :param model: A model past ``learning_starts``.
    :param env_steps: Env steps of the profiled ``learn()`` (no callback: a callback that replaces one of these
        methods during ``learn()``, as ``ParameterNoiseCallback`` does ``_sample_action``, would bypass its timer).
    :return: ms per env step by stage, plus ``total``.
    """
    timers = dict.fromkeys(E2E_STAGES, 0.0)
    owners = {stage: (model.env if stage == "env" else model) for stage in E2E_STAGES}

    def timed(stage: str, method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                timers[stage] += time.perf_counter() - start

        return wrapper

    for stage, name in E2E_STAGES.items():  # instance attributes shadow the methods for this learn() only
        setattr(owners[stage], name, timed(stage, getattr(owners[stage], name)))
    try:
        start = time.perf_counter()
        model.learn(env_steps, reset_num_timesteps=False)
        total = time.perf_counter() - start
    finally:
        for stage, name in E2E_STAGES.items():
            delattr(owners[stage], name)
    result = {stage: 1000 * seconds / env_steps for stage, seconds in timers.items()}
    result["rest"] = 1000 * total / env_steps - sum(result.values())
    result["total"] = 1000 * total / env_steps
    return result


def _paired(rounds: dict[str, list[float]], numerator: str, denominator: str) -> Optional[float]:
    """Median over rounds of ``numerator / denominator`` of the same round (``None`` when either was not measured)."""
    if numerator not in rounds or denominator not in rounds:
        return None
    return statistics.median(a / b for a, b in zip(rounds[numerator], rounds[denominator]))


def _over(values: dict[str, float], numerator: str, denominator: str) -> Optional[float]:
    """``numerator / denominator`` (``None`` when either was not measured)."""
    if numerator not in values or denominator not in values:
        return None
    return values[numerator] / values[denominator]


def _minus_one(ratio: Optional[float]) -> Optional[float]:
    """An overhead from a ratio (``None`` stays ``None``)."""
    return None if ratio is None else ratio - 1


def _medians(rounds: dict[str, list[float]]) -> dict[str, float]:
    return {v: statistics.median(x) for v, x in rounds.items()}


def import_gym_packages(env_id: str, packages: list[str]) -> list[str]:
    """
    Import the packages that register environments (``--gym-packages``), with ``pybullet_envs_gymnasium`` added for
    env ids containing ``Bullet`` (as the benchmark runner does).

    :param env_id: Gymnasium env id
    :param packages: ``--gym-packages``
    :return: the packages imported
    """
    from sb3_ddpg_ext.benchmarks.suite import BULLET_PACKAGE

    packages = list(packages)
    if "Bullet" in env_id and BULLET_PACKAGE not in packages:
        packages.append(BULLET_PACKAGE)
    for name in packages:
        importlib.import_module(name)
    return packages


def run(args: argparse.Namespace) -> dict[str, Any]:
    """
    Build the models, warm them up and time them in interleaved rounds at each thread count.

    :param args: the parsed command line
    :return: the report written as JSON
    """
    # First: sbx's import starts JAX's CPU backend, whose thread count is set by the environment at that moment.
    use_sbx, sbx_note = sbx_status(args.no_sbx, args.threads)
    print(f"sbx: {sbx_note}", flush=True)

    import gymnasium as gym
    from sb3_ddpg_ext.benchmarks.runner import git_info

    from sb3_ddpg_ext.callbacks import ParameterNoiseCallback

    gym_packages = import_gym_packages(args.env, args.gym_packages)
    env = gym.make(args.env)
    obs_dim = int(np.prod(env.observation_space.shape))  # type: ignore[arg-type]
    act_dim = int(np.prod(env.action_space.shape))  # type: ignore[arg-type]
    env.close()

    update_variants: tuple[str, ...] = () if args.e2e_only else UPDATE_VARIANTS
    e2e_variants: tuple[str, ...] = (*E2E_VARIANTS, SBX_VARIANT) if use_sbx else E2E_VARIANTS
    th.set_num_threads(max(args.threads))
    upd_models = {v: make_model(v, args.env, args.net, args.batch, args.seed, args.fill) for v in update_variants}
    for model in upd_models.values():  # real transitions, random actions (learning_starts not reached: no update)
        model.learn(args.fill)
    e2e_models = {v: make_model(v, args.env, args.net, args.batch, args.seed, args.fill) for v in e2e_variants}
    callbacks = {v: (ParameterNoiseCallback(seed=args.seed) if v == "fast_param_noise" else None) for v in e2e_variants}
    warm_up_s: dict[str, float] = {}
    for v, model in e2e_models.items():  # warm-up past learning_starts, with some updates (sbx, compiled: compilation)
        start = time.perf_counter()
        model.learn(args.fill + 10, callback=callbacks[v])
        warm_up_s[v] = time.perf_counter() - start
    compiled_models = [m for v, m in [*upd_models.items(), *e2e_models.items()] if v == "fast_compiled"]
    for model in compiled_models:
        model.train(2, batch_size=args.batch)  # the first train() creates the optimizers' state: eager
        model.train(2, batch_size=args.batch)  # compiles (or reuses) the graph
        if model.compiled_update_fallback is not None:
            raise RuntimeError(f"fast_compiled: the compiled update does not run: {model.compiled_update_fallback}")

    shapes = gemm_shapes(obs_dim, act_dim, args.net, args.batch)
    results: dict[str, Any] = {}
    for n_threads in args.threads:
        th.set_num_threads(n_threads)
        variants = e2e_variants if n_threads == 1 else E2E_VARIANTS
        sbx_here = "measured" if SBX_VARIANT in variants else sbx_note
        if use_sbx and n_threads != 1:
            sbx_here = f"skipped at {n_threads} threads (measured at 1 thread only: JAX's thread pool is fixed at start-up)"
            print(f"sbx: {sbx_here}", flush=True)
        upd: dict[str, list[float]] = {v: [] for v in update_variants}
        e2e: dict[str, list[float]] = {v: [] for v in variants}
        upd_cpu: dict[str, list[float]] = {v: [] for v in update_variants}
        e2e_cpu: dict[str, list[float]] = {v: [] for v in variants}
        floor: list[float] = []
        for model in upd_models.values():  # warm-up at this thread count
            model.train(3, batch_size=args.batch)
        for rnd in range(args.rounds):
            floor.append(gemm_floor_ms(shapes))
            order = list(update_variants) if rnd % 2 == 0 else list(reversed(update_variants))
            for v in order:
                model = upd_models[v]
                t0, c0 = time.perf_counter(), time.process_time()
                model.train(args.updates, batch_size=args.batch)
                upd[v].append(1000 * (time.perf_counter() - t0) / args.updates)
                upd_cpu[v].append(1000 * (time.process_time() - c0) / args.updates)
            order = list(variants) if rnd % 2 == 0 else list(reversed(variants))
            for v in order:
                model = e2e_models[v]
                t0, c0 = time.perf_counter(), time.process_time()
                model.learn(args.env_steps, callback=callbacks[v], reset_num_timesteps=False)
                e2e[v].append(args.env_steps / (time.perf_counter() - t0))
                e2e_cpu[v].append(args.env_steps / (time.process_time() - c0))
            line = f"threads={n_threads} round={rnd}: "
            if update_variants:
                line += "ms/update " + ", ".join(f"{v}={upd[v][-1]:.2f}" for v in update_variants) + "; "
            line += f"floor={floor[-1]:.2f}; "
            if update_variants:
                line += "cpu ms/update " + ", ".join(f"{v}={upd_cpu[v][-1]:.2f}" for v in update_variants) + "; "
            line += "steps/s " + ", ".join(f"{v}={e2e[v][-1]:.1f}" for v in variants)
            print(line, flush=True)
        profiled = profile_update(upd_models["fast"], args.updates, args.batch) if args.profile and upd_models else None
        e2e_profile = (
            # (not fast_param_noise: its callback replaces _sample_action during learn(), past the stage timer)
            {v: profile_env_step(e2e_models[v], args.env_steps) for v in variants if callbacks[v] is None}
            if args.profile
            else None
        )
        med_upd, med_e2e = _medians(upd), _medians(e2e)
        cpu_upd, cpu_e2e = _medians(upd_cpu), _medians(e2e_cpu)
        med_floor = statistics.median(floor)
        upd_floor, med_upd_floor = {**upd, "floor": floor}, {**med_upd, "floor": med_floor}
        results[str(n_threads)] = {
            "ms_per_update": {"median": med_upd, "rounds": upd} if update_variants else None,
            "env_steps_per_s": {"median": med_e2e, "rounds": e2e},
            "gemm_floor_ms": {"median": med_floor, "rounds": floor},
            "fast_update_profile": profiled,
            "env_step_profile": e2e_profile,
            # process CPU time (all threads): less sensitive to other processes' load than wall time
            "cpu_ms_per_update": {"median": cpu_upd, "rounds": upd_cpu} if update_variants else None,
            "env_steps_per_cpu_s": {"median": cpu_e2e, "rounds": e2e_cpu},
            "sbx": sbx_here,
            # wall time of each end-to-end model's warm-up learn() (fill + 10 steps): includes sbx's JIT and the
            # compiled update's first compilation (inductor's on-disk cache makes later processes faster)
            "warm_up_s": warm_up_s,
            # paired: the median over rounds of the per-round ratio (rounds are interleaved, so this cancels load
            # that drifts between rounds better than the ratio of medians); None: not measured (--e2e-only, no sbx)
            "paired_ratios": {
                "update_speedup_fast_vs_sb3": _paired(upd, "sb3", "fast"),
                "update_fast_over_gemm_floor": _paired(upd_floor, "fast", "floor"),
                "e2e_speedup_fast_vs_sb3": _paired(e2e, "fast", "sb3"),
                "e2e_speedup_compiled_vs_sb3": _paired(e2e, "fast_compiled", "sb3"),
                "e2e_speedup_compiled_vs_fast": _paired(e2e, "fast_compiled", "fast"),
                "e2e_speedup_compiled_vs_sbx": _paired(e2e, "fast_compiled", SBX_VARIANT),
                "update_compiled_over_gemm_floor": _paired(upd_floor, "fast_compiled", "floor"),
                "update_speedup_compiled_vs_fast": _paired(upd, "fast", "fast_compiled"),
                "e2e_speedup_fast_vs_sbx": _paired(e2e, "fast", SBX_VARIANT),
                "e2e_speedup_sbx_vs_sb3": _paired(e2e, SBX_VARIANT, "sb3"),
                "param_noise_e2e_overhead": _minus_one(_paired(e2e, "fast", "fast_param_noise")),
                "layer_norm_update_overhead": _minus_one(_paired(upd, "fast_ln", "fast")),
            },
            "ratios": {
                "update_speedup_exact_vs_sb3": _over(med_upd, "sb3", "exact"),
                "update_speedup_fast_vs_sb3": _over(med_upd, "sb3", "fast"),
                "update_fast_over_gemm_floor": _over(med_upd_floor, "fast", "floor"),
                "update_sb3_over_gemm_floor": _over(med_upd_floor, "sb3", "floor"),
                "e2e_speedup_exact_vs_sb3": _over(med_e2e, "exact", "sb3"),
                "e2e_speedup_fast_vs_sb3": _over(med_e2e, "fast", "sb3"),
                "e2e_speedup_fast_vs_sbx": _over(med_e2e, "fast", SBX_VARIANT),
                "e2e_speedup_sbx_vs_sb3": _over(med_e2e, SBX_VARIANT, "sb3"),
                "layer_norm_update_overhead": _minus_one(_over(med_upd, "fast_ln", "fast")),
                "target_noise_action_update_overhead": _minus_one(_over(med_upd, "fast_tn_action", "fast")),
                "target_noise_param_per_batch_update_overhead": _minus_one(_over(med_upd, "fast_tn_param_batch", "fast")),
                "param_noise_e2e_overhead": _minus_one(_over(med_e2e, "fast", "fast_param_noise")),
                "cpu_update_speedup_exact_vs_sb3": _over(cpu_upd, "sb3", "exact"),
                "cpu_update_speedup_fast_vs_sb3": _over(cpu_upd, "sb3", "fast"),
                "cpu_e2e_speedup_exact_vs_sb3": _over(cpu_e2e, "exact", "sb3"),
                "cpu_e2e_speedup_fast_vs_sb3": _over(cpu_e2e, "fast", "sb3"),
                "cpu_e2e_speedup_fast_vs_sbx": _over(cpu_e2e, "fast", SBX_VARIANT),
                "cpu_layer_norm_update_overhead": _minus_one(_over(cpu_upd, "fast_ln", "fast")),
                "cpu_param_noise_e2e_overhead": _minus_one(_over(cpu_e2e, "fast", "fast_param_noise")),
            },
        }
    return {
        "config": {
            "env": args.env,
            "gym_packages": gym_packages,
            "net_arch": args.net,
            "batch_size": args.batch,
            "threads": args.threads,
            "rounds": args.rounds,
            "updates_per_round": None if args.e2e_only else args.updates,
            "env_steps_per_round": args.env_steps,
            "fill": args.fill,
            "seed": args.seed,
            "e2e_only": args.e2e_only,
            "gemm_shapes": shapes,
            "gemm_mflop": sum(2 * m * k * n for m, k, n in shapes) / 1e6,
        },
        "sbx": sbx_note,
        "results": results,
        "versions": package_versions_with(SBX_PACKAGES if use_sbx else ()),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        **git_info(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _x(ratio: Optional[float]) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def _pct(overhead: Optional[float]) -> str:
    return "n/a" if overhead is None else f"{100 * overhead:+.1f}%"


def print_summary(report: dict[str, Any]) -> None:
    """
    Print the ratios and medians of a report, per thread count.

    :param report: the output of :func:`run`
    """
    for n_threads, res in report["results"].items():
        r, pr = res["ratios"], res["paired_ratios"]
        e2e = res["env_steps_per_s"]["median"]
        print(
            f"[{n_threads} thread(s)] end-to-end fast/exact vs SB3: {_x(r['e2e_speedup_fast_vs_sb3'])} / "
            f"{_x(r['e2e_speedup_exact_vs_sb3'])}; CPU-time end-to-end fast vs SB3: {_x(r['cpu_e2e_speedup_fast_vs_sb3'])}"
        )
        if res["ms_per_update"] is not None:
            print(
                f"    update speed-up fast/exact vs SB3: {_x(r['update_speedup_fast_vs_sb3'])} / "
                f"{_x(r['update_speedup_exact_vs_sb3'])}; fast/floor {_x(r['update_fast_over_gemm_floor'])}; "
                f"CPU-time update fast/exact vs SB3: {_x(r['cpu_update_speedup_fast_vs_sb3'])} / "
                f"{_x(r['cpu_update_speedup_exact_vs_sb3'])}"
            )
        print(
            f"    paired (median of per-round ratios): end-to-end fast vs SB3 {_x(pr['e2e_speedup_fast_vs_sb3'])}, "
            f"parameter noise {_pct(pr['param_noise_e2e_overhead'])}"
            + (
                f", update speed-up {_x(pr['update_speedup_fast_vs_sb3'])}, "
                f"fast/floor {_x(pr['update_fast_over_gemm_floor'])}, "
                f"LayerNorm {_pct(pr['layer_norm_update_overhead'])}"
                if res["ms_per_update"] is not None
                else ""
            )
        )
        if pr.get("e2e_speedup_compiled_vs_fast") is not None:
            print(
                f"    compiled update (paired): end-to-end vs fast {_x(pr['e2e_speedup_compiled_vs_fast'])}, vs SB3 "
                f"{_x(pr['e2e_speedup_compiled_vs_sb3'])}, vs sbx {_x(pr['e2e_speedup_compiled_vs_sbx'])}; update vs fast "
                f"{_x(pr['update_speedup_compiled_vs_fast'])}, compiled/floor {_x(pr['update_compiled_over_gemm_floor'])}; "
                f"warm-up (compilation) {res['warm_up_s'].get('fast_compiled', float('nan')):.1f} s"
            )
        if SBX_VARIANT in e2e:
            print(
                f"    sbx (paired): end-to-end fast vs sbx {_x(pr['e2e_speedup_fast_vs_sbx'])}, "
                f"sbx vs SB3 {_x(pr['e2e_speedup_sbx_vs_sb3'])}"
            )
        if res["ms_per_update"] is not None:
            med = res["ms_per_update"]["median"]
            print(
                f"    ms/update SB3 {med['sb3']:.2f}, exact {med['exact']:.2f}, fast {med['fast']:.2f}, "
                f"LayerNorm {_pct(r['layer_norm_update_overhead'])} per update"
            )
        print(
            f"    GEMM floor {res['gemm_floor_ms']['median']:.2f} ms; env-steps/s "
            + ", ".join(f"{v} {steps:.1f}" for v, steps in e2e.items())
        )
        if res["fast_update_profile"] is not None:
            prof = res["fast_update_profile"]
            print(
                f"    fast update profile: matrix products {prof['gemm_ms']:.2f} ms, everything else "
                f"{prof['other_ms']:.2f} ms (profiler overhead included)"
            )
        for v, stages in (res["env_step_profile"] or {}).items():
            print(f"    ms per env step, {v}: " + ", ".join(f"{stage} {ms:.3f}" for stage, ms in stages.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
    parser.add_argument(
        "--gym-packages",
        nargs="+",
        default=[],
        help="packages to import before gym.make, e.g. ones that register envs (pybullet_envs_gymnasium is imported "
        "for Bullet env ids anyway)",
    )
    parser.add_argument("--net", type=int, nargs="+", default=[400, 300])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--updates", type=int, default=30, help="updates per timing of ms/update")
    parser.add_argument("--env-steps", type=int, default=300, help="env steps per timing of env-steps/s")
    parser.add_argument("--fill", type=int, default=1000, help="random transitions before learning starts (= learning_starts)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="perf.json")
    parser.add_argument(
        "--e2e-only", action="store_true", help="skip the per-update timing (end to end and the GEMM floor only)"
    )
    parser.add_argument("--no-sbx", action="store_true", help="do not measure sbx even when it is installed")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile the fast update (matrix products vs everything else; not with --e2e-only) and where "
        "each variant's env step goes (update, acting, env, buffer, rest)",
    )
    args = parser.parse_args()
    for name in ("rounds", "updates", "env_steps", "fill", "batch"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.fill < args.batch:
        raise ValueError(f"--fill ({args.fill}) must be >= --batch ({args.batch})")
    report = run(args)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print_summary(report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
