"""Supersampled (antialiased) affine glimpses and writes: `supersample=`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxglimpse.affine import affine_glimpse, affine_write
from tests import reference

IMAGE = {1: (7,), 2: (5, 6), 3: (3, 4, 5)}
GLIMPSE = {1: (3,), 2: (2, 3), 3: (2, 1, 2)}
FACTORS = {1: (3,), 2: (2, 3), 3: (2, 2, 1)}
# One compilation per case costs less CPU than eager mode's many small ones.
_OPTIONS = ("order", "padding", "align_corners", "supersample")
_glimpse = jax.jit(affine_glimpse, static_argnames=("shape", *_OPTIONS))
_write = jax.jit(affine_write, static_argnames=("image_shape", *_OPTIONS))


def _problem(n, seed=0, batch=()):
  rng = np.random.default_rng(seed)
  image = rng.normal(size=(*batch, *IMAGE[n], 2))
  linear = rng.normal(scale=0.7, size=(*batch, n, n))
  theta = np.concatenate([linear, rng.uniform(-0.5, 0.5, size=(*batch, n, 1))], axis=-1)
  return image, theta


def _ref(image, theta, shape, supersample, order, padding, align_corners):
  u = reference.glimpse_units_ref(shape, align_corners, supersample)
  x = u @ theta[:, :-1].T + theta[:, -1]
  pixels = reference.to_pixels_ref(x, image.shape[:-1], align_corners)
  return reference.warp_read_ref(image, pixels, order, padding, align_corners)


@pytest.mark.parametrize(
    "n,order,padding,align_corners",
    [
        (1, 1, "zeros", False),
        (1, 3, "reflection", True),
        (2, 1, "border", True),
        (2, 3, "zeros", False),
        (3, 1, "reflection", False),
    ],
)
def test_matches_the_mean_of_reads_at_the_sub_samples(n, order, padding, align_corners):
  image, theta = _problem(n, seed=n)
  kwargs = dict(order=order, padding=padding, align_corners=align_corners)
  out = _glimpse(image, theta, GLIMPSE[n], supersample=FACTORS[n], **kwargs)
  expected = _ref(image, theta, GLIMPSE[n], FACTORS[n], **kwargs)
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)
  # An int means the same factor on every axis.
  out = _glimpse(image, theta, GLIMPSE[n], supersample=2, **kwargs)
  expected = _ref(image, theta, GLIMPSE[n], (2,) * n, **kwargs)
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)


def test_one_sub_sample_per_cell_is_the_plain_read():
  image, theta = _problem(2)
  plain = affine_glimpse(image, theta, (2, 3))
  np.testing.assert_array_equal(affine_glimpse(image, theta, (2, 3), supersample=1), plain)
  np.testing.assert_array_equal(affine_glimpse(image, theta, (2, 3), supersample=(1, 1)), plain)


@pytest.mark.parametrize("align_corners", (False, True))
def test_an_integer_zoom_out_is_the_box_average(align_corners):
  # Halving an 8 x 6 image with 2 x 2 sub-samples puts them on the pixel
  # centres (align_corners=False): each sample is the mean of its 2 x 2 block.
  image = np.random.default_rng(0).normal(size=(8, 6, 1))
  theta = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
  out = _glimpse(image, theta, (4, 3), supersample=2, align_corners=align_corners)
  blocks = image.reshape(4, 2, 3, 2, 1).mean(axis=(1, 3))
  if align_corners:  # Cells overlap the image's edges: not the box average.
    assert not np.allclose(out, blocks, atol=1e-3)
  else:
    np.testing.assert_allclose(out, blocks, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n,order,padding", [(1, 3, "border"), (2, 1, "zeros"), (3, 1, "reflection")])
def test_write_is_the_adjoint_of_the_glimpse(n, order, padding):
  image, theta = _problem(n, seed=5 + n, batch=(2,))
  g = np.random.default_rng(9).normal(size=(2, *GLIMPSE[n], 2))
  kwargs = dict(order=order, padding=padding, supersample=FACTORS[n])
  lhs = np.vdot(_glimpse(image, theta, GLIMPSE[n], **kwargs), g)
  rhs = np.vdot(image, _write(g, theta, IMAGE[n], **kwargs))
  assert abs(lhs) > 1e-3
  np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-12)


def test_check_grads_in_theta_and_image():
  image, theta = _problem(2, seed=3)
  read = lambda x, th: affine_glimpse(x, th, (2, 3), supersample=(2, 3), order=3)
  check_grads(read, (image, theta), order=1, modes=["rev"], eps=1e-5)


def test_jit_broadcast_and_dtypes():
  image, theta = _problem(2, seed=6, batch=(3, 1))
  theta = np.broadcast_to(theta, (3, 2, 2, 3)) * np.array([1.0, 0.5])[:, None, None]
  f = jax.jit(lambda x, th: affine_glimpse(x, th, (2, 3), supersample=2))
  out = f(image, theta)
  assert out.shape == (3, 2, 2, 3, 2)
  for b in range(3):
    for k in range(2):
      np.testing.assert_allclose(
          out[b, k], f(image[b, 0], theta[b, k]), atol=1e-12
      )
  for dtype, tol in ((jnp.float16, 2e-2), (jnp.bfloat16, 1e-1), (jnp.float32, 1e-5)):
    low = f(jnp.asarray(image, dtype), jnp.asarray(theta, jnp.float32))
    assert low.dtype == dtype
    np.testing.assert_allclose(np.asarray(low, np.float64), out, rtol=0, atol=tol)


@pytest.mark.parametrize(
    "supersample,error", [(0, ValueError), ((2,), ValueError), ((2, -1), ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_malformed_supersample_raises(supersample, error):
  image, theta = _problem(2)
  with pytest.raises(error, match="affine_glimpse: supersample"):
    affine_glimpse(image, theta, (2, 3), supersample=supersample)
  with pytest.raises(error, match="affine_write: supersample"):
    affine_write(np.zeros((2, 3, 1)), theta, (5, 6), supersample=supersample)
