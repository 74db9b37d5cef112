"""
Prepare finished run folders for committing (the study's ``results/<suite>/``).

A run folder keeps everything the analysis and a re-run need (``run.json``, ``command.txt``, ``hyperparams.yml``,
the zoo's ``evaluations.npz``, ``0.monitor.csv``, ``config.yml`` and ``args.yml``). What is too large or machine
specific for a repository is handled here and by ``.gitignore``:

- ``stdout.txt`` / ``stderr.txt`` are cut to their last lines (the zoo's training table grows with the number of
  episodes: hundreds of kB for a Hopper run), with a first line saying how much was dropped;
- model zips and replay buffers are ignored by ``.gitignore`` (they stay on disk);
- :func:`absolute_paths` lists files that still mention an absolute path of this machine (a committed run folder
  must hold paths relative to the repository root only).

Only finished runs (``done``, ``diverged``, ``failed``) are touched; a running one is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Union

from sb3_ddpg_ext.run_folder import STDERR_FILE, STDOUT_FILE, write_text_atomic

__all__ = ["DROPPED_MARKER", "OUTPUT_FILES", "TEXT_SUFFIXES", "absolute_paths", "publish_run", "tail_file"]

#: Output files of a run that are cut to their tail.
OUTPUT_FILES = (STDOUT_FILE, STDERR_FILE)
#: Start of the first line of a cut file.
DROPPED_MARKER = "[benchmarks.publish: "
#: Suffixes of the text files :func:`absolute_paths` reads.
TEXT_SUFFIXES = (".txt", ".json", ".yml", ".yaml", ".csv")


def tail_file(path: Union[str, os.PathLike], max_lines: int) -> bool:
    """
    Cut a text file to its last ``max_lines`` lines in place (atomically), with a first line saying how many lines
    and bytes were dropped. A file that is already short enough (or was cut before) is left unchanged.

    :param path: The file.
    :param max_lines: Lines kept (>= 1).
    :return: Whether the file was changed.
    """
    if max_lines < 1:
        raise ValueError(f"max_lines must be >= 1, got {max_lines}")
    path = Path(path)
    data = path.read_bytes()
    lines = data.decode(errors="replace").splitlines(keepends=True)
    body = lines[1:] if lines and lines[0].startswith(DROPPED_MARKER) else lines
    if len(body) <= max_lines:
        return False
    kept = body[-max_lines:]
    dropped = body[:-max_lines]
    dropped_bytes = sum(len(line.encode()) for line in dropped)
    header = f"{DROPPED_MARKER}{len(dropped)} earlier lines ({dropped_bytes} bytes) dropped; the last {max_lines} follow]\n"
    if lines and lines[0].startswith(DROPPED_MARKER):
        header = lines[0]  # cut again: keep the first count (what the run wrote is already gone)
    write_text_atomic(path, header + "".join(kept))
    return True


def publish_run(run_dir: Union[str, os.PathLike], max_lines: int = 200) -> list[Path]:
    """
    Cut the output files of a finished run folder to their tails (see :func:`tail_file`).

    :param run_dir: The run folder (``<out>/<suite>/<task>/<variant>/seed_<s>``).
    :param max_lines: Lines kept per output file.
    :return: The files that were changed (none if the run is not finished).
    """
    from .runner import run_status

    run_dir = Path(run_dir)
    if run_status(run_dir) not in ("done", "diverged", "failed"):
        return []
    changed = []
    for name in OUTPUT_FILES:
        path = run_dir / name
        if path.is_file() and tail_file(path, max_lines):
            changed.append(path)
    return changed


def absolute_paths(root: Union[str, os.PathLike], needles: Iterable[str]) -> list[tuple[Path, str]]:
    """
    Text files under ``root`` that contain one of ``needles`` (absolute paths of this machine, e.g. the repository
    root and the home folder).

    :param root: Folder to scan.
    :param needles: Strings to look for.
    :return: ``(file, needle)`` for each hit (first needle per file).
    """
    needles = [n for n in needles if n]
    hits = []
    for path in sorted(Path(root).rglob("*")):
        if not path.is_file() or path.suffix not in TEXT_SUFFIXES:
            continue
        text = path.read_text(errors="replace")
        for needle in needles:
            if needle in text:
                hits.append((path, needle))
                break
    return hits
