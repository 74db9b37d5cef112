"""
The hand-written DDPG/TD3 update of :mod:`sb3_ddpg_ext.fast` as one ``torch.compile`` graph per gradient step
(``DDPG(update_mode="fast", compile_update=True)``).

At small networks (e.g. [64, 64]) the eager update is mostly per-operation overhead: ~110 PyTorch calls of a few
microseconds each around 28 small GEMMs. Compiled, the step is one call: the batch gather, the TD target (with
action-space target noise), the critic's forward and backward, its Adam step, the actor's forward and backward
through the updated critic, its Adam step and the polyak update, with the pointwise work fused into a few C++ loops
and the GEMMs left to the same BLAS kernels.

Same algorithm, same order, same random draws as the eager fast path:

- the batch indices are drawn outside, by :meth:`sb3_ddpg_ext.fast.TorchReplaySampler.sample_indices` (the very
  ``np.random.randint`` calls of SB3's ``ReplayBuffer.sample``);
- the target noise is drawn inside with torch's own ``normal_`` on the global generator (``fallback_random``), so
  the stream, and the noise, is the eager path's;
- Adam is ``torch.optim.Adam``'s update written out on the optimizer's own state tensors (``exp_avg``,
  ``exp_avg_sq``, ``step``), so a saved optimizer, or a switch back to the eager path, continues from it. It is
  equal to the fused kernel up to float32 rounding (the fast path's tolerance).

Covered: what :func:`sb3_ddpg_ext.fast.manual_networks` covers (ReLU MLPs with or without LayerNorm, any number
of critics) with no target noise or action-space target noise, plain ``Adam`` without weight decay, AMSGrad,
``maximize`` or other options, one param group per optimizer, on CPU. The rest stays eager (see
:func:`compile_fallback`). Compiling costs ~10-25 s per process and configuration the first time (inductor's
on-disk cache makes later processes faster); it pays off on long runs and is off by default.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import numpy as np
import torch as th

from sb3_ddpg_ext.fast import ManualNetworks, TorchReplaySampler

__all__ = ["CompiledUpdate", "compile_fallback"]

# (params, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps): one optimizer's Adam, as the graph reads it
AdamState = tuple[list[th.Tensor], list[th.Tensor], list[th.Tensor], th.Tensor, th.Tensor, float, float, float]


def _adam(state: AdamState) -> None:
    """
    ``torch.optim.Adam``'s step (no weight decay, no AMSGrad) on the parameters' ``.grad``, in place on the
    optimizer's state tensors. ``step`` is the count after this step (the caller increments the optimizer's step
    tensors, outside the graph).
    """
    params, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps = state
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step).sqrt()
    step_size = lr / bias_correction1
    for param, exp_avg, exp_avg_sq in zip(params, exp_avgs, exp_avg_sqs):
        grad = param.grad
        assert grad is not None
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        param.sub_(step_size * exp_avg / denom)


def _update_step(
    idx: th.Tensor,
    next_idx: th.Tensor,
    data: tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor],
    nets: ManualNetworks,
    actor_adam: AdamState,
    critic_adam: AdamState,
    polyak: tuple[list[th.Tensor], list[th.Tensor]],
    config: tuple[float, float, float, float, str, bool],
) -> tuple[th.Tensor, th.Tensor]:
    """
    One gradient step, as :meth:`sb3_ddpg_ext.ddpg.DDPG._manual_step` does it (the same hand-written forward and
    backward of :class:`~sb3_ddpg_ext.fast.ManualMLP`, gradients into the parameters' ``.grad``), with the batch
    gather, Adam and the polyak update in the graph.

    :return: The critic loss (summed over critics) and the actor loss (0 without an actor step).
    """
    obs_src, next_obs_src, actions_src, rewards_src, dones_src, timeouts_src = data
    gamma, tau, sigma, clip, sampling, actor_step = config
    n = idx.shape[0]
    obs = obs_src.index_select(0, idx).reshape(n, -1).float()
    next_obs = next_obs_src.index_select(0, next_idx).reshape(n, -1).float()
    actions = actions_src.index_select(0, idx)
    rewards = rewards_src.index_select(0, idx).reshape(-1, 1)
    dones = (dones_src.index_select(0, idx) * (1 - timeouts_src.index_select(0, idx))).reshape(-1, 1)

    next_actions = nets.actor_target.forward_only(next_obs)
    if sigma > 0:  # action-space target noise, drawn as sb3_ddpg_ext.target_noise.action_noise draws it
        noise = th.empty((n if sampling == "per_sample" else 1, next_actions.shape[1])).normal_(0.0, sigma)
        if math.isfinite(clip):
            noise = noise.clamp(-clip, clip)
        next_actions = next_actions + noise
    next_actions = next_actions.clamp(-1, 1)
    target_input = th.cat([next_obs, next_actions], dim=1)
    next_q = nets.critic_targets[0].forward_only(target_input)
    for critic_target in nets.critic_targets[1:]:
        next_q = th.minimum(next_q, critic_target.forward_only(target_input))
    target_q = rewards + (1 - dones) * gamma * next_q

    critic_input = th.cat([obs, actions], dim=1)
    critic_loss = th.zeros(())
    for critic in nets.critics:
        q, saved = critic.forward(critic_input)
        diff = q - target_q
        critic_loss = critic_loss + diff.square().mean()
        critic.backward(diff * (2.0 / diff.numel()), saved)
    _adam(critic_adam)

    actor_loss = th.zeros(())
    if actor_step:
        mu, saved_actor = nets.actor.forward(obs)
        q1, saved_critic = nets.critics[0].forward(th.cat([obs, mu], dim=1))
        actor_loss = -q1.mean()
        grad_q = th.full_like(q1, -1.0 / q1.numel())
        grad_mu = nets.critics[0].backward(grad_q, saved_critic, weight_grads=False, input_columns=slice(nets.obs_dim, None))
        assert grad_mu is not None
        nets.actor.backward(grad_mu, saved_actor)
        _adam(actor_adam)
        sources, targets = polyak
        for target, source in zip(targets, sources):
            target.lerp_(source, tau)
    return critic_loss, actor_loss


_COMPILED: Any = None


def _compiled_step() -> Any:
    """The compiled :func:`_update_step` (compiled at its first call; one graph per configuration)."""
    global _COMPILED
    if _COMPILED is None:
        # fallback_random: the noise comes from torch's own normal_ on the global generator, as in eager mode
        _COMPILED = th.compile(_update_step, dynamic=False, fullgraph=True, options={"fallback_random": True})
    return _COMPILED


def _adam_fallback(optimizer: th.optim.Optimizer, params: list[th.nn.Parameter]) -> Optional[str]:
    name = type(optimizer).__name__
    if type(optimizer) is not th.optim.Adam:
        return f"optimizer {name} is not torch.optim.Adam"
    if len(optimizer.param_groups) != 1:
        return f"optimizer {name} has {len(optimizer.param_groups)} param groups"
    group = optimizer.param_groups[0]
    for key, ok in (
        ("weight_decay", group["weight_decay"] == 0),
        ("amsgrad", not group["amsgrad"]),
        ("maximize", not group["maximize"]),
        ("capturable", not group.get("capturable", False)),
        ("differentiable", not group.get("differentiable", False)),
        ("decoupled_weight_decay", not group.get("decoupled_weight_decay", False)),
    ):
        if not ok:
            return f"optimizer option {key}={group.get(key)!r} is not covered"
    if {id(p) for p in group["params"]} != {id(p) for p in params}:
        return "optimizer does not hold exactly the network's parameters"
    if any(p.device.type != "cpu" for p in params):
        return "parameters are not on the CPU"
    return None


def compile_fallback(model: Any, nets: Union[ManualNetworks, str], sampler: Optional[TorchReplaySampler]) -> Optional[str]:
    """
    Why the compiled update does not cover this model's configuration (None if it does).

    :param model: The :class:`sb3_ddpg_ext.ddpg.DDPG` model.
    :param nets: Its hand-written networks (or the reason they do not cover the policy).
    :param sampler: Its torch replay sampler (None if the buffer is not a plain ``ReplayBuffer``).
    :return: The reason, or None.
    """
    if isinstance(nets, str):
        return nets
    if sampler is None:
        return "replay buffer is not a plain ReplayBuffer without VecNormalize"
    if model._target_noise_active() and model.target_noise_space != "action":
        return "parameter-space target noise runs eagerly"
    for name, optimizer, mlps in (
        ("actor", model.actor.optimizer, [nets.actor]),
        ("critic", model.critic.optimizer, nets.critics),
    ):
        reason = _adam_fallback(optimizer, [p for m in mlps for p in m.parameters()])
        if reason is not None:
            return f"{name}: {reason}"
    return None


class CompiledUpdate:
    """
    The compiled gradient step of one model: gathers the tensors it reads and writes (the replay sampler's views,
    the networks' parameters and gradients, the optimizers' state) and calls the compiled graph.

    :param model: The :class:`sb3_ddpg_ext.ddpg.DDPG` model, after the optimizers' first step (see :meth:`ready`).
    :param nets: Its hand-written networks.
    :param sampler: Its torch replay sampler.
    """

    def __init__(self, model: Any, nets: ManualNetworks, sampler: TorchReplaySampler):
        self.sampler = sampler
        self.nets = nets
        self._optimizers = (model.actor.optimizer, model.critic.optimizer)
        actor_params = nets.actor.parameters()
        critic_params = [p for c in nets.critics for p in c.parameters()]
        self.actor_adam, self._actor_steps = self._adam_state(model.actor.optimizer, actor_params)
        self.critic_adam, self._critic_steps = self._adam_state(model.critic.optimizer, critic_params)
        targets: list[th.Tensor] = [*nets.actor_target.parameters(), *[p for c in nets.critic_targets for p in c.parameters()]]
        # the parameter objects themselves everywhere (no detached aliases: the graph sees each tensor once); the
        # step runs under no_grad, where in-place updates of parameters are allowed
        self.polyak: tuple[list[th.Tensor], list[th.Tensor]] = ([*actor_params, *critic_params], targets)
        self._key = self._state_key(model)
        #: Whether a step has run (the graph compiled); until then a failed compilation undoes the step's draws
        self.verified = False

    def _state_key(self, model: Any) -> tuple[Any, ...]:
        """What the gathered tensors depend on: the optimizers, their state dicts, Adam's hyperparameters."""
        return tuple(
            (opt, opt.state, tuple(opt.param_groups[0]["betas"]), opt.param_groups[0]["eps"])
            for opt in (model.actor.optimizer, model.critic.optimizer)
        )

    @staticmethod
    def _adam_state(optimizer: th.optim.Optimizer, params: list[th.nn.Parameter]) -> tuple[AdamState, list[th.Tensor]]:
        """:return: The graph's view of the optimizer (see :data:`AdamState`) and all its step tensors."""
        states = [optimizer.state[p] for p in params]
        steps = [s["step"] for s in states]
        group = optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        lr = th.tensor(float(group["lr"]))
        param_list: list[th.Tensor] = list(params)
        view = (param_list, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], steps[0], lr)
        return (*view, float(beta1), float(beta2), float(group["eps"])), steps

    @staticmethod
    def ready(model: Any, nets: ManualNetworks) -> bool:
        """
        :return: Whether both optimizers have their Adam state (tensor steps, created by their first ``step()``) and
            every parameter its ``.grad`` buffer (allocated by the first hand-written backward).
        """
        for optimizer, mlps in ((model.actor.optimizer, [nets.actor]), (model.critic.optimizer, nets.critics)):
            for p in (p for m in mlps for p in m.parameters()):
                state = optimizer.state.get(p)
                if p.grad is None or not state or "exp_avg" not in state or not th.is_tensor(state.get("step")):
                    return False
        return True

    def is_valid_for(self, model: Any, sampler: Optional[TorchReplaySampler]) -> bool:
        """:return: Whether the gathered tensors are still the model's (same sampler, optimizers, state dicts)."""
        key = self._state_key(model)
        return sampler is self.sampler and all(
            a[0] is b[0] and a[1] is b[1] and a[2:] == b[2:] for a, b in zip(self._key, key)
        )

    def step(self, model: Any, batch_size: int, actor_step: bool) -> tuple[th.Tensor, th.Tensor]:
        """
        One gradient step of ``model``.

        :param model: The model.
        :param batch_size: Minibatch size.
        :param actor_step: Whether the actor and the targets are updated too (``policy_delay``).
        :return: Critic loss and actor loss (0-d tensors).
        """
        sampler = self.sampler
        buf = sampler.buffer
        np_state = None if self.verified else np.random.get_state()
        batch_inds, env_indices = sampler.sample_indices(batch_size)
        idx = th.from_numpy(batch_inds * buf.n_envs + env_indices)
        if sampler._next_obs is None:  # optimize_memory_usage: s' is the next row of the observations
            next_idx = th.from_numpy(((batch_inds + 1) % buf.buffer_size) * buf.n_envs + env_indices)
            next_src = sampler._obs
        else:
            next_idx, next_src = idx, sampler._next_obs
        self.actor_adam[4].fill_(self._optimizers[0].param_groups[0]["lr"])
        self.critic_adam[4].fill_(self._optimizers[1].param_groups[0]["lr"])
        # Adam's step counters (one per parameter, all equal), incremented as optimizer.step() does
        steps = self._critic_steps + self._actor_steps if actor_step else self._critic_steps
        th._foreach_add_(steps, 1)
        sigma = model.target_policy_noise if model._target_noise_active() else 0.0
        config = (float(model.gamma), float(model.tau), float(sigma), float(model.target_noise_clip),
                  str(model.target_noise_sampling), actor_step)  # fmt: skip
        data = (sampler._obs, next_src, sampler._actions, sampler._rewards, sampler._dones, sampler._timeouts)
        try:
            with th.no_grad():
                losses = _compiled_step()(
                    idx, next_idx, data, self.nets, self.actor_adam, self.critic_adam, self.polyak, config
                )
        except BaseException:
            th._foreach_add_(steps, -1)  # e.g. the graph failed to compile: nothing else was touched
            if not self.verified and np_state is not None:
                np.random.set_state(np_state)  # and the batch is drawn again, by the eager update
            raise
        self.verified = True
        return losses
