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

import torch as th

from sb3_ddpg_ext.fast import ManualMLP, ManualNetworks, TorchReplaySampler

__all__ = ["CompiledUpdate", "compile_fallback"]

# (weight, bias, (gain, bias, eps) or None) per layer, output layer last
_Layer = tuple[th.Tensor, th.Tensor, Optional[tuple[th.Tensor, th.Tensor, float]]]


def _layers(net: ManualMLP) -> list[_Layer]:
    return [(w, b, None if ln is None else (ln[0], ln[1], ln[3])) for w, b, ln in net._layers]


def _forward(x: th.Tensor, layers: list[_Layer], squash: bool) -> tuple[th.Tensor, list[Any]]:
    saved: list[Any] = [x]
    h = x
    for weight, bias, norm in layers[:-1]:
        z = th.addmm(bias, h, weight.t())
        if norm is not None:
            z_in = z
            z, mean, rstd = th.native_layer_norm(z_in, [z_in.shape[1]], norm[0], norm[1], norm[2])
            saved.append((z_in, mean, rstd))
        h = z.relu()
        saved.append(h)
    weight, bias, _ = layers[-1]
    out = th.addmm(bias, h, weight.t())
    if squash:
        out = out.tanh()
    saved.append(out)
    return out, saved


def _backward(
    g: th.Tensor, saved: list[Any], layers: list[_Layer], squash: bool, weight_grads: bool, input_start: int = 0
) -> tuple[Optional[th.Tensor], list[th.Tensor]]:
    """The backward of :meth:`sb3_ddpg_ext.fast.ManualMLP.backward`, returning the gradients (in ``parameters()``
    order) instead of writing them into ``.grad``, and the gradient w.r.t. the input columns from ``input_start``."""
    if squash:
        g = th.ops.aten.tanh_backward(g, saved[-1])
    pos = len(saved) - 2
    grads: list[list[th.Tensor]] = []
    for k in range(len(layers) - 1, -1, -1):
        weight, _, _ = layers[k]
        inp = saved[pos]
        layer_grads: list[th.Tensor] = []
        if weight_grads:
            layer_grads = [g.t().mm(inp), g.sum(0)]
        if k == 0:
            grads.append(layer_grads)
            flat = [t for layer in reversed(grads) for t in layer]
            return (g.mm(weight[:, input_start:]) if input_start > 0 else None), flat
        g = g.mm(weight)
        g = th.ops.aten.threshold_backward(g, inp, 0)
        pos -= 1
        norm = layers[k - 1][2]
        norm_grads: list[th.Tensor] = []
        if norm is not None:
            z_in, mean, rstd = saved[pos]
            g, g_gain, g_bias = th.ops.aten.native_layer_norm_backward(
                g, z_in, [z_in.shape[1]], mean, rstd, norm[0], norm[1], [True, weight_grads, weight_grads]
            )
            if weight_grads:
                norm_grads = [g_gain, g_bias]
            pos -= 1
        # parameters() order per layer: weight, bias, then the LayerNorm's gain, bias (of the layer below)
        grads.append(layer_grads)
        if norm_grads:
            grads.append(norm_grads)
    raise AssertionError("unreachable")  # pragma: no cover


def _adam(
    params: list[th.Tensor],
    grads: list[th.Tensor],
    exp_avgs: list[th.Tensor],
    exp_avg_sqs: list[th.Tensor],
    step: th.Tensor,
    lr: th.Tensor,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """``torch.optim.Adam``'s step (no weight decay, no AMSGrad), in place on its state tensors; ``step`` is the
    step count after this step (the caller increments the optimizer's step tensors, outside the graph)."""
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step).sqrt()
    step_size = lr / bias_correction1
    for param, grad, exp_avg, exp_avg_sq in zip(params, grads, exp_avgs, exp_avg_sqs):
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        param.sub_(step_size * exp_avg / denom)


def _update_step(
    idx: th.Tensor,
    next_idx: th.Tensor,
    data: tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor],
    nets: tuple[list[_Layer], list[list[_Layer]], list[_Layer], list[list[_Layer]]],
    actor_state: tuple[list[th.Tensor], list[th.Tensor], list[th.Tensor], th.Tensor, th.Tensor],
    critic_state: tuple[list[th.Tensor], list[th.Tensor], list[th.Tensor], th.Tensor, th.Tensor],
    targets: tuple[list[th.Tensor], list[th.Tensor]],
    config: tuple[float, float, float, float, float, float, float, str, int, bool],
) -> tuple[th.Tensor, th.Tensor]:
    """One gradient step; returns the critic loss (summed over critics) and the actor loss (0 without actor step)."""
    obs_src, next_obs_src, actions_src, rewards_src, dones_src, timeouts_src = data
    actor, critics, actor_target, critic_targets = nets
    gamma, tau, beta1, beta2, eps, sigma, clip, sampling, obs_dim, actor_step = config
    obs = obs_src.index_select(0, idx).float()
    next_obs = next_obs_src.index_select(0, next_idx).float()
    actions = actions_src.index_select(0, idx)
    rewards = rewards_src.index_select(0, idx).reshape(-1, 1)
    dones = (dones_src.index_select(0, idx) * (1 - timeouts_src.index_select(0, idx))).reshape(-1, 1)

    next_actions, _ = _forward(next_obs, actor_target, True)
    if sigma > 0:
        shape = (next_obs.shape[0], next_actions.shape[1]) if sampling == "per_sample" else (1, next_actions.shape[1])
        noise = th.empty(shape).normal_(0.0, sigma)
        if math.isfinite(clip):
            noise = noise.clamp(-clip, clip)
        next_actions = next_actions + noise
    next_actions = next_actions.clamp(-1, 1)
    target_input = th.cat([next_obs, next_actions], dim=1)
    next_q = _forward(target_input, critic_targets[0], False)[0]
    for critic_target in critic_targets[1:]:
        next_q = th.minimum(next_q, _forward(target_input, critic_target, False)[0])
    target_q = rewards + (1 - dones) * gamma * next_q

    critic_input = th.cat([obs, actions], dim=1)
    critic_loss = th.zeros(())
    critic_grads: list[th.Tensor] = []
    for critic in critics:
        q, saved = _forward(critic_input, critic, False)
        diff = q - target_q
        critic_loss = critic_loss + diff.square().mean()
        critic_grads += _backward(diff * (2.0 / diff.numel()), saved, critic, False, True)[1]
    params, exp_avgs, exp_avg_sqs, step, lr = critic_state
    _adam(params, critic_grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps)

    actor_loss = th.zeros(())
    if actor_step:
        mu, saved_actor = _forward(obs, actor, True)
        q1, saved_critic = _forward(th.cat([obs, mu], dim=1), critics[0], False)
        actor_loss = -q1.mean()
        grad_mu, _ = _backward(th.full_like(q1, -1.0 / q1.numel()), saved_critic, critics[0], False, False, obs_dim)
        assert grad_mu is not None
        actor_grads = _backward(grad_mu, saved_actor, actor, True, True)[1]
        params, exp_avgs, exp_avg_sqs, step, lr = actor_state
        _adam(params, actor_grads, exp_avgs, exp_avg_sqs, step, lr, beta1, beta2, eps)
        sources, target_params = targets
        for target, source in zip(target_params, sources):
            target.lerp_(source, tau)
    return critic_loss, actor_loss


_COMPILED: Any = None


def _compiled_step() -> Any:
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
            return f"optimizer option {key}={group.get(key)!r}"
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
    the networks' parameters, the optimizers' state) and calls the compiled graph.

    :param model: The :class:`sb3_ddpg_ext.ddpg.DDPG` model (after the optimizers' first step, which creates
        their state).
    :param nets: Its hand-written networks.
    :param sampler: Its torch replay sampler.
    """

    def __init__(self, model: Any, nets: ManualNetworks, sampler: TorchReplaySampler):
        self.sampler = sampler
        self.obs_dim = nets.obs_dim
        self.nets = (
            _layers(nets.actor),
            [_layers(c) for c in nets.critics],
            _layers(nets.actor_target),
            [_layers(c) for c in nets.critic_targets],
        )
        self.actor_state, self.actor_steps = self._adam_state(model.actor.optimizer, nets.actor.parameters())
        self.critic_state, self.critic_steps = self._adam_state(
            model.critic.optimizer, [p for c in nets.critics for p in c.parameters()]
        )
        # the parameter objects themselves everywhere (no detached aliases: the graph sees each tensor once); the
        # step runs under no_grad, where in-place updates of parameters are allowed
        sources = [*nets.actor.parameters(), *[p for c in nets.critics for p in c.parameters()]]
        targets = [*nets.actor_target.parameters(), *[p for c in nets.critic_targets for p in c.parameters()]]
        self.targets: tuple[list[th.Tensor], list[th.Tensor]] = (list(sources), list(targets))
        group = model.critic.optimizer.param_groups[0]
        self.betas = tuple(group["betas"])
        self.eps = float(group["eps"])
        self._optimizers = (model.actor.optimizer, model.critic.optimizer)
        self._state_objects = tuple(opt.state for opt in self._optimizers)

    @staticmethod
    def _adam_state(
        optimizer: th.optim.Optimizer, params: list[th.nn.Parameter]
    ) -> tuple[tuple[list[th.Tensor], list[th.Tensor], list[th.Tensor], th.Tensor, th.Tensor], list[th.Tensor]]:
        """:return: ``(params, exp_avgs, exp_avg_sqs, step, lr)`` as the graph reads them, and every step tensor."""
        states = [optimizer.state[p] for p in params]
        steps = [s["step"] for s in states]
        lr = th.tensor(float(optimizer.param_groups[0]["lr"]))
        return (list(params), [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], steps[0], lr), steps

    @staticmethod
    def ready(model: Any, nets: ManualNetworks) -> bool:
        """:return: Whether both optimizers have their Adam state (tensor steps), i.e. have taken a first step."""
        for optimizer, mlps in ((model.actor.optimizer, [nets.actor]), (model.critic.optimizer, nets.critics)):
            for p in (p for m in mlps for p in m.parameters()):
                state = optimizer.state.get(p)
                if not state or "exp_avg" not in state or not th.is_tensor(state.get("step")):
                    return False
        return True

    def is_valid_for(self, model: Any, sampler: Optional[TorchReplaySampler]) -> bool:
        """:return: Whether the gathered tensors are still the model's (same sampler, optimizers and state dicts)."""
        return (
            sampler is self.sampler
            and self._optimizers == (model.actor.optimizer, model.critic.optimizer)
            and all(a is b for a, b in zip(self._state_objects, (opt.state for opt in self._optimizers)))
            and self.betas == tuple(model.critic.optimizer.param_groups[0]["betas"])
            and self.eps == float(model.critic.optimizer.param_groups[0]["eps"])
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
        batch_inds, env_indices = sampler.sample_indices(batch_size)
        idx = th.from_numpy(batch_inds * buf.n_envs + env_indices)
        if sampler._next_obs is None:
            next_idx = th.from_numpy(((batch_inds + 1) % buf.buffer_size) * buf.n_envs + env_indices)
            next_src = sampler._obs
        else:
            next_idx, next_src = idx, sampler._next_obs
        self.actor_state[4].fill_(model.actor.optimizer.param_groups[0]["lr"])
        self.critic_state[4].fill_(model.critic.optimizer.param_groups[0]["lr"])
        # Adam's step counters (one per parameter, all equal), as optimizer.step() increments them
        th._foreach_add_(self.critic_steps + self.actor_steps if actor_step else self.critic_steps, 1)
        sigma = model.target_policy_noise if model._target_noise_active() else 0.0
        config = (
            float(model.gamma),
            float(model.tau),
            float(self.betas[0]),
            float(self.betas[1]),
            self.eps,
            float(sigma),
            float(model.target_noise_clip),
            str(model.target_noise_sampling),
            self.obs_dim,
            actor_step,
        )
        data = (sampler._obs, next_src, sampler._actions, sampler._rewards, sampler._dones, sampler._timeouts)
        with th.no_grad():
            return _compiled_step()(idx, next_idx, data, self.nets, self.actor_state, self.critic_state, self.targets, config)
