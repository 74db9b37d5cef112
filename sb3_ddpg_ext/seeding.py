"""
Seeds and random generators of sb3_ddpg_ext, in one place.

Every random stream the package owns (action noise, parameter-noise perturbations and replay indices, the
exploration callback's noise seeds) is made here, from a :class:`numpy.random.SeedSequence`:

- :func:`seed_sequence`: a ``SeedSequence`` from an integer, a ``SeedSequence`` or ``None`` (entropy from NumPy's
  global generator, so that ``np.random.seed`` / SB3's ``set_random_seed`` make it reproducible);
- :func:`derive_seed`: an integer seed for sub-stream ``stream`` of a run seed (fixed spawn key: the sub-streams
  differ from each other and from the model's own seeding with the same integer);
- :func:`stream_seed_sequence`: the ``SeedSequence`` of a named stream of a run seed (OS entropy for ``None``);
- :func:`make_generator`: a CPU ``torch.Generator``; :func:`torch_generator_state` /
  :func:`torch_generator_from_state` and :func:`numpy_generator_from_state`: generator states as JSON-able values.

The derivations are part of the results: changing a spawn key or a draw changes every seeded run.
"""

from __future__ import annotations

import base64
import copy
import numbers
from typing import Any, Optional, Union

import numpy as np
import torch as th

__all__ = [
    "EXPLORATION_STREAMS",
    "PARAM_NOISE_STREAM",
    "SeedType",
    "derive_seed",
    "make_generator",
    "numpy_generator_from_state",
    "numpy_generator_state",
    "param_noise_generators",
    "seed_sequence",
    "stream_seed_sequence",
    "torch_generator_from_state",
    "torch_generator_state",
]

SeedType = Union[int, np.random.SeedSequence, None]

#: Spawn key of the exploration callback's sub-streams: ``derive_seed(seed, 0)`` action noise,
#: ``derive_seed(seed, 1)`` parameter noise.
EXPLORATION_STREAMS = 0x200
#: Spawn key of the parameter-noise callback's perturbation and replay-index generators.
PARAM_NOISE_STREAM = 0x5A7A

_BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM, "MT19937": np.random.MT19937}


def seed_sequence(seed: SeedType) -> np.random.SeedSequence:
    """
    Turn ``seed`` into a :class:`numpy.random.SeedSequence`.

    :param seed: Non-negative int, a ``SeedSequence``, or None (entropy drawn from NumPy's global generator,
        so that ``np.random.seed`` makes the result reproducible).
    :return: The seed sequence.
    :raises ValueError: for a negative or non-integer seed.
    """
    if seed is None:
        return np.random.SeedSequence(np.random.randint(0, 2**31 - 1, size=4).tolist())
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or int(seed) < 0:
        raise ValueError(f"seed must be None or a non-negative int, got seed={seed!r}")
    return np.random.SeedSequence(int(seed))


def derive_seed(seed: Optional[int], stream: int) -> Optional[int]:
    """
    Integer seed of sub-stream ``stream`` of the exploration callback's run seed (``None`` stays ``None``).

    :param seed: The run seed.
    :param stream: The sub-stream (0: action noise, 1: parameter noise).
    :return: A 32-bit seed, or ``None``.
    """
    if seed is None:
        return None
    state = np.random.SeedSequence(int(seed), spawn_key=(EXPLORATION_STREAMS, stream)).generate_state(1, dtype=np.uint32)
    return int(state[0])


def stream_seed_sequence(seed: Optional[int], spawn_key: int) -> np.random.SeedSequence:
    """
    The ``SeedSequence`` of one stream of a run seed.

    :param seed: The run seed; ``None`` for fresh OS entropy.
    :param spawn_key: The stream's spawn key (e.g. :data:`PARAM_NOISE_STREAM`).
    :return: The seed sequence.
    """
    if seed is None:
        return np.random.SeedSequence()
    return np.random.SeedSequence(int(seed), spawn_key=(spawn_key,))


def param_noise_generators(seed: Optional[int]) -> tuple[th.Generator, np.random.Generator]:
    """
    The two generators of the parameter-noise callback: perturbations (torch) and replay indices (NumPy), from the
    stream :data:`PARAM_NOISE_STREAM` of ``seed``.

    :param seed: The run seed; ``None`` for fresh OS entropy.
    :return: ``(torch generator, numpy generator)``.
    """
    torch_seed, np_seed = stream_seed_sequence(seed, PARAM_NOISE_STREAM).generate_state(2, dtype=np.uint32)
    return make_generator(int(torch_seed)), np.random.default_rng(int(np_seed))


def make_generator(seed: Optional[int]) -> th.Generator:
    """
    A CPU ``torch.Generator`` seeded from ``seed`` (or from fresh OS entropy if None).

    :param seed: Seed or None.
    :return: The generator.
    """
    generator = th.Generator()
    if seed is None:
        generator.manual_seed(int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1))
    else:
        generator.manual_seed(int(seed))
    return generator


def torch_generator_state(generator: th.Generator) -> str:
    """
    The state of a ``torch.Generator`` as base64 text (JSON-able).

    :param generator: The generator.
    :return: Its state.
    """
    return base64.b64encode(generator.get_state().numpy().tobytes()).decode("ascii")


def torch_generator_from_state(state: str) -> th.Generator:
    """
    A CPU ``torch.Generator`` in the state given by :func:`torch_generator_state`.

    :param state: The base64 state.
    :return: The generator.
    """
    raw = np.frombuffer(base64.b64decode(state), dtype=np.uint8).copy()
    generator = th.Generator()
    generator.set_state(th.from_numpy(raw))
    return generator


def numpy_generator_state(generator: np.random.Generator) -> dict[str, Any]:
    """
    The state of a :class:`numpy.random.Generator` (a JSON-able copy of ``bit_generator.state``).

    :param generator: The generator.
    :return: Its state.
    """
    return copy.deepcopy(dict(generator.bit_generator.state))


def numpy_generator_from_state(state: dict[str, Any], what: str = "rng_state") -> np.random.Generator:
    """
    A :class:`numpy.random.Generator` in the state ``generator.bit_generator.state`` had.

    :param state: The bit generator's state dict (not modified).
    :param what: Name of the state in the error message.
    :return: The generator.
    :raises ValueError: for an unknown bit generator.
    """
    state = copy.deepcopy(state)
    name = state.get("bit_generator")
    if name not in _BIT_GENERATORS:
        raise ValueError(f"{what} has an unknown bit generator {name!r}")
    bit_generator = _BIT_GENERATORS[name]()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
