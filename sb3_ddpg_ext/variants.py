"""
Ablation variants: a run is "baseline + variant" for one env.

- :func:`load_yaml_mapping`: a YAML file whose top level is a mapping (zoo hyperparameter files, the variants file);
- :func:`load_variants`: the variants file (``hyperparams/variants.yml``), validated;
- :func:`merge_hyperparams`: a variant's overrides merged into a baseline zoo entry;
- :func:`resolve_variant`: baseline hyperparameters of one env (``hyperparams/ddpg.yml``) merged with one named
  variant, ready to be written as a zoo YAML.

Layout of the files: ``hyperparams/README.md``. Nothing here imports rl-zoo3.
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import Any, Optional, Union

import yaml

__all__ = [
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
]

_PACKAGE_DIR = Path(__file__).resolve().parent
#: Folder of the shipped zoo YAML files: ``sb3_ddpg_ext/hyperparams`` in an installed wheel (package data), the
#: repository's top-level ``hyperparams/`` in a source checkout (also under ``pip install -e``).
HYPERPARAMS_DIR = (
    _PACKAGE_DIR / "hyperparams" if (_PACKAGE_DIR / "hyperparams").is_dir() else _PACKAGE_DIR.parent / "hyperparams"
)
#: Default baseline file and variants file.
DEFAULT_HYPERPARAMS_FILE = HYPERPARAMS_DIR / "ddpg.yml"
DEFAULT_VARIANTS_FILE = HYPERPARAMS_DIR / "variants.yml"

#: The ablation factors a variant can belong to.
FACTORS: tuple[str, ...] = ("noise", "target_noise", "learning_starts", "update_interval", "layer_norm")
#: Zoo algorithm names a variant can use.
VARIANT_ALGOS: tuple[str, ...] = ("ddpg", "ddpg_ext")
#: Reserved variant name: the baseline entry unchanged.
BASELINE = "baseline"
_VARIANT_KEYS = frozenset({"factor", "algo", "description", "hyperparams"})
_VARIANT_NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")

PathLike = Union[str, Path]

# libyaml's loader when PyYAML was built with it (10-50x faster than the pure-Python one).
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# ------------------------------------------------------------------------------------------------ YAML files
def load_yaml_mapping(path: PathLike) -> dict[str, Any]:
    """
    Load a YAML file whose top level is a mapping (zoo hyperparameter files, the variants file).

    :param path: The YAML file.
    :return: The mapping (YAML merge keys ``<<:`` resolved).
    :raises ValueError: if the file does not exist, does not parse or is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"hyperparameter file {str(path)!r} does not exist")
    stat = path.stat()
    return copy.deepcopy(_load_yaml_mapping_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=32)
def _load_yaml_mapping_cached(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    # mtime_ns and size are part of the cache key so that an edited file is read again.
    try:
        with open(path) as f:
            data = yaml.load(f, Loader=_YamlLoader)
    except yaml.YAMLError as e:
        raise ValueError(f"hyperparameter file {path!r} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ValueError(f"hyperparameter file {path!r} must hold a mapping at top level, got {type(data).__name__}")
    return data


def load_variants(variants_file: Optional[PathLike] = None) -> dict[str, dict[str, Any]]:
    """
    Load and validate the variants file (see ``hyperparams/README.md`` for its layout).

    :param variants_file: Path of the variants YAML; ``None`` for ``hyperparams/variants.yml``.
    :return: ``{variant_name: {"factor", "algo", "description", "hyperparams"}}``.
    :raises ValueError: naming the file and the variant, on a malformed entry.
    """
    path = Path(variants_file) if variants_file is not None else DEFAULT_VARIANTS_FILE
    data = load_yaml_mapping(path)
    for name, entry in data.items():
        where = f"variant {name!r} in {str(path)!r}"
        if not isinstance(name, str) or not _VARIANT_NAME_RE.match(name):
            raise ValueError(f"{where}: the name must be a valid folder name matching {_VARIANT_NAME_RE.pattern}")
        if name == BASELINE:
            raise ValueError(f"{where}: {BASELINE!r} is reserved (it means the baseline entry without override)")
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be a mapping, got {type(entry).__name__}")
        unknown = set(entry) - _VARIANT_KEYS
        missing = _VARIANT_KEYS - set(entry)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_VARIANT_KEYS)}")
        if missing:
            raise ValueError(f"{where}: missing key(s) {sorted(missing)}")
        if entry["factor"] not in FACTORS:
            raise ValueError(f"{where}: factor must be one of {FACTORS}, got {entry['factor']!r}")
        if entry["algo"] not in VARIANT_ALGOS:
            raise ValueError(f"{where}: algo must be one of {VARIANT_ALGOS}, got {entry['algo']!r}")
        if not isinstance(entry["description"], str) or not entry["description"].strip():
            raise ValueError(f"{where}: description must be a non-empty string")
        if not isinstance(entry["hyperparams"], dict):
            raise ValueError(f"{where}: hyperparams must be a mapping of zoo keys, got {type(entry['hyperparams']).__name__}")
    return data


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _merge_policy_kwargs(base: Any, override: Any) -> Any:
    """Merge two ``policy_kwargs`` values (mapping or zoo-style Python string)."""
    if base is None or not isinstance(override, dict):
        return copy.deepcopy(override)
    if isinstance(base, dict):
        return {**copy.deepcopy(base), **copy.deepcopy(override)}
    if isinstance(base, str):
        # The zoo evaluates string policy_kwargs with eval(); keep it a string the zoo evaluates to the merged dict.
        items = ", ".join(f"{key}={value!r}" for key, value in override.items())
        return f"{{**({base}), **dict({items})}}"
    raise ValueError(f"policy_kwargs must be a mapping or a string, got {type(base).__name__}: {base!r}")


def merge_hyperparams(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """
    Merge a variant's overrides into a baseline zoo hyperparameter entry (neither input is modified).

    Rules: a key set to ``None`` is removed; ``policy_kwargs`` mappings are merged key by key (a string baseline such
    as ``"dict(net_arch=[400, 300])"`` becomes a string the zoo evaluates to the merged dict); ``callback`` lists
    are appended to the baseline's; any other key replaces the baseline value.

    :param base: Baseline entry (one env of a zoo YAML).
    :param override: The variant's ``hyperparams`` mapping.
    :return: The merged entry.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif key == "policy_kwargs":
            merged[key] = _merge_policy_kwargs(merged.get(key), value)
        elif key == "callback":
            merged[key] = _as_list(merged.get(key)) + copy.deepcopy(_as_list(value))
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_variant(
    hyperparams_file: PathLike,
    env_id: str,
    variant: str,
    variants_file: Optional[PathLike] = None,
) -> tuple[str, dict[str, Any]]:
    """
    Hyperparameters of one run "baseline + variant" for one env.

    :param hyperparams_file: Env-keyed zoo YAML with the baseline entries (e.g. ``hyperparams/ddpg.yml``).
    :param env_id: Gymnasium env id, a top-level key of ``hyperparams_file``.
    :param variant: A variant name of ``variants_file``, or ``"baseline"`` for the entry unchanged.
    :param variants_file: Variants YAML; ``None`` for ``hyperparams/variants.yml`` beside ``hyperparams_file`` if it
        exists there, else the repository's ``hyperparams/variants.yml``.
    :return: ``(zoo algo name, merged zoo hyperparameter dict)``; write ``{env_id: merged}`` to a YAML file and pass
        it with ``-conf`` to ``python -m sb3_ddpg_ext.train --algo <algo>``.
    :raises ValueError: naming the file and key for an unknown env or variant or a malformed file.
    """
    hyperparams_file = Path(hyperparams_file)
    baselines = load_yaml_mapping(hyperparams_file)
    if env_id not in baselines:
        raise ValueError(
            f"env {env_id!r} not found in hyperparameter file {str(hyperparams_file)!r}; known envs: {sorted(baselines)}"
        )
    base = baselines[env_id]
    if not isinstance(base, dict):
        raise ValueError(f"entry {env_id!r} in {str(hyperparams_file)!r} must be a mapping, got {type(base).__name__}")
    if variant == BASELINE:
        return "ddpg", copy.deepcopy(base)
    if variants_file is None:
        beside = hyperparams_file.parent / "variants.yml"
        variants_file = beside if beside.is_file() else DEFAULT_VARIANTS_FILE
    variants = load_variants(variants_file)
    if variant not in variants:
        raise ValueError(
            f"variant {variant!r} not found in variants file {str(variants_file)!r}; "
            f"known variants: {[BASELINE, *sorted(variants)]}"
        )
    entry = variants[variant]
    return entry["algo"], merge_hyperparams(base, entry["hyperparams"])
