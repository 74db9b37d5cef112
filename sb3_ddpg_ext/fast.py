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
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Optional, Union, cast

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from torch import nn

__all__ = [
    "ManualMLP",
    "ManualNetworks",
    "ModuleHooks",
    "TorchReplaySampler",
    "foreach_polyak",
    "frozen",
    "fused_adam",
    "fused_adam_step",
    "hooked_module",
    "lerp_polyak",
    "manual_networks",
    "own_parameters",
    "supports_fast_sampling",
]


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


def _paired_tensors(params: Sequence[th.Tensor], target_params: Sequence[th.Tensor]) -> bool:
    """:return: Whether there is anything to update; raises if the two lists differ in length."""
    if len(params) != len(target_params):
        raise ValueError(f"params/target_params: lengths differ ({len(params)} vs {len(target_params)})")
    return len(params) > 0


def foreach_polyak(params: Sequence[th.Tensor], target_params: Sequence[th.Tensor], tau: float) -> None:
    """
    Polyak update ``target <- (1 - tau) * target + tau * param`` in place, with the same two operations per tensor
    as SB3's :func:`~stable_baselines3.common.utils.polyak_update` (``mul_(1 - tau)`` then ``add(alpha=tau)``), batched
    with ``torch._foreach_mul_`` / ``torch._foreach_add_``: same result bit for bit, fewer Python calls.

    :param params: Source tensors.
    :param target_params: Target tensors (same length and shapes).
    :param tau: Soft update coefficient.
    """
    if not _paired_tensors(params, target_params):
        return
    with th.no_grad():
        th._foreach_mul_(list(target_params), 1 - tau)
        th._foreach_add_(list(target_params), list(params), alpha=tau)


def lerp_polyak(params: Sequence[th.Tensor], target_params: Sequence[th.Tensor], tau: float) -> None:
    """
    Polyak update ``target <- target + tau * (param - target)`` in place with one ``torch._foreach_lerp_`` call:
    the same update as :func:`foreach_polyak` in one pass instead of two, equal up to float32 rounding (not bit for
    bit). Used by the fast path, which puts all networks' tensors in one call.

    :param params: Source tensors.
    :param target_params: Target tensors (same length and shapes).
    :param tau: Soft update coefficient.
    """
    if not _paired_tensors(params, target_params):
        return
    with th.no_grad():
        th._foreach_lerp_(list(target_params), list(params), tau)


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


class _AdamCalls(NamedTuple):
    """The kernel arguments of one optimizer (per param group), and what they were gathered from."""

    state: Any  # the optimizer.state dict object (load_state_dict replaces it)
    param_groups: Any  # the optimizer.param_groups list object
    grads: list[th.Tensor]  # every parameter's .grad (compared by identity)
    flags: tuple[tuple[bool, bool, bool], ...]  # see _group_flags
    # per param group: (group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
    calls: list[tuple[Any, ...]]


_ADAM_CALLS: weakref.WeakKeyDictionary[th.optim.Optimizer, _AdamCalls] = weakref.WeakKeyDictionary()


def _group_flags(optimizer: th.optim.Optimizer) -> tuple[tuple[bool, bool, bool], ...]:
    return tuple(
        (bool(g["amsgrad"]), bool(g.get("capturable", False)), bool(g.get("differentiable", False)))
        for g in optimizer.param_groups
    )


def _gather_adam_calls(optimizer: th.optim.Optimizer) -> Optional[_AdamCalls]:
    calls = []
    for group in optimizer.param_groups:
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = optimizer.state.get(p)
            if not state or not th.is_tensor(state.get("step")) or "exp_avg" not in state:
                return None
            if group["amsgrad"] and "max_exp_avg_sq" not in state:
                return None
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            steps.append(state["step"])
        if params:
            calls.append((group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps))
    return _AdamCalls(
        optimizer.state,
        optimizer.param_groups,
        [p.grad for g in optimizer.param_groups for p in g["params"]],  # type: ignore[misc]
        _group_flags(optimizer),
        calls,
    )


def _adam_calls_valid(optimizer: th.optim.Optimizer, cached: _AdamCalls) -> bool:
    """The gathered tensors are still the optimizer's: same state and group containers, same .grad tensors."""
    if cached.state is not optimizer.state or cached.param_groups is not optimizer.param_groups:
        return False
    if cached.flags != _group_flags(optimizer):
        return False
    grads = cached.grads
    i = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            if i >= len(grads) or p.grad is not grads[i]:
                return False
            i += 1
    return i == len(grads)


def fused_adam_step(optimizer: th.optim.Optimizer) -> bool:
    """
    One ``Adam``/``AdamW`` step with the fused kernel called directly: the same two calls ``optimizer.step()`` makes
    with ``fused=True`` (``_foreach_add_`` on the step counters, then ``_fused_adam_``/``_fused_adamw_`` with the
    param group's hyperparameters), so the result is the same bit for bit, without ``Optimizer.step``'s Python
    overhead (~0.3 ms per call here, as much as the kernel itself for a [400, 300] MLP). The kernel arguments are
    gathered once per optimizer and re-gathered when its state, param groups or any ``.grad`` tensor changes.

    Nothing is done (and False returned) when the optimizer is not one :func:`fused_adam` would fuse, has step
    hooks, or has not taken its first step yet (its state is created by ``optimizer.step()``); the caller then calls
    ``optimizer.step()``.

    :param optimizer: The optimizer; parameters without ``.grad`` are skipped, as ``step()`` does.
    :return: Whether the step was taken.
    """
    if optimizer._optimizer_step_pre_hooks or optimizer._optimizer_step_post_hooks:  # type: ignore[attr-defined]
        return False
    from torch.optim import optimizer as optimizer_module

    if optimizer_module._global_optimizer_pre_hooks or optimizer_module._global_optimizer_post_hooks:
        return False
    cached = _ADAM_CALLS.get(optimizer)
    if cached is None or not _adam_calls_valid(optimizer, cached):
        if not _can_fuse(optimizer):
            return False
        cached = _gather_adam_calls(optimizer)
        if cached is None:
            return False
        _ADAM_CALLS[optimizer] = cached
    for group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps in cached.calls:
        beta1, beta2 = group["betas"]
        decoupled = group.get("decoupled_weight_decay", type(optimizer) is th.optim.AdamW)
        kernel = th._fused_adamw_ if decoupled else th._fused_adam_
        th._foreach_add_(steps, 1)
        kernel(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            max_exp_avg_sqs,
            steps,
            amsgrad=group["amsgrad"],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            grad_scale=None,
            found_inf=None,
        )
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


# ---------------------------------------------------------------------------------------------------------------------
# Hand-written forward/backward of the MLPs (no autograd)


class ManualMLP:
    """
    Forward and hand-written backward of an SB3 MLP ``nn.Sequential`` of the form
    ``(Linear [-> LayerNorm] -> ReLU)* -> Linear [-> Tanh]`` (SB3's ``create_mlp``, with our LayerNorm option), on the
    module's own parameters, without autograd.

    The backward uses the kernels autograd would use (``addmm``/``mm``, ``threshold_backward``, ``tanh_backward``,
    ``native_layer_norm_backward``) but computes only what the DDPG update needs: no weight gradients when the
    network is only differentiated through (the critic in the actor step) and, for the input gradient, only the
    requested input columns (the action part of the critic's input). Weight gradients are written into each
    parameter's ``.grad`` (allocated once, then overwritten in place), ready for the optimizer's ``step()``.

    :param net: The ``nn.Sequential`` (see :meth:`parse` for the accepted layouts).
    """

    def __init__(self, net: nn.Sequential):
        layers = self.parse(net)
        if layers is None:
            raise ValueError(f"net: not a (Linear [LayerNorm] ReLU)* Linear [Tanh] sequence: {net}")
        self.hidden, self.output, self.squash = layers
        self._cache_layers()

    @staticmethod
    def parse(net: Any) -> Optional[tuple[list[tuple[nn.Linear, Optional[nn.LayerNorm]]], nn.Linear, bool]]:
        """
        :param net: A module.
        :return: ``(hidden, output, squash)``: the hidden ``(Linear, LayerNorm or None)`` pairs, the output
            ``Linear`` and whether a ``Tanh`` follows it; None if ``net`` has another layout.
        """
        if type(net) is not nn.Sequential:
            return None
        modules = list(net)
        squash = len(modules) > 0 and type(modules[-1]) is nn.Tanh
        if squash:
            modules = modules[:-1]
        if not modules or type(modules[-1]) is not nn.Linear:
            return None
        output = cast(nn.Linear, modules.pop())
        hidden: list[tuple[nn.Linear, Optional[nn.LayerNorm]]] = []
        i = 0
        while i < len(modules):
            if type(modules[i]) is not nn.Linear or modules[i].bias is None:
                return None
            lin = cast(nn.Linear, modules[i])
            i += 1
            norm: Optional[nn.LayerNorm] = None
            if i < len(modules) and type(modules[i]) is nn.LayerNorm:
                norm = cast(nn.LayerNorm, modules[i])
                if norm.weight is None or norm.bias is None or len(norm.normalized_shape) != 1:
                    return None
                i += 1
            if i >= len(modules) or type(modules[i]) is not nn.ReLU:
                return None
            i += 1
            hidden.append((lin, norm))
        if output.bias is None:
            return None
        return hidden, output, squash

    def parameters(self) -> list[nn.Parameter]:
        """:return: The parameters the backward writes gradients for (weights, biases, LayerNorm gains/biases)."""
        params: list[nn.Parameter] = []
        for weight, bias, norm in self._layers:
            params += [weight, bias]
            if norm is not None:
                params += [norm[0], norm[1]]
        return params

    def _cache_layers(self) -> None:
        # Plain references to the parameters (nn.Module.__getattr__ costs ~1 us per access, ~70 per update):
        # (weight, bias, (gain, bias, normalized_shape, eps) or None) per layer, output layer last.
        self._layers: list[tuple[nn.Parameter, nn.Parameter, Optional[tuple[nn.Parameter, nn.Parameter, Any, float]]]] = []
        for lin, norm in self.hidden:
            ln = None if norm is None else (norm.weight, norm.bias, norm.normalized_shape, norm.eps)
            self._layers.append((lin.weight, lin.bias, ln))  # type: ignore[arg-type]
        self._layers.append((self.output.weight, self.output.bias, None))  # type: ignore[arg-type]

    def forward(self, x: th.Tensor) -> tuple[th.Tensor, list[Any]]:
        """
        :param x: Input, shape ``(batch, in_features)``.
        :return: The output and the tensors the backward needs.
        """
        saved: list[Any] = [x]
        h = x
        for weight, bias, norm in self._layers[:-1]:
            z = th.addmm(bias, h, weight.t())
            if norm is not None:
                z_in = z
                z, mean, rstd = th.native_layer_norm(z_in, norm[2], norm[0], norm[1], norm[3])
                saved.append((z_in, mean, rstd))
            h = z.relu_()
            saved.append(h)
        weight, bias, _ = self._layers[-1]
        out = th.addmm(bias, h, weight.t())
        if self.squash:
            out = out.tanh_()
        saved.append(out)
        return out, saved

    def forward_only(self, x: th.Tensor) -> th.Tensor:
        """
        Forward pass, output only (e.g. the target networks): :meth:`forward` without its saved tensors.

        :param x: Input, shape ``(batch, in_features)``.
        :return: The output.
        """
        return self.forward(x)[0]

    @staticmethod
    def _grad_buffer(param: nn.Parameter) -> th.Tensor:
        grad = param.grad
        if grad is None or grad.shape != param.shape:
            grad = param.grad = th.empty_like(param)
        return grad

    def backward(
        self, grad_out: th.Tensor, saved: list[Any], weight_grads: bool = True, input_columns: Optional[slice] = None
    ) -> Optional[th.Tensor]:
        """
        Backward pass from ``grad_out`` (gradient of the loss w.r.t. the output).

        :param grad_out: Shape of the output.
        :param saved: The second value returned by :meth:`forward`.
        :param weight_grads: Write the parameters' gradients into their ``.grad`` (otherwise only differentiate
            through the network).
        :param input_columns: If given, return the gradient w.r.t. these input columns; else return None.
        :return: The input gradient (``input_columns``) or None.
        """
        g = grad_out
        if self.squash:
            g = _tanh_backward(g, saved[-1])
        pos = len(saved) - 2  # saved = [x, (ln)?, h, (ln)?, h, ..., out]
        layers = self._layers
        for k in range(len(layers) - 1, -1, -1):
            weight, bias, _ = layers[k]
            inp = saved[pos]
            if weight_grads:
                th.mm(g.t(), inp, out=self._grad_buffer(weight))
                th.sum(g, 0, out=self._grad_buffer(bias))
            if k == 0:
                return None if input_columns is None else th.mm(g, weight[:, input_columns])
            g = g.mm(weight)
            # inp is the ReLU output of hidden layer k - 1: ReLU backward, then LayerNorm backward if any
            g = _threshold_backward(g, inp, 0)
            pos -= 1
            norm = layers[k - 1][2]
            if norm is not None:
                z_in, mean, rstd = saved[pos]
                g, g_gain, g_bias = _layer_norm_backward(
                    g, z_in, norm[2], mean, rstd, norm[0], norm[1], [True, weight_grads, weight_grads]
                )
                if weight_grads:
                    self._grad_buffer(norm[0]).copy_(g_gain)
                    self._grad_buffer(norm[1]).copy_(g_bias)
                pos -= 1
        return None  # pragma: no cover (the loop returns at k == 0)


_tanh_backward = th.ops.aten.tanh_backward.default
_threshold_backward = th.ops.aten.threshold_backward.default
_layer_norm_backward = th.ops.aten.native_layer_norm_backward.default


class ManualNetworks(NamedTuple):
    """The actor, critic and target networks of a TD3 policy, as :class:`ManualMLP`."""

    actor: ManualMLP
    critics: list[ManualMLP]
    actor_target: ManualMLP
    critic_targets: list[ManualMLP]
    obs_dim: int


_GLOBAL_MODULE_HOOKS = (
    "_global_forward_hooks",
    "_global_forward_pre_hooks",
    "_global_backward_hooks",
    "_global_backward_pre_hooks",
)


_MODULE_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _global_module_hooks() -> bool:
    from torch.nn.modules import module as module_module

    return any(getattr(module_module, name, None) for name in _GLOBAL_MODULE_HOOKS)


class ModuleHooks:
    """
    Repeated check for forward/backward hooks on a fixed set of modules, in ~1 us instead of a walk over every
    module's attributes: the hook dicts are gathered once (``register_*_hook`` adds to these dict objects in place, so
    a hook registered later is seen), plus torch's global module hooks.

    :param named_modules: ``(name, module)`` pairs, e.g. ``list(policy.named_modules())``.
    """

    def __init__(self, named_modules: Iterable[tuple[str, nn.Module]]):
        self.named_modules = list(named_modules)
        self._dicts = [
            hooks
            for _, module in self.named_modules
            for name in _MODULE_HOOK_DICTS
            if (hooks := getattr(module, name, None)) is not None
        ]

    def first_hooked(self) -> Optional[str]:
        """:return: The name of the first hooked module, ``"(global module hooks)"``, or None (no hooks)."""
        if not _global_module_hooks() and not any(self._dicts):
            return None
        return _first_hooked(self.named_modules)


def hooked_module(policy: nn.Module, modules: Optional[Sequence[tuple[str, nn.Module]]] = None) -> Optional[str]:
    """
    :param policy: A module.
    :param modules: ``list(policy.named_modules())``, if the caller keeps it (the walk is most of the cost).
    :return: The name of the first module in ``policy`` with forward/backward hooks (which the hand-written update
        would skip), ``"(global module hooks)"`` if global module hooks are registered, or None.
    """
    return _first_hooked(policy.named_modules() if modules is None else modules)


def _first_hooked(named_modules: Iterable[tuple[str, nn.Module]]) -> Optional[str]:
    if _global_module_hooks():
        return "(global module hooks)"
    for name, module in named_modules:
        if any(getattr(module, hooks, None) for hooks in _MODULE_HOOK_DICTS):
            return name or type(module).__name__
    return None


def manual_networks(policy: Any) -> Union[ManualNetworks, str]:
    """
    The hand-written update's view of a policy, or why it does not cover it (then the caller uses autograd).

    Covered: an SB3 ``TD3Policy`` (``MlpPolicy`` or our ``LnMlpPolicy`` without ``critic_late_action``) with a
    ``FlattenExtractor`` on a float ``Box`` observation space (the features are then the flattened observation),
    ReLU MLPs with or without LayerNorm, any number of critics, float32 parameters, optimizers that hold exactly
    the actor's / the critic's parameters, and no forward/backward hooks on the policy's modules.

    :param policy: The policy (``model.policy``).
    :return: The networks, or a message naming what is not covered.
    """
    from gymnasium import spaces
    from stable_baselines3.common.torch_layers import FlattenExtractor
    from stable_baselines3.td3.policies import TD3Policy

    if not isinstance(policy, TD3Policy):
        return f"policy {type(policy).__name__} is not a TD3Policy"
    obs_space = policy.observation_space
    if not isinstance(obs_space, spaces.Box) or not np.issubdtype(obs_space.dtype, np.floating):
        return f"observation space {obs_space} is not a float Box"
    actor, critic = policy.actor, policy.critic
    actor_target, critic_target = policy.actor_target, policy.critic_target
    for name, net in (("actor", actor), ("critic", critic), ("actor_target", actor_target), ("critic_target", critic_target)):
        if type(net.features_extractor) is not FlattenExtractor:
            return f"{name} features extractor {type(net.features_extractor).__name__} is not a FlattenExtractor"
    actors = []
    for name, net in (("actor", actor), ("actor_target", actor_target)):
        mu = getattr(net, "mu", None)
        layout = ManualMLP.parse(mu)
        if layout is None or not layout[2]:
            return f"{name} network is not (Linear [LayerNorm] ReLU)* Linear Tanh: {mu}"
        actors.append(ManualMLP(cast(nn.Sequential, mu)))
    critics = []
    for name, net in (("critic", critic), ("critic_target", critic_target)):
        q_nets = list(getattr(net, "q_networks", []))
        layouts = [ManualMLP.parse(q) for q in q_nets]
        if not q_nets or any(layout is None or layout[2] for layout in layouts):
            return f"{name} networks are not (Linear [LayerNorm] ReLU)* Linear"
        critics.append([ManualMLP(q) for q in q_nets])
    hooked = hooked_module(policy)
    if hooked is not None:
        return f"module {hooked} has forward/backward hooks (the hand-written update would skip them)"
    nets = ManualNetworks(actors[0], critics[0], actors[1], critics[1], int(np.prod(obs_space.shape)))
    for name, module, manual in (("actor", actor, [nets.actor]), ("critic", critic, nets.critics)):
        covered = [p for m in manual for p in m.parameters()]
        if {id(p) for p in covered} != {id(p) for p in module.parameters()} or len(covered) != len(set(map(id, covered))):
            return f"{name} has parameters outside its MLPs"
        if any(p.dtype != th.float32 for p in covered):
            return f"{name} parameters are not float32"
        opt_params = [p for g in module.optimizer.param_groups for p in g["params"]]
        if {id(p) for p in opt_params} != {id(p) for p in covered}:
            return f"{name} optimizer does not hold exactly the {name}'s parameters"
    return nets
