"""Divergence guard: stop a training run whose losses, Q-values or weights become NaN/inf.

Used by every run of the benchmark runner (``benchmarks``): the runner appends
:class:`DivergenceGuardCallback` to the zoo ``callback`` hyperparameter and, when the run ends,
reads the marker file the callback wrote to mark the run ``diverged`` instead of ``done``.

The checks never touch a random number generator (the Q-value probe uses the most recent
transitions of the replay buffer and the current observation), so adding the guard does not
change the training trajectory of a run that does not diverge.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

__all__ = ["DIVERGENCE_MARKER", "DivergenceGuardCallback", "read_divergence_marker"]

#: Default file name of the marker written next to the run's logs.
DIVERGENCE_MARKER = "diverged.json"


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_divergence_marker(path: Union[str, os.PathLike]) -> Optional[dict[str, Any]]:
    """
    Read a marker written by :class:`DivergenceGuardCallback`.

    :param path: the marker file
    :return: its content, or ``None`` when the file does not exist
    """
    path = Path(path)
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)


class DivergenceGuardCallback(BaseCallback):
    """
    Stop training as soon as the run has diverged and record it in a marker file.

    Every ``check_freq`` calls of ``_on_step`` (i.e. environment steps of the vectorised env) it
    checks, in this order:

    1. every value the model recorded in its logger whose key contains ``"loss"``
       (``train/actor_loss``, ``train/critic_loss``, ...);
    2. every parameter of the policy (actor, critic and their targets);
    3. a Q-value probe: the critic evaluated at (s, a) for the last ``probe_size`` transitions of the
       replay buffer, and at (s, mu(s)) for the current observation.

    A value that is NaN or +-inf (or, if ``max_abs_q`` is set, a Q-value larger in absolute value)
    counts as divergence: the callback writes ``marker_path`` (JSON: step, reason, time), records
    ``divergence/diverged`` in the logger and returns ``False``, which stops ``learn()``.

    :param check_freq: check every ``check_freq`` calls (>= 1)
    :param marker_path: JSON file written on divergence; ``None``: ``<logger dir>/diverged.json`` if the
        model has a logger folder, otherwise no file (a warning is emitted)
    :param probe_size: number of most recent replay-buffer transitions used by the Q-value probe (>= 0)
    :param max_abs_q: optional bound on ``|Q|``; a larger finite Q-value also counts as divergence
    :param verbose: 0 silent, 1 print a message when divergence is detected
    """

    def __init__(
        self,
        check_freq: int = 100,
        marker_path: Optional[Union[str, os.PathLike]] = None,
        probe_size: int = 64,
        max_abs_q: Optional[float] = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if not isinstance(check_freq, int) or check_freq < 1:
            raise ValueError(f"check_freq must be an integer >= 1, got {check_freq!r}")
        if not isinstance(probe_size, int) or probe_size < 0:
            raise ValueError(f"probe_size must be an integer >= 0, got {probe_size!r}")
        if max_abs_q is not None and not (max_abs_q > 0 and math.isfinite(max_abs_q)):
            raise ValueError(f"max_abs_q must be a finite number > 0 or None, got {max_abs_q!r}")
        self.check_freq = check_freq
        self.marker_path = None if marker_path is None else Path(marker_path)
        self.probe_size = probe_size
        self.max_abs_q = max_abs_q
        self.diverged = False
        self.reason: Optional[str] = None

    # ------------------------------------------------------------------ checks
    def _bad(self, value: float) -> bool:
        return not math.isfinite(value)

    def _check_losses(self) -> Optional[str]:
        for key, value in self.logger.name_to_value.items():
            if "loss" not in key:
                continue
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if self._bad(value):
                return f"logged {key} = {value}"
        return None

    def _check_parameters(self) -> Optional[str]:
        for name, param in self.model.policy.named_parameters():
            if not bool(th.isfinite(param).all()):
                return f"non-finite parameter policy.{name}"
        return None

    def _probe_observations(self) -> list[Any]:
        """Observations for the Q probe: the current one and the latest transitions of the replay buffer."""
        batches: list[Any] = []
        last_obs = getattr(self.model, "_last_obs", None)
        if last_obs is not None:
            batches.append((last_obs, None))
        buffer = getattr(self.model, "replay_buffer", None)
        observations = getattr(buffer, "observations", None)
        if self.probe_size > 0 and buffer is not None and isinstance(observations, np.ndarray) and buffer.size() > 0:
            pos = buffer.pos if buffer.pos > 0 else buffer.buffer_size
            start = max(0, pos - self.probe_size)
            obs = observations[start:pos].reshape((-1, *observations.shape[2:]))
            actions = buffer.actions[start:pos].reshape((-1, *buffer.actions.shape[2:]))
            vec_normalize_env = getattr(self.model, "_vec_normalize_env", None)
            if vec_normalize_env is not None:
                obs = vec_normalize_env.normalize_obs(obs)
            batches.append((obs, actions))
        return batches

    def _check_q_values(self) -> Optional[str]:
        critic = getattr(self.model, "critic", None)
        policy = self.model.policy
        if critic is None:
            return None
        with th.no_grad():
            for obs, actions in self._probe_observations():
                obs_t, _ = policy.obs_to_tensor(obs)
                if actions is None:
                    act_t = policy._predict(obs_t, deterministic=True)
                    if not bool(th.isfinite(act_t).all()):
                        return "non-finite action mu(s) at the current observation"
                else:
                    act_t = th.as_tensor(actions, device=policy.device, dtype=th.float32)
                q_values = critic(obs_t, act_t)
                if isinstance(q_values, th.Tensor):
                    q_values = (q_values,)
                for q in q_values:
                    if not bool(th.isfinite(q).all()):
                        return "non-finite Q-value in the probe"
                    if self.max_abs_q is not None and float(q.abs().max()) > self.max_abs_q:
                        return f"|Q| = {float(q.abs().max()):.3g} > max_abs_q = {self.max_abs_q}"
        return None

    def check(self) -> Optional[str]:
        """
        Run all checks now.

        :return: a description of the first problem found, or ``None`` if everything is finite
        """
        for check in (self._check_losses, self._check_parameters, self._check_q_values):
            reason = check()
            if reason is not None:
                return reason
        return None

    # --------------------------------------------------------------- callback
    def _resolve_marker(self) -> Optional[Path]:
        if self.marker_path is not None:
            return self.marker_path
        log_dir = self.logger.get_dir() if self.logger is not None else None
        if log_dir:
            return Path(log_dir) / DIVERGENCE_MARKER
        return None

    def _on_step(self) -> bool:
        if self.n_calls % self.check_freq != 0:
            return True
        reason = self.check()
        if reason is None:
            return True
        self.diverged = True
        self.reason = reason
        self.logger.record("divergence/diverged", 1)
        marker = self._resolve_marker()
        payload = {"diverged": True, "reason": reason, "num_timesteps": int(self.num_timesteps), "time": time.time()}
        if marker is not None:
            _write_json_atomic(marker, payload)
        else:
            warnings.warn("DivergenceGuardCallback: no marker_path and no logger folder, divergence not written to disk")
        if self.verbose >= 1:
            print(f"DivergenceGuardCallback: run diverged at step {self.num_timesteps}: {reason}; stopping training")
        return False
