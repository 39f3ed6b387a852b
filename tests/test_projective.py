"""Tests of jaxglimpse.projective: grids, glimpses, writes and homographies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxglimpse.affine import affine_glimpse, affine_write
from jaxglimpse.projective import (
    homography_from_points,
    projective_glimpse,
    projective_grid,
    projective_write,
)
from tests import reference

IMAGE = {1: (6,), 2: (5, 6), 3: (3, 4, 5)}
GLIMPSE = {1: (4,), 2: (3, 4), 3: (2, 3, 2)}
_OPTIONS = ("order", "padding", "align_corners", "supersample")
_glimpse = jax.jit(projective_glimpse, static_argnames=("shape", *_OPTIONS))
_write = jax.jit(projective_write, static_argnames=("image_shape", *_OPTIONS))


def _image(n, seed=0, batch=()):
  return np.random.default_rng(seed).normal(size=(*batch, *IMAGE[n], 2))


def _matrix(n, seed=0, batch=(), perspective=0.4):
  """A random matrix whose glimpse reaches off the image and, for larger
  `perspective`, past the horizon."""
  rng = np.random.default_rng(seed)
  m = np.zeros((*batch, n + 1, n + 1))
  m[..., :n, :n] = rng.normal(scale=0.7, size=(*batch, n, n))
  m[..., :n, n] = rng.uniform(-0.6, 0.6, size=(*batch, n))
  m[..., n, :n] = rng.uniform(-perspective, perspective, size=(*batch, n))
  m[..., n, n] = 1.0
  return m


def _affine_part(theta):
  n = theta.shape[-2]
  last = np.zeros((*theta.shape[:-2], 1, n + 1))
  last[..., 0, n] = 1.0
  return np.concatenate([theta, last], axis=-2)


@pytest.mark.parametrize(
    "n,order,padding,align_corners,supersample",
    [(1, 1, "zeros", True, 1), (2, 3, "reflection", False, 1), (3, 1, "border", True, 1)],
)
def test_affine_matrices_give_the_affine_glimpse_bit_for_bit(
    n, order, padding, align_corners, supersample
):
  kw = dict(order=order, padding=padding, align_corners=align_corners, supersample=supersample)

  def everything(glimpse, write):
    """Value, both gradients and the write, compiled on their own: one jit of
    both glimpses could fuse their shared parts differently."""

    @jax.jit
    def run(x, p, g):
      value, vjp = jax.vjp(lambda x, p: glimpse(x, p, GLIMPSE[n], **kw), x, p)
      return (value, *vjp(g), write(g, p, IMAGE[n], **kw))

    return run

  ours = everything(projective_glimpse, projective_write)
  theirs = everything(affine_glimpse, affine_write)
  theta = _matrix(n, seed=n, batch=(2,))[..., :n, :]
  g = np.random.default_rng(3).normal(size=(2, *GLIMPSE[n], 2))
  for dtype in (np.float32, np.float64):
    x, th, m, ct = (a.astype(dtype) for a in (_image(n, batch=(2,)), theta, _affine_part(theta), g))
    value, gx, gm, canvas = ours(x, m, ct)
    expected = theirs(x, th, ct)
    for a, b in zip((value, gx, gm[..., :n, :], canvas), expected):
      if dtype == np.float64 and not jax.config.read("jax_disable_most_optimizations"):
        # Bit for bit as users compile it. The suite compiles without XLA's
        # optimisations (conftest.py), where w = 1 is not simplified away;
        # CI runs this file optimised too.
        np.testing.assert_array_equal(a, b)
      else:  # XLA may fuse the two programs differently (older jax does).
        rtol = 1e-5 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.max(np.abs(b))))


@pytest.mark.parametrize(
    "n,order,padding,align_corners,supersample",
    [(1, 1, "border", False, (2,)), (2, 1, "zeros", True, (1, 1)), (2, 3, "border", False, (2, 1)),
     (3, 1, "reflection", True, (1, 1, 1))],
)
def test_matches_numpy_reference_with_points_past_the_horizon(
    n, order, padding, align_corners, supersample
):
  image, matrix = _image(n, seed=n), _matrix(n, seed=10 + n)
  matrix[n, 0] = 2.5  # w = 0 near u_0 = -0.4: a horizon across the glimpse.
  kw = dict(order=order, padding=padding, align_corners=align_corners)
  out = _glimpse(image, matrix, GLIMPSE[n], supersample=supersample, **kw)
  units = reference.glimpse_units_ref(GLIMPSE[n], align_corners, supersample)
  pixels, valid = reference.projective_pixels_ref(matrix, units, IMAGE[n], align_corners)
  values = reference.sample_ref(image, np.where(valid[..., None], pixels, 0), **kw)
  values = np.where(valid[..., None], values, 0)
  expected = values.mean(axis=tuple(2 * a + 1 for a in range(n)))
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)
  assert 0 < valid.sum() < valid.size  # Some points lie past the horizon.
  grid = projective_grid(matrix, GLIMPSE[n], IMAGE[n], align_corners=align_corners)
  if supersample == (1,) * n:
    flat = pixels.reshape(GLIMPSE[n] + (n,))
    np.testing.assert_allclose(grid, np.where(np.isnan(grid), np.nan, flat), atol=1e-10)
    np.testing.assert_array_equal(np.isnan(grid[..., 0]), ~valid.reshape(GLIMPSE[n]))


def test_identity_returns_the_image():
  image = _image(2)
  out = _glimpse(image, np.eye(3), IMAGE[2], order=3)
  np.testing.assert_allclose(out, image, atol=1e-12)


def test_write_is_the_adjoint_of_the_glimpse():
  image, matrix = _image(2, batch=(2,)), _matrix(2, seed=4, batch=(2,), perspective=1.5)
  g = np.random.default_rng(5).normal(size=(2, 3, 4, 2))
  kw = dict(padding="border", supersample=(1, 2))
  lhs = np.vdot(_glimpse(image, matrix, (3, 4), **kw), g)
  rhs = np.vdot(image, _write(g, matrix, IMAGE[2], **kw))
  assert abs(lhs) > 1e-3
  np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-12)


def test_horizon_points_read_zero_with_finite_gradients():
  image = _image(2)
  matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 2.0, 0.0]])  # w = 2 u_x.
  matrix = np.stack([matrix, matrix * np.array([1.0, 1.0, 1e-300])[:, None]])

  def loss(x, m):
    return jnp.sum(projective_glimpse(x, m, (3, 4), padding="border") ** 2)

  out = jax.jit(lambda x, m: projective_glimpse(x, m, (3, 4), padding="border"))(image, matrix)
  grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(image, matrix)
  assert np.all(np.isfinite(out)) and all(np.all(np.isfinite(g)) for g in grads)
  np.testing.assert_array_equal(out[:, :, :2], 0)  # u_x < 0: behind the horizon.
  assert np.all(out[0, :, 2:] != 0)
  assert np.any(grads[1] != 0)


def test_check_grads_in_matrix_and_image():
  image, matrix = _image(2, seed=7), _matrix(2, seed=8)
  f = lambda x, m: projective_glimpse(x, m, (2, 3), order=3, padding="reflection")
  check_grads(f, (image, matrix), order=1, modes=["rev"], eps=1e-5)


def test_jit_broadcast_and_dtypes():
  image = _image(2, seed=1, batch=(3, 1))
  matrix = _matrix(2, seed=2, batch=(3, 2))
  f = jax.jit(lambda x, m: projective_glimpse(x, m, (3, 4)))
  out = f(image, matrix)
  np.testing.assert_allclose(out, projective_glimpse(image, matrix, (3, 4)), atol=1e-12)
  for b in range(3):
    for k in range(2):
      np.testing.assert_allclose(out[b, k], f(image[b, 0], matrix[b, k]), atol=1e-12)
  for dtype, tol in ((jnp.float16, 2e-2), (jnp.bfloat16, 1e-1), (jnp.float32, 1e-5)):
    low = f(jnp.asarray(image, dtype), jnp.asarray(matrix, jnp.float32))
    assert low.dtype == dtype
    np.testing.assert_allclose(np.asarray(low, np.float64), out, rtol=0, atol=tol)


def test_homography_maps_the_points_and_matches_the_reference():
  rng = np.random.default_rng(0)
  src = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [1.0, -1.0]]) + rng.uniform(-0.2, 0.2, (3, 4, 2))
  dst = src * 0.5 + rng.uniform(-0.3, 0.3, (3, 4, 2))
  h = jax.jit(homography_from_points)(src, dst)
  for b in range(3):
    np.testing.assert_allclose(h[b], reference.homography_ref(src[b], dst[b]), atol=1e-10)
  y = np.einsum("bij,bkj->bki", h, np.concatenate([src, np.ones((3, 4, 1))], -1))
  np.testing.assert_allclose(y[..., :2] / y[..., 2:], dst, atol=1e-12)
  # The round trip: the glimpse with corners at dst reads dst's pixels.
  corners = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
  h = homography_from_points(corners, dst[0])
  grid = projective_grid(h, (5, 5), (9, 9), align_corners=True)
  expected = reference.to_pixels_ref(dst[0], (9, 9), align_corners=True)
  np.testing.assert_allclose(grid[[0, 0, 4, 4], [0, 4, 4, 0]], expected, atol=1e-12)
  check_grads(homography_from_points, (src[0], dst[0]), order=1, modes=["rev"], eps=1e-6)


def test_homography_of_collinear_points():
  line = np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 1.0], [0.0, 1.0]])
  square = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
  with pytest.raises(ValueError, match="homography_from_points: three of the four src"):
    homography_from_points(line, square)
  with pytest.raises(ValueError, match="homography_from_points: three of the four dst"):
    homography_from_points(square, line)
  f = jax.jit(jax.value_and_grad(lambda s: jnp.sum(homography_from_points(s, square))))
  value, grad = f(line)
  assert np.isfinite(value) and np.all(np.isfinite(grad))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: projective_glimpse(np.zeros((5, 6, 1)), np.eye(3)[:2], (2, 2)), ValueError, "matrix"),
        (lambda: projective_glimpse(np.zeros((5, 6, 1)), np.eye(5), (2, 2, 2, 2)), ValueError, "matrix"),
        (lambda: projective_glimpse(np.zeros((5, 6, 1)), np.eye(3, dtype=np.float16), (2, 2)), TypeError, "matrix must be float32 or wider"),
        (lambda: projective_glimpse(np.zeros((5, 6, 1)), np.eye(3), (2,)), ValueError, "shape"),
        (lambda: projective_glimpse(np.zeros((5, 6, 1)), np.eye(3), (2, 2), supersample=0), ValueError, "supersample"),
        (lambda: projective_glimpse(np.zeros((5, 6, 1)), np.eye(3), (2, 2), order=2), ValueError, "order"),
        (lambda: projective_write(np.zeros((2, 2, 1)), np.eye(3), (5,)), ValueError, "image_shape"),
        (lambda: projective_grid(np.eye(4), (2, 2), (5, 5)), ValueError, "shape"),
        (lambda: homography_from_points(np.zeros((3, 2)), np.zeros((4, 2))), ValueError, "src"),
        (lambda: homography_from_points(np.zeros((4, 2)), np.zeros((2, 4, 3))), ValueError, "dst"),
    ],
)
def test_malformed_input_raises(call, error, match):
  with pytest.raises(error, match=r"^(projective_\w+|homography_from_points): .*" + match):
    call()
