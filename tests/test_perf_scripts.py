"""The installed packages: one top-level ``sb3_ddpg_ext`` (runner and analysis beneath it, the performance scripts in
``perf/`` outside it), and the runner and the analysis import nothing of each other."""

from __future__ import annotations

import configparser
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PERF_SCRIPTS = ("perf.py", "param_noise_overhead.py", "report_perf.py", "runner_throughput.py", "gemm_torch_vs_jax.py")


def _setup_cfg_options() -> tuple[list[str], dict[str, str]]:
    """``packages`` and ``package_dir`` of setup.cfg's ``[options]``."""
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    packages = config["options"]["packages"].split()
    package_dir = dict(
        (part.strip() for part in line.split("=")) for line in config["options"]["package_dir"].strip().splitlines()
    )
    return packages, package_dir


def test_one_top_level_package_and_perf_scripts_are_not_installed():
    packages, package_dir = _setup_cfg_options()
    assert {p.split(".")[0] for p in packages} == {"sb3_ddpg_ext"}
    assert package_dir == {
        "sb3_ddpg_ext.benchmarks": "benchmarks",
        "sb3_ddpg_ext.analysis": "analysis",
        "sb3_ddpg_ext.hyperparams": "hyperparams",
    }
    assert set(package_dir) <= set(packages) and all((REPO_ROOT / d).is_dir() for d in package_dir.values())
    benchmark_modules = {path.name for path in (REPO_ROOT / "benchmarks").glob("*.py")}
    assert not benchmark_modules & {*PERF_SCRIPTS, "param_noise_check.py", "ln_pendulum_check.py"}
    assert all((REPO_ROOT / "perf" / name).is_file() for name in PERF_SCRIPTS)


def _imported_after(package: str, others: tuple[str, ...]) -> list[str]:
    """The modules among ``others`` (and their submodules) loaded by importing every module of ``package``."""
    modules = sorted(f"{package}.{path.stem}" for path in (REPO_ROOT / package).glob("*.py"))
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {others!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    return eval(result.stdout)


def test_the_runner_and_the_analysis_do_not_import_each_other():
    assert _imported_after("benchmarks", ("analysis",)) == []
    # The analysis needs neither the runner nor torch / SB3 (the run folder contract imports neither).
    assert _imported_after("analysis", ("benchmarks", "torch", "stable_baselines3")) == []


@pytest.mark.parametrize("script", PERF_SCRIPTS)
def test_perf_script_runs_from_outside_the_repository(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "perf" / script), "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


def test_sbx_is_an_optional_peer_of_perf_py_and_not_a_dependency(monkeypatch):
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    requirements = [config["options"]["install_requires"], *config["options.extras_require"].values()]
    assert not any("sbx" in line.lower() for line in requirements)
    spec = importlib.util.spec_from_file_location("perf_script", REPO_ROOT / "perf" / "perf.py")
    assert spec is not None and spec.loader is not None
    perf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(perf)
    # Without a 1-thread measurement (or with --no-sbx) sbx is neither imported nor is JAX's thread count touched.
    monkeypatch.delenv("PJRT_NPROC", raising=False)
    assert perf.sbx_status(True, [1]) == (False, "disabled (--no-sbx)")
    measured, note = perf.sbx_status(False, [2])
    assert not measured and "1 thread only" in note
    assert "PJRT_NPROC" not in os.environ


def test_perf_py_env_step_profile_accounts_for_the_whole_step():
    """perf.py's stage timers: the stages and the rest add up to the measured step, the time lands where it is
    spent (the update dominates at a real batch), and the model's methods are left as they were."""
    from sb3_ddpg_ext.ddpg import DDPG

    spec = importlib.util.spec_from_file_location("perf_script", REPO_ROOT / "perf" / "perf.py")
    assert spec is not None and spec.loader is not None
    perf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(perf)
    model = DDPG("MlpPolicy", "Pendulum-v1", learning_starts=100, batch_size=256, seed=0, policy_kwargs={"net_arch": [64, 64]})
    model.learn(110)
    stages = perf.profile_env_step(model, 100)
    assert set(stages) == {*perf.E2E_STAGES, "rest", "total"}
    assert sum(ms for stage, ms in stages.items() if stage != "total") == pytest.approx(stages["total"])
    assert all(stages[stage] > 0 for stage in perf.E2E_STAGES)
    assert stages["update"] > stages["env"], "a [64, 64] update at batch 256 costs more than a Pendulum step"
    assert not {"train", "_sample_action", "_store_transition"} & set(vars(model)) and "step" not in vars(model.env)
    assert model.num_timesteps == 210
