"""Exploration action noise for off-policy continuous control (DDPG / TD3).

Every class subclasses Stable-Baselines3's :class:`~stable_baselines3.common.noise.ActionNoise`, so it can be passed
as ``action_noise=`` to SB3's ``DDPG`` / ``TD3`` (and wrapped in
:class:`~stable_baselines3.common.noise.VectorizedActionNoise`). SB3 2.9 calls ``noise()`` once per (vectorised) environment
step, including the uniform-random warm-up steps before ``learning_starts`` (``OffPolicyAlgorithm._sample_action``
adds the noise to those actions too, then clips), and ``noise.reset()`` at the end of every episode and at the start
of every ``learn()``.

Classes

- :class:`GaussianActionNoise`: ``N(mean, sigma^2)``, optionally with ``sigma`` decayed linearly to ``final_sigma``
  over ``decay_steps`` calls (SB3 issue #846).
- :class:`OrnsteinUhlenbeckActionNoise`: SB3's OU process
  ``x_{t+1} = x_t + theta (mean - x_t) dt + sigma sqrt(dt) N(0, 1)``, optionally started at every reset from its
  stationary distribution (``stationary_start=True``) to remove the start-of-episode transient.
- :class:`ColoredActionNoise` / :class:`PinkActionNoise`: Gaussian sequences with power spectral density
  ``~ 1/f^beta`` generated per episode by the Timmer & Koenig (1995) method (Eberhard et al., ICLR 2023,
  https://openreview.net/forum?id=hQ9V5QN27eS); ``beta = 1`` is pink noise.

Random numbers and independence

Each instance owns a :class:`numpy.random.Generator` built from a :class:`numpy.random.SeedSequence`:
``seed=None`` draws the seed from NumPy's global generator when the noise is first used (not when it is
constructed), so ``np.random.seed`` / SB3's ``set_random_seed`` (called by ``DDPG(..., seed=s)``) / rl-zoo3's
``--seed`` make it reproducible; an explicit ``seed`` is independent of all global state.
``copy.deepcopy`` (used by ``VectorizedActionNoise`` to make one copy per env) returns an *independent* process:
same parameters and schedule position, a child seed spawned from the parent's ``SeedSequence`` (so copy ``i`` is
always stream ``i`` for a given seed), and restarted as after ``reset()``. ``pickle`` (``model.save()`` /
``load()``) keeps the exact state, random generator included.

Spec strings for :func:`make_action_noise` (the same strings are used in YAMLs and benchmark suites)

============================================  ================================================================
``"none"``                                    no noise (returns ``None``)
``"normal_<sigma>"``                          :class:`GaussianActionNoise` with constant ``sigma``
``"normal_<sigma>_<final_sigma>_<steps>"``    :class:`GaussianActionNoise`, ``sigma`` decays linearly to
                                              ``final_sigma`` over ``steps`` calls
``"ou_<sigma>"``                              :class:`OrnsteinUhlenbeckActionNoise` started at 0 (SB3's)
``"ou-stationary_<sigma>"``                   :class:`OrnsteinUhlenbeckActionNoise` with ``stationary_start``
``"pink_<sigma>"``                            :class:`PinkActionNoise`
``"colored_<beta>_<sigma>"``                  :class:`ColoredActionNoise`
============================================  ================================================================

Keyword arguments of :func:`make_action_noise`: ``seq_len`` (coloured / pink, default 1000; accepted and ignored by
the other specs so that a caller may always pass the episode length), ``theta`` and ``dt`` (OU), ``fmin`` (coloured /
pink), ``mean`` and ``dtype`` (all).
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import DTypeLike
from stable_baselines3.common.noise import ActionNoise, VectorizedActionNoise

from sb3_ddpg_ext.seeding import SeedType
from sb3_ddpg_ext.seeding import seed_sequence as _seed_sequence

__all__ = [
    "ACTION_NOISE_SPECS",
    "SPEC_PLACEHOLDERS",
    "ColoredActionNoise",
    "GaussianActionNoise",
    "OrnsteinUhlenbeckActionNoise",
    "PinkActionNoise",
    "action_noise_spec_forms",
    "check_action_noise_spec",
    "format_action_noise_spec",
    "make_action_noise",
    "noise_sigma",
]

ArrayLike = Union[float, np.ndarray, list, tuple]


def _as_float_array(value: ArrayLike, name: str, non_negative: bool = False) -> np.ndarray:
    """Validate a scalar or 1-D per-dimension parameter and return it as a float64 array.

    :param value: the parameter value
    :param name: parameter name, used in error messages
    :param non_negative: if True, negative entries raise ``ValueError``
    :return: the parameter as a 0-D or 1-D float64 array
    """
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a float or a 1-D array of floats, got {name}={value!r}") from e
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D per-dimension array, got {name} with shape {arr.shape}")
    if arr.ndim == 1 and arr.size == 0:
        raise ValueError(f"{name} must not be empty, got {name}={value!r}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {name}={value!r}")
    if non_negative and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got {name}={value!r}")
    return arr


def _broadcast_shape(**arrays: np.ndarray) -> tuple[int, ...]:
    """Common shape of per-dimension parameters, or ``ValueError`` naming the mismatched ones."""
    try:
        return tuple(np.broadcast_shapes(*(a.shape for a in arrays.values())))
    except ValueError as e:
        shapes = ", ".join(f"{k}.shape={v.shape}" for k, v in arrays.items())
        raise ValueError(f"per-dimension parameters have incompatible shapes: {shapes}") from e


def _fmt(arr: np.ndarray) -> str:
    return repr(float(arr)) if arr.ndim == 0 else np.array2string(arr, separator=", ")


class _SeededActionNoise(ActionNoise):
    """Base class: a per-instance ``numpy.random.Generator`` and independent streams on ``copy.deepcopy``.

    :param seed: non-negative int, ``SeedSequence`` or None (see module docstring)
    :param dtype: dtype of the returned noise
    """

    _seed_seq: Optional[np.random.SeedSequence]
    _rng: Optional[np.random.Generator]

    def __init__(self, seed: SeedType = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        # seed=None: created lazily at first use, so that np.random.seed() calls made between construction and use
        # (SB3 seeds the global generator in the algorithm's constructor) determine the stream
        self._seed_seq = None if seed is None else _seed_sequence(seed)
        self._rng = None if self._seed_seq is None else np.random.default_rng(self._seed_seq)
        try:
            self._dtype = np.dtype(dtype)
        except TypeError as e:
            raise ValueError(f"dtype must be a NumPy dtype, got dtype={dtype!r}") from e

    # every subclass sets ``_mu`` and ``_sigma`` (validated arrays) in its constructor
    _mu: np.ndarray
    _sigma: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """Mean of the noise (scalar or per action dimension)."""
        return self._mu

    @property
    def sigma(self) -> np.ndarray:
        """Scale sigma of the noise (scalar or per action dimension; for Gaussian noise, the initial sigma)."""
        return self._sigma

    @property
    def rng(self) -> np.random.Generator:
        """The random generator of this instance (created at first access if ``seed`` was None)."""
        if self._rng is None:
            self._seed_seq = _seed_sequence(None)
            self._rng = np.random.default_rng(self._seed_seq)
        return self._rng

    @property
    def seed_sequence(self) -> np.random.SeedSequence:
        """The ``SeedSequence`` of this instance's generator."""
        self.rng  # noqa: B018 (materialise a lazy seed)
        assert self._seed_seq is not None
        return self._seed_seq

    def __deepcopy__(self, memo: dict[int, Any]) -> _SeededActionNoise:
        """Independent copy: same parameters and state, child random stream, then ``reset()``.

        ``VectorizedActionNoise`` deep-copies its base noise once per env; without this every env would replay the
        same random stream. Child ``i`` is spawned from the parent's ``SeedSequence``, so streams are reproducible.
        """
        cls = self.__class__
        new = cls.__new__(cls)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key in ("_seed_seq", "_rng"):
                continue
            setattr(new, key, copy.deepcopy(value, memo))
        if self._seed_seq is None:
            # unseeded and not used yet: the copy stays lazy too and takes its own entropy from NumPy's global
            # generator at first use, i.e. after SB3 has seeded it (``make_action_noise(n_envs > 1)`` copies at build
            # time); the copies materialise one after another, so their streams differ and follow the model seed
            new._seed_seq = None
            new._rng = None
        else:
            child = self._seed_seq.spawn(1)[0]
            new._seed_seq = child
            new._rng = np.random.default_rng(child)
        new.reset()
        return new


class GaussianActionNoise(_SeededActionNoise):
    """Gaussian action noise ``N(mean, sigma_t^2)``, with constant or linearly decaying ``sigma_t``.

    With ``final_sigma`` and ``decay_steps`` set, the ``t``-th call (``t = 0, 1, ...``) uses
    ``sigma_t = sigma + (final_sigma - sigma) * min(t, decay_steps) / decay_steps``: ``sigma`` at the first call,
    ``final_sigma`` from call ``decay_steps`` on (the old rl-zoo ``LinearNormalActionNoise``; SB3 issue #846).
    The call counter is not reset by ``reset()`` (the schedule spans training, not an episode) and is saved with
    the model. SB3 2.9 calls the noise at every env step, warm-up steps included, so with one env ``t`` is the
    number of env steps taken; under ``VectorizedActionNoise`` each env copy counts its own calls, i.e. the schedule
    spans ``decay_steps`` vectorised steps (``decay_steps * n_envs`` transitions).

    :param mean: mean, scalar or per-dimension array
    :param sigma: (initial) standard deviation, scalar or per-dimension array, >= 0
    :param final_sigma: standard deviation at the end of the decay (None: constant ``sigma``)
    :param decay_steps: number of calls over which ``sigma`` decays to ``final_sigma`` (int >= 1)
    :param seed: seed of the random generator (see module docstring)
    :param dtype: dtype of the returned noise
    """

    _mu: np.ndarray
    _sigma: np.ndarray
    _shape: tuple[int, ...]
    n_calls: int

    def __init__(
        self,
        mean: ArrayLike,
        sigma: ArrayLike,
        final_sigma: Optional[ArrayLike] = None,
        decay_steps: Optional[int] = None,
        seed: SeedType = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        self._mu = _as_float_array(mean, "mean")
        self._sigma = _as_float_array(sigma, "sigma", non_negative=True)
        if (final_sigma is None) != (decay_steps is None):
            raise ValueError(
                "final_sigma and decay_steps must be given together, "
                f"got final_sigma={final_sigma!r}, decay_steps={decay_steps!r}"
            )
        self._final_sigma: Optional[np.ndarray] = None
        self._decay_steps: Optional[int] = None
        if final_sigma is not None:
            self._final_sigma = _as_float_array(final_sigma, "final_sigma", non_negative=True)
            if (
                isinstance(decay_steps, (bool, np.bool_))
                or not isinstance(decay_steps, numbers.Integral)
                or int(decay_steps) < 1
            ):
                raise ValueError(f"decay_steps must be an int >= 1, got decay_steps={decay_steps!r}")
            self._decay_steps = int(decay_steps)
            self._shape = _broadcast_shape(mean=self._mu, sigma=self._sigma, final_sigma=self._final_sigma)
        else:
            self._shape = _broadcast_shape(mean=self._mu, sigma=self._sigma)
        self.n_calls = 0
        super().__init__(seed=seed, dtype=dtype)

    @property
    def final_sigma(self) -> Optional[np.ndarray]:
        return self._final_sigma

    @property
    def decay_steps(self) -> Optional[int]:
        return self._decay_steps

    @property
    def current_sigma(self) -> np.ndarray:
        """Standard deviation that the next call will use."""
        if self._final_sigma is None or self._decay_steps is None:
            return self._sigma
        frac = min(self.n_calls, self._decay_steps) / self._decay_steps
        return self._sigma + (self._final_sigma - self._sigma) * frac

    def __call__(self) -> np.ndarray:
        sigma = self.current_sigma
        self.n_calls += 1
        return (self._mu + sigma * self.rng.standard_normal(self._shape)).astype(self._dtype)

    def __repr__(self) -> str:
        if self._final_sigma is None:
            return f"GaussianActionNoise(mean={_fmt(self._mu)}, sigma={_fmt(self._sigma)})"
        # sigma: the one the next call uses (the schedule's position), then the schedule itself
        return (
            f"GaussianActionNoise(mean={_fmt(self._mu)}, sigma={_fmt(self.current_sigma)}, "
            f"initial_sigma={_fmt(self._sigma)}, final_sigma={_fmt(self._final_sigma)}, "
            f"decay_steps={self._decay_steps}, n_calls={self.n_calls})"
        )


class OrnsteinUhlenbeckActionNoise(_SeededActionNoise):
    """Ornstein-Uhlenbeck action noise, SB3's discretisation, with an optional stationary start.

    Each call returns ``x_{t+1} = x_t + theta (mean - x_t) dt + sigma sqrt(dt) eps``, ``eps ~ N(0, 1)``, exactly as
    SB3's ``OrnsteinUhlenbeckActionNoise`` (and openai/baselines). ``reset()`` restarts from ``x_0 = initial_noise``
    (0 by default): the std is then only ``sigma sqrt(dt)`` (0.1 sigma at the defaults) at the first step.
    With ``stationary_start=True`` every ``reset()`` instead draws ``x_0 ~ N(mean, stationary_std^2)``, so every step
    of the episode has the stationary distribution. For the recursion above (AR(1) with coefficient
    ``a = 1 - theta dt`` and innovation variance ``sigma^2 dt``) the stationary variance is
    ``sigma^2 dt / (1 - a^2) = sigma^2 / (2 theta - theta^2 dt)``, i.e. ``sigma / sqrt(2 theta)`` up to a relative
    ``theta dt / 4`` (0.04 % at the defaults); :attr:`stationary_std` is the exact value.

    :param mean: mean (long-run level) of the process, scalar or per-dimension array
    :param sigma: diffusion scale, scalar or per-dimension array, >= 0
    :param theta: rate of mean reversion, >= 0 (> 0 with ``stationary_start``); ``theta * dt`` must be < 2
    :param dt: time step, > 0
    :param initial_noise: start value after ``reset()`` (None: 0); not allowed with ``stationary_start``
    :param stationary_start: draw the start value of every episode from the stationary distribution
    :param seed: seed of the random generator (see module docstring)
    :param dtype: dtype of the returned noise
    """

    _mu: np.ndarray
    _sigma: np.ndarray
    _theta: float
    _dt: float
    _stationary_start: bool
    _shape: tuple[int, ...]
    noise_prev: np.ndarray
    _draw_start: bool

    def __init__(
        self,
        mean: ArrayLike,
        sigma: ArrayLike,
        theta: float = 0.15,
        dt: float = 1e-2,
        initial_noise: Optional[ArrayLike] = None,
        stationary_start: bool = False,
        seed: SeedType = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        self._mu = _as_float_array(mean, "mean")
        self._sigma = _as_float_array(sigma, "sigma", non_negative=True)
        for name, value in (("theta", theta), ("dt", dt)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite float, got {name}={value!r}")
        if theta < 0:
            raise ValueError(f"theta must be >= 0, got theta={theta!r}")
        if dt <= 0:
            raise ValueError(f"dt must be > 0, got dt={dt!r}")
        if theta * dt >= 2:
            raise ValueError(f"theta * dt must be < 2 for a stable process, got theta={theta!r}, dt={dt!r}")
        if stationary_start and theta == 0:
            raise ValueError("stationary_start=True needs theta > 0 (no stationary distribution), got theta=0")
        if stationary_start and initial_noise is not None:
            raise ValueError(f"initial_noise and stationary_start=True are exclusive, got initial_noise={initial_noise!r}")
        self._theta = float(theta)
        self._dt = float(dt)
        self._stationary_start = bool(stationary_start)
        if initial_noise is not None:
            self.initial_noise: Optional[np.ndarray] = _as_float_array(initial_noise, "initial_noise")
            self._shape = _broadcast_shape(mean=self._mu, sigma=self._sigma, initial_noise=self.initial_noise)
        else:
            self.initial_noise = None
            self._shape = _broadcast_shape(mean=self._mu, sigma=self._sigma)
        super().__init__(seed=seed, dtype=dtype)
        self.noise_prev = np.zeros(self._shape)
        self._draw_start = False
        self.reset()

    @property
    def theta(self) -> float:
        return self._theta

    @property
    def dt(self) -> float:
        return self._dt

    @property
    def stationary_start(self) -> bool:
        return self._stationary_start

    @property
    def stationary_std(self) -> np.ndarray:
        """Exact stationary standard deviation of the discrete recursion, ``sigma / sqrt(2 theta - theta^2 dt)``."""
        if self._theta == 0:
            return np.full(self._shape, np.inf)
        return np.broadcast_to(self._sigma / np.sqrt(2 * self._theta - self._theta**2 * self._dt), self._shape).copy()

    def __call__(self) -> np.ndarray:
        if self._draw_start:
            self.noise_prev = self._mu + self.stationary_std * self.rng.standard_normal(self._shape)
            self._draw_start = False
        noise = (
            self.noise_prev
            + self._theta * (self._mu - self.noise_prev) * self._dt
            + self._sigma * np.sqrt(self._dt) * self.rng.standard_normal(self._shape)
        )
        self.noise_prev = noise
        return noise.astype(self._dtype)

    def reset(self) -> None:
        """Restart the process: ``x_0`` from the stationary distribution (drawn at the next call), ``initial_noise``
        or 0."""
        if self._stationary_start:
            self._draw_start = True
        elif self.initial_noise is not None:
            self.noise_prev = np.broadcast_to(self.initial_noise, self._shape).copy()
        else:
            self.noise_prev = np.zeros(self._shape)

    def __repr__(self) -> str:
        return (
            f"OrnsteinUhlenbeckActionNoise(mean={_fmt(self._mu)}, sigma={_fmt(self._sigma)}, theta={self._theta}, "
            f"dt={self._dt}, stationary_start={self._stationary_start})"
        )


#: Largest log of (sum of the squared amplitudes) for which :func:`colored_noise_sequences` uses the plain amplitudes
#: ``f^(-beta/2)``; float64 overflows at ``log(max) = 709.78``, the margin covers the Gaussian factors and ``irfft``.
_DIRECT_LOG_LIMIT = 600.0


def colored_noise_sequences(
    beta: float, seq_len: int, n_sequences: int, rng: np.random.Generator, fmin: float = 0.0
) -> np.ndarray:
    """Unit-variance Gaussian sequences with power spectral density ``~ 1/f^beta`` (Timmer & Koenig, 1995).

    Frequencies ``f = rfftfreq(seq_len)``; frequencies below ``max(fmin, 1/seq_len)`` (the DC term) are clamped to
    that cutoff; amplitudes ``f^(-beta/2)``; independent Gaussian real and imaginary parts, the DC term and (even
    ``seq_len``) the Nyquist term real only and scaled by ``sqrt(2)``; ``irfft``; divided by the exact theoretical
    standard deviation of the result (DC and Nyquist terms included), so every sample is ``N(0, 1)``.

    Large ``beta``: the largest amplitude, ``cutoff^(-beta/2)``, is ``seq_len^(beta/2)`` without ``fmin``; its square
    (in the standard deviation) overflows float64 from ``beta ~ 102`` at ``seq_len = 1000`` (the standard deviation
    becomes ``inf``: all-zero output) and the amplitude itself from ``beta ~ 205`` (``inf * 0`` in ``irfft``: NaN).
    Since the output does not depend on a common factor of the amplitudes, they are then computed relative to the
    largest one, in log space, ``exp(-beta/2 * (log f - log cutoff))`` in ``(0, 1]``: this works for every finite
    ``beta >= 0`` (as ``beta -> inf`` the sequences tend to a constant plus a random-phase sinusoid of period
    ``seq_len``). The relative form is used only when ``beta * log(1/cutoff) + log(4 * n_bins)`` exceeds
    :data:`_DIRECT_LOG_LIMIT` (600, float64 overflows at 709.78), so for the usual exponents (``beta <= 2``, any
    practical ``seq_len``) the amplitudes, and the output, are exactly the plain ``f^(-beta/2)`` ones.

    :param beta: spectral exponent, any finite number >= 0 (0 white, 1 pink, 2 red / brown)
    :param seq_len: length of each sequence (>= 1)
    :param n_sequences: number of independent sequences
    :param rng: random generator
    :param fmin: low-frequency cutoff in cycles per step, in [0, 0.5]
    :return: array of shape ``(n_sequences, seq_len)``
    """
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, numbers.Real) or not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite float >= 0, got beta={beta!r}")
    f = np.fft.rfftfreq(seq_len)
    cutoff = max(fmin, 1.0 / seq_len)
    f = np.maximum(f, cutoff)
    if float(beta) * math.log(1.0 / cutoff) + math.log(4.0 * f.size) <= _DIRECT_LOG_LIMIT:
        amp = f ** (-beta / 2.0)
    else:
        # relative to the largest amplitude (at the cutoff), in log space: no overflow; tiny ones underflow to 0
        # (an exponent of -inf for a huge beta included)
        with np.errstate(over="ignore", under="ignore"):
            amp = np.exp(-(float(beta) / 2.0) * (np.log(f) - math.log(cutoff)))
    real = rng.standard_normal((n_sequences, f.size)) * amp
    imag = rng.standard_normal((n_sequences, f.size)) * amp
    # Time-domain variance of each bin, in units of amp^2 / seq_len^2: 4 for a complex bin (2 Re(S e^{i phi})),
    # 2 for the real-only DC and Nyquist bins ((sqrt(2) amp)^2).
    weights = np.full(f.size, 4.0)
    real[:, 0] *= np.sqrt(2.0)
    imag[:, 0] = 0.0
    weights[0] = 2.0
    if seq_len % 2 == 0 and seq_len > 1:
        real[:, -1] *= np.sqrt(2.0)
        imag[:, -1] = 0.0
        weights[-1] = 2.0
    std = np.sqrt(np.sum(weights * amp**2)) / seq_len
    return np.fft.irfft(real + 1j * imag, n=seq_len, axis=-1) / std


class ColoredActionNoise(_SeededActionNoise):
    """Coloured action noise: per-dimension Gaussian sequences with power spectral density ``~ 1/f^beta``.

    Paper: Eberhard et al., "Pink Noise Is All You Need: Colored Noise Exploration in Deep Reinforcement Learning",
    ICLR 2023, https://openreview.net/forum?id=hQ9V5QN27eS. A sequence of ``seq_len`` steps is generated for each
    action dimension by :func:`colored_noise_sequences` (Timmer & Koenig, 1995); each call returns the next step,
    ``mean + sigma * x_t`` with ``x_t ~ N(0, 1)``. A fresh sequence is drawn after every ``reset()`` (episode end)
    and when ``seq_len`` steps have been used. ``seq_len`` should be the episode length.
    Independent per env under ``VectorizedActionNoise`` (see module docstring), unlike the reference integration.

    :param beta: spectral exponent, any finite beta >= 0 (0 white, 1 pink, 2 red / brown; large values work, see
        :func:`colored_noise_sequences`)
    :param sigma: scale, scalar or per-dimension array, >= 0
    :param seq_len: length of a generated sequence (int >= 1), ideally the episode length
    :param action_dim: number of action dimensions (int >= 1)
    :param seed: seed of the random generator (see module docstring)
    :param mean: mean, scalar or per-dimension array
    :param fmin: low-frequency cutoff in cycles per step, in [0, 0.5] (the effective cutoff is at least 1/seq_len)
    :param dtype: dtype of the returned noise
    """

    _beta: float
    _seq_len: int
    _action_dim: int
    _fmin: float
    _sigma: np.ndarray
    _mu: np.ndarray
    _buffer: Optional[np.ndarray]
    _idx: int

    def __init__(
        self,
        beta: float,
        sigma: ArrayLike,
        seq_len: int,
        action_dim: int,
        seed: SeedType = None,
        mean: ArrayLike = 0.0,
        fmin: float = 0.0,
        dtype: DTypeLike = np.float32,
    ) -> None:
        if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, numbers.Real) or not np.isfinite(beta):
            raise ValueError(f"beta must be a finite float, got beta={beta!r}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got beta={beta!r}")
        for name, value in (("seq_len", seq_len), ("action_dim", action_dim)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or int(value) < 1:
                raise ValueError(f"{name} must be an int >= 1, got {name}={value!r}")
        if isinstance(fmin, (bool, np.bool_)) or not isinstance(fmin, numbers.Real) or not 0 <= fmin <= 0.5:
            raise ValueError(f"fmin must be a float in [0, 0.5], got fmin={fmin!r}")
        self._beta = float(beta)
        self._seq_len = int(seq_len)
        self._action_dim = int(action_dim)
        self._fmin = float(fmin)
        self._sigma = _as_float_array(sigma, "sigma", non_negative=True)
        self._mu = _as_float_array(mean, "mean")
        for name, arr in (("sigma", self._sigma), ("mean", self._mu)):
            if arr.ndim == 1 and arr.shape[0] != self._action_dim:
                raise ValueError(f"{name} must be a scalar or have shape ({self._action_dim},), got shape {arr.shape}")
        super().__init__(seed=seed, dtype=dtype)
        self._buffer = None
        self._idx = 0

    @property
    def beta(self) -> float:
        return self._beta

    @property
    def seq_len(self) -> int:
        return self._seq_len

    @property
    def action_dim(self) -> int:
        return self._action_dim

    @property
    def fmin(self) -> float:
        return self._fmin

    def _generate(self) -> None:
        self._buffer = colored_noise_sequences(self._beta, self._seq_len, self._action_dim, self.rng, self._fmin)
        self._idx = 0

    def __call__(self) -> np.ndarray:
        if self._buffer is None or self._idx >= self._seq_len:
            self._generate()
        assert self._buffer is not None
        x = self._buffer[:, self._idx]
        self._idx += 1
        return (self._mu + self._sigma * x).astype(self._dtype)

    def reset(self) -> None:
        """Drop the current sequence: the next call starts a freshly generated one."""
        self._buffer = None
        self._idx = 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(beta={self._beta}, sigma={_fmt(self._sigma)}, seq_len={self._seq_len}, "
            f"action_dim={self._action_dim})"
        )


class PinkActionNoise(ColoredActionNoise):
    """Pink action noise: :class:`ColoredActionNoise` with ``beta = 1`` (Eberhard et al., ICLR 2023,
    https://openreview.net/forum?id=hQ9V5QN27eS).

    :param sigma: scale, scalar or per-dimension array, >= 0
    :param seq_len: length of a generated sequence (int >= 1), ideally the episode length
    :param action_dim: number of action dimensions (int >= 1)
    :param seed: seed of the random generator (see module docstring)
    :param mean: mean, scalar or per-dimension array
    :param fmin: low-frequency cutoff in cycles per step, in [0, 0.5]
    :param dtype: dtype of the returned noise
    """

    def __init__(
        self,
        sigma: ArrayLike,
        seq_len: int,
        action_dim: int,
        seed: SeedType = None,
        mean: ArrayLike = 0.0,
        fmin: float = 0.0,
        dtype: DTypeLike = np.float32,
    ) -> None:
        super().__init__(1.0, sigma, seq_len, action_dim, seed=seed, mean=mean, fmin=fmin, dtype=dtype)

    def __repr__(self) -> str:
        return f"PinkActionNoise(sigma={_fmt(self._sigma)}, seq_len={self._seq_len}, action_dim={self._action_dim})"


#: The action-noise spec grammar (one owner: exploration specs and the Optuna sampler build on it): spec kind ->
#: the accepted lists of ``'_'``-separated numbers, by name.
ACTION_NOISE_SPECS: dict[str, tuple[tuple[str, ...], ...]] = {
    "normal": (("sigma",), ("sigma", "final_sigma", "decay_steps")),
    "ou": (("sigma",),),
    "ou-stationary": (("sigma",),),
    "pink": (("sigma",),),
    "colored": (("beta", "sigma"),),
}
#: Placeholders a spec's numbers may be, replaced by the caller before building (see
#: :class:`sb3_ddpg_ext.callbacks.ExplorationCallback`): ``normal_0.2_0.0_{noise_steps}``.
SPEC_PLACEHOLDERS: tuple[str, ...] = ("{total_timesteps}", "{noise_steps}")

_KWARGS_BY_KIND = {
    "normal": {"mean", "dtype", "seq_len"},
    "ou": {"mean", "dtype", "seq_len", "theta", "dt"},
    "ou-stationary": {"mean", "dtype", "seq_len", "theta", "dt"},
    "pink": {"mean", "dtype", "seq_len", "fmin"},
    "colored": {"mean", "dtype", "seq_len", "fmin"},
}
_N_ARGS_BY_KIND = {kind: tuple(len(names) for names in forms) for kind, forms in ACTION_NOISE_SPECS.items()}


def action_noise_spec_forms() -> list[str]:
    """
    The forms of an action-noise spec, e.g. ``["none", "normal_<sigma>", ..., "colored_<beta>_<sigma>"]``.

    :return: One string per form.
    """
    forms = [
        f"{kind}_" + "_".join(f"<{name}>" for name in names)
        for kind, all_names in ACTION_NOISE_SPECS.items()
        for names in all_names
    ]
    return ["none", *forms]


def _forms_text() -> str:
    forms = [repr(form) for form in action_noise_spec_forms()]
    return f"{', '.join(forms[:-1])} or {forms[-1]}"


def check_action_noise_spec(spec: str) -> str:
    """
    Validate an action-noise spec (the numbers may be :data:`SPEC_PLACEHOLDERS`) without using any random state.

    :param spec: The spec, e.g. ``"pink_0.3"`` or ``"normal_0.2_0.0_{noise_steps}"``.
    :return: The spec as :func:`make_action_noise` reads it (stripped, lower case).
    :raises ValueError: naming the spec and what is wrong, as :func:`make_action_noise` would.
    """
    if not isinstance(spec, str):
        raise ValueError(f"action noise spec must be a string, got spec={spec!r}")
    probe = spec
    for placeholder in SPEC_PLACEHOLDERS:
        probe = probe.replace(placeholder, "1")
    make_action_noise(probe, action_dim=1, n_envs=1, seed=0)
    return spec.strip().lower()


def _format_number(value: Union[float, str]) -> str:
    if isinstance(value, str):
        return value
    return f"{float(value):.6g}"


def format_action_noise_spec(kind: str, *values: Union[float, str]) -> str:
    """
    The spec string of an action noise, e.g. ``format_action_noise_spec("normal", 0.1) == "normal_0.1"``
    (numbers written with 6 significant digits; a :data:`SPEC_PLACEHOLDERS` string is kept as it is).

    :param kind: ``"none"`` or a kind of :data:`ACTION_NOISE_SPECS`.
    :param values: The numbers of the kind, in the order of the grammar.
    :return: The spec (checked with :func:`check_action_noise_spec`).
    :raises ValueError: on an unknown kind, a wrong number of values or an invalid value.
    """
    if kind == "none" and not values:
        return "none"
    if kind not in ACTION_NOISE_SPECS:
        raise ValueError(f"unknown action noise kind {kind!r}; expected 'none' or one of {list(ACTION_NOISE_SPECS)}")
    spec = "_".join([kind, *(_format_number(value) for value in values)])
    return check_action_noise_spec(spec)


def noise_sigma(noise: Optional[ActionNoise]) -> Optional[float]:
    """
    The scale the next draw of an action noise uses, as one number (mean over action dimensions and, for a
    ``VectorizedActionNoise``, over envs): the decayed sigma of a :class:`GaussianActionNoise`, the ``sigma`` of the
    other noises of this module and of SB3's ``NormalActionNoise`` / ``OrnsteinUhlenbeckActionNoise``.

    :param noise: The action noise (``None``: no noise).
    :return: The sigma, or ``None`` for no noise or a noise without a known scale.
    """
    if noise is None:
        return None
    if isinstance(noise, VectorizedActionNoise):
        sigmas = [noise_sigma(base) for base in noise.noises]
        known = [sigma for sigma in sigmas if sigma is not None]
        if not known or len(known) != len(sigmas):
            return None
        return float(np.mean(known))
    if isinstance(noise, GaussianActionNoise):
        return float(np.mean(noise.current_sigma))
    if isinstance(noise, _SeededActionNoise):
        return float(np.mean(noise.sigma))
    sigma = getattr(noise, "_sigma", None)  # SB3's NormalActionNoise, OrnsteinUhlenbeckActionNoise
    if sigma is None:
        return None
    try:
        return float(np.mean(np.asarray(sigma, dtype=np.float64)))
    except (TypeError, ValueError):
        return None


def _parse_float(text: str, name: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"action noise spec {spec!r}: {name} must be a number, got {text!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"action noise spec {spec!r}: {name} must be finite, got {text!r}")
    return value


def make_action_noise(
    spec: Optional[str], action_dim: int, n_envs: int = 1, seed: Optional[int] = None, **kwargs: Any
) -> Optional[ActionNoise]:
    """Build an action noise from a spec string (grammar in the module docstring).

    :param spec: e.g. ``"none"``, ``"normal_0.1"``, ``"normal_0.5_0.05_100000"``, ``"ou_0.2"``,
        ``"ou-stationary_0.2"``, ``"pink_0.3"``, ``"colored_2.0_0.3"``; None is the same as ``"none"``
    :param action_dim: number of action dimensions (int >= 1)
    :param n_envs: number of parallel envs; > 1 wraps the noise in ``VectorizedActionNoise`` with independent,
        seed-reproducible streams per env
    :param seed: seed of the noise (None: drawn from NumPy's global generator)
    :param kwargs: ``seq_len`` (coloured / pink, default 1000; ignored otherwise), ``theta``, ``dt`` (OU),
        ``fmin`` (coloured / pink), ``mean``, ``dtype`` (all)
    :return: the action noise, or None for ``"none"``
    """
    if isinstance(action_dim, (bool, np.bool_)) or not isinstance(action_dim, numbers.Integral) or int(action_dim) < 1:
        raise ValueError(f"action_dim must be an int >= 1, got action_dim={action_dim!r}")
    if isinstance(n_envs, (bool, np.bool_)) or not isinstance(n_envs, numbers.Integral) or int(n_envs) < 1:
        raise ValueError(f"n_envs must be an int >= 1, got n_envs={n_envs!r}")
    if spec is None:
        return None
    if not isinstance(spec, str):
        raise ValueError(f"action noise spec must be a string, got spec={spec!r}")
    text = spec.strip().lower()
    if text == "none":
        return None
    kind, *args = text.split("_")
    if kind not in _KWARGS_BY_KIND:
        raise ValueError(f"unknown action noise spec {spec!r}: expected {_forms_text()}")
    if len(args) not in _N_ARGS_BY_KIND[kind]:
        raise ValueError(
            f"action noise spec {spec!r}: {kind!r} takes {' or '.join(map(str, _N_ARGS_BY_KIND[kind]))} "
            f"'_'-separated numbers, got {len(args)}"
        )
    unknown = sorted(set(kwargs) - _KWARGS_BY_KIND[kind])
    if unknown:
        raise ValueError(
            f"action noise spec {spec!r}: unexpected keyword argument(s) {unknown}; allowed: {sorted(_KWARGS_BY_KIND[kind])}"
        )
    action_dim = int(action_dim)
    mean = kwargs.get("mean", 0.0)
    dtype = kwargs.get("dtype", np.float32)
    mean_arr = np.broadcast_to(_as_float_array(mean, "mean"), (action_dim,)).copy() if np.ndim(mean) == 0 else mean
    seq_len = kwargs.get("seq_len", 1000)

    noise: ActionNoise
    if kind == "normal":
        sigma = _parse_float(args[0], "sigma", spec)
        if len(args) == 3:
            final_sigma = _parse_float(args[1], "final_sigma", spec)
            steps = _parse_float(args[2], "decay_steps", spec)
            if not steps.is_integer():
                raise ValueError(f"action noise spec {spec!r}: decay_steps must be an integer, got {args[2]!r}")
            noise = GaussianActionNoise(
                mean_arr, np.full(action_dim, sigma), np.full(action_dim, final_sigma), int(steps), seed=seed, dtype=dtype
            )
        else:
            noise = GaussianActionNoise(mean_arr, np.full(action_dim, sigma), seed=seed, dtype=dtype)
    elif kind in ("ou", "ou-stationary"):
        sigma = _parse_float(args[0], "sigma", spec)
        noise = OrnsteinUhlenbeckActionNoise(
            mean_arr,
            np.full(action_dim, sigma),
            theta=kwargs.get("theta", 0.15),
            dt=kwargs.get("dt", 1e-2),
            stationary_start=kind == "ou-stationary",
            seed=seed,
            dtype=dtype,
        )
    elif kind == "pink":
        sigma = _parse_float(args[0], "sigma", spec)
        noise = PinkActionNoise(sigma, seq_len, action_dim, seed=seed, mean=mean, fmin=kwargs.get("fmin", 0.0), dtype=dtype)
    else:
        beta = _parse_float(args[0], "beta", spec)
        sigma = _parse_float(args[1], "sigma", spec)
        noise = ColoredActionNoise(
            beta, sigma, seq_len, action_dim, seed=seed, mean=mean, fmin=kwargs.get("fmin", 0.0), dtype=dtype
        )
    if n_envs > 1:
        # deep copies spawn child seeds (see _SeededActionNoise.__deepcopy__): independent, reproducible per-env streams
        return VectorizedActionNoise(noise, int(n_envs))
    return noise
