"""Building blocks of the fast DDPG/TD3 update path (see :class:`sb3_ddpg_ext.ddpg.DDPG`, ``update_mode``).

Each block is exact or its deviation is stated:

- :class:`TorchReplaySampler`: samples an SB3 :class:`~stable_baselines3.common.buffers.ReplayBuffer` through
  zero-copy torch views of its numpy arrays, with one ``index_select`` per field. It draws the indices with the same
  ``np.random.randint`` calls as SB3, so it returns the very same batch (bit for bit), with less Python overhead.
  The buffer itself is untouched (same class, same pickle, ``save_replay_buffer`` compatible).
- :func:`foreach_polyak`: SB3's ``polyak_update`` with two ``torch._foreach_*`` calls (same arithmetic, same bits).
- :func:`frozen`: switches ``requires_grad`` off for the critic's own parameters during the actor's backward, so
  the critic weight gradients SB3 computes and then discards are never computed (the actor's gradient is the same).
- :func:`fused_adam`: runs ``torch.optim.Adam`` with ``fused=True`` (one kernel for all tensors). Not bit-exact
  with single-tensor Adam: differences are at float32 rounding level (see ``tests/test_fast.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Optional

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from torch import nn

__all__ = ["TorchReplaySampler", "foreach_polyak", "frozen", "fused_adam", "own_parameters", "supports_fast_sampling"]


def supports_fast_sampling(buffer: Any, vec_normalize_env: Any = None) -> bool:
    """
    Whether :class:`TorchReplaySampler` reproduces ``buffer.sample`` exactly: a plain SB3 ``ReplayBuffer`` (not a
    subclass such as ``NStepReplayBuffer``/``HerReplayBuffer``/``DictReplayBuffer``, which sample differently) and no
    ``VecNormalize`` (whose normalisation happens at sampling time).

    :param buffer: The replay buffer.
    :param vec_normalize_env: The algorithm's ``_vec_normalize_env``.
    :return: True if the fast sampler may be used.
    """
    return type(buffer) is ReplayBuffer and vec_normalize_env is None


class TorchReplaySampler:
    """
    Fast, exact sampler for an SB3 :class:`~stable_baselines3.common.buffers.ReplayBuffer`.

    The buffer's numpy arrays are viewed as torch tensors once (``torch.from_numpy``: shared memory, no copy); a
    batch is one ``np.random.randint`` for the rows and one for the env indices (the same calls, in the same order,
    as ``ReplayBuffer.sample``, so the global numpy RNG stream and the batch are identical) and one ``index_select``
    per field.

    :param buffer: A plain ``ReplayBuffer`` (see :func:`supports_fast_sampling`).
    :param device: Device of the returned tensors (the buffer's device by default).
    """

    def __init__(self, buffer: ReplayBuffer, device: Optional[th.device] = None):
        if not supports_fast_sampling(buffer):
            raise ValueError(f"buffer: TorchReplaySampler needs a plain stable_baselines3 ReplayBuffer, got {type(buffer)!r}")
        self.buffer = buffer
        self.device = th.device(device) if device is not None else th.device(buffer.device)
        n = buffer.buffer_size * buffer.n_envs
        self._obs = th.from_numpy(buffer.observations).reshape(n, *buffer.obs_shape)
        self._next_obs = (
            None if buffer.optimize_memory_usage else th.from_numpy(buffer.next_observations).reshape(n, *buffer.obs_shape)
        )
        self._actions = th.from_numpy(buffer.actions).reshape(n, buffer.action_dim)
        self._rewards = th.from_numpy(buffer.rewards).reshape(n)
        self._dones = th.from_numpy(buffer.dones).reshape(n)
        self._timeouts = th.from_numpy(buffer.timeouts).reshape(n)
        self._arrays = (buffer.observations, buffer.actions, buffer.rewards, buffer.dones, buffer.timeouts)

    def is_valid_for(self, buffer: Any) -> bool:
        """
        :param buffer: A replay buffer.
        :return: Whether this sampler still views ``buffer``'s current arrays.
        """
        return buffer is self.buffer and all(
            a is b
            for a, b in zip(self._arrays, (buffer.observations, buffer.actions, buffer.rewards, buffer.dones, buffer.timeouts))
        )

    def sample_indices(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """
        Draw ``(batch_inds, env_indices)`` exactly as ``ReplayBuffer.sample`` does.

        :param batch_size: Number of transitions.
        :return: Row indices and env indices, each of shape ``(batch_size,)``.
        """
        buf = self.buffer
        if buf.optimize_memory_usage:
            if buf.full:
                batch_inds = (np.random.randint(1, buf.buffer_size, size=batch_size) + buf.pos) % buf.buffer_size
            else:
                batch_inds = np.random.randint(0, buf.pos, size=batch_size)
        else:
            upper_bound = buf.buffer_size if buf.full else buf.pos
            batch_inds = np.random.randint(0, upper_bound, size=batch_size)
        env_indices = np.random.randint(0, high=buf.n_envs, size=(len(batch_inds),))
        return batch_inds, env_indices

    def sample(self, batch_size: int) -> ReplayBufferSamples:
        """
        Sample a batch; same values (bit for bit) and same RNG consumption as ``ReplayBuffer.sample(batch_size)``.

        :param batch_size: Number of transitions.
        :return: The batch as SB3 ``ReplayBufferSamples``.
        """
        buf = self.buffer
        batch_inds, env_indices = self.sample_indices(batch_size)
        idx = th.from_numpy(batch_inds * buf.n_envs + env_indices)
        if self._next_obs is None:
            next_idx = th.from_numpy(((batch_inds + 1) % buf.buffer_size) * buf.n_envs + env_indices)
            next_obs = self._obs.index_select(0, next_idx)
        else:
            next_obs = self._next_obs.index_select(0, idx)
        dones = self._dones.index_select(0, idx) * (1 - self._timeouts.index_select(0, idx))
        data: tuple[th.Tensor, ...] = (
            self._obs.index_select(0, idx),
            self._actions.index_select(0, idx),
            next_obs,
            dones.reshape(-1, 1),
            self._rewards.index_select(0, idx).reshape(-1, 1),
        )
        if self.device.type != "cpu":
            data = tuple(t.to(self.device, non_blocking=True) for t in data)
        return ReplayBufferSamples(*data)


def foreach_polyak(params: Sequence[th.Tensor], target_params: Sequence[th.Tensor], tau: float) -> None:
    """
    Polyak update ``target <- (1 - tau) * target + tau * param`` in place, with the same two operations per tensor
    as SB3's :func:`~stable_baselines3.common.utils.polyak_update` (``mul_(1 - tau)`` then ``add(alpha=tau)``), batched
    with ``torch._foreach_mul_`` / ``torch._foreach_add_``: same result bit for bit, fewer Python calls.

    :param params: Source tensors.
    :param target_params: Target tensors (same length and shapes).
    :param tau: Soft update coefficient.
    """
    if len(params) != len(target_params):
        raise ValueError(f"params/target_params: lengths differ ({len(params)} vs {len(target_params)})")
    if len(params) == 0:
        return
    with th.no_grad():
        th._foreach_mul_(list(target_params), 1 - tau)
        th._foreach_add_(list(target_params), list(params), alpha=tau)


def own_parameters(module: nn.Module, exclude: Iterable[nn.Parameter] = ()) -> list[nn.Parameter]:
    """
    ``module``'s parameters that are not in ``exclude`` (e.g. the critic's parameters minus a features extractor
    shared with the actor, which must keep receiving the actor's gradient).

    :param module: A module.
    :param exclude: Parameters to leave out (compared by identity).
    :return: The remaining parameters, in ``module.parameters()`` order.
    """
    excluded = {id(p) for p in exclude}
    return [p for p in module.parameters() if id(p) not in excluded]


@contextlib.contextmanager
def frozen(params: Sequence[nn.Parameter]) -> Iterator[None]:
    """
    Temporarily set ``requires_grad=False`` on the given parameters (those that had it on), then restore.

    :param params: Parameters to freeze.
    """
    changed = [p for p in params if p.requires_grad]
    for p in changed:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in changed:
            p.requires_grad_(True)


def _can_fuse(optimizer: th.optim.Optimizer) -> bool:
    if type(optimizer) not in (th.optim.Adam, th.optim.AdamW):
        return False
    for group in optimizer.param_groups:
        if group.get("differentiable", False) or group.get("capturable", False):
            return False
        for p in group["params"]:
            # CPU only: on CUDA the existing ``step`` state of a non-fused Adam lives on the CPU, which fused rejects
            if p.dtype not in (th.float32, th.float64) or p.device.type != "cpu":
                return False
    return True


@contextlib.contextmanager
def fused_adam(optimizers: Sequence[th.optim.Optimizer], enabled: bool = True) -> Iterator[list[bool]]:
    """
    Temporarily run ``torch.optim.Adam``/``AdamW`` optimizers with ``fused=True`` (``foreach=False``), then restore
    their param-group flags (so a saved optimizer state carries the user's settings, e.g. SB3's defaults).
    Optimizers of another type, or with options the fused kernel lacks, are left as they are.

    :param optimizers: The optimizers.
    :param enabled: If False, do nothing.
    :return: (yields) for each optimizer, whether it runs fused.
    """
    saved: list[list[tuple[Any, Any]]] = []
    status: list[bool] = []
    for opt in optimizers:
        fuse = enabled and _can_fuse(opt)
        status.append(fuse)
        saved.append([(g.get("fused"), g.get("foreach")) for g in opt.param_groups])
        if fuse:
            for g in opt.param_groups:
                g["fused"] = True
                g["foreach"] = False
    try:
        yield status
    finally:
        for opt, flags in zip(optimizers, saved):
            for g, (fused_flag, foreach_flag) in zip(opt.param_groups, flags):
                g["fused"] = fused_flag
                g["foreach"] = foreach_flag
