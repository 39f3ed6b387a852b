"""The multi-scale retina: equal to its scales read one at a time."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxglimpse as jg

_retina = jax.jit(jg.retina, static_argnames=("shape", "scales", "ratio", "method", "padding"))

IMAGE = {1: (20,), 2: (16, 18), 3: (8, 9, 10)}
SHAPE = {1: (4,), 2: (3, 4), 3: (2, 3, 2)}


def _scaled(box, n, factor):
  center = (box[..., :n] + box[..., n:]) / 2
  return jg.Box(center, (box[..., n:] - box[..., :n]) * factor)


def _one_at_a_time(image, box, shape, scales, ratio, method, padding):
  n = len(shape)
  outs = []
  for k in range(scales):
    b = _scaled(box, n, ratio**k)
    if method == "gaussian":
      outs.append(jg.gaussian_glimpse(image, jg.box_to_gaussian(b, shape), shape, padding=padding))
    else:
      theta = jg.box_to_affine(b, shape, image.shape[-(n + 1) : -1])
      s = max(1, math.ceil(ratio**k - 1e-9))
      outs.append(jg.affine_glimpse(image, theta, shape, padding=padding, supersample=s))
  return jnp.stack(outs, axis=-(n + 2))


# One compilation costs less than eager mode's many small dispatches.
_one_at_a_time = jax.jit(_one_at_a_time, static_argnums=(2, 3, 4, 5, 6))


@pytest.mark.parametrize(
    "n,method,padding,scales,ratio",
    [
        (1, "gaussian", "renormalize", 2, 3.0),
        (2, "gaussian", "zeros", 3, 2.0),
        (3, "gaussian", "zeros", 2, 1.5),
        (1, "affine", "border", 3, 2.0),
        (2, "affine", "zeros", 3, 2.0),
        (2, "affine", "reflection", 2, 2.5),
        (3, "affine", "zeros", 2, 1.5),
    ],
)
def test_equals_the_scales_read_one_at_a_time(n, method, padding, scales, ratio):
  rng = np.random.default_rng(n)
  image = rng.normal(size=(2, *IMAGE[n], 2))
  size = np.asarray(IMAGE[n], float)
  lo = rng.uniform(0, size / 2, size=(2, 3, n))
  box = np.concatenate([lo, lo + rng.uniform(-2, size / 3, size=(2, 3, n))], -1)  # Some flipped.
  image = image[:, None]  # (2, 1, *spatial, C) with boxes (2, 3): 3 per image, not copied.
  out = _retina(image, box, SHAPE[n], scales=scales, ratio=ratio, method=method, padding=padding)
  assert out.shape == (2, 3, scales, *SHAPE[n], 2)
  expected = _one_at_a_time(image, box, SHAPE[n], scales, ratio, method, padding)
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_one_scale_is_the_plain_glimpse_and_defaults():
  image = np.random.default_rng(0).normal(size=(12, 12, 1))
  box = np.array([2.5, 3.0, 8.5, 10.0])
  out = _retina(image, box, (4, 4), scales=1)
  params = jg.box_to_gaussian(_scaled(box, 2, 1.0), (4, 4))
  glimpse = jax.jit(lambda x, p: jg.gaussian_glimpse(x, p, (4, 4), padding="zeros"))
  np.testing.assert_allclose(out[0], glimpse(image, params), atol=1e-12)
  assert jax.eval_shape(lambda x, b: jg.retina(x, b, (4, 4)), image, box).shape == (3, 4, 4, 1)


@pytest.mark.parametrize("method", ["gaussian", "affine"])
def test_box_gradients_check_and_stay_finite(method):
  rng = np.random.default_rng(1)
  image = rng.normal(size=(10, 11, 2))
  read = jax.jit(lambda x, b: jg.retina(x, b, (3, 3), scales=2, method=method))
  check_grads(read, (image, np.array([2.3, 3.1, 6.7, 7.9])), order=1, modes=("rev",), eps=1e-6)
  boxes = jnp.asarray([[4.0, 4.0, 4.0, 4.0], [8.0, 9.0, 1.0, 2.0], [-1e30, -1e30, 1e30, 1e30],
                       [1e30, 2.0, 1e30, 3.0]])
  grad = jax.jit(jax.grad(lambda b: jnp.sum(jg.retina(image, b, (3, 3), method=method) ** 2)))(boxes)
  assert bool(jnp.all(jnp.isfinite(grad)))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_images(dtype):
  image = np.random.default_rng(2).uniform(size=(16, 16, 3)).astype(np.float32)
  box = np.array([4.0, 4.0, 9.0, 11.0], np.float32)
  for method in ("gaussian", "affine"):
    full = _retina(image, box, (4, 4), method=method)
    half = _retina(jnp.asarray(image, dtype), box, (4, 4), method=method)
    assert half.dtype == dtype
    np.testing.assert_allclose(np.asarray(half, np.float32), full, atol=2e-2)


def test_malformed_arguments_name_the_argument():
  image = np.zeros((8, 8, 1))
  box = np.array([0.0, 0.0, 4.0, 4.0])
  with pytest.raises(ValueError, match=r"box must have shape \(\*batch, 4\)"):
    jg.retina(image, box[:2], (2, 2))
  with pytest.raises(TypeError, match="scales must be a Python int"):
    jg.retina(image, box, (2, 2), scales=2.0)
  with pytest.raises(ValueError, match="scales must be at least 1"):
    jg.retina(image, box, (2, 2), scales=0)
  with pytest.raises(ValueError, match="ratio must be a positive number"):
    jg.retina(image, box, (2, 2), ratio=-2.0)
  with pytest.raises(ValueError, match="method must be one of 'gaussian', 'affine'"):
    jg.retina(image, box, (2, 2), method="bilinear")
  with pytest.raises(ValueError, match=r"padding \(method='affine'\) must be one of .*got 'renormalize'"):
    jg.retina(image, box, (2, 2), method="affine", padding="renormalize")
  with pytest.raises(ValueError, match="batch shapes do not broadcast"):
    jg.retina(np.zeros((2, 8, 8, 1)), np.zeros((3, 4)), (2, 2))


def test_no_retrace_for_new_boxes():
  traces = []

  @jax.jit
  def f(x, b):
    traces.append(None)
    return jg.retina(x, b, (2, 2)), jg.retina(x, b, (2, 2), method="affine")

  f(np.zeros((8, 8, 1)), np.array([0.0, 0.0, 4.0, 4.0]))
  f(np.ones((8, 8, 1)), np.array([1.0, 2.0, 7.0, 3.0]))
  assert len(traces) == 1
