"""
Optional dependencies: which ``pip install "sb3_ddpg_ext[<extra>]"`` brings a missing module (the extras of
``setup.cfg``: ``zoo``, ``mujoco``, ``bullet``, ``box2d``, ``analysis``, ``tensorboard``, ``ray``, ``slurm``).

:func:`import_optional` imports a module of an extra and, when it (or a module it imports) is missing, raises a
``ModuleNotFoundError`` that names the extra to install instead of a bare one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

__all__ = ["EXTRAS", "import_optional", "install_hint", "optional_dependency"]

#: Top-level module name -> the extra of ``sb3_ddpg_ext`` that installs it.
EXTRAS: dict[str, str] = {
    "rl_zoo3": "zoo",
    "sb3_contrib": "zoo",
    "optuna": "zoo",
    "mujoco": "mujoco",
    "pybullet": "bullet",
    "pybullet_envs_gymnasium": "bullet",
    "Box2D": "box2d",
    "pygame": "box2d",
    "pandas": "analysis",
    "matplotlib": "analysis",
    "seaborn": "analysis",
    "tensorboard": "tensorboard",
    "ray": "ray",
    "submitit": "slurm",
}


def install_hint(module: str) -> str | None:
    """
    The install command of the extra that brings ``module``.

    :param module: A (dotted) module name.
    :return: e.g. ``'pip install "sb3_ddpg_ext[zoo]"'``; ``None`` when no extra brings it.
    """
    extra = EXTRAS.get(module.split(".")[0])
    return None if extra is None else f'pip install "sb3_ddpg_ext[{extra}]"'


@contextmanager
def optional_dependency(purpose: str) -> Iterator[None]:
    """
    Context manager: a ``ModuleNotFoundError`` of a module that an extra brings is raised again naming the extra.

    :param purpose: What needs the module, for the message (e.g. ``"the rl-zoo3 integration"``).
    :raises ModuleNotFoundError: ``"<purpose> needs <module>, which is not installed: pip install ..."``.
    """
    try:
        yield
    except ModuleNotFoundError as e:
        hint = install_hint(e.name or "")
        if hint is None:
            raise
        top = (e.name or "").split(".")[0]
        raise ModuleNotFoundError(f"{purpose} needs {top!r}, which is not installed: {hint}", name=e.name) from e


def import_optional(module: str, purpose: str) -> ModuleType:
    """
    Import a module of an optional dependency.

    :param module: Dotted module name, e.g. ``"rl_zoo3.utils"``.
    :param purpose: What needs it, for the message.
    :return: The module.
    :raises ModuleNotFoundError: naming the extra to install, when it or a module it imports is missing.
    """
    with optional_dependency(purpose):
        return importlib.import_module(module)
