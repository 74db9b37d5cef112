"""benchmarks.publish: output tails and the absolute-path check of committed run folders."""

from __future__ import annotations

import json

import pytest

from benchmarks.publish import DROPPED_MARKER, absolute_paths, publish_run, tail_file


def _lines(n: int) -> str:
    return "".join(f"line {i}\n" for i in range(n))


def test_tail_file_keeps_last_lines_and_counts_the_rest(tmp_path):
    path = tmp_path / "stdout.txt"
    path.write_text(_lines(1000))
    assert tail_file(path, 10)
    text = path.read_text().splitlines()
    assert len(text) == 11
    assert text[0].startswith(DROPPED_MARKER) and "990 earlier lines" in text[0]
    assert f"({len(_lines(990).encode())} bytes)" in text[0]
    assert text[1:] == [f"line {i}" for i in range(990, 1000)]
    # idempotent: a second cut with the same limit changes nothing
    before = path.read_bytes()
    assert not tail_file(path, 10)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_tail_file_leaves_short_files_alone(tmp_path):
    path = tmp_path / "stderr.txt"
    path.write_text(_lines(5))
    assert not tail_file(path, 5)
    assert path.read_text() == _lines(5)
    with pytest.raises(ValueError, match="max_lines"):
        tail_file(path, 0)


@pytest.mark.parametrize(("status", "cut"), [("done", True), ("failed", True), ("diverged", True), ("running", False)])
def test_publish_run_only_touches_finished_runs(tmp_path, status, cut):
    (tmp_path / "run.json").write_text(json.dumps({"status": status, "host": "elsewhere"}))
    (tmp_path / "stdout.txt").write_text(_lines(300))
    changed = publish_run(tmp_path, max_lines=200)
    assert bool(changed) == cut
    assert len((tmp_path / "stdout.txt").read_text().splitlines()) == (201 if cut else 300)


def test_absolute_paths_finds_machine_paths_in_text_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "args.yml").write_text("conf_file: /work/main/results/x/hyperparams.yml\n")
    (tmp_path / "a" / "config.yml").write_text("marker_path: results/x/diverged.json\n")
    (tmp_path / "a" / "evaluations.npz").write_bytes(b"/work/main")  # binary: not read
    hits = absolute_paths(tmp_path, ["/work/main", ""])
    assert hits == [(tmp_path / "a" / "args.yml", "/work/main")]
