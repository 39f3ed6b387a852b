"""Tests of the hard crop, jaxglimpse.crop."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxglimpse import crop

SPATIAL = {1: (7,), 2: (5, 6), 3: (3, 4, 5)}
WINDOW = {1: (3,), 2: (2, 4), 3: (2, 2, 3)}


def _image(n, batch=()):
  size = np.prod((*batch, *SPATIAL[n], 2))
  return np.arange(size, dtype=np.float64).reshape(*batch, *SPATIAL[n], 2)


def _numpy_crop(image, start, shape):
  """Slicing, after moving the window inside the image by hand."""
  index = []
  for s, w, size in zip(start, shape, image.shape[:-1]):
    s = min(max(int(s), 0), size - w)
    index.append(slice(s, s + w))
  return image[tuple(index)]


_crop = jax.jit(crop, static_argnames="shape")


@pytest.mark.parametrize("n", (1, 2, 3))
def test_equals_numpy_slicing_for_every_start(n):
  image, shape = _image(n), WINDOW[n]
  ranges = [range(-2, size - w + 3) for size, w in zip(SPATIAL[n], shape)]
  starts = np.array(list(itertools.product(*ranges)), np.int32)
  out = np.asarray(_crop(image, starts[:, None, :], shape)[:, 0])  # Batched over starts.
  for start, got in zip(starts, out):
    np.testing.assert_array_equal(got, _numpy_crop(image, start, shape))


def test_negative_and_too_large_starts_are_clamped():
  image = _image(2)
  np.testing.assert_array_equal(crop(image, [-3, -1], (2, 4)), image[0:2, 0:4])
  np.testing.assert_array_equal(crop(image, [9, 100], (2, 4)), image[3:5, 2:6])
  np.testing.assert_array_equal(crop(image, [-3, 100], (5, 6)), image)


def test_traced_start_under_jit_and_no_retrace():
  traces = []

  @jax.jit
  def f(x, start):
    traces.append(None)
    return crop(x, start, (2, 4))

  image = _image(2)
  for start in ([0, 0], [1, 2], [3, 1], [-1, 7]):
    np.testing.assert_array_equal(
        f(image, jnp.array(start)), _numpy_crop(image, start, (2, 4))
    )
  assert len(traces) == 1


def test_jit_equals_eager():
  image, start = _image(3), jnp.array([1, 1, 1])
  np.testing.assert_array_equal(_crop(image, start, (2, 2, 3)), crop(image, start, (2, 2, 3)))


def test_broadcast_batch_equals_loop():
  image = _image(2, batch=(2, 1))
  starts = np.array([[[0, 0], [1, 2], [3, 1]], [[2, 2], [-1, 0], [4, 9]]])
  out = _crop(image, starts, (2, 4))
  assert out.shape == (2, 3, 2, 4, 2)
  for b, k in itertools.product(range(2), range(3)):
    np.testing.assert_array_equal(out[b, k], _numpy_crop(image[b, 0], starts[b, k], (2, 4)))


def test_any_dtype_and_gradient_in_the_image():
  image = _image(2).astype(np.uint8)
  out = crop(image, [1, 1], (2, 2))
  assert out.dtype == np.uint8
  grad = jax.grad(lambda x: crop(x, jnp.array([1, 2]), (2, 2)).sum())(_image(2))
  expected = np.zeros_like(grad)
  expected[1:3, 2:4] = 1
  np.testing.assert_array_equal(grad, expected)


@pytest.mark.parametrize(
    "image,start,shape,error,match",
    [
        (_image(2), np.array([1.0, 2.0]), (2, 2), TypeError, r"start.*float"),
        (_image(2), np.array([True, False]), (2, 2), TypeError, "start"),
        (_image(2), np.array([1, 2, 3]), (2, 2), ValueError, r"start.*\(3,\)"),
        (_image(2), np.array([1, 2]), (6, 2), ValueError, r"shape=\(6, 2\).*larger"),
        (_image(2), np.array([1, 2]), (), ValueError, "shape"),
        (_image(2), np.array([1, 2]), (2, 0), ValueError, "shape"),
        (_image(2), np.array([1, 2]), (2, 2.0), TypeError, "shape"),
        (_image(2)[..., 0], np.array([1, 2]), (2, 2, 2), ValueError, r"image.*\(5, 6\)"),
        (_image(2, batch=(3,)), np.zeros((2, 2), np.int32), (2, 2), ValueError, "batch shapes"),
    ],
)
def test_malformed_input_raises(image, start, shape, error, match):
  with pytest.raises(error, match="^crop: .*" + match):
    crop(image, start, shape)
