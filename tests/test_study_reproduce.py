"""
The study's committed runs re-run: one committed Pendulum-v1 run of ``results/study_v1`` is executed again from its
``command.txt``, with the code of the commit its ``run.json`` records (``git archive`` of that commit into a
temporary folder, the run's ``hyperparams.yml`` beside it), and must give its ``evaluations.npz`` back bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from sb3_ddpg_ext.run_folder import find_evaluations, read_run_json

REPO_ROOT = Path(__file__).resolve().parents[1]
#: The committed run re-run by the test (the cheapest task of the study, its baseline at seed 0).
RUN = Path("results") / "study_v1" / "Pendulum-v1" / "baseline" / "seed_0"


def _version_differences(recorded: dict) -> list[str]:
    """The numerics-relevant packages whose installed version differs from the one the run recorded."""
    from importlib import metadata

    diffs = []
    for name in ("stable_baselines3", "rl_zoo3", "torch", "gymnasium", "numpy"):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if recorded.get(name) != installed:
            diffs.append(f"{name} {recorded.get(name)} (run) != {installed} (installed)")
    return diffs


@pytest.mark.slow
def test_committed_pendulum_run_reproduces_bit_for_bit(tmp_path):
    run_dir = REPO_ROOT / RUN
    info = read_run_json(run_dir)
    assert info is not None, f"{RUN}/run.json: missing or unreadable (the study's committed runs are expected here)"
    # Bit for bit holds with the versions the run recorded (e.g. not in the lowest-versions check's venv).
    differences = _version_differences(info.get("versions") or {})
    if differences:
        pytest.skip("installed versions differ from the run's: " + "; ".join(differences))
    assert info["status"] == "done", f"{RUN}: status {info['status']!r}"
    commit = info["git_commit"]
    assert commit and not info["git_dirty"], f"{RUN}: run.json records no clean commit: {commit!r}"
    committed = find_evaluations(run_dir, info["algo"], info["task"])
    assert committed is not None, f"{RUN}: no evaluations.npz"

    # The code of the run's commit, with the run's hyperparams.yml at the same relative path.
    try:
        archive = subprocess.run(["git", "archive", commit], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:  # e.g. a shallow clone without that commit
        pytest.fail(f"git archive {commit} failed ({e}); the test needs the repository history")
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (tmp_path / RUN).mkdir(parents=True)
    shutil.copy2(run_dir / "hyperparams.yml", tmp_path / RUN / "hyperparams.yml")

    command = (run_dir / "command.txt").read_text().strip()
    assert str(REPO_ROOT) not in command and "results/study_v1/Pendulum-v1/baseline/seed_0" in command, command
    # command.txt starts with `python`: run it with this interpreter, from the root of the commit's tree.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]

    rerun = find_evaluations(tmp_path / RUN, info["algo"], info["task"])
    assert rerun is not None, f"the re-run wrote no evaluations.npz: {proc.stderr[-2000:]}"
    with np.load(committed) as a, np.load(rerun) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            assert a[key].tobytes() == b[key].tobytes(), (key, a[key], b[key])
    # and the code that ran is the commit's: the package was imported from the archive, not from this checkout
    probe = subprocess.run(
        [sys.executable, "-c", "import sb3_ddpg_ext, json; print(json.dumps(sb3_ddpg_ext.__file__))"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(json.loads(probe.stdout)).resolve().is_relative_to(tmp_path.resolve())
