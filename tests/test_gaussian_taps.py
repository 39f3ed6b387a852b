"""Tests of Gaussian glimpses with ``taps``, and of `gaussian_taps`."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxglimpse as jg
from jaxglimpse import _separable
from tests import reference

PADDINGS = ("renormalize", "zeros")
_STATIC = ("padding", "window", "taps")
_read = jax.jit(jg.gaussian_glimpse, static_argnames=("shape",) + _STATIC)
_write = jax.jit(jg.gaussian_write, static_argnames=("image_shape",) + _STATIC)

# (image spatial shape, channels, glimpse shape, taps). The cost model applies
# 1-D filters as a gather per sample and these 2-D ones as matrix products
# with zeros outside each band; the 3-D case mixes both (checked below, so that
# the tests keep covering both ways).
CASES = {
    1: ((50,), 1, (6,), 5),
    2: ((21, 19), 2, (4, 5), (6, 4)),
    3: ((13, 12, 11), 1, (3, 4, 2), 4),
}


def _params(mu, sigma, delta, dtype=jnp.float64):
  return jg.GaussianParams(*(jnp.asarray(x, dtype) for x in (mu, sigma, delta)))


def _random_params(rng, spatial, count, max_sigma=2.0, max_delta=2.5):
  """Centres from off the image to inside, so that bands also meet its edges."""
  size = np.asarray(spatial, np.float64)
  mu = rng.uniform(-0.3 * size, 1.3 * size, size=(count, len(spatial)))
  sigma = rng.uniform(0.05, max_sigma, size=(count, len(spatial)))
  delta = rng.uniform(-max_delta, max_delta, size=(count, len(spatial)))
  return _params(mu, sigma, delta)


def _banded_filterbank(mu, sigma, delta, n, size, taps, padding):
  """The documented truncation, from the dense float64 reference.

  Row j keeps the `taps` pixels from ``clip(floor(c_j - (taps - 1)/2 + 1/2),
  0, size - taps)``; "renormalize" sums it to 1 there, "zeros" keeps the
  infinite-grid normaliser.
  """
  f = reference.gaussian_filterbank(mu, sigma, delta, n, size, padding="zeros")
  for j in range(n):
    c = mu + (j - (n - 1) / 2) * delta
    start = min(max(math.floor(c - (taps - 1) / 2 + 0.5), 0), size - taps)
    f[j, :start] = 0
    f[j, start + taps :] = 0
    if padding == "renormalize":
      f[j] /= f[j].sum()
  return f


def _reference_read(image, p, shape, taps, padding):
  n = len(shape)
  taps = (taps,) * n if isinstance(taps, int) else taps
  filters = [
      _banded_filterbank(p.mu[a], p.sigma[a], p.delta[a], shape[a], image.shape[a], taps[a], padding)
      for a in range(n)
  ]
  return reference.separable(image, filters)


def test_the_cases_cover_both_ways_of_applying_banded_filters():
  ways = set()
  for spatial, channels, shape, taps in CASES.values():
    taps = (taps,) * len(spatial) if isinstance(taps, int) else taps
    ways.update(_separable.plan(spatial, shape, taps, channels, shape)[1])
    ways.update(_separable.plan(shape, spatial, taps, channels, shape)[1])  # The write.
  assert ways == {True, False}


# --- Values ---


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_taps_truncate_each_filter_to_its_band(n, padding):
  spatial, channels, shape, taps = CASES[n]
  rng = np.random.default_rng(1)
  image = rng.normal(size=(4,) + spatial + (channels,))
  p = _random_params(rng, spatial, count=4)
  got = _read(image, p, shape, padding=padding, taps=taps)
  for b in range(4):
    q = jax.tree_util.tree_map(lambda x: np.asarray(x[b]), p)
    want = _reference_read(image[b], q, shape, taps, padding)
    np.testing.assert_allclose(got[b], want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding", PADDINGS)
def test_taps_inside_a_window_count_from_the_windows_first_pixel(padding):
  spatial, shape, window, taps = (30, 26), (4, 3), (12, 9), (5, 4)
  rng = np.random.default_rng(2)
  image = rng.normal(size=spatial + (2,))
  mu = np.array([13.2, 4.1])  # The second window is clamped to the image's edge.
  p = _params(mu, [1.1, 0.7], [2.2, -1.6])
  got = _read(image, p, shape, padding=padding, window=window, taps=taps)
  starts = [min(max(math.floor(m - (w - 1) / 2 + 0.5), 0), s - w)
            for m, w, s in zip(mu, window, spatial)]
  block = image[tuple(slice(s, s + w) for s, w in zip(starts, window))]
  q = _params(mu - starts, p.sigma, p.delta)
  want = _reference_read(block, jax.tree_util.tree_map(np.asarray, q), shape, taps, padding)
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_taps_from_gaussian_taps_equal_the_full_glimpse(n, padding):
  spatial, channels, shape, _ = CASES[n]
  max_sigma = 0.8
  taps = jg.gaussian_taps(max_sigma)
  assert all(taps < s for s in spatial)  # So that the filters really are cut.
  rng = np.random.default_rng(3)
  image = rng.normal(size=(6,) + spatial + (channels,))
  p = _random_params(rng, spatial, count=6, max_sigma=max_sigma)
  got = _read(image, p, shape, padding=padding, taps=taps)
  want = _read(image, p, shape, padding=padding)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(image).max())


def test_taps_as_large_as_the_axis_change_nothing():
  image = np.random.default_rng(4).normal(size=(9, 7, 1))
  p = _params([4.2, 3.3], [1.0, 2.0], [1.5, 1.0])
  want = _read(image, p, (3, 3))
  np.testing.assert_array_equal(_read(image, p, (3, 3), taps=(9, 100)), want)


def test_renormalized_taps_keep_a_constant_image_constant():
  image = np.full((40, 1), 3.0)
  p = _params([[20.0], [-9.0], [55.0]], [[4.0], [4.0], [4.0]], [[3.0], [3.0], [3.0]])
  np.testing.assert_allclose(_read(image, p, (5,), taps=2), 3.0, rtol=1e-12)


def test_a_nan_centre_reads_a_valid_band():
  image = np.ones((12, 1))
  got = _read(image, _params([np.nan], [1.0], [1.0]), (3,), taps=4)
  assert got.shape == (3, 1)


# --- The write is the read's transpose ---


def _inner(a, b):
  return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_write_with_taps_is_the_adjoint_of_the_read(n, padding):
  spatial, channels, shape, taps = CASES[n]
  rng = np.random.default_rng(5)
  image = rng.normal(size=(5,) + spatial + (channels,))
  g = rng.normal(size=(5,) + shape + (channels,))
  p = _random_params(rng, spatial, count=5)
  for window in [None, tuple(s - 3 for s in spatial)]:
    read = _read(image, p, shape, padding=padding, window=window, taps=taps)
    write = _write(g, p, spatial, padding=padding, window=window, taps=taps)
    assert write.shape == image.shape
    scale = np.abs(image).sum() * np.abs(g).max()
    assert abs(_inner(read, g) - _inner(image, write)) <= 1e-12 * scale


def test_write_with_taps_spreads_each_sample_over_its_band_only():
  canvas = np.asarray(_write(np.ones((1, 1)), _params([20.0], [3.0], [1.0]), (40,), taps=5))
  np.testing.assert_array_equal(np.nonzero(canvas[:, 0])[0], np.arange(18, 23))


# --- Gradients ---


def _safe_mu(mu, n, taps):
  """mu near `mu`, for n filters of stride 1, such that every band start is
  half a pixel from a jump (where ``c_j - (taps - 1)/2 + 1/2`` crosses an
  integer), so that finite differences do not straddle one."""
  first = mu - (n - 1) / 2  # The first filter's centre.
  offset = (taps - 1) / 2 - 0.5
  return math.floor(first - offset) + 0.5 + offset + (n - 1) / 2


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 3])  # Gathered bands, and both ways mixed.
def test_glimpse_and_write_gradients_with_taps(n, padding):
  spatial, channels, shape, taps = CASES[n]
  t = (taps,) * n if isinstance(taps, int) else taps
  # A stride of 1 keeps every centre of an axis at the same fraction of a
  # pixel, so one safe mu keeps all their bands away from a jump.
  mu = [_safe_mu(0.45 * s, m, ta) for s, m, ta in zip(spatial, shape, t)]
  p = _params(mu, [0.9] * n, [1.0] * n)
  rng = np.random.default_rng(6)
  image = jnp.asarray(rng.normal(size=spatial + (channels,)))
  g = jnp.asarray(rng.normal(size=shape + (channels,)))
  read = functools.partial(_read, shape=shape, padding=padding, taps=taps)
  write = functools.partial(_write, image_shape=spatial, padding=padding, taps=taps)
  for fn, x in ((read, image), (write, g)):
    check_grads(
        jax.jit(lambda mu, sigma, delta, x: fn(x, jg.GaussianParams(mu, sigma, delta))),
        (*p, x),
        order=1,
        modes=("fwd", "rev"),
    )


@pytest.mark.parametrize("padding", PADDINGS)
def test_degenerate_parameters_give_finite_values_and_gradients_with_taps(padding):
  cases = {
      "zero_sigma": ([3.3], [0.0], [1.0]),
      "far_off_image": ([1e4], [1.0], [1.0]),
      "very_far_off_image": ([-3e12], [1e-3], [1.0]),
      "huge_stride": ([3.0], [0.5], [1e7]),
      "huge_sigma": ([3.0], [1e6], [1.0]),
      "zero_stride": ([6.5], [1.0], [0.0]),
      "infinite_mu": ([np.inf], [1.0], [1.0]),
  }
  image = jnp.asarray(np.random.default_rng(7).normal(size=(15, 2)), jnp.float32)
  p = _params(*zip(*cases.values()), dtype=jnp.float32)

  @jax.jit
  def value_and_grads(q, x):
    def loss(q, x):
      read = jg.gaussian_glimpse(x, q, (4,), padding=padding, taps=3)
      write = jg.gaussian_write(read, q, (15,), padding=padding, taps=3)
      return jnp.sum(read**2, axis=(1, 2)) + jnp.sum(write * x, axis=(1, 2))

    values, vjp = jax.vjp(loss, q, x)
    return values, vjp(jnp.ones_like(values))

  values, grads = value_and_grads(p, image)
  for i, case in enumerate(cases):
    assert np.isfinite(values[i]), case
    for field in grads[0]:
      assert np.all(np.isfinite(field[i])), case
  assert np.all(np.isfinite(grads[1]))


# --- Batching and dtypes ---


def test_broadcast_glimpses_with_taps_equal_a_loop():
  rng = np.random.default_rng(8)
  image = rng.normal(size=(2, 1, 30, 3))  # K = 3 glimpses per image, not copied.
  p = _random_params(rng, (30,), count=6)
  p = jax.tree_util.tree_map(lambda x: x.reshape(2, 3, 1), p)
  got = _read(image, p, (4,), taps=6)
  for b in range(2):
    for k in range(3):
      q = jax.tree_util.tree_map(lambda x: x[b, k], p)
      np.testing.assert_allclose(got[b, k], _read(image[b, 0], q, (4,), taps=6), rtol=1e-12)


@pytest.mark.parametrize(
    "dtype, tol", [(jnp.float16, 2e-2), (jnp.bfloat16, 1e-1), (jnp.float32, 1e-5)]
)
def test_dtypes_with_taps(dtype, tol):
  rng = np.random.default_rng(9)
  image = rng.uniform(0.5, 1.5, size=(40, 3))
  p = _params([19.3], [1.1], [2.4], jnp.float32)
  want = _read(image, p, (8,))
  got = _read(jnp.asarray(image, dtype), p, (8,), taps=jg.gaussian_taps(1.1))
  assert got.dtype == dtype
  np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol)
  written = _write(got, p, (40,), taps=jg.gaussian_taps(1.1))
  assert written.dtype == dtype and np.all(np.isfinite(np.asarray(written, np.float64)))


# --- gaussian_taps and malformed taps ---


def test_gaussian_taps_formula():
  # ceil(2 k sigma) + 2: a window for one filter.
  assert jg.gaussian_taps(0.5) == 7
  assert jg.gaussian_taps(2.0) == 22
  assert jg.gaussian_taps([0.5, 2.0], k=3) == (5, 14)
  assert jg.gaussian_taps(np.float32(0.0)) == 2
  for sigma in [0.3, 1.0, 2.7]:
    assert jg.gaussian_taps(sigma) == jg.gaussian_window((1,), 0.0, sigma)[0]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(max_sigma=-1.0), ValueError, "non-negative"),
        (dict(max_sigma=np.inf), ValueError, "finite"),
        (dict(max_sigma="wide"), TypeError, "number"),
        (dict(max_sigma=[[1.0]]), ValueError, "number"),
        (dict(max_sigma=1.0, k=0), ValueError, "k must be"),
    ],
)
def test_gaussian_taps_rejects_bad_bounds(kwargs, error, match):
  with pytest.raises(error, match=match):
    jg.gaussian_taps(**kwargs)


def test_gaussian_taps_rejects_traced_bounds():
  with pytest.raises(TypeError, match="static"):
    jax.jit(jg.gaussian_taps)(1.0)


@pytest.mark.parametrize(
    "taps, error, match",
    [
        (0, ValueError, "positive"),
        ((3, -1), ValueError, "positive"),
        ((3, 3, 3), ValueError, "one per spatial axis"),
        (2.5, TypeError, "taps"),
        ((3, 2.0), TypeError, "taps"),
        (True, TypeError, "taps"),
    ],
)
@pytest.mark.parametrize("fn", ["glimpse", "write"])
def test_malformed_taps_are_rejected(fn, taps, error, match):
  p = _params([4.0, 4.0], [1.0, 1.0], [1.0, 1.0])
  with pytest.raises(error, match=match):
    if fn == "glimpse":
      jg.gaussian_glimpse(np.ones((9, 9, 1)), p, (3, 3), taps=taps)
    else:
      jg.gaussian_write(np.ones((3, 3, 1)), p, (9, 9), taps=taps)
