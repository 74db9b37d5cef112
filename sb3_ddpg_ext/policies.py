"""Layer-normalised actor/critic policies for DDPG and TD3.

Stable-Baselines (v2) and OpenAI baselines had an ``LnMlpPolicy`` for DDPG; SB3 dropped it (SB3 issue #1069).
This module brings it back as a :class:`~stable_baselines3.td3.policies.TD3Policy` subclass, usable with SB3's
``DDPG`` and ``TD3`` and with :class:`sb3_ddpg_ext.ddpg.DDPG`.

Layer normalisation (Ba et al., 2016, https://arxiv.org/abs/1607.06450) sits after every hidden ``Linear`` and
before the activation (``Linear -> LayerNorm -> ReLU``), as in baselines and SB2; output layers are not normalised.
Plappert et al. (2018, https://arxiv.org/abs/1706.01905) found it important for parameter-space noise.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel, BasePolicy, ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, create_mlp
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.td3.policies import Actor, TD3Policy
from torch import nn

__all__ = ["LateActionQNetwork", "LnActor", "LnContinuousCritic", "LnMlpPolicy", "ln_mlp"]


def ln_mlp(
    input_dim: int,
    output_dim: int,
    net_arch: list[int],
    activation_fn: type[nn.Module] = nn.ReLU,
    squash_output: bool = False,
    layer_norm: bool = True,
) -> list[nn.Module]:
    """
    Build an MLP with SB3's :func:`~stable_baselines3.common.torch_layers.create_mlp`, optionally with a
    ``LayerNorm`` after every hidden ``Linear`` (and before its activation). The output layer is never normalised.

    With ``layer_norm=False`` this is exactly ``create_mlp(input_dim, output_dim, net_arch, activation_fn,
    squash_output)`` (same modules, same order, same random initialisation draws).

    :param input_dim: Dimension of the input vector
    :param output_dim: Dimension of the output (``<= 0``: no output layer)
    :param net_arch: Units per hidden layer
    :param activation_fn: Activation function after each hidden layer
    :param squash_output: Whether to append a ``Tanh`` after the output layer
    :param layer_norm: Whether to insert ``LayerNorm`` after each hidden ``Linear``
    :return: The list of layers
    """
    post_linear_modules: Optional[list[type[nn.Module]]] = [nn.LayerNorm] if layer_norm else None
    return create_mlp(
        input_dim,
        output_dim,
        net_arch,
        activation_fn,
        squash_output=squash_output,
        post_linear_modules=post_linear_modules,
    )


class LnActor(Actor):
    """
    Deterministic actor for DDPG/TD3 with optional layer normalisation of its hidden layers
    (``Linear -> LayerNorm -> activation``; the output ``Linear -> Tanh`` is not normalised).

    With ``layer_norm=False`` it is module-for-module identical to SB3's TD3 ``Actor``.

    :param observation_space: Observation space
    :param action_space: Action space
    :param net_arch: Network architecture
    :param features_extractor: Network to extract features
        (a CNN when using images, a nn.Flatten() layer otherwise)
    :param features_dim: Number of features
    :param activation_fn: Activation function
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param layer_norm: Whether to put a ``LayerNorm`` after every hidden ``Linear``
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: nn.Module,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        layer_norm: bool = True,
    ):
        # Skip Actor.__init__ (it would build and initialise an un-normalised net first, consuming RNG draws);
        # this mirrors it exactly, with the LayerNorm option.
        BasePolicy.__init__(
            self,
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
            squash_output=True,
        )
        self.net_arch = net_arch
        self.features_dim = features_dim
        self.activation_fn = activation_fn
        self.layer_norm = layer_norm

        action_dim = get_action_dim(self.action_space)
        actor_net = ln_mlp(features_dim, action_dim, net_arch, activation_fn, squash_output=True, layer_norm=layer_norm)
        # Deterministic action
        self.mu = nn.Sequential(*actor_net)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update({"layer_norm": self.layer_norm})
        return data


class LateActionQNetwork(nn.Module):
    """
    Q-network of the OpenAI-baselines DDPG critic: the observation features go through the first hidden layer
    alone, the action joins after it, ``Q(s, a) = g([h(s), a])``.

    It takes the same concatenated input ``[features, action]`` as SB3's critic networks, so it is a drop-in
    replacement inside :class:`~stable_baselines3.common.policies.ContinuousCritic`.

    :param features_dim: Number of observation features (the first ``features_dim`` input columns)
    :param action_dim: Action dimension (the remaining input columns)
    :param net_arch: Units per hidden layer; needs at least one hidden layer
    :param activation_fn: Activation function
    :param layer_norm: Whether to put a ``LayerNorm`` after every hidden ``Linear``
    """

    def __init__(
        self,
        features_dim: int,
        action_dim: int,
        net_arch: list[int],
        activation_fn: type[nn.Module] = nn.ReLU,
        layer_norm: bool = True,
    ):
        super().__init__()
        if len(net_arch) < 1:
            raise ValueError(
                f"critic_late_action=True needs at least one critic hidden layer for the action to join after, "
                f"got critic net_arch={net_arch!r}"
            )
        self.features_dim = features_dim
        self.action_dim = action_dim
        # First hidden layer: features only
        self.obs_net = nn.Sequential(*ln_mlp(features_dim, -1, net_arch[:1], activation_fn, layer_norm=layer_norm))
        # Remaining hidden layers and the output: [h(s), a]
        self.joint_net = nn.Sequential(
            *ln_mlp(net_arch[0] + action_dim, 1, net_arch[1:], activation_fn, layer_norm=layer_norm)
        )

    def forward(self, qvalue_input: th.Tensor) -> th.Tensor:
        features, actions = th.split(qvalue_input, [self.features_dim, self.action_dim], dim=1)
        return self.joint_net(th.cat([self.obs_net(features), actions], dim=1))


class LnContinuousCritic(ContinuousCritic):
    """
    Critic network(s) for DDPG/TD3 with optional layer normalisation of the hidden layers
    (``Linear -> LayerNorm -> activation``; the output ``Linear`` is not normalised), and optionally the
    baselines-style architecture where the action joins after the first hidden layer.

    With ``layer_norm=False`` and ``late_action=False`` it is module-for-module identical to SB3's
    ``ContinuousCritic``.

    :param observation_space: Observation space
    :param action_space: Action space
    :param net_arch: Network architecture
    :param features_extractor: Network to extract features
        (a CNN when using images, a nn.Flatten() layer otherwise)
    :param features_dim: Number of features
    :param activation_fn: Activation function
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param n_critics: Number of critic networks to create.
    :param share_features_extractor: Whether the features extractor is shared or not
        between the actor and the critic (this saves computation time)
    :param layer_norm: Whether to put a ``LayerNorm`` after every hidden ``Linear``
    :param late_action: If True, the action is concatenated after the first hidden layer (baselines DDPG critic)
        instead of at the input (SB3)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_features_extractor: bool = True,
        layer_norm: bool = True,
        late_action: bool = False,
    ):
        # Skip ContinuousCritic.__init__ (it would build un-normalised Q-networks first); mirror it instead.
        BaseModel.__init__(
            self,
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
        )
        action_dim = get_action_dim(self.action_space)

        self.share_features_extractor = share_features_extractor
        self.n_critics = n_critics
        self.layer_norm = layer_norm
        self.late_action = late_action
        self.q_networks: list[nn.Module] = []
        for idx in range(n_critics):
            q_net: nn.Module
            if late_action:
                q_net = LateActionQNetwork(features_dim, action_dim, net_arch, activation_fn, layer_norm=layer_norm)
            else:
                q_net = nn.Sequential(*ln_mlp(features_dim + action_dim, 1, net_arch, activation_fn, layer_norm=layer_norm))
            self.add_module(f"qf{idx}", q_net)
            self.q_networks.append(q_net)


class LnMlpPolicy(TD3Policy):
    """
    Policy class (actor and critic) for DDPG/TD3 with layer normalisation in the actor and/or the critic,
    like ``LnMlpPolicy`` in stable-baselines (v2) / OpenAI baselines DDPG.

    Paper: https://arxiv.org/abs/1706.01905 (Plappert et al., 2018: layer normalisation in DDPG's actor and
    critic, Linear -> LayerNorm -> ReLU); LayerNorm: https://arxiv.org/abs/1607.06450

    Every hidden ``Linear`` of the normalised networks is followed by ``LayerNorm`` then the activation; output
    layers are not normalised. The target networks are built the same way (``make_actor``/``make_critic``), and
    their LayerNorm gains/biases are ordinary parameters, so polyak averaging tracks them.
    With ``layer_norm_actor=False, layer_norm_critic=False`` (and ``critic_late_action=False``) the policy has
    exactly the parameters and forward function of ``MlpPolicy``.

    Usage (SB3 takes the class; rl-zoo3 YAML takes the dotted path ``policy: 'sb3_ddpg_ext.policies.LnMlpPolicy'``)::

        from stable_baselines3 import DDPG
        from sb3_ddpg_ext.policies import LnMlpPolicy

        model = DDPG(LnMlpPolicy, "Pendulum-v1", policy_kwargs=dict(net_arch=[400, 300], layer_norm_critic=False))

    :param observation_space: Observation space
    :param action_space: Action space
    :param lr_schedule: Learning rate schedule (could be constant)
    :param net_arch: The specification of the policy and value networks.
    :param activation_fn: Activation function
    :param features_extractor_class: Features extractor to use.
    :param features_extractor_kwargs: Keyword arguments
        to pass to the features extractor.
    :param normalize_images: Whether to normalize images or not,
         dividing by 255.0 (True by default)
    :param optimizer_class: The optimizer to use,
        ``th.optim.Adam`` by default
    :param optimizer_kwargs: Additional keyword arguments,
        excluding the learning rate, to pass to the optimizer
    :param n_critics: Number of critic networks to create.
    :param share_features_extractor: Whether to share or not the features extractor
        between the actor and the critic (this saves computation time)
    :param layer_norm_actor: Whether to layer-normalise the actor's (and target actor's) hidden layers
    :param layer_norm_critic: Whether to layer-normalise the critics' (and target critics') hidden layers
    :param critic_late_action: If True, use the baselines DDPG critic where the action joins after the
        first hidden layer (SB3 concatenates it to the observation features at the input)
    """

    actor: LnActor
    actor_target: LnActor
    critic: LnContinuousCritic
    critic_target: LnContinuousCritic

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: Union[list[int], dict[str, list[int]], None] = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: Optional[dict[str, Any]] = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: Optional[dict[str, Any]] = None,
        n_critics: int = 2,
        share_features_extractor: bool = False,
        layer_norm_actor: bool = True,
        layer_norm_critic: bool = True,
        critic_late_action: bool = False,
    ):
        for name, value in (
            ("layer_norm_actor", layer_norm_actor),
            ("layer_norm_critic", layer_norm_critic),
            ("critic_late_action", critic_late_action),
        ):
            # numpy bools (e.g. from an optuna sampler) are accepted; strings such as "False", None or ints are not
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"LnMlpPolicy: {name} must be a bool, got {value!r}")
        # Set before TD3Policy.__init__, which calls _build() -> make_actor()/make_critic()
        self.layer_norm_actor = bool(layer_norm_actor)
        self.layer_norm_critic = bool(layer_norm_critic)
        self.critic_late_action = bool(critic_late_action)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
            n_critics,
            share_features_extractor,
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            {
                "layer_norm_actor": self.layer_norm_actor,
                "layer_norm_critic": self.layer_norm_critic,
                "critic_late_action": self.critic_late_action,
            }
        )
        return data

    def make_actor(self, features_extractor: Optional[BaseFeaturesExtractor] = None) -> LnActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return LnActor(**actor_kwargs, layer_norm=self.layer_norm_actor).to(self.device)

    def make_critic(self, features_extractor: Optional[BaseFeaturesExtractor] = None) -> LnContinuousCritic:
        critic_kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return LnContinuousCritic(
            **critic_kwargs,
            layer_norm=self.layer_norm_critic,
            late_action=self.critic_late_action,
        ).to(self.device)
