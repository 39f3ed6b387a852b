"""Property tests: the promises every glimpse makes for any finite input.

For every read (Gaussian dense, windowed and banded, both paddings; affine,
every padding, order and align_corners; the box glimpses; 1-D to 3-D), hypothesis draws
parameters from the whole finite range (far off the image, tiny, zero and
negative widths and strides, huge transforms) and checks that

* the value and the gradient with respect to the parameters are finite, for
  float16, bfloat16, float32 and float64 images;
* the write is the exact adjoint of the read (float64);
* nothing inside computes a NaN that a mask then hides (`jax_debug_nans`).

The suite's profile (``conftest.py``) draws 12 examples per test, to fit
the suite's time; ``--hypothesis-profile=sweep`` draws 1,000 per test (about
20,000 cases in all with the compiled configurations), which CI runs apart
from the suite (see `.ci/run`). Shapes come from a small fixed set and values
are what hypothesis varies, so that each configuration compiles once.
"""

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxglimpse as jg


# (image spatial shape, glimpse shape) per number of axes.
SHAPES = {1: ((23,), (5,)), 2: ((9, 11), (3, 4)), 3: ((5, 6, 7), (2, 3, 2))}
GAUSSIAN_PATHS = {"dense": {}, "window": {"window": 5}, "taps": {"taps": 3}, "both": {"window": 6, "taps": 3}}
DTYPES = (jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64)

# Positions and sizes from the whole finite float32 range, weighted towards
# the cases that break naive code: exact integers and half-integers, zero,
# tiny and huge magnitudes, and both signs.
_special = st.sampled_from([0.0, 0.5, 1.0, -0.5, 1e-30, -1e-30, 1e-6, 1e6, -1e6, 1e30, -1e30, 3e38])
_number = st.one_of(_special, st.floats(-1e4, 1e4, width=32), st.floats(width=32, allow_nan=False, allow_infinity=False))


def _options(path, ndim):
  return {k: (v,) * ndim for k, v in GAUSSIAN_PATHS[path].items()}


@functools.cache
def _gaussian(ndim, padding, path, dtype):
  """The read's value and its gradient wrt the parameters, compiled once."""
  image_shape, shape = SHAPES[ndim]
  options = _options(path, ndim)

  def value(image, params):
    return jg.gaussian_glimpse(image, params, shape, padding=padding, **options)

  def loss(params, image):
    return jnp.sum(value(image, params).astype(jnp.float32) ** 2)

  return jax.jit(value), jax.jit(jax.grad(loss))


@functools.cache
def _affine(ndim, padding, order, align_corners):
  image_shape, shape = SHAPES[ndim]
  options = dict(padding=padding, order=order, align_corners=align_corners)

  def value(image, theta):
    return jg.affine_glimpse(image, theta, shape, **options)

  def loss(theta, image):
    return jnp.sum(value(image, theta).astype(jnp.float32) ** 2)

  return jax.jit(value), jax.jit(jax.grad(loss))


def _image(ndim, dtype, seed):
  image_shape, _ = SHAPES[ndim]
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.uniform(-1, 1, size=image_shape + (2,)), dtype)


def _finite(tree):
  return all(bool(jnp.all(jnp.isfinite(jnp.asarray(x, jnp.float64)))) for x in jax.tree.leaves(tree))


@hypothesis.given(
    ndim=st.sampled_from([1, 2, 3]),
    padding=st.sampled_from(["renormalize", "zeros"]),
    path=st.sampled_from(sorted(GAUSSIAN_PATHS)),
    dtype=st.sampled_from(DTYPES),
    values=st.lists(_number, min_size=9, max_size=9),
)
def test_gaussian_read_is_finite_in_value_and_gradient(ndim, padding, path, dtype, values):
  mu, sigma, delta = (jnp.asarray(values[3 * k : 3 * k + ndim], jnp.float32) for k in range(3))
  params = jg.GaussianParams(mu, sigma, delta)
  image = _image(ndim, dtype, seed=ndim)
  value, grad = _gaussian(ndim, padding, path, dtype)
  assert _finite(value(image, params))
  assert _finite(grad(params, image))


@hypothesis.given(
    ndim=st.sampled_from([1, 2, 3]),
    padding=st.sampled_from(["zeros", "border", "reflection"]),
    order=st.sampled_from([0, 1]),
    align_corners=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    values=st.lists(_number, min_size=12, max_size=12),
)
def test_affine_read_is_finite_in_value_and_gradient(ndim, padding, order, align_corners, dtype, values):
  theta = jnp.asarray(values[: ndim * (ndim + 1)], jnp.float32).reshape(ndim, ndim + 1)
  image = _image(ndim, dtype, seed=ndim)
  value, grad = _affine(ndim, padding, order, align_corners)
  assert _finite(value(image, theta))
  assert _finite(grad(theta, image))


@functools.cache
def _box_read(ndim, kind):
  """A box glimpse (roi_align fixed and adaptive, crop_and_resize, retina
  both methods) and its gradient wrt the boxes, compiled once."""
  _, shape = SHAPES[ndim]
  reads = {
      "roi_align": lambda x, b: jg.roi_align(x, b, shape),
      "roi_align_adaptive": lambda x, b: jg.roi_align(x, b, shape, sampling_ratio=0, aligned=False),
      "crop_and_resize": lambda x, b: jg.crop_and_resize(x, b, shape),
      "crop_and_resize_nearest": lambda x, b: jg.crop_and_resize(x, b, shape, method="nearest"),
      "retina_gaussian": lambda x, b: jg.retina(x, b, shape, scales=2),
      "retina_affine": lambda x, b: jg.retina(x, b, shape, scales=2, method="affine"),
  }
  value = reads[kind]
  loss = lambda b, x: jnp.sum(value(x, b).astype(jnp.float32) ** 2)
  return jax.jit(value), jax.jit(jax.grad(loss))


BOX_READS = ("roi_align", "roi_align_adaptive", "crop_and_resize", "crop_and_resize_nearest",
             "retina_gaussian", "retina_affine")


@hypothesis.given(
    ndim=st.sampled_from([1, 2, 3]),
    kind=st.sampled_from(BOX_READS),
    dtype=st.sampled_from(DTYPES),
    values=st.lists(_number, min_size=6, max_size=6),
)
def test_box_reads_are_finite_in_value_and_gradient(ndim, kind, dtype, values):
  boxes = jnp.asarray(values[: 2 * ndim], jnp.float32)
  image = _image(ndim, dtype, seed=ndim)
  value, grad = _box_read(ndim, kind)
  assert _finite(value(image, boxes))
  assert _finite(grad(boxes, image))


_moderate = st.floats(-30, 30)


@functools.cache
def _read_and_write(ndim, kind, option):
  """A read and its write with the same options, compiled once."""
  image_shape, shape = SHAPES[ndim]
  if kind == "gaussian":
    options = dict(padding=("renormalize", "zeros")[option % 2], **_options(sorted(GAUSSIAN_PATHS)[option % 4], ndim))
    read = lambda x, p: jg.gaussian_glimpse(x, p, shape, **options)
    write = lambda g, p: jg.gaussian_write(g, p, image_shape, **options)
  else:
    options = dict(
        padding=("zeros", "border", "reflection")[option % 3], order=option % 2,
        align_corners=option >= 6,
    )
    read = lambda x, t: jg.affine_glimpse(x, t, shape, **options)
    write = lambda g, t: jg.affine_write(g, t, image_shape, **options)
  return jax.jit(read), jax.jit(write)


@hypothesis.given(
    ndim=st.sampled_from([1, 2, 3]),
    kind=st.sampled_from(["gaussian", "affine"]),
    option=st.integers(0, 11),
    values=st.lists(_moderate, min_size=12, max_size=12),
    seed=st.integers(0, 2**16),
)
def test_writes_are_exact_adjoints_of_reads(ndim, kind, option, values, seed):
  image_shape, shape = SHAPES[ndim]
  rng = np.random.default_rng(seed)
  x = rng.normal(size=image_shape + (2,))
  g = rng.normal(size=shape + (2,))
  v = np.asarray(values)
  if kind == "gaussian":
    params = jg.GaussianParams(
        jnp.asarray(v[:ndim] + 3), jnp.asarray(np.abs(v[3 : 3 + ndim]) / 10 + 0.05),
        jnp.asarray(v[6 : 6 + ndim] / 10),
    )
  else:
    params = jnp.asarray(v[: ndim * (ndim + 1)]).reshape(ndim, ndim + 1) / 10
  read, write = _read_and_write(ndim, kind, option)
  lhs = float(np.sum(np.asarray(read(x, params)) * g))
  rhs = float(np.sum(x * np.asarray(write(g, params))))
  assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("ndim", [1, 2])
def test_no_nan_is_computed_and_masked(ndim):
  # Off the image, at the clamps and at degenerate strides every branch that
  # a `where` discards must still be finite: jax_debug_nans stops at the
  # first NaN any primitive produces, masked or not.
  image_shape, shape = SHAPES[ndim]
  image = _image(ndim, jnp.float32, seed=0)
  cases = [(-1e30, 1e-30, 0.0), (1e6, 1e6, -1e6), (0.5, 0.0, 1e-30), (3e38, -3e38, 3e38)]
  with jax.debug_nans(True):
    for padding in ("renormalize", "zeros"):
      for path in ("dense", "both"):
        value, grad = _gaussian(ndim, padding, path, jnp.float32)
        for mu, sigma, delta in cases:
          p = jg.GaussianParams(*(jnp.full((ndim,), v, jnp.float32) for v in (mu, sigma, delta)))
          jax.block_until_ready((value(image, p), grad(p, image)))
    for padding in ("zeros", "border", "reflection"):
      value, grad = _affine(ndim, padding, 1, False)
      for scale in (0.0, 1e-30, 1e30, -3e38):
        theta = jnp.concatenate(
            [scale * jnp.eye(ndim, dtype=jnp.float32), jnp.full((ndim, 1), scale, jnp.float32)], 1
        )
        jax.block_until_ready((value(image, theta), grad(theta, image)))
    for kind in BOX_READS if ndim == 2 else ():  # One n: the clamps are per axis.
      value, grad = _box_read(ndim, kind)
      for lo, hi in ((-1e30, 1e30), (3e38, -3e38), (0.5, 0.5), (1e-30, 0.0)):
        boxes = jnp.asarray([lo] * ndim + [hi] * ndim, jnp.float32)
        jax.block_until_ready((value(image, boxes), grad(boxes, image)))
