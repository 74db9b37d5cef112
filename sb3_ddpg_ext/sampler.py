"""
Optuna sampler of rl-zoo3's ``-optimize`` for ``ddpg_ext`` (:class:`sb3_ddpg_ext.ddpg.DDPG`).

Besides the zoo's usual off-policy knobs (as its TD3/DDPG sampler: gamma, learning rate, batch size, train_freq =
gradient_steps, tau, net_arch) it searches the knobs this package adds:

- exploration: action-noise type (``none``, ``normal``, ``ou``, ``ou-stationary``, ``pink``) and scale, parameter
  noise (off, per-element or per-tensor sampling) and its target action distance; turned into one
  :class:`sb3_ddpg_ext.zoo.ExplorationCallback` spec string such as ``"adaptive-param_0.2,normal_0.1"``;
- LayerNorm flags of :class:`sb3_ddpg_ext.policies.LnMlpPolicy` (actor, critic);
- target-policy noise: off / per_sample / per_batch (action std in [0.05, 0.5]) / parameter (weight std in
  [0.002, 0.05], log scale, clip 2.5 std).

Registered in rl-zoo3's ``HYPERPARAMS_SAMPLER`` / ``HYPERPARAMS_CONVERTER`` tables by
:func:`sb3_ddpg_ext.zoo.register_zoo`, the way the algorithm itself is registered. Exploration needs a callback,
which a zoo sampler cannot return: the sampler stores the spec in the trial's user attribute
``exploration_spec`` and the experiment manager of ``python -m sb3_ddpg_ext.train``
(:class:`sb3_ddpg_ext.zoo.DDPGExtExperimentManager`) adds the matching ``ExplorationCallback`` to the trial.
``HYPERPARAMS_CONVERTER`` (used by ``--trial-id`` / ``--study-name``) turns the params back into zoo YAML keys,
exploration included as a ``callback:`` entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sb3_ddpg_ext.exploration import format_exploration_spec
from sb3_ddpg_ext.noise import format_action_noise_spec

if TYPE_CHECKING:
    import optuna

#: Action-noise types searched (``make_action_noise`` spec kinds, :data:`sb3_ddpg_ext.noise.ACTION_NOISE_SPECS`).
ACTION_NOISE_TYPES: tuple[str, ...] = ("none", "normal", "ou", "ou-stationary", "pink")
#: Parameter-noise modes searched: off, per-element ("proper"), per-tensor ("naive")
#: (sampling modes of :data:`sb3_ddpg_ext.exploration.PARAM_NOISE_PREFIXES`).
PARAM_NOISE_MODES: tuple[str, ...] = ("none", "per_element", "per_tensor")
#: Target-noise modes searched: ``(target_noise_sampling, target_noise_space)`` by name.
TARGET_NOISE_MODES: dict[str, tuple[str, str]] = {
    "per_sample": ("per_sample", "action"),
    "per_batch": ("per_batch", "action"),
    "parameter": ("per_batch", "parameter"),
}
#: Net sizes, as the zoo's off-policy sampler.
NET_ARCHS: dict[str, list[int]] = {"small": [64, 64], "medium": [256, 256], "big": [400, 300]}


def exploration_spec_from_params(params: dict[str, Any]) -> str:
    """
    The :class:`sb3_ddpg_ext.zoo.ExplorationCallback` spec string of a trial's params.

    :param params: Trial params (``action_noise_type``, ``action_noise_std``, ``param_noise``, ``param_noise_std``).
    :return: e.g. ``"adaptive-param_0.2,normal_0.1"`` or ``"none"``.
    :raises ValueError: on an unknown noise type or mode.
    """
    noise_type = params["action_noise_type"]
    if noise_type not in ACTION_NOISE_TYPES:
        raise ValueError(f"action_noise_type must be one of {ACTION_NOISE_TYPES}, got {noise_type!r}")
    mode = params["param_noise"]
    if mode not in PARAM_NOISE_MODES:
        raise ValueError(f"param_noise must be one of {PARAM_NOISE_MODES}, got {mode!r}")
    return format_exploration_spec(
        action_noise=None if noise_type == "none" else format_action_noise_spec(noise_type, params["action_noise_std"]),
        param_noise_sampling=None if mode == "none" else mode,
        param_noise_stddev=None if mode == "none" else params["param_noise_std"],
    )


def convert_ddpg_ext_params(sampled_params: dict[str, Any]) -> dict[str, Any]:
    """
    Trial params -> zoo YAML-level hyperparameters (rl-zoo3's ``HYPERPARAMS_CONVERTER`` contract).

    :param sampled_params: The trial's params as suggested by :func:`sample_ddpg_ext_params`.
    :return: Zoo keys: ``gamma``, ``learning_rate``, ``batch_size``, ``train_freq``, ``gradient_steps``, ``tau``,
        ``policy`` (``"LnMlpPolicy"``), ``policy_kwargs`` (``net_arch`` + LayerNorm flags), the target-noise arguments
        and ``callback`` (one ``ExplorationCallback`` entry, with ``override: true``).
    :raises ValueError: on an unknown categorical value.
    """
    net_arch = sampled_params["net_arch"]
    if net_arch not in NET_ARCHS:
        raise ValueError(f"net_arch must be one of {sorted(NET_ARCHS)}, got {net_arch!r}")
    target_noise = sampled_params["target_noise"]
    if target_noise != "off" and target_noise not in TARGET_NOISE_MODES:
        raise ValueError(f"target_noise must be 'off' or one of {sorted(TARGET_NOISE_MODES)}, got {target_noise!r}")
    params = sampled_params
    hyperparams: dict[str, Any] = {
        "gamma": 1.0 - float(params["one_minus_gamma"]),
        "learning_rate": float(params["learning_rate"]),
        "batch_size": 2 ** int(params["batch_size_pow"]),
        "train_freq": int(params["train_freq"]),
        # update-to-data ratio 1, as the zoo's off-policy converter
        "gradient_steps": int(params["train_freq"]),
        "tau": float(params["tau"]),
        "policy": "LnMlpPolicy",
        "policy_kwargs": {
            "net_arch": list(NET_ARCHS[net_arch]),
            "layer_norm_actor": bool(params["layer_norm_actor"]),
            "layer_norm_critic": bool(params["layer_norm_critic"]),
        },
    }
    if target_noise == "off":
        hyperparams["target_policy_noise"] = 0.0
    else:
        sampling, space = TARGET_NOISE_MODES[target_noise]
        if space == "parameter":
            # weight-space std, its own (smaller) range; clip at TD3's ratio c / sigma = 0.5 / 0.2 = 2.5
            sigma = float(params["target_param_noise_std"])
            hyperparams["target_policy_noise"] = sigma
            hyperparams["target_noise_clip"] = 2.5 * sigma
        else:
            hyperparams["target_policy_noise"] = float(params["target_policy_noise"])
        hyperparams["target_noise_sampling"] = sampling
        hyperparams["target_noise_space"] = space
    hyperparams["callback"] = [
        {"sb3_ddpg_ext.zoo.ExplorationCallback": {"spec": exploration_spec_from_params(params), "override": True}}
    ]
    return hyperparams


def sample_ddpg_ext_params(
    trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict[str, Any]
) -> dict[str, Any]:
    """
    rl-zoo3 sampler for ``ddpg_ext`` (``HYPERPARAMS_SAMPLER`` contract: returns the model's keyword arguments).

    The exploration spec is not a model argument: it is stored as the trial user attribute ``exploration_spec``
    (and applied by :class:`sb3_ddpg_ext.zoo.DDPGExtExperimentManager`).

    :param trial: The Optuna trial (``optuna.trial.FixedTrial`` works too).
    :param n_actions: Action dimension (unused: the noise is built by the callback at training start).
    :param n_envs: Number of envs (unused, as above).
    :param additional_args: The zoo's extra arguments (HER replay buffer: not supported here).
    :return: Keyword arguments of :class:`sb3_ddpg_ext.ddpg.DDPG`.
    :raises ValueError: if a HER replay buffer is requested.
    """
    if additional_args.get("using_her_replay_buffer"):
        raise ValueError("sample_ddpg_ext_params does not support HerReplayBuffer (additional_args.using_her_replay_buffer)")
    trial.suggest_float("one_minus_gamma", 0.0001, 0.03, log=True)
    trial.suggest_float("learning_rate", 1e-5, 2e-3, log=True)
    trial.suggest_int("batch_size_pow", 5, 10)
    trial.suggest_int("train_freq", 1, 10)
    trial.suggest_float("tau", 0.001, 0.08, log=True)
    trial.suggest_categorical("net_arch", list(NET_ARCHS))

    noise_type = trial.suggest_categorical("action_noise_type", list(ACTION_NOISE_TYPES))
    if noise_type != "none":
        trial.suggest_float("action_noise_std", 0.05, 0.5)
    param_noise = trial.suggest_categorical("param_noise", list(PARAM_NOISE_MODES))
    if param_noise != "none":
        # baselines' desired action stddev (and initial parameter std), adaptive-param_<s>
        trial.suggest_float("param_noise_std", 0.05, 0.5, log=True)

    trial.suggest_categorical("layer_norm_actor", [False, True])
    trial.suggest_categorical("layer_norm_critic", [False, True])

    target_noise = trial.suggest_categorical("target_noise", ["off", *TARGET_NOISE_MODES])
    if target_noise == "parameter":
        # Weight std: 0.02 moves the actions of a fresh [400, 300] actor about as much as an action std of 0.2, and
        # 0.2 saturates them (measurement in hyperparams/variants.yml, tn_parameter).
        trial.suggest_float("target_param_noise_std", 0.002, 0.05, log=True)
    elif target_noise != "off":
        trial.suggest_float("target_policy_noise", 0.05, 0.5)

    hyperparams = convert_ddpg_ext_params(trial.params)
    callback = hyperparams.pop("callback")
    trial.set_user_attr("exploration_spec", callback[0]["sb3_ddpg_ext.zoo.ExplorationCallback"]["spec"])
    trial.set_user_attr("gamma", hyperparams["gamma"])
    trial.set_user_attr("batch_size", hyperparams["batch_size"])
    return hyperparams
