"""Safety of the benchmark runner (issue 15): run locks, corrupt run.json, unusable output folders, strict suite
files, dry runs whose commands run as printed.

Every run here uses the fake train module of :mod:`test_benchmarks` (no training: it writes a complete
``evaluations.npz``), so the tests are fast.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_benchmarks import FAKE_TRAIN, write_suite
from test_benchmarks import fake_repo as fake_repo  # the fixture, shared

import benchmarks.backends as backends
from benchmarks.__main__ import USAGE_ERROR, main
from benchmarks.grid import exit_status, format_summary, run_suite, summarize
from benchmarks.runner import execute_run, release_lock, run_status, try_lock
from benchmarks.suite import expand_grid, load_suite
from sb3_ddpg_ext import run_folder
from sb3_ddpg_ext.run_folder import STATUSES, read_run_json, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fake_train(tmp_path, monkeypatch):
    """The fake train module importable as ``fake_train`` (PYTHONPATH), with its start log ``train_log.jsonl``."""
    module_dir = tmp_path / "modules"
    module_dir.mkdir()
    (module_dir / "fake_train.py").write_text(FAKE_TRAIN)
    monkeypatch.setenv("PYTHONPATH", str(module_dir))
    log = tmp_path / "train_log.jsonl"
    monkeypatch.setenv("FAKE_TRAIN_LOG", str(log))
    return log


def _trainings(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------------ C1: run lock
def test_two_runners_racing_for_one_run_train_it_once(tmp_path, fake_train, monkeypatch):
    """Two `python -m benchmarks run` started together on a 1-run grid: one trains, the other skips it."""
    release = tmp_path / "release"
    monkeypatch.setenv("FAKE_TRAIN_WAIT", str(release))
    suite_file = write_suite(tmp_path / "race.yml", train_module="fake_train")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "benchmarks", "run", str(suite_file), "--out", str(out), "--no-progress"]
    runners = [
        subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    try:
        # The loser ends while the winner's training waits for `release`. The deadline only catches a hang: a runner
        # starts in ~5 s on an idle machine but took over 120 s with both cores busy (a study running beside it).
        deadline = time.monotonic() + 600
        while all(r.poll() is None for r in runners):
            assert time.monotonic() < deadline, "no runner skipped the run"
            time.sleep(0.1)
        (loser,) = [r for r in runners if r.poll() is not None]
        (winner,) = [r for r in runners if r is not loser]
        _, loser_err = loser.communicate()
        assert loser.returncode == 0, loser_err
        assert "running elsewhere" in loser_err
        assert winner.poll() is None
    finally:
        release.write_text("")
        for r in runners:
            r.communicate(timeout=120)
    assert winner.returncode == 0
    (spec,) = expand_grid(load_suite(suite_file))
    info = read_run_json(spec.run_dir(out))
    assert info is not None and info["status"] == "done" and info["attempt"] == 1
    assert info["worker_pid"] == winner.pid
    assert len(_trainings(fake_train)) == 1


def test_run_lock_is_exclusive_and_released_when_its_process_dies(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from benchmarks.runner import try_lock; "
            "assert try_lock(Path(sys.argv[1])) is not None; print('locked', flush=True); time.sleep(60)",
            str(run_dir),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        assert try_lock(run_dir) is None
        holder.kill()  # a stale lock: its process is gone, the OS released it
        holder.wait()
        fd = try_lock(run_dir)
        assert fd is not None
        # Two opens in one process exclude each other too (threads of the local backend).
        assert try_lock(run_dir) is None
        release_lock(fd)
        fd = try_lock(run_dir)
        assert fd is not None
        release_lock(fd)
    finally:
        holder.kill()
        holder.wait()


def test_execute_run_skips_a_run_locked_elsewhere(tmp_path, fake_train):
    (spec,) = expand_grid(load_suite(write_suite(tmp_path / "s.yml", train_module="fake_train")))
    run_dir = spec.run_dir(tmp_path / "out")
    run_dir.mkdir(parents=True)
    fd = try_lock(run_dir)
    assert fd is not None
    try:
        info = execute_run(spec, tmp_path / "out")
    finally:
        release_lock(fd)
    assert info["skipped"] and info["running_elsewhere"] and info["status"] == "running"
    assert not _trainings(fake_train) and not (run_dir / "run.json").exists()
    assert execute_run(spec, tmp_path / "out")["status"] == "done"
    assert len(_trainings(fake_train)) == 1


def test_execute_run_skips_a_run_another_live_runner_recorded(tmp_path, fake_train):
    """A run.json saying `running` with a live worker and child on this host (another runner that took the lock and
    wrote run.json first) is reported as running elsewhere too, whichever of the two checks sees it first."""
    import socket

    (spec,) = expand_grid(load_suite(write_suite(tmp_path / "s.yml", train_module="fake_train")))
    run_dir = spec.run_dir(tmp_path / "out")
    run_dir.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        record = {"status": "running", "host": socket.gethostname(), "worker_pid": other.pid, "child_pid": other.pid}
        (run_dir / "run.json").write_text(json.dumps(record))
        info = execute_run(spec, tmp_path / "out")
    finally:
        other.kill()
        other.wait()
    assert info["skipped"] and info["running_elsewhere"] and info["status"] == "running"
    assert not _trainings(fake_train)


# ------------------------------------------------------------------------------------- C2: corrupt run.json
def test_truncated_run_json_is_corrupt_and_its_logs_are_kept(tmp_path, fake_train, capsys):
    suite_file = write_suite(tmp_path / "s.yml", train_module="fake_train", seeds=2)
    specs = expand_grid(load_suite(suite_file))
    out = tmp_path / "out"
    assert all(execute_run(spec, out)["status"] == "done" for spec in specs)
    run_dir = specs[0].run_dir(out)
    evaluations = run_dir / "logs/ddpg/Pendulum-v1_1/evaluations.npz"
    digest = _sha(evaluations)
    text = (run_dir / "run.json").read_text()
    (run_dir / "run.json").write_text(text[: len(text) // 2])
    assert "corrupt" in STATUSES and run_status(run_dir) == "corrupt"
    summary = summarize(specs, out)
    assert summary.total["corrupt"] == 1 and summary.n_failed == 1 and exit_status(summary) == 1
    assert f"corrupt: {specs[0].key}: run.json exists but cannot be read" in format_summary(summary)
    assert main(["status", str(suite_file), "--out", str(out)]) == 1
    assert "corrupt" in capsys.readouterr().out
    # The next run redoes it and moves the earlier attempt aside, complete logs included.
    summary = run_suite(suite_file, out=out, use_tqdm=False, stream=io.StringIO())
    assert summary.total["done"] == 2 and exit_status(summary) == 0
    kept = run_dir / "attempts" / "1"
    assert _sha(kept / "logs/ddpg/Pendulum-v1_1/evaluations.npz") == digest
    assert (kept / "run.json").read_text() == text[: len(text) // 2]
    assert {p.name for p in kept.iterdir()} >= {"run.json", "logs", "hyperparams.yml", "command.txt", "stdout.txt"}
    info = read_run_json(run_dir)
    assert info is not None and info["status"] == "done" and info["attempt"] == 2
    assert sorted(p.name for p in (run_dir / "logs/ddpg").iterdir()) == ["Pendulum-v1_1"]
    assert len(_trainings(fake_train)) == 3  # the other run was not redone


def test_redone_failed_run_moves_every_earlier_attempt_aside(tmp_path, fake_train):
    (spec,) = expand_grid(load_suite(write_suite(tmp_path / "s.yml", train_module="fake_train")))
    run_dir = spec.run_dir(tmp_path / "out")
    run_dir.mkdir(parents=True)
    for attempt in (1, 2):
        write_json_atomic(run_dir / "run.json", {"status": "failed", "attempt": attempt})
        (run_dir / "logs").mkdir()
        (run_dir / "logs" / "marker").write_text(str(attempt))
        info = execute_run(spec, tmp_path / "out")
        assert info["status"] == "done" and info["attempt"] == attempt + 1
        (run_dir / "run.json").unlink()
        os.rename(run_dir / "logs", run_dir / f"logs_done_{attempt}")
    assert (run_dir / "attempts/1/logs/marker").read_text() == "1"
    assert (run_dir / "attempts/2/logs/marker").read_text() == "2"
    assert json.loads((run_dir / "attempts/2/run.json").read_text())["attempt"] == 2


# --------------------------------------------------------------------------------------- C3: output folder
@pytest.mark.parametrize("kind", ["file", "under_a_file", "read_only"])
def test_unusable_out_fails_before_starting(tmp_path, fake_train, capsys, kind):
    suite_file = write_suite(tmp_path / "s.yml", train_module="fake_train")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    if kind == "file":
        out = a_file
    elif kind == "under_a_file":
        out = a_file / "runs"  # ENOTDIR, also as root
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        out = tmp_path / "read_only"
        out.mkdir()
        out.chmod(0o555)
    for extra in ([], ["--dry-run"]):
        assert main(["run", str(suite_file), "--out", str(out), *extra]) == USAGE_ERROR
        err = capsys.readouterr().err
        assert err.startswith("error: output folder") and str(out) in err, err
    assert not _trainings(fake_train)
    if kind == "file":
        assert main(["status", str(suite_file), "--out", str(out)]) == USAGE_ERROR
        assert str(out) in capsys.readouterr().err


def test_write_json_atomic_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    write_json_atomic(path, {"status": "done"})

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_folder.os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        write_json_atomic(path, {"status": "failed"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    assert json.loads(path.read_text()) == {"status": "done"}


def test_failure_to_record_a_crashed_run_does_not_stop_the_grid(tmp_path, monkeypatch):
    specs = expand_grid(load_suite(write_suite(tmp_path / "s.yml", seeds=3)))
    out = tmp_path / "out"
    crashing = specs[0]
    (crashing.run_dir(out) / "run.json").mkdir(parents=True)  # run.json cannot be replaced

    def fake_execute_run(spec, out, redo_diverged=False):
        if spec.key == crashing.key:
            raise RuntimeError("worker crashed")
        time.sleep(0.2)
        return {**spec.identity(), "status": "done"}

    monkeypatch.setattr(backends, "execute_run", fake_execute_run)
    results: list[dict[str, Any]] = []
    backends.run_local(specs, out, 2, results.append)
    by_key = {f"{r['suite']}/{r['task']}/{r['variant']}/seed_{r['seed']}": r for r in results}
    assert len(results) == 3 and [by_key[s.key]["status"] for s in specs] == ["failed", "done", "done"]
    tail = by_key[crashing.key]["error_tail"]
    assert "worker crashed" in tail and "could not record the failure" in tail
    assert sorted(p.name for p in crashing.run_dir(out).iterdir()) == [".lock", "run.json"]


# ------------------------------------------------------------------------------------------ C4: suite files
@pytest.mark.parametrize(
    ("text", "key", "lines"),
    [
        ("seeds: 1\nseeds: 2\n", "seeds", "lines 1 and 2"),
        ("tasks:\n  Pendulum-v1: {n_timesteps: 200}\n  Pendulum-v1: null\n", "Pendulum-v1", "lines 2 and 3"),
        ("overrides: {batch_size: 32, batch_size: 64}\n", "batch_size", "lines 1 and 1"),
    ],
)
def test_duplicate_keys_in_a_suite_are_rejected(tmp_path, text, key, lines):
    base = yaml.safe_load(write_suite(tmp_path / "base.yml").read_text())
    body = yaml.safe_dump({k: v for k, v in base.items() if k not in ("seeds", "tasks", "overrides")}, sort_keys=False)
    defaults = {"seeds": "seeds: 1\n", "tasks": "tasks: [Pendulum-v1]\n", "overrides": ""}
    for name, default in defaults.items():
        if not text.startswith(f"{name}:"):
            body += default
    suite_file = tmp_path / "dup.yml"
    suite_file.write_text(text + body)
    with pytest.raises(ValueError, match="is given twice") as info:
        load_suite(suite_file)
    message = str(info.value)
    assert str(suite_file) in message and f"key {key!r}" in message and lines in message


def test_yaml_merge_keys_still_override(tmp_path):
    """An explicit key after a merge key ``<<:`` overrides the merged one: not a duplicate."""
    suite_file = write_suite(tmp_path / "merge.yml", tasks=...)
    suite_file.write_text(
        suite_file.read_text() + "tasks:\n  Pendulum-v1: &task {n_timesteps: 200, eval_freq: 200}\n"
        "  MountainCarContinuous-v0:\n    <<: *task\n    eval_freq: 100\n"
    )
    suite = load_suite(suite_file)
    assert [(t.env_id, t.eval_freq) for t in suite.tasks] == [("Pendulum-v1", 200), ("MountainCarContinuous-v0", 100)]


@pytest.mark.parametrize(
    ("entries", "match"),
    [
        (
            {"overrides": {"lerning_starts": 5}},
            r"key 'overrides' \(variants \['baseline'\]\): unknown key\(s\) \['lerning_starts'\]",
        ),
        (
            {"tasks": {"Pendulum-v1": {"overrides": {"bach_size": 5}}}},
            r"key 'tasks.Pendulum-v1.overrides' \(variants \['baseline'\]\): unknown key\(s\) \['bach_size'\]",
        ),
        # A key only our DDPG takes, on the zoo's DDPG.
        ({"overrides": {"target_policy_noise": 0.2}}, r"key 'overrides'.*\['target_policy_noise'\] for zoo algo 'ddpg'"),
        (
            {"algo": "ddpg", "variants": ["baseline", "tn_per_sample"]},
            r"key 'tasks.Pendulum-v1': variant 'tn_per_sample' \(key 'algo' 'ddpg'\).*for zoo algo 'ddpg'",
        ),
    ],
)
def test_unknown_override_keys_are_caught_when_the_suite_loads(tmp_path, entries, match):
    suite_file = write_suite(tmp_path / "keys.yml", **entries)
    with pytest.raises(ValueError, match=match) as info:
        load_suite(suite_file)
    assert str(suite_file) in str(info.value)


def test_override_keys_valid_for_the_runs_algo_load(tmp_path):
    suite = load_suite(write_suite(tmp_path / "ok.yml", algo="ddpg_ext", overrides={"target_policy_noise": 0.2}))
    assert [r.hyperparams["target_policy_noise"] for r in expand_grid(suite)] == [0.2]
    # null removes a key: allowed whatever the key.
    load_suite(write_suite(tmp_path / "null.yml", overrides={"no_such_key": None}))


# ---------------------------------------------------------------------------------------------- C5: dry run
def test_dry_run_commands_run_as_printed(fake_repo, tmp_path, monkeypatch, capsys):
    suite_file = write_suite(tmp_path / "dry.yml", train_module="fake_train", seeds=2)
    specs = expand_grid(load_suite(suite_file))
    monkeypatch.chdir(fake_repo)
    locked_dir = specs[1].run_dir("results")
    locked_dir.mkdir(parents=True)
    lock = try_lock(locked_dir)
    try:
        assert main(["run", str(suite_file), "--out", "results", "--dry-run"]) == 0
    finally:
        assert lock is not None
        release_lock(lock)
    lines = capsys.readouterr().err.splitlines()
    commands = [line for line in lines if "fake_train" in line]
    assert len(commands) == 1 and f"# {specs[1].key}: running elsewhere (locked)" in lines
    run_dir = specs[0].run_dir("results")
    assert (run_dir / "command.txt").read_text().strip() == commands[0]
    assert not (run_dir / "run.json").exists() and run_status(run_dir) == "pending"
    assert not (locked_dir / "hyperparams.yml").exists()  # a locked run's files are not touched
    # The printed command runs as printed from the repository root.
    subprocess.run(commands[0], shell=True, cwd=fake_repo, check=True, capture_output=True)
    assert (run_dir / "logs/ddpg/Pendulum-v1_1/evaluations.npz").is_file()
    assert "-conf results/dry/Pendulum-v1/baseline/seed_0/hyperparams.yml" in commands[0]
    assert shlex.split(commands[0])[3:6] == ["python", "-m", "fake_train"]


def test_a_dry_run_folder_is_not_an_attempt(tmp_path, fake_train):
    suite_file = write_suite(tmp_path / "s.yml", train_module="fake_train")
    out = tmp_path / "out"
    assert main(["run", str(suite_file), "--out", str(out), "--dry-run"]) == 0
    (spec,) = expand_grid(load_suite(suite_file))
    info = execute_run(spec, out)
    assert info["status"] == "done" and info["attempt"] == 1
    assert not (spec.run_dir(out) / "attempts").exists()
