"""Tests of jaxglimpse.sampler.sample."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxglimpse.sampler import sample
from tests import reference

PADDINGS = ("zeros", "border", "reflection")
SPATIAL = {1: (5,), 2: (4, 5), 3: (3, 4, 2)}

# One-off tests call the jitted sampler: one compilation costs less CPU than
# eager mode's many per-primitive ones. Parametrised tests that repeat the same
# shapes run eagerly, where those per-primitive compilations are reused.
_sample = jax.jit(sample, static_argnames=("order", "padding", "align_corners"))


def _image(n, seed=0, channels=2):
  return np.random.default_rng(seed).normal(size=(*SPATIAL[n], channels))


def _coords(n, seed=1, count=24):
  """Points inside, near and well outside the image, plus some integers."""
  rng = np.random.default_rng(seed)
  size = np.array(SPATIAL[n], dtype=float)
  points = rng.uniform(-1.5 * size - 2, 2.5 * size + 2, size=(count, n))
  integers = rng.integers(-3, size.astype(int) + 3, size=(6, n)).astype(float)
  return np.concatenate([points, integers]).reshape(5, -1, n)


def _away_from_kinks(n, seed, margin=0.05):
  """Points at least `margin` from every multiple of 1/2, where the sampler has kinks.

  They have the shape of `_coords`, so that eager tests reuse compiled kernels.
  """
  rng = np.random.default_rng(seed)
  size = np.array(SPATIAL[n], dtype=float)
  points = rng.uniform(-1.5, size + 0.5, size=(400, n))
  frac = np.abs(points * 2 - np.round(points * 2)) / 2
  points = points[np.all(frac > margin, axis=1)][:30]
  assert len(points) == 30
  return points.reshape(5, 6, n)


@pytest.mark.parametrize(
    "n,padding,order,align_corners",
    list(itertools.product((1, 2, 3), PADDINGS, (0, 1, 3), (False, True))),
)
def test_matches_numpy_loop_reference(n, padding, order, align_corners):
  image, coords = _image(n), _coords(n, seed=n)
  out = sample(image, coords, order=order, padding=padding, align_corners=align_corners)
  expected = reference.sample_ref(image, coords, order, padding, align_corners)
  assert out.shape == (*coords.shape[:-1], image.shape[-1])
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)


def test_integer_coordinates_read_pixels_exactly():
  image = _image(2)
  coords = np.stack(np.meshgrid(np.arange(4.0), np.arange(5.0), indexing="ij"), -1)
  for order in (0, 1, 3):
    np.testing.assert_array_equal(_sample(image, coords, order=order), image)


def test_cubic_weights_by_hand_and_padding_of_taps():
  # Halfway, PyTorch's A = -3/4 gives the taps -3/32, 19/32, 19/32, -3/32.
  image = np.array([1.0, 2.0, 4.0, 8.0, 16.0])[:, None]
  out = _sample(image, np.array([[1.5], [2.0]]), order=3)[:, 0]
  np.testing.assert_allclose(out, [(-3 * 1 + 19 * 2 + 19 * 4 - 3 * 8) / 32, 4.0], atol=1e-12)
  # Taps -1 and -2 of x = 0.5 mirror to 0 and 1 about -1/2, so the read is
  # that of the image [1, 0, 0, 1, 2, ...] at 2.5; with border they clip to 0.
  image = np.arange(4.0)[:, None]
  w = reference._keys(1.5), reference._keys(0.5), reference._keys(0.5), reference._keys(1.5)
  out = _sample(image, np.array([[-0.5]]), order=3, padding="reflection")[0, 0]
  np.testing.assert_allclose(out, w[0] * 1 + w[1] * 0 + w[2] * 0 + w[3] * 1, atol=1e-12)
  out = _sample(image, np.array([[-0.5]]), order=3, padding="border")[0, 0]
  np.testing.assert_allclose(out, w[3] * 1, atol=1e-12)


def test_nearest_rounds_half_to_even():
  image = np.arange(5.0)[:, None]
  out = _sample(image, np.array([[0.5], [1.5], [2.5], [2.51]]), order=0)
  assert out[:, 0].tolist() == [0.0, 2.0, 2.0, 3.0]


@pytest.mark.parametrize(
    "padding,align_corners,expected",
    [
        ("zeros", False, [0.0, 0.0, 0.0, 3.0, 0.0, 0.0]),
        ("border", False, [0.0, 0.0, 0.0, 3.0, 3.0, 3.0]),
        # Mirrored about -1/2 and 3.5: -1 reads 0, -2 reads 1, 4 reads 3, 5 reads 2.
        ("reflection", False, [1.0, 0.0, 0.0, 3.0, 3.0, 2.0]),
        # Mirrored about 0 and 3: -1 reads 1, -2 reads 2, 4 reads 2, 5 reads 1.
        ("reflection", True, [2.0, 1.0, 0.0, 3.0, 2.0, 1.0]),
    ],
)
def test_padding_modes_by_hand(padding, align_corners, expected):
  image = np.arange(4.0)[:, None]
  coords = np.array([-2.0, -1.0, 0.0, 3.0, 4.0, 5.0])[:, None]
  out = _sample(image, coords, padding=padding, align_corners=align_corners)
  assert out[:, 0].tolist() == expected


# align_corners only changes "reflection" in `sample`; the values of every
# combination are checked against the reference above.
@pytest.mark.parametrize(
    "n,padding,align_corners",
    [
        (1, "zeros", False),
        (1, "reflection", True),
        (2, "border", False),
        (2, "reflection", False),
        (3, "zeros", False),
        (3, "reflection", True),
    ],
)
def test_check_grads_away_from_kinks(n, padding, align_corners):
  image = _image(n)
  coords = _away_from_kinks(n, seed=10 + n)
  f = lambda x, c: sample(x, c, padding=padding, align_corners=align_corners)
  check_grads(f, (image, coords), order=1, modes=["fwd", "rev"], eps=1e-4)


@pytest.mark.parametrize(
    "n,padding,align_corners",
    [(1, "reflection", False), (2, "zeros", False), (3, "border", True)],
)
def test_check_grads_cubic(n, padding, align_corners):
  # Keys' kernel is continuously differentiable, kinks of the padding
  # included, since the padding moves tap indices, not the coordinate.
  image = _image(n, channels=1 if n == 3 else 2)
  coords = _away_from_kinks(n, seed=20 + n)
  f = lambda x, c: sample(x, c, order=3, padding=padding, align_corners=align_corners)
  check_grads(f, (image, coords), order=1, modes=["fwd", "rev"], eps=1e-4)


@pytest.mark.parametrize("padding", ("zeros", "border", "reflection"))
def test_gradient_at_integers_is_the_forward_difference(padding):
  # With the ceil corner, an identity read would have zero coordinate gradient.
  image = np.array([1.0, 4.0, 2.0, 7.0, 5.0])[:, None]
  coords = np.arange(5.0)[:, None]
  jac = jax.jit(jax.jacobian(lambda c: _sample(image, c, padding=padding)[:, 0]))(coords)
  slopes = np.diagonal(jac[:, :, 0])
  forward = np.diff(image[:, 0])
  first = 0 if padding == "zeros" else 1  # border and reflection clip at 0.
  np.testing.assert_allclose(slopes[first:-1], forward[first:], rtol=0, atol=1e-12)
  assert np.all(slopes[first:-1] != 0)
  if padding == "zeros":
    assert slopes[-1] == -image[-1, 0]  # Pixel 5 reads as 0.
  else:
    assert slopes[0] == 0 and slopes[-1] == 0  # PyTorch: the borders are clipped.


def test_gradient_at_integers_in_2d():
  image = _image(2, channels=1)
  y, x = 1.0, 2.0
  grad = jax.jit(jax.grad(lambda c: _sample(image, c)[0]))(jnp.array([y, x]))
  np.testing.assert_allclose(grad[0], image[2, 2, 0] - image[1, 2, 0], atol=1e-12)
  np.testing.assert_allclose(grad[1], image[1, 3, 0] - image[1, 2, 0], atol=1e-12)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("order", (0, 1, 3))
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_far_away_coordinates_are_finite(padding, order, dtype):
  image = _image(2).astype(dtype)
  coords = np.array(
      [[1e6, 1.0], [-1e6, 2.0], [1e6, -1e6], [1.5, 1e30], [-1e30, 0.5], [1.0, 1.0]] * 5,
      dtype,
  ).reshape(5, 6, 2)
  f = lambda x, c: jnp.sum(sample(x, c, order=order, padding=padding) ** 2)
  out = sample(image, coords, order=order, padding=padding)
  grads = jax.grad(f, argnums=(0, 1))(image, coords)
  assert np.all(np.isfinite(out))
  assert all(np.all(np.isfinite(g)) for g in grads)
  far = np.any(np.abs(coords) >= 1e6, axis=-1)
  if padding == "zeros":
    np.testing.assert_array_equal(out[far], 0)
  if padding == "border":
    np.testing.assert_allclose(out[0, 0], image[3, 1], rtol=1e-6)  # Clipped to (3, 1).


@pytest.mark.parametrize("order", (1, 3))
def test_infinite_coordinates_with_zero_padding_read_zero(order):
  image = _image(1)
  coords = np.array([[np.inf], [-np.inf]])
  out, grad = jax.jit(jax.value_and_grad(lambda c: _sample(image, c, order=order).sum()))(coords)
  assert out == 0 and np.all(grad == 0)


@pytest.mark.parametrize("padding", ("border", "reflection"))
def test_cubic_infinite_coordinates_are_finite(padding):
  image = _image(1)
  coords = np.array([[np.inf], [-np.inf], [1e300]])
  f = lambda c: _sample(image, c, order=3, padding=padding).sum()
  out, grad = jax.jit(jax.value_and_grad(f))(coords)
  assert np.isfinite(out) and np.all(np.isfinite(grad))


@pytest.mark.parametrize(
    "dtype,tol",
    [(jnp.float16, 2e-2), (jnp.bfloat16, 1e-1), (jnp.float32, 1e-5), (jnp.float64, 1e-10)],
)
def test_dtypes(dtype, tol):
  image = np.random.default_rng(0).uniform(size=(4, 5, 2))
  coords = _coords(2).astype(np.float32).astype(np.float64)  # The same points in each.
  for order in (1, 3):
    expected = _sample(image, coords, order=order)
    out = _sample(jnp.asarray(image, dtype), jnp.asarray(coords, jnp.float32), order=order)
    assert out.dtype == dtype
    np.testing.assert_allclose(np.asarray(out, np.float64), expected, rtol=0, atol=tol)


@pytest.mark.parametrize("order", (1, 3))
def test_jit_equals_eager(order):
  image, coords = _image(3), _coords(3)
  f = lambda x, c: sample(x, c, padding="reflection", align_corners=True, order=order)
  np.testing.assert_allclose(jax.jit(f)(image, coords), f(image, coords), atol=1e-12)


def test_vmap_equals_loop():
  images = np.stack([_image(2, seed=s) for s in range(3)])
  coords = np.stack([_coords(2, seed=s) for s in range(3)])
  out = jax.jit(jax.vmap(sample))(images, coords)
  for b in range(3):
    np.testing.assert_allclose(out[b], _sample(images[b], coords[b]), atol=1e-12)


def test_no_retrace_for_the_same_shapes():
  traces = []

  @jax.jit
  def f(x, c):
    traces.append(None)
    return sample(x, c)

  f(_image(2), _coords(2))
  f(_image(2, seed=5), _coords(2, seed=6))
  assert len(traces) == 1


@pytest.mark.parametrize(
    "image,coords,kwargs,error,match",
    [
        (np.zeros((4, 5, 1)), np.zeros((3, 2), bool), {}, TypeError, "coords"),
        (np.zeros((4, 5, 1)), np.zeros((3, 2), np.float16), {}, TypeError, "coords must be float32"),
        (np.zeros((0, 5, 1)), np.zeros((3, 2)), {}, ValueError, r"image of shape \(0, 5, 1\) has an empty"),
        (np.zeros((4, 5, 1), np.uint8), np.zeros((3, 2)), {}, TypeError, "image.*astype"),
        (np.zeros((4, 5, 1)), np.zeros((3, 4)), {}, ValueError, r"coords of shape \(3, 4\)"),
        (np.zeros((4, 5, 1)), np.zeros(()), {}, ValueError, "coords"),
        (np.zeros((4, 5)), np.zeros((3, 2)), {}, ValueError, r"image.*\(4, 5\)"),
        (np.zeros((2, 4, 5, 1)), np.zeros((3, 2)), {}, ValueError, r"image.*\(2, 4, 5, 1\)"),
        (np.zeros((4, 5, 1)), np.zeros((3, 2)), {"order": 2}, ValueError, "order"),
        (np.zeros((4, 5, 1)), np.zeros((3, 2)), {"padding": "wrap"}, ValueError, "padding"),
    ],
)
def test_malformed_input_raises(image, coords, kwargs, error, match):
  with pytest.raises(error, match="sample: .*" + match):
    sample(image, coords, **kwargs)
