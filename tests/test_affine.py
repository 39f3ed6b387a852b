"""Tests of jaxglimpse.affine: grids, theta conversions, boxes, glimpse and write."""

import itertools
import warnings

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

try:
  from jax import enable_x64
except ImportError:  # Older jax kept it in jax.experimental.
  from jax.experimental import enable_x64

from jaxglimpse.affine import (
    affine_glimpse,
    affine_grid,
    affine_to_box,
    affine_write,
    box_to_affine,
    scale_shift_theta,
    theta_from_torch,
    theta_to_torch,
)
from jaxglimpse.params import Box
from tests import reference

PADDINGS = ("zeros", "border", "reflection")
IMAGE = {1: (6,), 2: (5, 6), 3: (3, 4, 5)}
GLIMPSE = {1: (4,), 2: (3, 4), 3: (2, 3, 3)}
ALL = list(itertools.product((1, 2, 3), PADDINGS, (0, 1), (False, True)))


def _image(n, seed=0, channels=2, batch=()):
  return np.random.default_rng(seed).normal(size=(*batch, *IMAGE[n], channels))


def _theta(n, seed=0, batch=()):
  """A random theta whose glimpse reaches partly outside the image."""
  rng = np.random.default_rng(seed)
  linear = rng.normal(scale=0.7, size=(*batch, n, n))
  shift = rng.uniform(-0.7, 0.7, size=(*batch, n, 1))
  return np.concatenate([linear, shift], axis=-1)


def _identity(n):
  return np.concatenate([np.eye(n), np.zeros((n, 1))], axis=1)


def _read_ref(image, theta, shape, order, padding, align_corners):
  grid = reference.affine_grid_ref(theta, shape, image.shape[:-1], align_corners)
  return reference.sample_ref(image, grid, order, padding, align_corners)


# --- affine_grid and affine_glimpse against the loop references ---


@pytest.mark.parametrize("n", (1, 2, 3))
@pytest.mark.parametrize("align_corners", (False, True))
@pytest.mark.parametrize("ones", (False, True))
def test_affine_grid_matches_reference(n, align_corners, ones):
  shape = GLIMPSE[n] if not ones else (1,) + GLIMPSE[n][1:]
  theta = _theta(n, seed=n)
  grid = affine_grid(theta, shape, IMAGE[n], align_corners=align_corners)
  expected = reference.affine_grid_ref(theta, shape, IMAGE[n], align_corners)
  assert grid.shape == (*shape, n)
  np.testing.assert_allclose(grid, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n,padding,order,align_corners", ALL)
def test_affine_glimpse_matches_reference(n, padding, order, align_corners):
  image, theta, shape = _image(n), _theta(n, seed=n), GLIMPSE[n]
  out = affine_glimpse(
      image, theta, shape, padding=padding, order=order, align_corners=align_corners
  )
  expected = _read_ref(image, theta, shape, order, padding, align_corners)
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("n", (1, 2, 3))
@pytest.mark.parametrize("align_corners", (False, True))
def test_identity_theta_returns_the_image(n, align_corners):
  # Image and glimpse of shape GLIMPSE[n] reuse the kernels eager mode compiled
  # for the reference test.
  image = np.random.default_rng(0).normal(size=(*GLIMPSE[n], 2))
  for padding, order in itertools.product(PADDINGS, (0, 1)):
    out = affine_glimpse(
        image,
        _identity(n),
        GLIMPSE[n],
        padding=padding,
        order=order,
        align_corners=align_corners,
    )
    np.testing.assert_allclose(out, image, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("align_corners", (False, True))
def test_identity_grid_is_exactly_the_pixel_centres(dtype, align_corners):
  theta = _identity(3).astype(dtype)
  grid = affine_grid(theta, (3, 7, 28), (3, 7, 28), align_corners=align_corners)
  expected = np.stack(np.meshgrid(*map(np.arange, (3, 7, 28)), indexing="ij"), -1)
  assert grid.dtype == dtype
  np.testing.assert_array_equal(grid, expected)


def test_affine_glimpse_by_hand():
  image = np.arange(4.0)[:, None]
  # Left half of the image, 2 samples: pixel centres 0 and 1.
  np.testing.assert_allclose(affine_glimpse(image, [[0.5, -0.5]], (2,))[:, 0], [0.0, 1.0])
  # Mirror: the same pixels in reverse.
  np.testing.assert_allclose(affine_glimpse(image, [[-1.0, 0.0]], (4,))[:, 0], [3, 2, 1, 0])


# --- affine_write: the adjoint ---


def _adjoint_gap(n, theta, padding, order, align_corners, seed=0):
  rng = np.random.default_rng(seed)
  image = rng.normal(size=(*IMAGE[n], 2))
  g = rng.normal(size=(*GLIMPSE[n], 2))
  kwargs = dict(padding=padding, order=order, align_corners=align_corners)
  lhs = np.vdot(affine_glimpse(image, theta, GLIMPSE[n], **kwargs), g)
  rhs = np.vdot(image, affine_write(g, theta, IMAGE[n], **kwargs))
  return lhs, rhs


@pytest.mark.parametrize("n,padding,order,align_corners", ALL)
def test_write_is_the_adjoint_of_the_glimpse(n, padding, order, align_corners):
  lhs, rhs = _adjoint_gap(n, _theta(n, seed=n), padding, order, align_corners)
  assert abs(lhs) > 1e-3  # Not trivially zero.
  np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-12)


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(
    n=st.sampled_from((1, 2, 3)),
    padding=st.sampled_from(PADDINGS),
    order=st.sampled_from((0, 1, 3)),
    align_corners=st.booleans(),
    entries=st.lists(st.floats(-3, 3), min_size=12, max_size=12),
    seed=st.integers(0, 2**16),
)
def test_adjoint_property(n, padding, order, align_corners, entries, seed):
  theta = np.array(entries[: n * (n + 1)]).reshape(n, n + 1)
  lhs, rhs = _adjoint_gap(n, theta, padding, order, align_corners, seed)
  np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-10)


def test_write_by_hand():
  # Spreading two samples over the right half of a 4-pixel canvas.
  canvas = affine_write(np.array([[1.0], [2.0]]), [[0.5, 0.5]], (4,))
  np.testing.assert_allclose(canvas[:, 0], [0.0, 0.0, 1.0, 2.0])


# --- gradients ---


def _theta_away_from_kinks(n, align_corners, margin=0.02):
  """A theta none of whose samples lies within `margin` of a multiple of 1/2."""
  for seed in range(1000):
    theta = _theta(n, seed=seed)
    grid = reference.affine_grid_ref(theta, GLIMPSE[n], IMAGE[n], align_corners)
    if np.all(np.abs(2 * grid - np.round(2 * grid)) / 2 > margin):
      return theta
  raise AssertionError("no theta found")


@pytest.mark.parametrize(
    "n,padding,align_corners",
    [
        (1, "reflection", True),
        (2, "zeros", False),
        (2, "border", True),
        (2, "reflection", False),
        (3, "zeros", True),
    ],
)
def test_check_grads_in_theta_and_image(n, padding, align_corners):
  image = _image(n)
  theta = _theta_away_from_kinks(n, align_corners)
  # Jitted, the check compiles a few programs rather than many eager kernels.
  f = jax.jit(
      lambda x, th: affine_glimpse(x, th, GLIMPSE[n], padding=padding, align_corners=align_corners)
  )
  check_grads(f, (image, theta), order=1, modes=["fwd", "rev"], eps=1e-4)


@pytest.mark.parametrize("channels", (1, 6))
def test_check_grads_for_other_channel_counts(channels):
  # One channel and many take their own paths through the derivative.
  image = _image(2, channels=channels)
  theta = _theta_away_from_kinks(2, False)
  f = jax.jit(lambda x, th: affine_glimpse(x, th, GLIMPSE[2]))
  check_grads(f, (image, theta), order=1, modes=["fwd", "rev"], eps=1e-4)


def test_a_huge_image_needs_no_64_bit_indices():
  # 3e9 elements: the indices per axis still fit in int32, so the read must
  # trace without x64 (JAX's default), without a warning about int64.
  image = jax.ShapeDtypeStruct((3_000_000, 1000), jnp.float32)
  theta = jax.ShapeDtypeStruct((1, 2), jnp.float32)
  with warnings.catch_warnings(), enable_x64(False):
    warnings.simplefilter("error")
    out = jax.eval_shape(lambda x, th: affine_glimpse(x, th, (4,)), image, theta)
  assert out.shape == (4, 1000)


def test_an_image_without_channels_gives_an_empty_glimpse_and_gradients():
  image = np.zeros((2, *IMAGE[2], 0))
  theta = _theta(2, batch=(2,))
  f = lambda x, th: affine_glimpse(x, th, GLIMPSE[2])
  assert f(image, theta).shape == (2, *GLIMPSE[2], 0)
  grad_image, grad_theta = jax.grad(lambda x, th: jnp.sum(f(x, th)), argnums=(0, 1))(image, theta)
  assert grad_image.shape == image.shape and not np.any(grad_theta)


@pytest.mark.parametrize("channels", (1, 3, 6))
def test_gradients_of_a_broadcast_batch_equal_the_loop(channels):
  batch, k = 2, 3
  image = _image(2, batch=(batch, 1), channels=channels)
  theta = _theta(2, batch=(batch, k))
  cot = np.random.default_rng(1).normal(size=(batch, k, *GLIMPSE[2], channels))
  loss = lambda x, th, c: jnp.sum(affine_glimpse(x, th, GLIMPSE[2]) * c)
  grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
  grad_image, grad_theta = grad(image, theta, cot)
  expected_image = np.zeros_like(image)
  for b, j in itertools.product(range(batch), range(k)):
    one_image, one_theta = grad(image[b, 0], theta[b, j], cot[b, j])
    expected_image[b, 0] += one_image
    np.testing.assert_allclose(grad_theta[b, j], one_theta, atol=1e-10)
  np.testing.assert_allclose(grad_image, expected_image, atol=1e-10)


@pytest.mark.parametrize("padding", ("zeros", "reflection"))
def test_check_grads_of_write(padding):
  g = np.random.default_rng(3).normal(size=(*GLIMPSE[2], 2))
  theta = _theta_away_from_kinks(2, False)
  f = jax.jit(lambda x, th: affine_write(x, th, IMAGE[2], padding=padding))
  check_grads(f, (g, theta), order=1, modes=["fwd", "rev"], eps=1e-4)


@pytest.mark.parametrize("align_corners", (False, True))
def test_identity_translation_gradient_is_the_forward_difference(align_corners):
  # At integer positions the floor corner gives the forward difference; a ceil
  # corner (the dm-pix / TF bug) would give 0.
  image = np.array([1.0, 4.0, 2.0, 7.0, 5.0, 3.0])[:, None]
  size = len(image)
  jac = jax.jit(
      jax.jacobian(
          lambda th: affine_glimpse(image, th, (size,), align_corners=align_corners)[:, 0]
      )
  )(jnp.asarray(_identity(1)))
  pixels_per_unit = (size - 1) / 2 if align_corners else size / 2
  expected = np.diff(image[:, 0]) * pixels_per_unit
  np.testing.assert_allclose(jac[:-1, 0, 1], expected, rtol=0, atol=1e-12)
  assert np.all(jac[:-1, 0, 1] != 0)


# --- boxes ---


@pytest.mark.parametrize("n", (1, 2, 3))
@pytest.mark.parametrize("align_corners", (False, True))
@pytest.mark.parametrize("ones", (False, True))
def test_box_to_affine_places_samples_like_a_box(n, align_corners, ones):
  shape = GLIMPSE[n] if not ones else (1,) * n
  rng = np.random.default_rng(n)
  box = Box(rng.uniform(-1, 6, size=n), rng.uniform(0.5, 8, size=n))
  theta = box_to_affine(box, shape, IMAGE[n], align_corners=align_corners)
  grid = affine_grid(theta, shape, IMAGE[n], align_corners=align_corners)
  expected = np.zeros((*shape, n))
  for j in np.ndindex(*shape):
    for a in range(n):
      expected[(*j, a)] = box.center[a] + (j[a] - (shape[a] - 1) / 2) * box.size[a] / shape[a]
  np.testing.assert_allclose(grid, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", (1, 2, 3))
@pytest.mark.parametrize("align_corners", (False, True))
@pytest.mark.parametrize("shape_kind", ("glimpse", "ones"))
def test_box_round_trip(n, align_corners, shape_kind):
  shape = GLIMPSE[n] if shape_kind == "glimpse" else (1,) * n
  image_shape = IMAGE[n] if n > 1 else (1,)  # Includes a 1-pixel axis.
  rng = np.random.default_rng(n)
  center = rng.uniform(-2, 8, size=(3, n))
  size = rng.uniform(-6, 6, size=(3, n))
  theta = box_to_affine(Box(center, size), shape, image_shape, align_corners=align_corners)
  back = affine_to_box(theta, shape, image_shape, align_corners=align_corners)
  np.testing.assert_allclose(back.center, center, rtol=0, atol=1e-12)
  np.testing.assert_allclose(back.size, np.abs(size), rtol=0, atol=1e-12)
  # A shear-free theta with positive scales survives theta -> box -> theta.
  positive = box_to_affine(
      Box(center, np.abs(size)), shape, image_shape, align_corners=align_corners
  )
  again = box_to_affine(back, shape, image_shape, align_corners=align_corners)
  np.testing.assert_allclose(again, positive, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", (2, 3))
@pytest.mark.parametrize("align_corners", (False, True))
def test_affine_to_box_bounds_a_rotated_footprint(n, align_corners):
  shape, image_shape = GLIMPSE[n], IMAGE[n]
  theta = _theta(n, seed=7)
  # The footprint's corners: samples reach u = ±1 (False) or ±1 past the
  # outer samples by half a spacing (True), mapped to pixels by hand.
  extent = [1.0 if not align_corners or s == 1 else s / (s - 1) for s in shape]
  corners = []
  for signs in itertools.product((-1.0, 1.0), repeat=n):
    u = np.array(signs) * extent
    x = theta[:, :n] @ u + theta[:, n]
    if align_corners:
      corners.append((x + 1) / 2 * (np.array(image_shape) - 1))
    else:
      corners.append(((x + 1) * np.array(image_shape) - 1) / 2)
  corners = np.array(corners)
  box = affine_to_box(theta, shape, image_shape, align_corners=align_corners)
  lo, hi = corners.min(0), corners.max(0)
  np.testing.assert_allclose(box.center, (lo + hi) / 2, rtol=0, atol=1e-12)
  np.testing.assert_allclose(box.size, hi - lo, rtol=0, atol=1e-12)
  # Every sample lies inside the box.
  grid = np.asarray(affine_grid(theta, shape, image_shape, align_corners=align_corners))
  assert np.all(grid >= box.center - box.size / 2 - 1e-12)
  assert np.all(grid <= box.center + box.size / 2 + 1e-12)


# --- theta conversions ---


def test_theta_torch_conversions():
  theta = _theta(3, batch=(2,))
  torch_theta = theta_to_torch(theta)
  # Row i of the torch theta is axis n-1-i; its column k is axis n-1-k.
  for i, k in itertools.product(range(3), range(3)):
    np.testing.assert_array_equal(torch_theta[:, i, k], theta[:, 2 - i, 2 - k])
  np.testing.assert_array_equal(torch_theta[:, :, 3], theta[:, ::-1, 3])
  np.testing.assert_array_equal(theta_from_torch(torch_theta), theta)
  one_d = np.array([[0.5, 0.25]])
  np.testing.assert_array_equal(theta_to_torch(one_d), one_d)


def test_scale_shift_theta():
  scale = np.array([[[0.5, 2.0]], [[1.0, -1.0]]])  # (2, 1, 2)
  shift = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])  # (3, 2)
  theta = scale_shift_theta(scale, shift)
  assert theta.shape == (2, 3, 2, 3)
  for b, k in itertools.product(range(2), range(3)):
    expected = [[scale[b, 0, 0], 0, shift[k, 0]], [0, scale[b, 0, 1], shift[k, 1]]]
    np.testing.assert_array_equal(theta[b, k], expected)


# --- transformations, batching and dtypes ---


def test_jit_equals_eager():
  image, theta = _image(2), _theta(2, seed=2)  # Shapes the eager tests above compiled.
  g = np.random.default_rng(0).normal(size=(*GLIMPSE[2], 2))
  kwargs = dict(padding="reflection", align_corners=True)
  read = lambda x, th: affine_glimpse(x, th, GLIMPSE[2], **kwargs)
  write = lambda x, th: affine_write(x, th, IMAGE[2], **kwargs)
  for f, x in ((read, image), (write, g)):
    np.testing.assert_allclose(jax.jit(f)(x, theta), f(x, theta), rtol=0, atol=1e-12)


def test_broadcast_equals_loop_and_does_not_copy_the_image():
  batch, k = 2, 3
  image = _image(2, batch=(batch, 1), channels=1)
  theta = _theta(2, batch=(batch, k))
  glimpse = jax.jit(lambda x, th: affine_glimpse(x, th, GLIMPSE[2]))
  out = glimpse(image, theta)
  assert out.shape == (batch, k, *GLIMPSE[2], 1)
  for b, j in itertools.product(range(batch), range(k)):
    np.testing.assert_allclose(out[b, j], glimpse(image[b, 0], theta[b, j]), atol=1e-12)
  # No intermediate holds a copy of the image per theta.
  jaxpr = jax.make_jaxpr(lambda x, th: affine_glimpse(x, th, GLIMPSE[2]))(image, theta)
  shapes = set()

  def collect(jaxpr):
    for eqn in jaxpr.eqns:
      shapes.update(v.aval.shape for v in eqn.outvars)
      for param in eqn.params.values():
        inner = getattr(param, "jaxpr", param)
        if hasattr(inner, "eqns"):
          collect(inner)

  collect(jaxpr.jaxpr)
  assert (batch, k, *IMAGE[2], 1) not in shapes
  assert (batch, k, np.prod(IMAGE[2]), 1) not in shapes

  write = jax.jit(lambda g, th: affine_write(g, th, IMAGE[2]))
  canvases = write(out, theta[:, :1])  # Glimpses (B, K) with theta (B, 1).
  assert canvases.shape == (batch, k, *IMAGE[2], 1)
  for b, j in itertools.product(range(batch), range(k)):
    np.testing.assert_allclose(canvases[b, j], write(out[b, j], theta[b, 0]), atol=1e-12)


def test_no_retrace_for_the_same_shapes():
  traces = []

  @jax.jit
  def f(x, th):
    traces.append(None)
    return affine_glimpse(x, th, GLIMPSE[2])

  f(_image(2), _theta(2))
  f(_image(2, seed=1), _theta(2, seed=1))
  assert len(traces) == 1


@pytest.mark.parametrize(
    "dtype,tol",
    [(jnp.float16, 2e-2), (jnp.bfloat16, 1e-1), (jnp.float32, 1e-5), (jnp.float64, 1e-10)],
)
def test_dtypes(dtype, tol):
  rng = np.random.default_rng(0)
  image = rng.uniform(size=(*IMAGE[2], 2))
  g = rng.uniform(size=(*GLIMPSE[2], 2))
  theta = _theta(2).astype(np.float32)  # Exactly representable in both runs.
  read = jax.jit(lambda x, th: affine_glimpse(x, th, GLIMPSE[2]))
  write = jax.jit(lambda x, th: affine_write(x, th, IMAGE[2]))
  for f, x in ((read, image), (write, g)):
    expected = f(x, theta.astype(np.float64))
    out = f(jnp.asarray(x, dtype), theta)
    assert out.dtype == dtype
    np.testing.assert_allclose(np.asarray(out, np.float64), expected, rtol=0, atol=tol)


def test_degenerate_theta_gives_finite_outputs_and_gradients():
  dtype = np.float32  # The narrowest dtype the grid is computed in.
  image = _image(2).astype(dtype)
  thetas = np.array(
      [
          [[1e8, 0.0, 0.0], [0.0, 1e8, 0.0]],  # Huge zoom out.
          [[1.0, 1e8, 1e8], [-1e8, 1.0, 0.0]],  # Huge shear and shift.
          [[0.0, 0.0, 0.3], [0.0, 0.0, -0.2]],  # Singular: every sample at one point.
          [[0.0, 0.0, 1e6], [0.0, 0.0, -1e6]],  # Far outside.
          [[3e38, -3e38, 3e38], [-3e38, 3e38, 1.0]],  # Near float32's limit.
      ],
      dtype,
  )
  options = list(itertools.product(PADDINGS, (0, 1)))

  @jax.jit
  def run(x, th):
    results = []
    for padding, order in options:
      def loss(x, th):
        out = affine_glimpse(x, th, GLIMPSE[2], padding=padding, order=order)
        return jnp.sum(out**2), out

      (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(x, th)
      canvas = affine_write(out, th, IMAGE[2], padding=padding, order=order)
      results.append((out, grads, canvas))
    return results

  for (padding, order), leaves in zip(options, run(image, thetas)):
    for leaf in jax.tree.leaves(leaves):
      assert np.all(np.isfinite(leaf)), (padding, order)


# --- malformed input ---

_IMG = np.zeros((5, 6, 1))
_TH = np.zeros((2, 3))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda: affine_glimpse(_IMG, np.zeros((2, 2)), (3, 3)), ValueError, r"theta.*\(2, 2\)"),
        (lambda: affine_glimpse(_IMG, np.zeros((3,)), (3,)), ValueError, r"theta.*\(3,\)"),
        (lambda: affine_glimpse(np.zeros((2, 2, 2, 2, 1)), np.zeros((4, 5)), (2,) * 4),
         ValueError, r"theta of shape \(4, 5\)"),
        (lambda: affine_glimpse(_IMG, np.zeros((2, 3), np.float16), (3, 3)), TypeError, "theta must be float32 or wider"),
        (lambda: affine_glimpse(_IMG.astype(np.uint8), _TH, (3, 3)), TypeError, "image.*astype"),
        (lambda: affine_glimpse(np.zeros((5, 6)), _TH, (3, 3)), ValueError, r"image.*\(5, 6\)"),
        (lambda: affine_glimpse(_IMG, _TH, ()), ValueError, "shape"),
        (lambda: affine_glimpse(_IMG, _TH, (3, 0)), ValueError, "shape"),
        (lambda: affine_glimpse(_IMG, _TH, (3, 2.5)), TypeError, "shape"),
        (lambda: affine_glimpse(_IMG, _TH, 3), TypeError, "shape"),
        (lambda: affine_glimpse(_IMG, _TH, (3,)), ValueError, r"shape=\(3,\)"),
        (lambda: affine_glimpse(_IMG, _TH, (3, 3), padding="wrap"), ValueError, "padding"),
        (lambda: affine_glimpse(_IMG, _TH, (3, 3), order=2), ValueError, "order"),
        (lambda: affine_glimpse(np.zeros((2, 5, 6, 1)), np.zeros((3, 2, 3)), (3, 3)),
         ValueError, "batch shapes"),
        (lambda: affine_write(np.zeros((2, 3, 1)), _TH, (5, 6, 7)), ValueError, "image_shape"),
        (lambda: affine_write(np.zeros((2, 3, 1)), _TH, (5, -6)), ValueError, "image_shape"),
        (lambda: affine_write(np.zeros((2, 3, 1), np.int32), _TH, (5, 6)), TypeError, "glimpse"),
        (lambda: affine_write(np.zeros((2, 1)), _TH, (5, 6)), ValueError, "glimpse"),
        (lambda: affine_write(np.zeros((2, 3, 1)), _TH, (5, 6), padding="x"),
         ValueError, "padding"),
        (lambda: affine_grid(_TH, (3, 3), (5,)), ValueError, "image_shape"),
        (lambda: affine_grid(_TH, (3,), (5, 6)), ValueError, "shape"),
        (lambda: affine_grid(np.zeros((2, 4)), (3, 3), (5, 6)), ValueError, "theta"),
        (lambda: theta_to_torch(np.zeros((2, 2))), ValueError, "theta"),
        (lambda: theta_from_torch(np.zeros((2, 3), bool)), TypeError, "theta"),
        (lambda: scale_shift_theta(np.ones(2), np.ones(3)), ValueError, "shift"),
        (lambda: scale_shift_theta(np.ones(4), np.ones(4)), ValueError, "scale"),
        (lambda: scale_shift_theta(np.ones((2, 2)), np.ones((3, 2))), ValueError, "batch shapes"),
        (lambda: scale_shift_theta(np.ones(2, np.complex64), np.ones(2)), TypeError, "scale"),
        (lambda: box_to_affine(Box(np.ones(3), np.ones(3)), (3, 3), (5, 6)),
         ValueError, "box.center"),
        (lambda: box_to_affine(Box(np.ones(2), np.ones(2, np.float16)), (3, 3), (5, 6)),
         TypeError, "box.size"),
        (lambda: box_to_affine(Box(np.ones(2), np.ones(2)), (3, 3), (5,)),
         ValueError, "image_shape"),
        (lambda: affine_to_box(_TH, (3, 3, 3), (5, 6)), ValueError, "shape"),
        (lambda: affine_to_box(_TH, (3, 3), (5, 6, 1)), ValueError, "image_shape"),
    ],
)
def test_malformed_input_raises(call, error, match):
  with pytest.raises(error, match=match):
    call()


def test_errors_name_the_function():
  with pytest.raises(ValueError, match="^affine_glimpse: "):
    affine_glimpse(_IMG, _TH, (3, 3), padding="wrap")
  with pytest.raises(ValueError, match="^affine_write: "):
    affine_write(np.zeros((2, 3, 1)), _TH, (5,))
  with pytest.raises(ValueError, match="^box_to_affine: "):
    box_to_affine(Box(np.ones(3), np.ones(3)), (3, 3), (5, 6))
