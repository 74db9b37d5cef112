"""Speed of the DDPG update and of end-to-end training: vanilla SB3 vs ``sb3_ddpg_ext.DDPG`` (a script, not a test).

    python perf/perf.py [--env HalfCheetah-v5 --net 400 300 --batch 256 --threads 1 2 --rounds 5]
                        [--updates 30 --env-steps 300 --out perf.json]

Everything runs in one process and is interleaved: each round times every variant once (at each thread count) so
that load from other processes hits all variants alike; the JSON reports per-round values and their medians.

Measured, per thread count:

- ``ms_per_update``: ``model.train(n, batch)`` on a buffer pre-filled with real transitions (random actions), for
  vanilla SB3 ``DDPG``, ours in ``exact`` and ``fast`` mode, ours ``fast`` with ``LnMlpPolicy`` (LayerNorm overhead),
  and ours ``fast`` with action-space / parameter-space target noise;
- ``env_steps_per_s``: ``model.learn(n)`` after ``--fill`` random steps and 10 learning steps (then every env step
  is: action, env step, buffer add, one update), for SB3,
  exact, fast and fast + ``ParameterNoiseCallback`` (parameter-noise overhead);
- ``gemm_floor_ms``: the same matrix multiplications as one DDPG update (forward, backward, targets; 28 GEMMs for
  one critic) in a loop on preallocated tensors, i.e. what the update would cost with zero overhead;
- ``cpu_ms_per_update`` / ``env_steps_per_cpu_s``: the same with process CPU time (all threads) instead of wall time,
  less sensitive to other processes on a shared machine;
- ratios: SB3 / ours for both quantities and ours / floor (ratios of the medians), and ``paired_ratios``: the
  median over rounds of the same ratios within each round (more robust when the machine's speed drifts).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

UPDATE_VARIANTS = ("sb3", "exact", "fast", "fast_ln", "fast_tn_action", "fast_tn_param_batch")
E2E_VARIANTS = ("sb3", "exact", "fast", "fast_param_noise")


def make_model(variant: str, env_id: str, net: list[int], batch: int, seed: int, learning_starts: int) -> Any:
    """Build the model of a variant (buffer of 100k transitions, learning starts after ``learning_starts`` steps)."""
    from stable_baselines3 import DDPG as SB3DDPG

    from sb3_ddpg_ext.ddpg import DDPG

    common: dict[str, Any] = {
        "buffer_size": 100_000,
        "learning_starts": learning_starts,
        "batch_size": batch,
        "seed": seed,
        "verbose": 0,
    }
    policy_kwargs: dict[str, Any] = {"net_arch": list(net)}
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
    return DDPG(policy, env_id, policy_kwargs=policy_kwargs, **common, **extra)


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


def _paired(numerators: list[float], denominators: list[float]) -> float:
    """Median over rounds of ``numerator / denominator`` of the same round."""
    return statistics.median(a / b for a, b in zip(numerators, denominators))


def run(args: argparse.Namespace) -> dict[str, Any]:
    import gymnasium as gym
    from sb3_ddpg_ext.benchmarks.runner import git_info, package_versions

    from sb3_ddpg_ext.callbacks import ParameterNoiseCallback

    env = gym.make(args.env)
    obs_dim = int(np.prod(env.observation_space.shape))  # type: ignore[arg-type]
    act_dim = int(np.prod(env.action_space.shape))  # type: ignore[arg-type]
    env.close()

    th.set_num_threads(max(args.threads))
    upd_models = {v: make_model(v, args.env, args.net, args.batch, args.seed, args.fill) for v in UPDATE_VARIANTS}
    for model in upd_models.values():  # real transitions, random actions (learning_starts not reached: no update)
        model.learn(args.fill)
    e2e_models = {v: make_model(v, args.env, args.net, args.batch, args.seed, args.fill) for v in E2E_VARIANTS}
    callbacks = {v: (ParameterNoiseCallback(seed=args.seed) if v == "fast_param_noise" else None) for v in E2E_VARIANTS}
    for v, model in e2e_models.items():  # warm-up past learning_starts, with some updates
        model.learn(args.fill + 10, callback=callbacks[v])

    shapes = gemm_shapes(obs_dim, act_dim, args.net, args.batch)
    results: dict[str, Any] = {}
    for n_threads in args.threads:
        th.set_num_threads(n_threads)
        upd: dict[str, list[float]] = {v: [] for v in UPDATE_VARIANTS}
        e2e: dict[str, list[float]] = {v: [] for v in E2E_VARIANTS}
        upd_cpu: dict[str, list[float]] = {v: [] for v in UPDATE_VARIANTS}
        e2e_cpu: dict[str, list[float]] = {v: [] for v in E2E_VARIANTS}
        floor: list[float] = []
        for model in upd_models.values():  # warm-up at this thread count
            model.train(3, batch_size=args.batch)
        for rnd in range(args.rounds):
            floor.append(gemm_floor_ms(shapes))
            order = list(UPDATE_VARIANTS) if rnd % 2 == 0 else list(reversed(UPDATE_VARIANTS))
            for v in order:
                model = upd_models[v]
                t0, c0 = time.perf_counter(), time.process_time()
                model.train(args.updates, batch_size=args.batch)
                upd[v].append(1000 * (time.perf_counter() - t0) / args.updates)
                upd_cpu[v].append(1000 * (time.process_time() - c0) / args.updates)
            order = list(E2E_VARIANTS) if rnd % 2 == 0 else list(reversed(E2E_VARIANTS))
            for v in order:
                model = e2e_models[v]
                t0, c0 = time.perf_counter(), time.process_time()
                model.learn(args.env_steps, callback=callbacks[v], reset_num_timesteps=False)
                e2e[v].append(args.env_steps / (time.perf_counter() - t0))
                e2e_cpu[v].append(args.env_steps / (time.process_time() - c0))
            print(
                f"threads={n_threads} round={rnd}: ms/update "
                + ", ".join(f"{v}={upd[v][-1]:.2f}" for v in UPDATE_VARIANTS)
                + f"; floor={floor[-1]:.2f}; cpu ms/update "
                + ", ".join(f"{v}={upd_cpu[v][-1]:.2f}" for v in UPDATE_VARIANTS)
                + "; steps/s "
                + ", ".join(f"{v}={e2e[v][-1]:.1f}" for v in E2E_VARIANTS),
                flush=True,
            )
        profiled = profile_update(upd_models["fast"], args.updates, args.batch) if args.profile else None
        med_upd = {v: statistics.median(x) for v, x in upd.items()}
        med_e2e = {v: statistics.median(x) for v, x in e2e.items()}
        med_floor = statistics.median(floor)
        cpu_upd = {v: statistics.median(x) for v, x in upd_cpu.items()}
        cpu_e2e = {v: statistics.median(x) for v, x in e2e_cpu.items()}
        results[str(n_threads)] = {
            "ms_per_update": {"median": med_upd, "rounds": upd},
            "env_steps_per_s": {"median": med_e2e, "rounds": e2e},
            "gemm_floor_ms": {"median": med_floor, "rounds": floor},
            "fast_update_profile": profiled,
            # process CPU time (all threads): less sensitive to other processes' load than wall time
            "cpu_ms_per_update": {"median": cpu_upd, "rounds": upd_cpu},
            "env_steps_per_cpu_s": {"median": cpu_e2e, "rounds": e2e_cpu},
            # paired: the median over rounds of the per-round ratio (rounds are interleaved, so this cancels load
            # that drifts between rounds better than the ratio of medians)
            "paired_ratios": {
                "update_speedup_fast_vs_sb3": _paired(upd["sb3"], upd["fast"]),
                "update_fast_over_gemm_floor": _paired(upd["fast"], floor),
                "e2e_speedup_fast_vs_sb3": _paired(e2e["fast"], e2e["sb3"]),
                "param_noise_e2e_overhead": _paired(e2e["fast"], e2e["fast_param_noise"]) - 1,
                "layer_norm_update_overhead": _paired(upd["fast_ln"], upd["fast"]) - 1,
            },
            "ratios": {
                "update_speedup_exact_vs_sb3": med_upd["sb3"] / med_upd["exact"],
                "update_speedup_fast_vs_sb3": med_upd["sb3"] / med_upd["fast"],
                "update_fast_over_gemm_floor": med_upd["fast"] / med_floor,
                "update_sb3_over_gemm_floor": med_upd["sb3"] / med_floor,
                "e2e_speedup_exact_vs_sb3": med_e2e["exact"] / med_e2e["sb3"],
                "e2e_speedup_fast_vs_sb3": med_e2e["fast"] / med_e2e["sb3"],
                "layer_norm_update_overhead": med_upd["fast_ln"] / med_upd["fast"] - 1,
                "target_noise_action_update_overhead": med_upd["fast_tn_action"] / med_upd["fast"] - 1,
                "target_noise_param_per_batch_update_overhead": med_upd["fast_tn_param_batch"] / med_upd["fast"] - 1,
                "param_noise_e2e_overhead": med_e2e["fast"] / med_e2e["fast_param_noise"] - 1,
                "cpu_update_speedup_exact_vs_sb3": cpu_upd["sb3"] / cpu_upd["exact"],
                "cpu_update_speedup_fast_vs_sb3": cpu_upd["sb3"] / cpu_upd["fast"],
                "cpu_e2e_speedup_exact_vs_sb3": cpu_e2e["exact"] / cpu_e2e["sb3"],
                "cpu_e2e_speedup_fast_vs_sb3": cpu_e2e["fast"] / cpu_e2e["sb3"],
                "cpu_layer_norm_update_overhead": cpu_upd["fast_ln"] / cpu_upd["fast"] - 1,
                "cpu_param_noise_e2e_overhead": cpu_e2e["fast"] / cpu_e2e["fast_param_noise"] - 1,
            },
        }
    return {
        "config": {
            "env": args.env,
            "net_arch": args.net,
            "batch_size": args.batch,
            "threads": args.threads,
            "rounds": args.rounds,
            "updates_per_round": args.updates,
            "env_steps_per_round": args.env_steps,
            "gemm_shapes": shapes,
            "gemm_mflop": sum(2 * m * k * n for m, k, n in shapes) / 1e6,
        },
        "results": results,
        "versions": package_versions(),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        **git_info(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="HalfCheetah-v5")
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
        "--profile", action="store_true", help="also profile the fast update: matrix products vs everything else"
    )
    args = parser.parse_args()
    for name in ("rounds", "updates", "env_steps", "fill", "batch"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.fill < args.batch:
        raise ValueError(f"--fill ({args.fill}) must be >= --batch ({args.batch})")
    report = run(args)
    Path(args.out).write_text(json.dumps(report, indent=2))
    for n_threads, res in report["results"].items():
        r = res["ratios"]
        print(
            f"[{n_threads} thread(s)] update speed-up fast/exact vs SB3: {r['update_speedup_fast_vs_sb3']:.2f}x / "
            f"{r['update_speedup_exact_vs_sb3']:.2f}x; fast/floor {r['update_fast_over_gemm_floor']:.2f}; "
            f"end-to-end fast/exact vs SB3: {r['e2e_speedup_fast_vs_sb3']:.2f}x / {r['e2e_speedup_exact_vs_sb3']:.2f}x; "
            f"CPU-time update fast/exact vs SB3: {r['cpu_update_speedup_fast_vs_sb3']:.2f}x / "
            f"{r['cpu_update_speedup_exact_vs_sb3']:.2f}x, CPU-time end-to-end fast vs SB3: "
            f"{r['cpu_e2e_speedup_fast_vs_sb3']:.2f}x"
        )
        pr = res["paired_ratios"]
        print(
            f"    paired (median of per-round ratios): update speed-up {pr['update_speedup_fast_vs_sb3']:.2f}x, "
            f"fast/floor {pr['update_fast_over_gemm_floor']:.2f}, end-to-end {pr['e2e_speedup_fast_vs_sb3']:.2f}x, "
            f"LayerNorm +{100 * pr['layer_norm_update_overhead']:.1f}%, "
            f"parameter noise +{100 * pr['param_noise_e2e_overhead']:.1f}%"
        )
        med = res["ms_per_update"]["median"]
        e2e = res["env_steps_per_s"]["median"]
        print(
            f"    ms/update SB3 {med['sb3']:.2f}, exact {med['exact']:.2f}, fast {med['fast']:.2f}, "
            f"GEMM floor {res['gemm_floor_ms']['median']:.2f}; env-steps/s SB3 {e2e['sb3']:.1f}, fast {e2e['fast']:.1f}; "
            f"LayerNorm +{100 * r['layer_norm_update_overhead']:.1f}% per update, "
            f"parameter noise +{100 * r['param_noise_e2e_overhead']:.1f}% end to end"
        )
        if res["fast_update_profile"] is not None:
            prof = res["fast_update_profile"]
            print(
                f"    fast update profile: matrix products {prof['gemm_ms']:.2f} ms, everything else "
                f"{prof['other_ms']:.2f} ms (profiler overhead included)"
            )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
