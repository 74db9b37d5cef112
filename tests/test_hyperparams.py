"""Tests of the YAML files under hyperparams/ and of sb3_ddpg_ext.zoo.resolve_variant / merge_hyperparams."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from sb3_ddpg_ext.zoo import (
    BASELINE,
    DEFAULT_HYPERPARAMS_FILE,
    DEFAULT_VARIANTS_FILE,
    FACTORS,
    load_variants,
    load_yaml_mapping,
    merge_hyperparams,
    resolve_variant,
)

# Tasks the issue asks for (issue 6), by family.
MUJOCO_TASKS = [
    "HalfCheetah-v5",
    "Hopper-v5",
    "Walker2d-v5",
    "Ant-v5",
    "Humanoid-v5",
    "Swimmer-v5",
    "Reacher-v5",
    "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5",
]
BULLET_TASKS = [
    "HalfCheetahBulletEnv-v0",
    "AntBulletEnv-v0",
    "HopperBulletEnv-v0",
    "Walker2DBulletEnv-v0",
    "ReacherBulletEnv-v0",
    "InvertedPendulumBulletEnv-v0",
]
OTHER_TASKS = ["Pendulum-v1", "MountainCarContinuous-v0", "LunarLanderContinuous-v3", "BipedalWalker-v3"]
ALL_TASKS = MUJOCO_TASKS + BULLET_TASKS + OTHER_TASKS

# Every ablation of the issue -> the variant name that implements it.
EXPECTED_VARIANTS = {
    "noise": [
        "noise_none",
        "noise_normal_0.1",
        "noise_normal_0.2_decay",
        "noise_ou_0.2",
        "noise_ou_stationary_0.2",
        "noise_pink_0.3",
        "noise_param_0.2",
        "noise_param_naive_0.2",
        "noise_param_0.2_normal_0.1",
    ],
    "target_noise": [
        "tn_off",
        "tn_per_sample",
        "tn_per_batch",
        "tn_parameter",
        "tn_parameter_0.08",
        "tn_parameter_per_sample_0.08",
    ],
    "learning_starts": ["ls_0", "ls_1k", "ls_10k", "ls_25k"],
    "update_interval": ["ui_1", "ui_10", "ui_50", "ui_episode"],
    "layer_norm": ["ln_none", "ln_actor", "ln_critic", "ln_both"],
}


def test_baseline_file_covers_every_task_of_the_issue():
    baselines = load_yaml_mapping(DEFAULT_HYPERPARAMS_FILE)
    assert sorted(baselines) == sorted(ALL_TASKS)
    for env_id, entry in baselines.items():
        assert entry["policy"] == "MlpPolicy", env_id
        assert entry["policy_kwargs"] == {"net_arch": [400, 300]}, env_id
        assert float(entry["n_timesteps"]) > 0, env_id


def test_baseline_values_match_rl_zoo3_where_the_task_exists():
    """Entries marked [zoo] / [zoo-v4] are rl-zoo3's tuned ddpg.yml values (policy_kwargs as a mapping)."""
    import rl_zoo3

    zoo = load_yaml_mapping(Path(rl_zoo3.__file__).parent / "hyperparams" / "ddpg.yml")
    ours = load_yaml_mapping(DEFAULT_HYPERPARAMS_FILE)
    pairs = {env: env for env in OTHER_TASKS + BULLET_TASKS if env in zoo}
    pairs.update({env: env.replace("-v5", "-v4") for env in MUJOCO_TASKS if env.replace("-v5", "-v4") in zoo})
    # The zoo has these (checked against rl_zoo3 2.9), so a silent drop of the comparison would be a defect.
    assert len(pairs) >= 14
    for our_env, zoo_env in pairs.items():
        expected = dict(zoo[zoo_env])
        expected["policy_kwargs"] = eval(expected["policy_kwargs"], {})
        assert ours[our_env] == expected, our_env


def test_variants_cover_every_ablation_with_valid_names():
    variants = load_variants()
    by_factor: dict[str, list[str]] = {factor: [] for factor in FACTORS}
    for name, entry in variants.items():
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
        by_factor[entry["factor"]].append(name)
    for factor, names in EXPECTED_VARIANTS.items():
        assert sorted(by_factor[factor]) == sorted(names), factor
    # Target-noise variants need our DDPG class; the others run with plain SB3 DDPG.
    for name, entry in variants.items():
        assert entry["algo"] == ("ddpg_ext" if entry["factor"] == "target_noise" else "ddpg"), name


@pytest.mark.parametrize("env_id", ALL_TASKS)
def test_every_variant_resolves_for_every_task(env_id):
    base_algo, base = resolve_variant(DEFAULT_HYPERPARAMS_FILE, env_id, BASELINE)
    assert base_algo == "ddpg"
    for name, entry in load_variants().items():
        algo, merged = resolve_variant(DEFAULT_HYPERPARAMS_FILE, env_id, name)
        assert algo == entry["algo"]
        # Everything not overridden is the baseline's.
        overridden = set(entry["hyperparams"])
        for key, value in base.items():
            if key not in overridden:
                assert merged[key] == value, (env_id, name, key)
        # The merged dict survives a YAML round trip (the runner writes it to hyperparams.yml).
        assert yaml.safe_load(yaml.safe_dump({env_id: merged})) == {env_id: merged}


def test_variant_overrides_are_applied():
    _, merged = resolve_variant(DEFAULT_HYPERPARAMS_FILE, "Hopper-v5", "ln_actor")
    assert merged["policy"] == "sb3_ddpg_ext.policies.LnMlpPolicy"
    assert merged["policy_kwargs"] == {"net_arch": [400, 300], "layer_norm_actor": True, "layer_norm_critic": False}
    assert merged["noise_type"] == "normal"

    _, merged = resolve_variant(DEFAULT_HYPERPARAMS_FILE, "Pendulum-v1", "noise_pink_0.3")
    assert "noise_type" not in merged and "noise_std" not in merged
    assert merged["callback"] == [{"sb3_ddpg_ext.zoo.ExplorationCallback": {"spec": "pink_0.3"}}]

    _, merged = resolve_variant(DEFAULT_HYPERPARAMS_FILE, "HalfCheetahBulletEnv-v0", "ui_episode")
    assert merged["train_freq"] == [1, "episode"] and merged["gradient_steps"] == -1

    algo, merged = resolve_variant(DEFAULT_HYPERPARAMS_FILE, "Walker2d-v5", "tn_per_batch")
    assert algo == "ddpg_ext"
    assert merged["target_noise_sampling"] == "per_batch" and merged["target_policy_noise"] == 0.2


def test_resolve_returns_independent_copies():
    _, first = resolve_variant(DEFAULT_HYPERPARAMS_FILE, "Hopper-v5", "ln_both")
    first["policy_kwargs"]["net_arch"].append(1)
    _, second = resolve_variant(DEFAULT_HYPERPARAMS_FILE, "Hopper-v5", "ln_both")
    assert second["policy_kwargs"]["net_arch"] == [400, 300]


def test_unknown_env_or_variant_names_file_and_key():
    with pytest.raises(ValueError, match=r"env 'NoSuchEnv-v0' not found in hyperparameter file .*ddpg\.yml"):
        resolve_variant(DEFAULT_HYPERPARAMS_FILE, "NoSuchEnv-v0", BASELINE)
    with pytest.raises(ValueError, match=r"variant 'no_such_variant' not found in variants file .*variants\.yml"):
        resolve_variant(DEFAULT_HYPERPARAMS_FILE, "Pendulum-v1", "no_such_variant")
    with pytest.raises(ValueError, match="does not exist"):
        resolve_variant("/nonexistent/ddpg.yml", "Pendulum-v1", BASELINE)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"factor": "noise", "algo": "ddpg", "description": "d"}, "missing key"),
        ({"factor": "noise", "algo": "ddpg", "description": "d", "hyperparams": {}, "extra": 1}, "unknown key"),
        ({"factor": "colour", "algo": "ddpg", "description": "d", "hyperparams": {}}, "factor must be one of"),
        ({"factor": "noise", "algo": "td3", "description": "d", "hyperparams": {}}, "algo must be one of"),
        ({"factor": "noise", "algo": "ddpg", "description": "d", "hyperparams": [1]}, "hyperparams must be a mapping"),
    ],
)
def test_malformed_variants_file_is_rejected(tmp_path, entry, message):
    variants_file = tmp_path / "variants.yml"
    variants_file.write_text(yaml.safe_dump({"my_variant": entry}))
    with pytest.raises(ValueError, match=rf"variant 'my_variant' in .*variants\.yml.*{message}"):
        resolve_variant(DEFAULT_HYPERPARAMS_FILE, "Pendulum-v1", "my_variant", variants_file)


def test_reserved_and_invalid_variant_names(tmp_path):
    good = {"factor": "noise", "algo": "ddpg", "description": "d", "hyperparams": {}}
    for name in [BASELINE, "has space", "a/b"]:
        variants_file = tmp_path / "variants.yml"
        variants_file.write_text(yaml.safe_dump({name: good}))
        with pytest.raises(ValueError, match="variant"):
            load_variants(variants_file)


def test_variants_file_beside_the_hyperparams_file_is_used(tmp_path):
    (tmp_path / "ddpg.yml").write_text(yaml.safe_dump({"Pendulum-v1": {"n_timesteps": 10, "policy": "MlpPolicy"}}))
    (tmp_path / "variants.yml").write_text(
        yaml.safe_dump({"mine": {"factor": "noise", "algo": "ddpg", "description": "d", "hyperparams": {"gamma": 0.5}}})
    )
    assert resolve_variant(tmp_path / "ddpg.yml", "Pendulum-v1", "mine") == (
        "ddpg",
        {"n_timesteps": 10, "policy": "MlpPolicy", "gamma": 0.5},
    )
    assert DEFAULT_VARIANTS_FILE.is_file()


def test_merge_rules():
    base = {"gamma": 0.9, "noise_type": "normal", "callback": ["a.B"], "policy_kwargs": {"net_arch": [8]}}
    merged = merge_hyperparams(
        base, {"noise_type": None, "absent": None, "gamma": 0.5, "callback": [{"c.D": {"x": 1}}], "policy_kwargs": {"k": 1}}
    )
    assert merged == {"gamma": 0.5, "callback": ["a.B", {"c.D": {"x": 1}}], "policy_kwargs": {"net_arch": [8], "k": 1}}
    assert base["noise_type"] == "normal" and base["callback"] == ["a.B"]  # input untouched


def test_merge_into_zoo_style_string_policy_kwargs():
    from torch import nn

    merged = merge_hyperparams(
        {"policy_kwargs": "dict(net_arch=[400, 300], activation_fn=nn.Tanh)"},
        {"policy_kwargs": {"layer_norm_actor": True, "net_arch": [64]}},
    )
    # The zoo eval()s string policy_kwargs with torch.nn imported as nn.
    assert eval(merged["policy_kwargs"], {"nn": nn}) == {
        "net_arch": [64],
        "activation_fn": nn.Tanh,
        "layer_norm_actor": True,
    }


# ------------------------------------------------------------------------------------------------ every YAML builds
HYPERPARAMS_DIR = DEFAULT_HYPERPARAMS_FILE.parent
YAML_FILES = sorted([*HYPERPARAMS_DIR.glob("*.yml"), *HYPERPARAMS_DIR.glob("*.yaml")])


def _is_variants_file(data: dict) -> bool:
    return all(isinstance(entry, dict) and "factor" in entry for entry in data.values())


def _require_env(env_id: str) -> None:
    """Fail on an env id nobody registers; skip only when the package that would register it is not installed."""
    import importlib.util

    import gymnasium as gym

    if "Bullet" in env_id:
        if importlib.util.find_spec("pybullet_envs_gymnasium") is None:
            pytest.skip(f"{env_id}: pybullet_envs_gymnasium not installed")
        import pybullet_envs_gymnasium  # noqa: F401
    elif env_id.endswith("-v5") and importlib.util.find_spec("mujoco") is None:
        pytest.skip(f"{env_id}: mujoco not installed")
    elif env_id.startswith(("LunarLander", "BipedalWalker")) and importlib.util.find_spec("Box2D") is None:
        pytest.skip(f"{env_id}: box2d not installed")
    assert env_id in gym.envs.registry, f"{env_id!r} is not a registered gymnasium env id"


def test_yaml_files_are_known():
    # Each YAML under hyperparams/ is either an env-keyed zoo file or a variants file; both kinds are tested below.
    assert {path.name for path in YAML_FILES} >= {"ddpg.yml", "variants.yml"}
    for path in YAML_FILES:
        data = load_yaml_mapping(path)
        if _is_variants_file(data):
            load_variants(path)


ZOO_ENTRIES = [
    pytest.param(path, env_id, id=f"{path.name}:{env_id}")
    for path in YAML_FILES
    if not _is_variants_file(load_yaml_mapping(path))
    for env_id in load_yaml_mapping(path)
]


@pytest.mark.parametrize(("path", "env_id"), ZOO_ENTRIES)
def test_every_zoo_entry_builds_its_model(tmp_path, path, env_id):
    """Unknown keys and unknown envs fail; the zoo builds env + model (full size, no training) for every entry."""
    from sb3_ddpg_ext.zoo import check_zoo_keys, setup_zoo_experiment

    algo = path.stem if path.stem in ("ddpg", "ddpg_ext") else "ddpg"
    entry = load_yaml_mapping(path)[env_id]
    check_zoo_keys(entry, algo, where=f"{path.name}:{env_id}")
    _require_env(env_id)
    manager, model = setup_zoo_experiment(algo, env_id, entry, tmp_path)
    try:
        assert model.policy_kwargs["net_arch"] == entry["policy_kwargs"]["net_arch"]
        assert model.lr_schedule(1.0) == pytest.approx(entry["learning_rate"])
        assert manager.n_timesteps == int(entry["n_timesteps"])
        if "noise_type" in entry:
            assert model.action_noise is not None
            np.testing.assert_allclose(model.action_noise._sigma, entry["noise_std"])
    finally:
        model.env.close()


def test_every_variant_has_known_keys_for_every_entry():
    from sb3_ddpg_ext.zoo import check_zoo_keys

    for path in YAML_FILES:
        data = load_yaml_mapping(path)
        if _is_variants_file(data):
            continue
        for env_id in data:
            for name in load_variants():
                algo, merged = resolve_variant(path, env_id, name)
                check_zoo_keys(merged, algo, where=f"{path.name}:{env_id} + {name}")


@pytest.mark.parametrize("variant", sorted(load_variants()))
def test_every_variant_builds_its_model(tmp_path, variant):
    """Each variant through the zoo's preprocessing (callbacks, dotted policy path, ddpg_ext) on one env, no training."""
    from sb3_ddpg_ext.zoo import ExplorationCallback, algo_class, setup_zoo_experiment

    algo, merged = resolve_variant(DEFAULT_HYPERPARAMS_FILE, "Pendulum-v1", variant)
    manager, model = setup_zoo_experiment(algo, "Pendulum-v1", merged, tmp_path)
    try:
        assert type(model) is algo_class(algo)
        for key, value in load_variants()[variant]["hyperparams"].items():
            if key in ("target_policy_noise", "target_noise_clip", "target_noise_sampling", "target_noise_space"):
                assert getattr(model, key) == value
            elif key == "callback":
                specs = [cb.spec for cb in manager.callbacks if isinstance(cb, ExplorationCallback)]
                assert specs == [value[0]["sb3_ddpg_ext.zoo.ExplorationCallback"]["spec"]]
            elif key == "policy":
                assert f"{type(model.policy).__module__}.{type(model.policy).__name__}" == value
            elif key == "policy_kwargs":
                assert {k: model.policy_kwargs[k] for k in value} == value
            elif value is None:
                assert key not in manager._hyperparams
            elif key == "train_freq":
                frequency, unit = (value, "step") if isinstance(value, int) else value
                assert (model.train_freq.frequency, model.train_freq.unit.value) == (frequency, unit)
            else:
                assert getattr(model, key) == value, key
    finally:
        model.env.close()


def test_tn_parameter_std_moves_actions_like_the_action_space_std():
    """variants.yml's rationale for tn_parameter (weight std 0.02 ~ action std 0.2), re-measured on Pendulum-v1."""
    import gymnasium as gym
    import torch as th
    from stable_baselines3 import DDPG

    from sb3_ddpg_ext.param_noise import action_distance, make_generator, perturb

    variants = load_variants()
    sigma = variants["tn_parameter"]["hyperparams"]["target_policy_noise"]
    action_sigma = variants["tn_per_sample"]["hyperparams"]["target_policy_noise"]
    model = DDPG("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [400, 300]}, seed=0, device="cpu")
    env = gym.make("Pendulum-v1")
    env.reset(seed=0)
    env.action_space.seed(0)
    obs = th.as_tensor(np.array([env.step(env.action_space.sample())[0] for _ in range(256)]), dtype=th.float32)
    generator = make_generator(0)
    distance = np.mean([action_distance(model.actor, perturb(model.actor, sigma, generator=generator), obs) for _ in range(5)])
    # Same order of magnitude as the action-space std (variants.yml quotes 0.18 from a similar measurement).
    print(f"tn_parameter: weight std {sigma} -> RMS action distance {distance:.3f}")
    assert action_sigma / 2 < distance < action_sigma * 2, distance


# ------------------------------------------------------------------------------------------- module layout
@pytest.mark.parametrize(
    "name",
    [
        "BASELINE",
        "DEFAULT_HYPERPARAMS_FILE",
        "DEFAULT_VARIANTS_FILE",
        "FACTORS",
        "HYPERPARAMS_DIR",
        "VARIANT_ALGOS",
        "load_variants",
        "load_yaml_mapping",
        "merge_hyperparams",
        "resolve_variant",
    ],
)
def test_variants_names_keep_their_zoo_path(name):
    """``sb3_ddpg_ext.variants`` owns variant resolution; ``sb3_ddpg_ext.zoo.<name>`` (in scripts and docs) still works."""
    import sb3_ddpg_ext.variants as variants
    import sb3_ddpg_ext.zoo as zoo

    assert getattr(zoo, name) is getattr(variants, name)
    assert name in variants.__all__ and name in zoo.__all__


def test_variants_module_does_not_import_rl_zoo3():
    import subprocess
    import sys

    code = "import sys, sb3_ddpg_ext.variants; assert 'rl_zoo3' not in sys.modules, 'rl_zoo3 imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
