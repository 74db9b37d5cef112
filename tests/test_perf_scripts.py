"""The performance scripts live in ``perf/``, outside the installed packages, and the runner does not need them."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest
from setuptools import find_packages

REPO_ROOT = Path(__file__).resolve().parents[1]
PERF_SCRIPTS = ("perf.py", "param_noise_overhead.py", "report_perf.py", "runner_throughput.py")


def _installed_packages() -> list[str]:
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    include = config["options.packages.find"]["include"].split()
    return find_packages(where=str(REPO_ROOT), include=include)


def test_perf_scripts_are_not_installed():
    packages = _installed_packages()
    assert {"sb3_ddpg_ext", "benchmarks", "analysis"} <= set(packages)
    assert not [p for p in packages if p.split(".")[0] == "perf"]
    benchmark_modules = {path.name for path in (REPO_ROOT / "benchmarks").glob("*.py")}
    assert not benchmark_modules & {*PERF_SCRIPTS, "param_noise_check.py", "ln_pendulum_check.py"}
    assert all((REPO_ROOT / "perf" / name).is_file() for name in PERF_SCRIPTS)


def test_the_runner_package_does_not_import_analysis():
    modules = sorted(f"benchmarks.{path.stem}" for path in (REPO_ROOT / "benchmarks").glob("*.py"))
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'analysis' or m.startswith('analysis.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("script", PERF_SCRIPTS)
def test_perf_script_runs_from_outside_the_repository(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "perf" / script), "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
