"""Tests of windowed Gaussian glimpses and of `gaussian_window`."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxglimpse as jg
from tests import reference

PADDINGS = ("renormalize", "zeros")

# Jitted once per shape and option: eager calls would compile every primitive.
_read = jax.jit(jg.gaussian_glimpse, static_argnames=("shape", "padding", "window"))
_write = jax.jit(jg.gaussian_write, static_argnames=("image_shape", "padding", "window"))


def _params(mu, sigma, delta, dtype=jnp.float64):
  return jg.GaussianParams(*(jnp.asarray(x, dtype) for x in (mu, sigma, delta)))


def _start(mu, length, size):
  """The documented window start: centred on mu, rounded, kept in the image."""
  return int(min(max(math.floor(mu - (length - 1) / 2 + 0.5), 0), size - length))


def _safe_mu(mu, length):
  """mu moved to where the window's start is half a pixel from changing.

  The start jumps where ``mu - (L - 1) / 2 + 1/2`` crosses an integer; finite
  differences must not straddle such a jump.
  """
  offset = (length - 1) / 2 - 0.5
  return math.floor(mu - offset) + 0.5 + offset


# (image spatial shape, glimpse shape, max |delta|, max sigma): a window well
# inside the image on every axis, so that the slice really happens.
CASES = {
    1: ((60,), (5,), 1.5, 0.8),
    2: ((40, 34), (4, 5), 1.3, 0.9),
    3: ((22, 24, 20), (3, 2, 3), 1.2, 0.6),
}


def _random_params(rng, n, spatial, shape, max_delta, max_sigma, count):
  """Params within the bounds; centres anywhere from off the image to inside."""
  size = np.asarray(spatial, np.float64)
  mu = rng.uniform(-0.3 * size, 1.3 * size, size=(count, n))
  sigma = rng.uniform(0.05, max_sigma, size=(count, n))
  delta = rng.uniform(-max_delta, max_delta, size=(count, n))
  return _params(mu, sigma, delta)


# --- The window holds the glimpse: windowed == dense ---


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_windowed_equals_dense_when_the_support_fits(n, padding):
  spatial, shape, max_delta, max_sigma = CASES[n]
  window = jg.gaussian_window(shape, max_delta, max_sigma, image_shape=spatial)
  assert all(w < s for w, s in zip(window, spatial))
  rng = np.random.default_rng(n)
  image = rng.normal(size=spatial + (2,))
  p = _random_params(rng, n, spatial, shape, max_delta, max_sigma, count=24)
  dense = _read(image, p, shape, padding=padding)
  windowed = _read(image, p, shape, padding=padding, window=window)
  assert windowed.shape == dense.shape == (24,) + shape + (2,)
  np.testing.assert_allclose(windowed, dense, rtol=0, atol=1e-5 * np.abs(image).max())


@pytest.mark.parametrize("padding", PADDINGS)
def test_windowed_write_equals_dense_write_when_the_support_fits(padding):
  spatial, shape, max_delta, max_sigma = CASES[2]
  window = jg.gaussian_window(shape, max_delta, max_sigma)
  rng = np.random.default_rng(4)
  g = rng.normal(size=(6,) + shape + (3,))
  p = _random_params(rng, 2, spatial, shape, max_delta, max_sigma, count=6)
  dense = _write(g, p, spatial, padding=padding)
  windowed = _write(g, p, spatial, padding=padding, window=window)
  np.testing.assert_allclose(windowed, dense, rtol=0, atol=1e-5 * np.abs(g).max())


def test_the_zoom_in_window_matches_dense_to_float32_precision():
  # The benchmark's zoom-in glimpse (delta 1, sigma 0.5), in float32.
  rng = np.random.default_rng(5)
  image = jnp.asarray(rng.uniform(size=(3, 96, 90, 3)), jnp.float32)
  box = jg.Box(jnp.asarray(rng.uniform(10, 80, size=(3, 2)), jnp.float32), jnp.full((3, 2), 16.0))
  p = jg.box_to_gaussian(box, (16, 16))
  window = jg.gaussian_window((16, 16), 1.0, 0.5)
  assert window == (22, 22)
  got = _read(image, p, (16, 16), window=window)
  want = _read(image, p, (16, 16))
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("padding", PADDINGS)
def test_a_window_as_large_as_the_image_is_the_dense_glimpse(padding):
  image = np.random.default_rng(6).normal(size=(9, 8, 2))
  p = _params([3.7, 4.2], [0.9, 0.6], [1.3, -1.7])
  dense = _read(image, p, (5, 3), padding=padding)
  for window in [(9, 8), (50, 50)]:
    got = _read(image, p, (5, 3), padding=padding, window=window)
    np.testing.assert_array_equal(got, dense)


# --- What a window does when the support does not fit ---


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize(
    "mu, window",
    [
        ([10.3, 7.9], (5, 4)),  # Inside: both axes truncated.
        ([0.4, 15.0], (6, 6)),  # Clamped to the top and right edges.
        ([-40.0, 3.0], (4, 16)),  # Far off the image: the window sits at pixel 0.
        ([12.0, 24.0], (20, 3)),  # Wider than the image on one axis: clipped to it.
    ],
)
def test_a_window_is_a_dense_glimpse_of_the_pixels_it_holds(mu, window, padding):
  # The documented truncation: filters are built on the window's pixels only,
  # exactly as a dense glimpse of that block with mu measured from its start.
  spatial, shape = (18, 16), (4, 5)
  image = np.random.default_rng(7).normal(size=spatial + (2,))
  p = _params(mu, [1.5, 2.0], [1.7, -1.1])
  got = _read(image, p, shape, padding=padding, window=window)
  window = tuple(min(w, s) for w, s in zip(window, spatial))
  starts = [_start(m, w, s) for m, w, s in zip(mu, window, spatial)]
  block = image[tuple(slice(s, s + w) for s, w in zip(starts, window))]
  want = reference.gaussian_glimpse(
      block, np.asarray(mu) - starts, np.asarray(p.sigma), np.asarray(p.delta), shape, padding
  )
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_truncated_renormalize_filters_still_sum_to_one():
  # A glimpse of a constant image is that constant, however small the window.
  image = np.full((30, 30, 1), 2.5)
  p = _params([14.0, 9.0], [4.0, 3.0], [3.0, 2.0])
  got = _read(image, p, (6, 6), window=(3, 2))
  np.testing.assert_allclose(got, 2.5, rtol=1e-12)


def test_truncated_zeros_filters_drop_what_falls_outside():
  image = np.ones((30, 30, 1))
  p = _params([14.0, 9.0], [4.0, 3.0], [3.0, 2.0])
  dense = np.asarray(_read(image, p, (6, 6), padding="zeros"))
  cut = np.asarray(_read(image, p, (6, 6), padding="zeros", window=(8, 6)))
  assert np.all(cut >= 0) and np.all(cut <= dense + 1e-12)
  assert cut.min() < 0.5 * dense.min()  # The outer filters lose most of their mass.


DEGENERATE = {
    "tiny_sigma": ([3.3, 2.7], [1e-3, 1e-3], [1.0, 1.0]),
    "zero_sigma": ([3.3, 2.7], [0.0, 0.0], [1.0, 1.0]),
    "far_off_image": ([1e4, -1e4], [1.0, 1.0], [1.0, 1.0]),
    "very_far_off_image": ([1e9, -3e12], [1e-3, 1.0], [1.0, 1.0]),
    "huge_stride": ([3.0, 4.0], [0.5, 0.5], [1e7, -1e7]),
    "huge_sigma": ([3.0, 4.0], [1e6, 1e6], [1.0, 1.0]),
    "infinite_mu": ([np.inf, -np.inf], [1.0, 1.0], [1.0, 1.0]),
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("padding", PADDINGS)
def test_degenerate_parameters_give_finite_values_and_gradients(padding, dtype):
  image = jnp.asarray(np.random.default_rng(8).normal(size=(11, 13, 2)), dtype)
  cases = sorted(DEGENERATE)
  p = _params(*zip(*(DEGENERATE[c] for c in cases)), dtype=dtype)  # A batch of cases.

  @jax.jit
  def value_and_grads(q, x):
    def loss(q, x):
      read = jg.gaussian_glimpse(x, q, (4, 5), padding=padding, window=(5, 6))
      write = jg.gaussian_write(read, q, (11, 13), padding=padding, window=(5, 6))
      return jnp.sum(read**2, axis=(1, 2, 3)) + jnp.sum(write * x, axis=(1, 2, 3))

    values, vjp = jax.vjp(loss, q, x)
    return values, vjp(jnp.ones_like(values))

  values, grads = value_and_grads(p, image)
  for i, case in enumerate(cases):
    assert np.isfinite(values[i]), case
    for field in grads[0]:
      assert np.all(np.isfinite(field[i])), case
  assert np.all(np.isfinite(grads[1]))


def test_a_nan_centre_reads_inside_the_image():
  # NaN propagates to the values, as in the dense glimpse, but the window's
  # position is still a valid index.
  image = np.ones((10, 10, 1))
  got = _read(image, _params([np.nan, 4.0], [1.0, 1.0], [1.0, 1.0]), (2, 2), window=(4, 4))
  assert got.shape == (2, 2, 1)


# --- The windowed write is the windowed read's transpose ---


def _inner(a, b):
  return float(np.sum(np.asarray(a, np.float64) * np.asarray(b, np.float64)))


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_windowed_write_is_the_adjoint_of_the_windowed_read(n, padding):
  spatial, shape, max_delta, max_sigma = CASES[n]
  rng = np.random.default_rng(9)
  image = rng.normal(size=(5,) + spatial + (2,))
  g = rng.normal(size=(5,) + shape + (2,))
  p = _random_params(rng, n, spatial, shape, 3 * max_delta, 3 * max_sigma, count=5)
  for window in [jg.gaussian_window(shape, max_delta, max_sigma), (3,) * n]:
    read = _read(image, p, shape, padding=padding, window=window)
    write = _write(g, p, spatial, padding=padding, window=window)
    assert write.shape == image.shape
    scale = np.abs(image).sum() * np.abs(g).max()
    assert abs(_inner(read, g) - _inner(image, write)) <= 1e-12 * scale


def test_windowed_write_leaves_the_rest_of_the_canvas_zero():
  p = _params([20.0, 5.0], [1.0, 1.0], [1.0, 1.0])
  canvas = np.asarray(_write(np.ones((3, 3, 1)), p, (40, 30), window=(7, 7)))
  rows, cols = np.nonzero(canvas[..., 0])
  assert rows.min() >= 17 and rows.max() <= 23 and cols.min() >= 2 and cols.max() <= 8


# --- Gradients ---


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_windowed_glimpse_gradients(n, padding):
  spatial, shape, max_delta, max_sigma = CASES[n]
  window = jg.gaussian_window(shape, max_delta, max_sigma)
  image = np.random.default_rng(10).normal(size=spatial + (1,))
  mu = [_safe_mu(0.45 * s, w) for s, w in zip(spatial, window)]
  p = _params(mu, [0.8 * max_sigma] * n, [0.9 * max_delta] * n)
  glimpse = functools.partial(_read, shape=shape, padding=padding, window=window)
  check_grads(
      jax.jit(lambda mu, sigma, delta, x: glimpse(x, jg.GaussianParams(mu, sigma, delta))),
      (*p, jnp.asarray(image)),
      order=1,
      modes=("fwd", "rev"),
  )


@pytest.mark.parametrize("padding", PADDINGS)
def test_truncated_glimpse_and_write_gradients(padding):
  image = np.random.default_rng(11).normal(size=(16, 14, 1))
  window = (5, 4)
  p = _params([_safe_mu(7.0, 5), _safe_mu(6.0, 4)], [1.5, 2.0], [1.7, -1.1])
  glimpse = functools.partial(_read, shape=(3, 4), padding=padding, window=window)
  check_grads(
      jax.jit(lambda mu, sigma, delta, x: glimpse(x, jg.GaussianParams(mu, sigma, delta))),
      (*p, jnp.asarray(image)),
      order=1,
      modes=("fwd", "rev"),
  )
  g = jnp.asarray(np.random.default_rng(12).normal(size=(3, 4, 1)))
  write = functools.partial(_write, image_shape=(16, 14), padding=padding, window=window)
  check_grads(
      jax.jit(lambda mu, sigma, delta, x: write(x, jg.GaussianParams(mu, sigma, delta))),
      (*p, g),
      order=1,
      modes=("fwd", "rev"),
  )


def test_window_position_carries_no_gradient_and_params_gradients_match_dense():
  spatial, shape, max_delta, max_sigma = CASES[2]
  window = jg.gaussian_window(shape, max_delta, max_sigma)
  image = np.random.default_rng(13).normal(size=spatial + (2,))
  p = _params([_safe_mu(17.0, window[0]), _safe_mu(15.0, window[1])], [0.7, 0.9], [1.1, -1.3])
  loss = lambda q, w: jnp.sum(jg.gaussian_glimpse(image, q, shape, window=w) ** 2)
  got = jax.jit(jax.grad(loss), static_argnums=1)(p, window)
  want = jax.jit(jax.grad(loss), static_argnums=1)(p, None)
  for a, b in zip(got, want):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)


# --- Batching, jit, dtypes ---


# Broadcasting against a Python loop: test_gaussian.py, with and without window.


def test_jit_equals_eager_and_does_not_retrace():
  traces = []

  def f(x, q):
    traces.append(None)
    return jg.gaussian_glimpse(x, q, (3, 3), window=(6, 6))

  image = np.random.default_rng(15).normal(size=(12, 12, 1))
  p = _params([5.0, 6.0], [0.8, 0.8], [1.0, 1.0])
  jitted = jax.jit(f)
  np.testing.assert_allclose(jitted(image, p), f(image, p), rtol=1e-12)
  jitted(image + 1, jax.tree_util.tree_map(lambda x: x * 1.1, p))
  assert len(traces) == 2  # One eager call, one trace.


@pytest.mark.parametrize(
    "dtype, tol", [(jnp.float16, 2e-2), (jnp.bfloat16, 1e-1), (jnp.float32, 1e-5)]
)
def test_dtypes(dtype, tol):
  rng = np.random.default_rng(16)
  image = rng.uniform(0.5, 1.5, size=(20, 22, 3))
  p = _params([9.3, 10.6], [0.7, 1.1], [1.2, -0.9], jnp.float32)
  window = jg.gaussian_window((4, 5), 1.2, 1.1)
  want = _read(image, p, (4, 5))
  got = _read(jnp.asarray(image, dtype), p, (4, 5), window=window)
  assert got.dtype == dtype
  np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol)
  written = _write(got, p, (20, 22), window=window)
  assert written.dtype == dtype and np.all(np.isfinite(np.asarray(written, np.float64)))


# --- gaussian_window ---


def test_gaussian_window_formula():
  # ceil(|delta| (N - 1) + 2 k sigma) + 2 per axis.
  assert jg.gaussian_window((64, 64), 1.0, 0.5) == (70, 70)
  assert jg.gaussian_window((12,), 2.0, 1.0) == (34,)
  assert jg.gaussian_window((12,), 2.0, 1.0, k=3) == (30,)
  assert jg.gaussian_window((4, 5, 1), [1.0, 0.5, 3.0], [0.0, 0.25, 1.0]) == (5, 7, 12)
  assert jg.gaussian_window((12, 12), 2.0, 1.0, image_shape=(28, 20)) == (28, 20)
  assert jg.gaussian_window((3,), np.float32(1.5), np.array(0.5)) == (10,)
  window = jg.gaussian_window((8, 8), 1.3, 0.7)
  assert all(type(w) is int for w in window)


def test_gaussian_window_holds_every_glimpse_within_its_bounds():
  # The bounds are attained: |delta| = max_delta and sigma = max_sigma at
  # random centres, the worst case for the window.
  shape, spatial, max_delta, max_sigma = (6, 5), (50, 45), 1.7, 1.3
  window = jg.gaussian_window(shape, max_delta, max_sigma)
  rng = np.random.default_rng(17)
  image = rng.uniform(size=spatial + (1,))
  count = 32
  mu = rng.uniform(-5, 50, size=(count, 2))
  p = _params(mu, np.full((count, 2), max_sigma), rng.choice([-1, 1], size=(count, 2)) * max_delta)
  for padding in PADDINGS:
    dense = _read(image, p, shape, padding=padding)
    windowed = _read(image, p, shape, padding=padding, window=window)
    np.testing.assert_allclose(windowed, dense, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (((4, 4), -1.0, 1.0), {}, ValueError,
         r"gaussian_window: max_delta must be finite and non-negative"),
        (((4, 4), 1.0, np.inf), {}, ValueError, r"max_sigma must be finite"),
        (((4, 4), [1.0, 2.0, 3.0], 1.0), {}, ValueError,
         r"max_delta must be a number or 2 numbers"),
        (((4, 4), 1.0, 1.0), dict(k=0), ValueError, r"k must be a positive number"),
        (((4, 4), 1.0, 1.0), dict(image_shape=(8,)), ValueError, r"image_shape=\(8,\) has length 1"),
        (((4, 0), 1.0, 1.0), {}, ValueError, r"shape must be positive"),
        (((4, 4), "wide", 1.0), {}, TypeError,
         r"max_delta must be a number or 2 numbers, got 'wide'"),
    ],
)
def test_gaussian_window_errors(args, kwargs, error, match):
  with pytest.raises(error, match=match):
    jg.gaussian_window(*args, **kwargs)


def test_gaussian_window_rejects_traced_bounds():
  with pytest.raises(TypeError, match=r"gaussian_window: max_delta must be static"):
    jax.jit(lambda d: jg.gaussian_window((4,), d, 1.0))(1.0)


@pytest.mark.parametrize(
    "window, error, match",
    [
        ((4,), ValueError,
         r"gaussian_glimpse: window=\(4,\) has length 1, but the image \(6, 7\) has 2"),
        ((4, 0), ValueError, r"gaussian_glimpse: window must be positive"),
        ((4, 2.5), TypeError, r"gaussian_glimpse: window must hold Python ints"),
        (4, TypeError, r"gaussian_glimpse: window must be a tuple of ints"),
    ],
)
def test_malformed_window(window, error, match):
  ones = _params([1.0] * 2, [1.0] * 2, [1.0] * 2)
  with pytest.raises(error, match=match):
    jg.gaussian_glimpse(np.zeros((6, 7, 1)), ones, (3, 2), window=window)
  with pytest.raises(error, match=match.replace("glimpse", "write")):
    jg.gaussian_write(np.zeros((3, 2, 1)), ones, (6, 7), window=window)
