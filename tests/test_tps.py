"""Tests of jaxglimpse.tps: control points, grids, glimpses and writes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxglimpse.affine import affine_grid
from jaxglimpse.tps import tps_controls, tps_glimpse, tps_grid, tps_write
from tests import reference

scipy_interpolate = pytest.importorskip("scipy.interpolate")

_OPTIONS = ("order", "padding", "align_corners", "supersample", "regularization")
_glimpse = jax.jit(tps_glimpse, static_argnames=("shape", *_OPTIONS))
_write = jax.jit(tps_write, static_argnames=("image_shape", *_OPTIONS))
_grid = jax.jit(tps_grid, static_argnames=("shape", "image_shape", "align_corners", "regularization"))


def _points(k, n, seed=0, scale=0.2, batch=()):
  rng = np.random.default_rng(seed)
  controls = rng.uniform(-1, 1, size=(*batch, k, n))
  return controls, controls + rng.normal(scale=scale, size=(*batch, k, n))


def _scipy_pixels(controls, targets, shape, image_shape, align_corners, supersample, smoothing):
  units = reference.glimpse_units_ref(shape, align_corners, supersample)
  rbf = scipy_interpolate.RBFInterpolator(
      controls, targets, kernel="thin_plate_spline", degree=1, smoothing=smoothing
  )
  x = rbf(units.reshape(-1, len(shape))).reshape(units.shape)
  return reference.to_pixels_ref(x, image_shape, align_corners)


def test_controls():
  np.testing.assert_allclose(tps_controls(3, n=1)[:, 0], [-1, 0, 1])
  grid = tps_controls(4)
  assert grid.shape == (16, 2)
  np.testing.assert_allclose(grid[5], [-1 / 3, -1 / 3])
  assert tps_controls(2, n=3).shape == (8, 3)
  with pytest.raises(ValueError, match="tps_controls: k"):
    tps_controls(1)


@pytest.mark.parametrize(
    "n,k,smoothing,align_corners",
    [(2, 4, 0.0, False), (2, 9, 0.1, True), (2, 16, 0.0, False), (1, 3, 0.0, True), (3, 6, 0.01, False)],
)
def test_grid_matches_scipy_rbf_interpolator(n, k, smoothing, align_corners):
  shape, image_shape = {1: ((5,), (7,)), 2: ((3, 4), (5, 6)), 3: ((2, 3, 2), (3, 4, 5))}[n]
  controls, targets = _points(k, n, seed=k)
  grid = _grid(controls, targets, shape, image_shape, align_corners=align_corners, regularization=smoothing)
  expected = _scipy_pixels(controls, targets, shape, image_shape, align_corners, None, smoothing)
  np.testing.assert_allclose(grid, expected.reshape(grid.shape), rtol=0, atol=1e-10)


def test_interpolates_the_controls_and_targets_equal_to_controls_are_the_identity():
  # With align_corners=True, a 4 x 4 glimpse samples exactly the 4 x 4 controls.
  controls = tps_controls(4)
  targets = controls + np.random.default_rng(1).normal(scale=0.1, size=controls.shape)
  grid = _grid(controls, targets, (4, 4), (9, 9), align_corners=True)
  expected = reference.to_pixels_ref(np.asarray(targets), (9, 9), True)
  np.testing.assert_allclose(grid.reshape(16, 2), expected, atol=1e-10)
  identity = _grid(controls, controls, (5, 6), (5, 6))
  np.testing.assert_allclose(identity, affine_grid(np.eye(2, 3), (5, 6), (5, 6)), atol=1e-10)
  image = np.random.default_rng(2).normal(size=(5, 6, 2))
  np.testing.assert_allclose(_glimpse(image, controls, controls, (5, 6), order=3), image, atol=1e-10)


def test_glimpse_matches_reference_and_write_is_its_adjoint():
  controls, targets = _points(5, 2, seed=3, scale=0.4)
  image = np.random.default_rng(4).normal(size=(5, 6, 2))
  kw = dict(order=3, padding="border", supersample=(2, 1))
  out = _glimpse(image, controls, targets, (3, 4), **kw)
  pixels = _scipy_pixels(controls, targets, (3, 4), (5, 6), False, (2, 1), 0.0)
  expected = reference.warp_read_ref(image, pixels, 3, "border")
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-9)
  g = np.random.default_rng(5).normal(size=(3, 4, 2))
  lhs, rhs = np.vdot(out, g), np.vdot(image, _write(g, controls, targets, (5, 6), **kw))
  np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


def test_check_grads_in_targets_controls_and_image():
  controls, targets = _points(5, 2, seed=6)
  image = np.random.default_rng(7).normal(size=(5, 6, 1))
  f = lambda x, c, t: tps_glimpse(x, c, t, (2, 3))
  check_grads(jax.jit(f), (image, controls, targets), order=1, modes=["rev"], eps=1e-6)


def test_coinciding_controls_give_finite_gradients():
  controls = np.array(tps_controls(3))
  controls[1] = controls[0]
  targets = controls * 0.8
  image = np.random.default_rng(8).normal(size=(5, 6, 1))
  loss = lambda t: jnp.sum(tps_glimpse(image, controls, t, (3, 4)) ** 2)
  value, grad = jax.jit(jax.value_and_grad(loss))(targets)
  assert np.isfinite(value) and np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_jit_broadcast_and_dtypes():
  controls = np.asarray(tps_controls(3))
  _, targets = _points(9, 2, seed=9, batch=(3, 2))
  targets = controls + 0.1 * targets
  image = np.random.default_rng(10).normal(size=(3, 1, 5, 6, 2))
  f = jax.jit(lambda x, t: tps_glimpse(x, controls, t, (3, 4)))
  out = f(image, targets)
  assert out.shape == (3, 2, 3, 4, 2)
  for b in range(3):
    for k in range(2):
      np.testing.assert_allclose(out[b, k], f(image[b, 0], targets[b, k]), atol=1e-12)
  for dtype, tol in ((jnp.float16, 2e-2), (jnp.bfloat16, 1e-1), (jnp.float32, 1e-5)):
    low = f(jnp.asarray(image, dtype), jnp.asarray(targets, jnp.float32))
    assert low.dtype == dtype
    np.testing.assert_allclose(np.asarray(low, np.float64), out, rtol=0, atol=tol)


_C, _T = np.zeros((4, 2)), np.zeros((4, 2))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: tps_grid(_C, np.zeros((5, 2)), (2, 2), (5, 5)), ValueError, "targets"),
        (lambda: tps_grid(_C, np.zeros((4, 3)), (2, 2), (5, 5)), ValueError, "targets"),
        (lambda: tps_grid(np.zeros((2, 2)), np.zeros((2, 2)), (2, 2), (5, 5)), ValueError, "controls"),
        (lambda: tps_grid(np.zeros((4, 4)), np.zeros((4, 4)), (2,) * 4, (5,) * 4), ValueError, "controls"),
        (lambda: tps_grid(_C.astype(bool), _T, (2, 2), (5, 5)), TypeError, "controls"),
        (lambda: tps_grid(_C, _T, (2, 2), (5, 5), regularization=-1.0), ValueError, "regularization"),
        (lambda: tps_glimpse(np.zeros((5, 5, 1)), _C, _T, (2, 2), supersample=0), ValueError, "supersample"),
        (lambda: tps_glimpse(np.zeros((5, 5, 1)), _C, _T, (2, 2), order=2), ValueError, "order"),
        (lambda: tps_write(np.zeros((2, 2, 1)), _C, _T, (5,)), ValueError, "image_shape"),
    ],
)
def test_malformed_input_raises(call, error, match):
  with pytest.raises(error, match=r"^tps_\w+: .*" + match):
    call()
