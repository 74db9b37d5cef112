"""Tests of sb3_ddpg_ext.noise (issue 2, item 2).

Statistical tolerances are 5 standard errors of the estimator, with the standard error computed from the sample
size (or, where the samples are correlated, from the spread of independent replicate estimates); every random
source is seeded, so the tests are deterministic. 5 SE gives a false-failure probability of ~6e-7 per check.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from stable_baselines3.common.noise import ActionNoise, VectorizedActionNoise

from sb3_ddpg_ext.noise import (
    ColoredActionNoise,
    GaussianActionNoise,
    OrnsteinUhlenbeckActionNoise,
    PinkActionNoise,
    colored_noise_sequences,
    make_action_noise,
)

N_SE = 5.0  # tolerance in standard errors

ALL_SPECS = [
    "normal_0.1",
    "normal_0.5_0.05_100",
    "ou_0.2",
    "ou-stationary_0.2",
    "pink_0.3",
    "colored_0.0_0.3",
    "colored_2.0_0.3",
]


def rollout(noise: ActionNoise | None, n_steps: int) -> np.ndarray:
    """Stack ``n_steps`` consecutive noise samples: shape (n_steps, *noise_shape)."""
    assert noise is not None
    return np.stack([noise() for _ in range(n_steps)])


def episodes(noise: ActionNoise | None, n_episodes: int, length: int) -> np.ndarray:
    """``n_episodes`` episodes of ``length`` steps, ``reset()`` after each: shape (n_episodes, length, *shape)."""
    assert noise is not None
    out = []
    for _ in range(n_episodes):
        out.append(rollout(noise, length))
        noise.reset()
    return np.stack(out)


def sample_std_se(std: float | np.ndarray, n: int) -> float | np.ndarray:
    """Standard error of the sample std of ``n`` i.i.d. Gaussian samples: std / sqrt(2 (n - 1))."""
    return std / np.sqrt(2.0 * (n - 1))


# ----------------------------------------------------------------------------------------------------------------------
# Gaussian
# ----------------------------------------------------------------------------------------------------------------------


def test_gaussian_mean_std_per_dimension():
    mean = np.array([0.5, -1.0, 0.0])
    sigma = np.array([0.1, 1.0, 2.0])
    noise = GaussianActionNoise(mean, sigma, seed=0)
    n = 20_000
    x = rollout(noise, n)
    assert x.shape == (n, 3) and x.dtype == np.float32
    # mean: SE = sigma / sqrt(n); std: SE = sigma / sqrt(2 (n - 1))
    np.testing.assert_array_less(np.abs(x.mean(axis=0) - mean), N_SE * sigma / np.sqrt(n))
    np.testing.assert_array_less(np.abs(x.std(axis=0, ddof=1) - sigma), N_SE * sample_std_se(sigma, n))


def test_gaussian_scalar_parameters_and_zero_sigma():
    x = rollout(GaussianActionNoise(0.0, 0.3, seed=1), 10)
    assert x.shape == (10,)
    assert np.all(rollout(GaussianActionNoise([0.2, 0.4], 0.0, seed=1), 5) == np.float32([0.2, 0.4]))


def test_gaussian_linear_decay_schedule():
    dim, decay_steps = 4000, 100
    noise = GaussianActionNoise(np.zeros(dim), 1.0, final_sigma=0.2, decay_steps=decay_steps, seed=0)
    stds, expected = [], []
    for t in range(decay_steps + 50):
        sigma_t = 1.0 + (0.2 - 1.0) * min(t, decay_steps) / decay_steps
        np.testing.assert_allclose(noise.current_sigma, sigma_t)
        expected.append(sigma_t)
        stds.append(noise().std(ddof=1))
        if t % 37 == 0:
            noise.reset()  # episode ends must not restart the schedule
    stds_arr, expected_arr = np.array(stds), np.array(expected)
    # the std of each call is estimated from `dim` i.i.d. samples: SE = sigma_t / sqrt(2 (dim - 1))
    np.testing.assert_array_less(np.abs(stds_arr - expected_arr), N_SE * sample_std_se(expected_arr, dim))
    assert noise.n_calls == decay_steps + 50
    # the schedule position survives pickling (model.save / load)
    clone = pickle.loads(pickle.dumps(noise))
    assert clone.n_calls == noise.n_calls
    np.testing.assert_allclose(clone.current_sigma, 0.2)


def test_gaussian_per_dimension_decay():
    noise = GaussianActionNoise(0.0, [1.0, 0.5], final_sigma=[0.0, 0.5], decay_steps=4, seed=0)
    sigmas = []
    for _ in range(6):
        sigmas.append(noise.current_sigma.copy())
        noise()
    np.testing.assert_allclose(sigmas, [[1.0, 0.5], [0.75, 0.5], [0.5, 0.5], [0.25, 0.5], [0.0, 0.5], [0.0, 0.5]])
    assert noise()[0] == 0.0


# ----------------------------------------------------------------------------------------------------------------------
# Ornstein-Uhlenbeck
# ----------------------------------------------------------------------------------------------------------------------


def test_ou_is_sb3_recursion():
    """Each call is x + theta (mu - x) dt + sigma sqrt(dt) eps, from x_0 = 0 (or initial_noise) after reset."""
    mu, sigma, theta, dt = np.array([0.1, -0.2]), np.array([0.3, 0.5]), 0.4, 0.05
    for initial in (None, np.array([1.0, -1.0])):
        noise = OrnsteinUhlenbeckActionNoise(mu, sigma, theta=theta, dt=dt, initial_noise=initial, seed=3)
        ref_rng = copy.deepcopy(noise.rng)
        x = np.zeros(2) if initial is None else initial.copy()
        for _ in range(50):
            x = x + theta * (mu - x) * dt + sigma * np.sqrt(dt) * ref_rng.standard_normal(2)
            np.testing.assert_allclose(noise(), x, rtol=1e-6, atol=1e-6)  # float32 output
        noise.reset()
        np.testing.assert_array_equal(noise.noise_prev, np.zeros(2) if initial is None else initial)


def test_ou_start_transient_matches_docs():
    """From x_0 = 0 the std is sigma sqrt(dt (1 - a^2n) / (1 - a^2)): 0.10 / 0.31 / 0.93 sigma at steps 1/10/100."""
    n_dims, sigma, theta, dt = 20_000, 1.0, 0.15, 1e-2
    noise = OrnsteinUhlenbeckActionNoise(np.zeros(n_dims), sigma, seed=0)
    x = rollout(noise, 100)
    a = 1 - theta * dt
    for step, doc_value in ((1, 0.10), (10, 0.31), (100, 0.93)):
        expected = sigma * np.sqrt(dt * (1 - a ** (2 * step)) / (1 - a**2))
        assert abs(expected - doc_value * sigma) < 0.005  # docs round to 2 digits
        assert abs(x[step - 1].std() - expected) < N_SE * sample_std_se(expected, n_dims)


def test_ou_stationary_std_formula_against_recursion():
    """Long-run std of the recursion equals stationary_std = sigma / sqrt(2 theta - theta^2 dt).

    theta dt = 0.15 makes it differ by 4 % from the continuous-time sigma / sqrt(2 theta), more than 5 SE (2.5 %).
    """
    n_dims, sigma, theta, dt = 20_000, 1.0, 1.5, 0.1
    noise = OrnsteinUhlenbeckActionNoise(np.zeros(n_dims), sigma, theta=theta, dt=dt, seed=0)
    rollout(noise, 300)  # burn-in: the transient decays as a^(2n) = 0.85^600 ~ 1e-42
    x = noise()
    expected = sigma / np.sqrt(2 * theta - theta**2 * dt)
    np.testing.assert_allclose(noise.stationary_std, expected)
    assert abs(x.std() - expected) < N_SE * sample_std_se(expected, n_dims)
    # at SB3's defaults the exact value and sigma / sqrt(2 theta) agree to 0.04 %
    default = OrnsteinUhlenbeckActionNoise(0.0, 0.2, seed=0)
    np.testing.assert_allclose(default.stationary_std, 0.2 / np.sqrt(0.3), rtol=4e-4)


def test_ou_stationary_start_std_at_step_one():
    n_dims, sigma, mean = 20_000, 0.4, 0.5
    noise = OrnsteinUhlenbeckActionNoise(np.full(n_dims, mean), sigma, stationary_start=True, seed=0)
    target = sigma / np.sqrt(2 * 0.15)  # the docs' stationary std (exact value differs by 0.04 %, << 5 SE = 2.5 %)
    se = sample_std_se(target, n_dims)
    steps = rollout(noise, 100)
    for step in (1, 10, 100):
        assert abs(steps[step - 1].std() - target) < N_SE * se, step
        assert abs(steps[step - 1].mean() - mean) < N_SE * target / np.sqrt(n_dims)
    # the start value is redrawn at every reset: independent of the last value of the previous episode
    noise.reset()
    first = noise()
    assert abs(first.std() - target) < N_SE * se
    r = np.corrcoef(steps[-1], first)[0, 1]
    assert abs(r) < N_SE / np.sqrt(n_dims)  # SE of a correlation coefficient under independence: 1 / sqrt(n)


def measure_ou_acf(lags: tuple[int, ...] = (1, 2, 5, 10, 20)) -> list[tuple[int, float, float, float]]:
    """Lag-k autocorrelation along time of stationary-started OU chains (theta = 1.5, dt = 0.1, a = 0.85).

    :return: (k, estimate, expected a^k, standard error) per lag
    """
    n_dims, length, theta, dt = 200, 2000, 1.5, 0.1
    a = 1 - theta * dt
    noise = OrnsteinUhlenbeckActionNoise(np.zeros(n_dims), 1.0, theta=theta, dt=dt, stationary_start=True, seed=0)
    x = rollout(noise, length)  # (length, n_dims), known mean 0
    n_total = n_dims * length
    out = []
    for k in lags:
        r_k = np.sum(x[:-k] * x[k:]) / np.sum(x * x)
        # Bartlett's variance of the lag-k sample autocorrelation of an AR(1) process, with n_total samples
        var = ((1 + a**2) * (1 - a ** (2 * k)) / (1 - a**2) - 2 * k * a ** (2 * k)) / n_total
        out.append((k, float(r_k), a**k, float(np.sqrt(var))))
    return out


def test_ou_autocorrelation_time_series():
    """Lag-k autocorrelation (1 - theta dt)^k, estimated along time from stationary-started chains."""
    for k, r_k, expected, se in measure_ou_acf():
        assert abs(r_k - expected) < N_SE * se, (k, r_k, expected)


def test_ou_autocorrelation_sb3_defaults_ensemble():
    """At theta = 0.15, dt = 0.01: corr(x_1, x_{1+k}) across independent chains equals 0.9985^k."""
    n_dims = 20_000
    noise = OrnsteinUhlenbeckActionNoise(np.zeros(n_dims), 0.2, stationary_start=True, seed=1)
    x = rollout(noise, 501)
    for k in (100, 500):
        rho = (1 - 0.15 * 1e-2) ** k
        r = np.corrcoef(x[0], x[k])[0, 1]
        # SE of a Pearson correlation from n pairs: (1 - rho^2) / sqrt(n)
        assert abs(r - rho) < N_SE * (1 - rho**2) / np.sqrt(n_dims), (k, r, rho)


# ----------------------------------------------------------------------------------------------------------------------
# Coloured / pink
# ----------------------------------------------------------------------------------------------------------------------


def measure_psd_slope(beta: float) -> tuple[float, float]:
    """Log-log slope of the periodogram averaged over 512 sequences (length 512), fitted over f in [1/n, 1/4].

    :return: (slope, standard error)
    """
    seq_len, action_dim, n_episodes = 512, 32, 16
    noise = ColoredActionNoise(beta, 1.0, seq_len, action_dim, seed=0)
    x = episodes(noise, n_episodes, seq_len)  # (episodes, seq_len, dims)
    seqs = x.transpose(0, 2, 1).reshape(-1, seq_len).astype(np.float64)
    m = seqs.shape[0]
    periodogram = np.abs(np.fft.rfft(seqs, axis=1)) ** 2
    f = np.fft.rfftfreq(seq_len)
    band = (f >= 1.0 / seq_len) & (f <= 0.25)
    log_f, log_p = np.log(f[band]), np.log(periodogram[:, band].mean(axis=0))
    slope = np.polyfit(log_f, log_p, 1)[0]
    # each band bin's periodogram is an exponential variable, independent across bins and sequences: the log of a
    # mean of m of them has variance ~1/m, so the least-squares slope has SE sqrt(1 / (m * sum((log_f - mean)^2)))
    se = np.sqrt(1.0 / (m * np.sum((log_f - log_f.mean()) ** 2)))
    return float(slope), float(se)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_colored_psd_slope(beta: float):
    """Log-log slope of the averaged periodogram is -beta over the band f in [1/n, 1/4]."""
    slope, se = measure_psd_slope(beta)
    assert abs(slope + beta) < N_SE * se, (slope, se)


def measure_colored_moments(beta: float) -> tuple[float, float, float, float]:
    """Mean of (x - mean)^2 / sigma^2 and of (x - mean) / sigma over 512 sequences of 256 steps.

    :return: (mean square, its SE, mean, its SE), SEs from the spread of independent per-sequence replicates
    """
    seq_len, action_dim, n_episodes = 256, 16, 32
    sigma = np.linspace(0.1, 1.0, action_dim)
    mean = np.linspace(-0.5, 0.5, action_dim)
    noise = ColoredActionNoise(beta, sigma, seq_len, action_dim, seed=1, mean=mean)
    x = episodes(noise, n_episodes, seq_len)
    z = (x - mean) / sigma  # should be N(0, 1) at every step
    # samples within a sequence are correlated; sequences (episode, dim) are independent replicates, so compare
    # the replicate means of z^2 (and z) to 1 (and 0) with the SE of their spread
    msq = (z**2).mean(axis=1).ravel()
    mz = z.mean(axis=1).ravel()
    return (
        float(msq.mean()),
        float(msq.std(ddof=1) / np.sqrt(msq.size)),
        float(mz.mean()),
        float(mz.std(ddof=1) / np.sqrt(mz.size)),
    )


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_colored_unit_variance_times_sigma(beta: float):
    msq, msq_se, mz, mz_se = measure_colored_moments(beta)
    assert abs(msq - 1.0) < N_SE * msq_se, msq
    assert abs(mz) < N_SE * mz_se, mz


@pytest.mark.parametrize(("seq_len", "fmin"), [(1, 0.0), (2, 0.0), (3, 0.0), (8, 0.0), (9, 0.0), (64, 0.1)])
def test_colored_sequences_unit_variance_short_lengths(seq_len: int, fmin: float):
    """The exact normalisation (DC and Nyquist terms included) holds for odd, even and tiny lengths, and a cutoff."""
    n = 40_000
    for beta in (0.0, 1.0, 2.0):
        x = colored_noise_sequences(beta, seq_len, n, np.random.default_rng(0), fmin=fmin)
        assert x.shape == (n, seq_len)
        # each column: n i.i.d. N(0, 1) samples; SE of the variance = sqrt(2 / (n - 1))
        np.testing.assert_array_less(np.abs(x.var(axis=0, ddof=1) - 1.0), N_SE * np.sqrt(2.0 / (n - 1)))


def test_pink_is_colored_with_beta_one():
    pink = PinkActionNoise(0.3, 100, 2, seed=5)
    colored = ColoredActionNoise(1.0, 0.3, 100, 2, seed=5)
    assert pink.beta == 1.0
    np.testing.assert_array_equal(rollout(pink, 150), rollout(colored, 150))


def test_colored_new_sequence_after_reset():
    seq_len, action_dim, n = 256, 64, 100
    noise = ColoredActionNoise(2.0, 1.0, seq_len, action_dim, seed=0)
    twin = ColoredActionNoise(2.0, 1.0, seq_len, action_dim, seed=0)
    first = rollout(noise, n)
    np.testing.assert_array_equal(first, rollout(twin, n))
    noise.reset()
    after_reset = rollout(noise, n)
    continued = rollout(twin, n)  # without reset: the same sequence continues (smoothly, beta = 2)
    assert not np.allclose(after_reset, continued)
    # the step across an episode boundary is as large as between independent draws, unlike within a sequence
    jump_reset = np.abs(after_reset[0] - first[-1]).mean()
    jump_continued = np.abs(continued[0] - first[-1]).mean()
    assert jump_reset > 5 * jump_continued
    # after reset the new sequence is uncorrelated with the old one: per-dim replicate correlations average to 0
    c = (first * after_reset).mean(axis=0)
    assert abs(c.mean()) < N_SE * c.std(ddof=1) / np.sqrt(action_dim)
    # a sequence that runs out (episode longer than seq_len) is replaced by a fresh one, not repeated
    long_run = rollout(ColoredActionNoise(1.0, 1.0, 50, 4, seed=2), 100)
    assert not np.allclose(long_run[:50], long_run[50:])


def reference_colored_noise_sequences(
    beta: float, seq_len: int, n_sequences: int, rng: np.random.Generator, fmin: float = 0.0
) -> np.ndarray:
    """Frozen copy of ``colored_noise_sequences`` before the large-beta fix (plain ``f^(-beta/2)`` amplitudes)."""
    f = np.fft.rfftfreq(seq_len)
    cutoff = max(fmin, 1.0 / seq_len)
    f = np.maximum(f, cutoff)
    amp = f ** (-beta / 2.0)
    real = rng.standard_normal((n_sequences, f.size)) * amp
    imag = rng.standard_normal((n_sequences, f.size)) * amp
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


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 1.5, 2.0, 10.0, 80.0])
def test_colored_sequences_bit_identical_to_plain_formula(beta: float):
    """Up to the switch to relative amplitudes (beta ~ 86 at seq_len 1000, ~ 129 at seq_len 100) the output is bit
    for bit the plain ``f^(-beta/2)`` one, so runs with the usual exponents (0..2, pink = 1) keep their numbers."""
    for seq_len in (1, 2, 7, 100, 1000, 1001):
        for fmin in (0.0, 0.01, 0.5):
            seed = int(beta * 10) + seq_len
            new = colored_noise_sequences(beta, seq_len, 3, np.random.default_rng(seed), fmin=fmin)
            old = reference_colored_noise_sequences(beta, seq_len, 3, np.random.default_rng(seed), fmin=fmin)
            np.testing.assert_array_equal(new, old, err_msg=f"seq_len={seq_len}, fmin={fmin}")
    # the noise class: 500 steps = 3 sequences of 200 from the instance's generator (SeedSequence(5))
    pink = rollout(PinkActionNoise(0.3, 200, 2, seed=5), 500)
    ref_rng = np.random.default_rng(np.random.SeedSequence(5))
    expected = np.concatenate([0.3 * reference_colored_noise_sequences(1.0, 200, 2, ref_rng).T for _ in range(3)])
    np.testing.assert_array_equal(pink, expected[:500].astype(np.float32))


@pytest.mark.parametrize(
    ("beta", "plain"),
    [
        (140.0, "finite"),  # relative amplitudes; the plain formula still works here: same numbers up to rounding
        (200.0, "zero"),  # plain formula: the squared amplitude overflows, std = inf, all-zero output
        (400.0, "nan"),  # plain formula: the amplitude itself overflows, NaN output
        (1e6, "nan"),
        (1e300, "nan"),
    ],
)
def test_colored_sequences_large_beta(beta: float, plain: str):
    """Large exponents give unit-variance sequences, not silent zeros or NaN; beta -> inf tends to a constant plus a
    random-phase sinusoid of period seq_len (only the DC and the first frequency bin are left)."""
    seq_len, n = 100, 20_000
    with np.errstate(all="ignore"):
        old = reference_colored_noise_sequences(beta, seq_len, 3, np.random.default_rng(0))
    if plain == "zero":
        assert np.all(old == 0)
    elif plain == "nan":
        assert np.all(np.isnan(old))
    x = colored_noise_sequences(beta, seq_len, n, np.random.default_rng(0))
    assert x.shape == (n, seq_len) and np.all(np.isfinite(x))
    # each column: n i.i.d. N(0, 1) samples; SE of the variance = sqrt(2 / (n - 1))
    np.testing.assert_array_less(np.abs(x.var(axis=0, ddof=1) - 1.0), N_SE * np.sqrt(2.0 / (n - 1)))
    if plain == "finite":
        new = colored_noise_sequences(beta, seq_len, 3, np.random.default_rng(0))
        np.testing.assert_allclose(new, old, rtol=1e-9, atol=1e-12)
    spectrum = np.abs(np.fft.rfft(x, axis=1))
    # power beyond bin 1 relative to the total: 2^-beta-ish for bin 2 (f ratio 2), i.e. < 1e-20 from beta = 140 on
    assert spectrum[:, 2:].max() < 1e-9 * spectrum[:, :2].max()
    noise = ColoredActionNoise(beta, 0.3, seq_len, 2, seed=0)
    values = rollout(noise, 2 * seq_len)
    assert np.all(np.isfinite(values)) and np.all(values != 0)


def test_make_action_noise_large_colored_beta():
    noise = make_action_noise("colored_300_0.3", 2, seed=0, seq_len=1000)
    values = rollout(noise, 1000)
    assert np.all(np.isfinite(values)) and values.std() > 0.05


# ----------------------------------------------------------------------------------------------------------------------
# Independence across envs (VectorizedActionNoise) and seeding
# ----------------------------------------------------------------------------------------------------------------------


def measure_cross_env_correlation(spec: str, via: str) -> tuple[float, float]:
    """Mean over 256 (episode, dim) replicates of mean_t z_env0 * z_env1 for a 2-env VectorizedActionNoise.

    :param via: "make_action_noise" (n_envs=2) or "sb3_wrap" (``VectorizedActionNoise(base, 2)`` as SB3 does)
    :return: (estimate, standard error from the replicate spread)
    """
    seq_len, action_dim, n_episodes = 128, 8, 32
    if via == "make_action_noise":
        vec = make_action_noise(spec, action_dim, n_envs=2, seed=0, seq_len=seq_len)
    else:  # what SB3's OffPolicyAlgorithm._setup_learn does with n_envs > 1: deep copies of the base noise
        base = make_action_noise(spec, action_dim, seed=0, seq_len=seq_len)
        assert base is not None
        vec = VectorizedActionNoise(base, 2)
    assert isinstance(vec, VectorizedActionNoise)
    x = episodes(vec, n_episodes, seq_len)  # (episodes, steps, env, dim)
    z = (x - x.mean()) / x.std()
    assert not np.allclose(x[:, :, 0], x[:, :, 1])
    # replicate statistic per (episode, dim): mean over steps of z_env0 * z_env1; 0 in expectation if independent
    c = (z[:, :, 0] * z[:, :, 1]).mean(axis=1).ravel()
    return float(c.mean()), float(c.std(ddof=1) / np.sqrt(c.size))


@pytest.mark.parametrize(("spec", "via"), [(spec, "sb3_wrap") for spec in ALL_SPECS] + [("pink_0.3", "make_action_noise")])
def test_cross_env_correlation_zero(spec: str, via: str):
    """Every env of a VectorizedActionNoise has its own stream (the reference pink-noise integration does not)."""
    c, se = measure_cross_env_correlation(spec, via)
    assert abs(c) < N_SE * se, (c, se)


def test_vectorized_reset_only_resets_given_env():
    vec_a = make_action_noise("pink_0.3", 3, n_envs=2, seed=4, seq_len=64)
    vec_b = make_action_noise("pink_0.3", 3, n_envs=2, seed=4, seq_len=64)
    rollout(vec_a, 10)
    rollout(vec_b, 10)
    vec_a.reset(indices=[0])
    a, b = rollout(vec_a, 10), rollout(vec_b, 10)
    np.testing.assert_array_equal(a[:, 1], b[:, 1])
    assert not np.allclose(a[:, 0], b[:, 0])


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_seeding_reproducible(spec: str):
    def run(seed: Any, n_envs: int = 1) -> np.ndarray:
        return episodes(make_action_noise(spec, 3, n_envs=n_envs, seed=seed, seq_len=20), 3, 30)

    np.testing.assert_array_equal(run(7), run(7))
    assert not np.allclose(run(7), run(8))
    vec = run(7, n_envs=3)
    np.testing.assert_array_equal(vec, run(7, n_envs=3))  # same seed -> same per-env streams
    assert not np.allclose(vec[:, :, 0], vec[:, :, 1])
    # seed=None draws from NumPy's global generator: np.random.seed / SB3 set_random_seed make it reproducible
    np.random.seed(11)
    a = run(None)
    np.random.seed(11)
    np.testing.assert_array_equal(a, run(None))
    # ... drawn at first use, not at construction: seeding after building the noise (as DDPG(..., seed=s) does when
    # it is given a ready-made noise) fixes the stream
    outs = []
    for _ in range(2):
        lazy = make_action_noise(spec, 3, seed=None, seq_len=20)
        np.random.seed(12)
        outs.append(episodes(lazy, 3, 30))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.allclose(outs[0], a)


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_pickle_keeps_exact_state_deepcopy_is_independent(spec: str):
    noise = make_action_noise(spec, 2, seed=3, seq_len=16)
    rollout(noise, 7)  # mid-episode state
    clone = pickle.loads(pickle.dumps(noise))
    np.testing.assert_array_equal(rollout(clone, 40), rollout(noise, 40))
    assert repr(clone) == repr(noise)
    # deep copies are reproducible (child i of the parent's seed) and differ from each other
    fresh_a = make_action_noise(spec, 2, seed=3, seq_len=16)
    fresh_b = make_action_noise(spec, 2, seed=3, seq_len=16)
    copies_a = [rollout(copy.deepcopy(fresh_a), 20) for _ in range(2)]
    copies_b = [rollout(copy.deepcopy(fresh_b), 20) for _ in range(2)]
    np.testing.assert_array_equal(copies_a[0], copies_b[0])
    np.testing.assert_array_equal(copies_a[1], copies_b[1])
    assert not np.allclose(copies_a[0], copies_a[1])


# ----------------------------------------------------------------------------------------------------------------------
# make_action_noise, repr, validation
# ----------------------------------------------------------------------------------------------------------------------


def test_make_action_noise_builds_each_class():
    assert make_action_noise("none", 2) is None
    assert make_action_noise(" None ", 2, n_envs=4) is None
    assert make_action_noise(None, 2) is None
    g = make_action_noise("normal_0.1", 2, seed=0)
    assert isinstance(g, GaussianActionNoise)
    np.testing.assert_allclose(g.current_sigma, [0.1, 0.1])
    d = make_action_noise("normal_0.5_0.05_1e3", 2, seed=0)
    assert isinstance(d, GaussianActionNoise) and d.decay_steps == 1000
    np.testing.assert_allclose(d.sigma, [0.5, 0.5])
    np.testing.assert_allclose(d.final_sigma, [0.05, 0.05])
    ou = make_action_noise("ou_0.2", 2, seed=0, theta=0.3, dt=0.05)
    assert isinstance(ou, OrnsteinUhlenbeckActionNoise) and not ou.stationary_start
    assert ou.theta == 0.3 and ou.dt == 0.05
    np.testing.assert_allclose(ou.sigma, [0.2, 0.2])
    ous = make_action_noise("ou-stationary_0.2", 2, seed=0, mean=[0.1, -0.1])
    assert isinstance(ous, OrnsteinUhlenbeckActionNoise) and ous.stationary_start
    np.testing.assert_allclose(ous.mean, [0.1, -0.1])
    pink = make_action_noise("pink_0.3", 2, seed=0)
    assert type(pink) is PinkActionNoise and pink.seq_len == 1000
    col = make_action_noise("colored_2.0_0.3", 2, seed=0, seq_len=200)
    assert type(col) is ColoredActionNoise and col.beta == 2.0 and col.seq_len == 200 and col.action_dim == 2
    np.testing.assert_allclose(col.sigma, 0.3)
    vec = make_action_noise("pink_0.3", 2, n_envs=3, seed=0)
    assert isinstance(vec, VectorizedActionNoise) and len(vec.noises) == 3
    assert vec().shape == (3, 2)
    for noise in (g, d, ou, ous, pink, col):
        assert isinstance(noise, ActionNoise)
        out = noise()
        assert out.shape == (2,) and out.dtype == np.float32


def test_repr():
    assert repr(GaussianActionNoise(0.0, 0.1)) == "GaussianActionNoise(mean=0.0, sigma=0.1)"
    assert "final_sigma=0.01, decay_steps=10" in repr(GaussianActionNoise(0.0, 0.1, 0.01, 10))
    assert "stationary_start=True" in repr(OrnsteinUhlenbeckActionNoise(0.0, 0.2, stationary_start=True))
    assert repr(PinkActionNoise(0.3, 100, 2)) == "PinkActionNoise(sigma=0.3, seq_len=100, action_dim=2)"
    assert repr(ColoredActionNoise(2.0, 0.3, 100, 2)).startswith("ColoredActionNoise(beta=2.0, sigma=0.3")


INVALID: list[tuple[Callable[[], Any], str]] = [
    (lambda: GaussianActionNoise(0.0, -0.1), r"sigma.*-0\.1"),
    (lambda: GaussianActionNoise(np.zeros(2), np.ones(3)), r"mean\.shape=\(2,\).*sigma\.shape=\(3,\)"),
    (lambda: GaussianActionNoise(0.0, np.ones((2, 2))), r"sigma.*shape \(2, 2\)"),
    (lambda: GaussianActionNoise(0.0, 0.1, final_sigma=0.01), r"decay_steps=None"),
    (lambda: GaussianActionNoise(0.0, 0.1, 0.01, 0), r"decay_steps=0"),
    (lambda: GaussianActionNoise(0.0, 0.1, -0.01, 10), r"final_sigma.*-0\.01"),
    (lambda: GaussianActionNoise(0.0, float("nan")), r"sigma.*nan"),
    (lambda: GaussianActionNoise(0.0, 0.1, seed=-1), r"seed=-1"),
    (lambda: GaussianActionNoise(0.0, 0.1, seed="abc"), r"seed='abc'"),  # type: ignore[arg-type]
    (lambda: OrnsteinUhlenbeckActionNoise(0.0, -0.2), r"sigma.*-0\.2"),
    (lambda: OrnsteinUhlenbeckActionNoise(0.0, 0.2, theta=-1.0), r"theta=-1\.0"),
    (lambda: OrnsteinUhlenbeckActionNoise(0.0, 0.2, dt=0.0), r"dt=0\.0"),
    (lambda: OrnsteinUhlenbeckActionNoise(0.0, 0.2, theta=30.0, dt=0.1), r"theta=30\.0"),
    (lambda: OrnsteinUhlenbeckActionNoise(0.0, 0.2, theta=0.0, stationary_start=True), r"theta"),
    (lambda: OrnsteinUhlenbeckActionNoise(0.0, 0.2, initial_noise=1.0, stationary_start=True), r"initial_noise=1\.0"),
    (lambda: OrnsteinUhlenbeckActionNoise(np.zeros(2), 0.2, initial_noise=np.zeros(3)), r"initial_noise\.shape"),
    (lambda: ColoredActionNoise(1.0, 0.3, 0, 2), r"seq_len=0"),
    (lambda: ColoredActionNoise(1.0, 0.3, 10, 0), r"action_dim=0"),
    (lambda: ColoredActionNoise(-1.0, 0.3, 10, 2), r"beta=-1\.0"),
    (lambda: ColoredActionNoise(1.0, [0.3, 0.3, 0.3], 10, 2), r"sigma.*shape \(3,\)"),
    (lambda: ColoredActionNoise(1.0, 0.3, 10, 2, fmin=0.7), r"fmin=0\.7"),
    (lambda: PinkActionNoise(-0.3, 10, 2), r"sigma.*-0\.3"),
    (lambda: PinkActionNoise(0.3, 2.5, 2), r"seq_len=2\.5"),  # type: ignore[arg-type]
    (lambda: make_action_noise("uniform_0.1", 2), r"'uniform_0\.1'"),
    (lambda: make_action_noise("normal", 2), r"'normal'.*1 or 3"),
    (lambda: make_action_noise("normal_0.1_0.01", 2), r"'normal_0\.1_0\.01'"),
    (lambda: make_action_noise("normal_abc", 2), r"sigma.*'abc'"),
    (lambda: make_action_noise("normal_0.1_0.01_10.5", 2), r"decay_steps.*'10\.5'"),
    (lambda: make_action_noise("pink_-0.3", 2), r"sigma.*-0\.3"),
    (lambda: make_action_noise("colored_x_0.3", 2), r"beta.*'x'"),
    (lambda: make_action_noise("normal_0.1", 2, theta=0.2), r"theta"),
    (lambda: make_action_noise("pink_0.3", 2, seq_len=0), r"seq_len=0"),
    (lambda: make_action_noise("normal_0.1", 0), r"action_dim=0"),
    (lambda: make_action_noise("normal_0.1", 2, n_envs=0), r"n_envs=0"),
    (lambda: make_action_noise(3, 2), r"spec=3"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("factory", "match"), INVALID)
def test_invalid_parameters_raise_value_error(factory: Callable[[], Any], match: str):
    with pytest.raises(ValueError, match=match):
        factory()


# ----------------------------------------------------------------------------------------------------------------------
# End to end with SB3 DDPG / TD3 on Pendulum-v1
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["DDPG", "TD3"])
@pytest.mark.parametrize("spec", ["normal_0.1_0.01_150", "ou-stationary_0.2", "pink_0.3", "colored_2.0_0.3"])
def test_sb3_train_save_load_continue(algo: str, spec: str, tmp_path):
    import gymnasium as gym
    import stable_baselines3 as sb3
    import torch

    algo_cls = getattr(sb3, algo)
    env = gym.make("Pendulum-v1")
    noise = make_action_noise(spec, 1, seed=0, seq_len=200)  # Pendulum-v1: 1 action dim, 200-step episodes
    assert noise is not None
    model = algo_cls(
        "MlpPolicy",
        env,
        action_noise=noise,
        learning_starts=100,
        batch_size=64,
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
        device="cpu",
    )
    model.learn(200)  # 100 uniform warm-up steps, then 100 steps with 100 gradient steps
    assert model.num_timesteps == 200
    if isinstance(noise, GaussianActionNoise):
        assert noise.n_calls == 200  # SB3 2.9 draws noise at every step, also for the uniform warm-up actions
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")

    loaded = algo_cls.load(tmp_path / "model.zip", env=env, device="cpu")
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    assert type(loaded.action_noise) is type(noise) and repr(loaded.action_noise) == repr(noise)
    # the noise state (random generator, schedule position, current sequence) is saved with the model
    assert loaded.action_noise is not None and model.action_noise is not None
    np.testing.assert_array_equal(loaded.action_noise(), model.action_noise())
    before = [p.detach().clone() for p in loaded.actor.parameters()]
    loaded.learn(100, reset_num_timesteps=False)
    assert loaded.num_timesteps == 300
    assert any(not torch.equal(b, p) for b, p in zip(before, loaded.actor.parameters()))
    if isinstance(loaded.action_noise, GaussianActionNoise):
        assert loaded.action_noise.n_calls == 301  # 200 + 1 (comparison above) + 100: the decay schedule continued
        np.testing.assert_allclose(loaded.action_noise.current_sigma, 0.01)


@pytest.mark.slow
def test_sb3_seed_fixes_unseeded_noise():
    """DDPG(..., seed=s) with a noise built with seed=None gives identical runs (SB3's own noises behave so too)."""
    import stable_baselines3 as sb3

    buffers = []
    for _ in range(2):
        noise = PinkActionNoise(0.3, 200, 1)
        model = sb3.DDPG(
            "MlpPolicy",
            "Pendulum-v1",
            action_noise=noise,
            learning_starts=100,
            batch_size=32,
            policy_kwargs={"net_arch": [64, 64]},
            seed=0,
            device="cpu",
        )
        model.learn(130)
        assert model.replay_buffer is not None
        buffers.append(model.replay_buffer.actions[:130].copy())
    np.testing.assert_array_equal(buffers[0], buffers[1])


@pytest.mark.slow
def test_sb3_multi_env_wrap_gives_independent_streams():
    import stable_baselines3 as sb3
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    model = sb3.TD3(
        "MlpPolicy",
        env,
        action_noise=PinkActionNoise(0.3, 200, 1, seed=0),
        learning_starts=100,
        batch_size=64,
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
        device="cpu",
    )
    model.learn(150)
    vec = model.action_noise
    assert isinstance(vec, VectorizedActionNoise)  # SB3 wrapped it with deep copies
    x = rollout(vec, 200)
    assert not np.allclose(x[:, 0], x[:, 1])


if __name__ == "__main__":
    # Print the measured statistics behind the assertions above: python tests/test_noise.py
    for beta in (0.0, 1.0, 2.0):
        slope, se = measure_psd_slope(beta)
        msq, msq_se, mz, mz_se = measure_colored_moments(beta)
        print(
            f"coloured beta={beta}: PSD slope {slope:.4f} (target {-beta}, SE {se:.4f}); "
            f"E[z^2] {msq:.4f} (SE {msq_se:.4f}); E[z] {mz:.4f} (SE {mz_se:.4f})"
        )
    for k, r_k, expected, se in measure_ou_acf():
        print(f"OU theta=1.5 dt=0.1: lag {k} autocorrelation {r_k:.4f} (target {expected:.4f}, SE {se:.4f})")
    for spec in ALL_SPECS:
        for via in ("make_action_noise", "sb3_wrap"):
            c, se = measure_cross_env_correlation(spec, via)
            print(f"cross-env correlation {spec} via {via}: {c:+.4f} (SE {se:.4f})")
    g = rollout(GaussianActionNoise([0.5, -1.0, 0.0], [0.1, 1.0, 2.0], seed=0), 20_000)
    print(f"Gaussian mean {g.mean(axis=0).round(4)} (target [0.5, -1, 0]), std {g.std(axis=0, ddof=1).round(4)}")
    ou = rollout(OrnsteinUhlenbeckActionNoise(np.zeros(20_000), 1.0, seed=0), 100)
    print(f"OU x0=0, sigma=1: std at steps 1/10/100 = {ou[0].std():.4f} / {ou[9].std():.4f} / {ou[99].std():.4f}")
    ou_st = rollout(OrnsteinUhlenbeckActionNoise(np.zeros(20_000), 1.0, stationary_start=True, seed=0), 100)
    print(
        f"OU stationary_start, sigma=1: std at steps 1/100 = {ou_st[0].std():.4f} / {ou_st[99].std():.4f} "
        f"(sigma / sqrt(2 theta) = {1 / np.sqrt(0.3):.4f})"
    )
    ou_d = rollout(OrnsteinUhlenbeckActionNoise(np.zeros(20_000), 1.0, stationary_start=True, seed=1), 501)
    for k in (100, 500):
        print(f"OU defaults: corr(x_1, x_{1 + k}) = {np.corrcoef(ou_d[0], ou_d[k])[0, 1]:.4f} (target {0.9985**k:.4f})")
    ou_l = OrnsteinUhlenbeckActionNoise(np.zeros(20_000), 1.0, theta=1.5, dt=0.1, seed=0)
    rollout(ou_l, 300)
    print(
        f"OU theta=1.5 dt=0.1 long-run std {ou_l().std():.4f} (exact {float(ou_l.stationary_std[0]):.4f}, "
        f"continuous approx {1 / np.sqrt(3):.4f})"
    )


@pytest.mark.parametrize("spec", ["normal_0.1", "ou-stationary_0.2", "pink_0.3"])
def test_unseeded_vectorized_noise_follows_later_global_seed(spec):
    """make_action_noise(n_envs=2, seed=None) copies the noise at build time; the per-env streams must still be fixed
    by a np.random.seed() made afterwards (as SB3 does in DDPG(seed=...)), whatever the global state at build time."""
    draws = []
    for pre_state in (1, 2):
        np.random.seed(pre_state)  # different global state when the noise is built
        noise = make_action_noise(spec, 2, n_envs=2, seed=None, seq_len=50)
        np.random.seed(0)  # what the algorithm's seeding does later
        draws.append(np.stack([noise() for _ in range(20)]))  # (20, n_envs, action_dim)
    np.testing.assert_array_equal(draws[0], draws[1])
    assert not np.array_equal(draws[0][:, 0], draws[0][:, 1])  # the two envs still have different streams


# ---------------------------------------------------------------------------------------------- spec grammar owner
def test_spec_forms_come_from_the_grammar_table():
    from sb3_ddpg_ext.noise import ACTION_NOISE_SPECS, action_noise_spec_forms

    forms = action_noise_spec_forms()
    assert forms == [
        "none",
        "normal_<sigma>",
        "normal_<sigma>_<final_sigma>_<decay_steps>",
        "ou_<sigma>",
        "ou-stationary_<sigma>",
        "pink_<sigma>",
        "colored_<beta>_<sigma>",
    ]
    assert {form.split("_")[0] for form in forms[1:]} == set(ACTION_NOISE_SPECS)
    with pytest.raises(ValueError, match=r"expected 'none', 'normal_<sigma>', .* or 'colored_<beta>_<sigma>'"):
        make_action_noise("brown_0.3", 1)


def test_check_and_format_action_noise_spec():
    from sb3_ddpg_ext.noise import check_action_noise_spec, format_action_noise_spec

    state = np.random.get_state()
    assert check_action_noise_spec(" Normal_0.2_0.0_{noise_steps} ") == "normal_0.2_0.0_{noise_steps}"
    assert np.array_equal(np.random.get_state()[1], state[1])  # no global random state used
    assert format_action_noise_spec("normal", 0.123456789) == "normal_0.123457"
    assert format_action_noise_spec("normal", 0.2, 0.0, "{total_timesteps}") == "normal_0.2_0_{total_timesteps}"
    assert format_action_noise_spec("colored", 2, 0.3) == "colored_2_0.3"
    assert format_action_noise_spec("none") == "none"
    with pytest.raises(ValueError, match="unknown action noise kind 'brown'"):
        format_action_noise_spec("brown", 0.3)
    with pytest.raises(ValueError, match="takes 1 '_'-separated numbers, got 2"):
        format_action_noise_spec("pink", 0.3, 0.4)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        format_action_noise_spec("ou", -0.1)


# ---------------------------------------------------------------------------------------------- current sigma
def test_decaying_gaussian_repr_and_sigma_show_the_current_sigma():
    from stable_baselines3.common.noise import NormalActionNoise

    from sb3_ddpg_ext.noise import noise_sigma

    noise = GaussianActionNoise(0.0, 0.2, 0.0, 4, seed=0)
    assert repr(noise) == (
        "GaussianActionNoise(mean=0.0, sigma=0.2, initial_sigma=0.2, final_sigma=0.0, decay_steps=4, n_calls=0)"
    )
    noise()
    noise()
    assert repr(noise).startswith("GaussianActionNoise(mean=0.0, sigma=0.1, initial_sigma=0.2,")
    assert noise_sigma(noise) == pytest.approx(0.1)
    assert noise_sigma(None) is None
    assert noise_sigma(make_action_noise("pink_0.3", 2, seed=0)) == pytest.approx(0.3)
    assert noise_sigma(NormalActionNoise(np.zeros(2), np.array([0.1, 0.3]))) == pytest.approx(0.2)
    vec = make_action_noise("normal_0.4_0.0_10", 1, n_envs=2, seed=0)
    for _ in range(5):
        vec()
    assert noise_sigma(vec) == pytest.approx(0.2)


def test_exploration_callback_logs_the_decaying_sigma(tmp_path):
    """``noise/sigma`` in the SB3 logger (csv and json) is the sigma of the rollout's first step."""
    import csv
    import json

    from stable_baselines3.common.logger import configure

    from sb3_ddpg_ext.callbacks import ExplorationCallback
    from sb3_ddpg_ext.ddpg import DDPG

    model = DDPG(
        "MlpPolicy", "Pendulum-v1", learning_starts=100, batch_size=16, policy_kwargs={"net_arch": [8]}, seed=0, device="cpu"
    )
    model.set_logger(configure(str(tmp_path), ["csv", "json"]))
    model.learn(400, callback=ExplorationCallback("normal_0.2_0.0_{total_timesteps}"), log_interval=1)
    rows = [json.loads(line) for line in (tmp_path / "progress.json").read_text().splitlines()]
    # one dump per 200-step episode, at its last step: the last rollout started after 199 / 399 draws of 400
    assert [row["noise/sigma"] for row in rows] == pytest.approx([0.2 * (1 - 199 / 400), 0.2 * (1 - 399 / 400)])
    with open(tmp_path / "progress.csv") as f:
        csv_rows = list(csv.DictReader(f))
    assert [float(row["noise/sigma"]) for row in csv_rows] == pytest.approx([row["noise/sigma"] for row in rows])
