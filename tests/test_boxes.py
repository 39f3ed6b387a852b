"""roi_align, crop_and_resize and rois_from_torchvision against their anchors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxglimpse as jg
from tests import reference

_roi = jax.jit(
    jg.roi_align,
    static_argnames=("shape", "spatial_scale", "sampling_ratio", "aligned", "max_sampling_ratio"),
)
_crop = jax.jit(jg.crop_and_resize, static_argnames=("shape", "method"))

IMAGE = {1: (9,), 2: (7, 9), 3: (5, 6, 4)}
SHAPE = {1: (4,), 2: (3, 2), 3: (2, 2, 1)}


def _roi_boxes(n, rng, spatial):
  """Boxes inside, partly and wholly outside, empty, flipped and tiny."""
  size = np.asarray(spatial, float)
  lo = rng.uniform(-1, size * 0.6, size=(5, n))
  hi = lo + rng.uniform(0.3, size * 0.8, size=(5, n))
  boxes = [np.concatenate([lo, hi], -1)]
  boxes.append(np.concatenate([size - 1.5, size + 2.5]))  # Partly beyond the far edge.
  boxes.append(np.concatenate([size + 3, size + 6]))  # Wholly outside.
  boxes.append(np.concatenate([size / 3, size / 3]))  # Empty.
  boxes.append(np.concatenate([size / 2, size / 4]))  # Flipped.
  boxes.append(np.concatenate([size / 2, size / 2 + 0.2]))  # Under a pixel.
  return np.concatenate([boxes[0], np.stack(boxes[1:])])


_RATIOS = [(2, 1.0), (3, 0.5), (0, 1.0), (-1, 0.75)]  # (sampling_ratio, spatial_scale)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize(
    "n,sampling_ratio,spatial_scale",
    [(2, *r) for r in _RATIOS] + [(1, *_RATIOS[1]), (1, *_RATIOS[2]), (3, *_RATIOS[0]), (3, *_RATIOS[3])],
)
def test_roi_align_matches_torchvision_reference(n, aligned, sampling_ratio, spatial_scale):
  rng = np.random.default_rng(n)
  image = rng.normal(size=(*IMAGE[n], 2))
  boxes = _roi_boxes(n, rng, IMAGE[n]) / spatial_scale
  kwargs = dict(spatial_scale=spatial_scale, sampling_ratio=sampling_ratio, aligned=aligned)
  out = _roi(image, boxes, SHAPE[n], **kwargs)
  expected = reference.roi_align_ref(image, boxes, SHAPE[n], **kwargs)
  np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_roi_align_classic_case_with_torchvision_rois():
  # torchvision's own test: a 10x10 ramp per image and these (K, 5) rois.
  images = np.stack([np.arange(100.0).reshape(10, 10), 100 + np.arange(100.0).reshape(10, 10)])
  images = np.stack([images, -images], -1)  # (2, 10, 10, 2)
  rois = np.array([[0, 0, 0, 9, 9], [0, 0, 5, 4, 9], [0, 5, 5, 9, 9], [1, 0, 0, 9, 9]], float)
  index, boxes = jg.rois_from_torchvision(rois)
  for aligned in (True, False):
    out = _roi(images, boxes, (5, 5), image_index=index, aligned=aligned)
    expected = np.stack([
        reference.roi_align_ref(images[int(r[0])], r[[2, 1, 4, 3]], (5, 5), aligned=aligned)[0]
        for r in rois
    ])
    assert out.shape == (4, 5, 5, 2)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    # On the ramp image[y, x] = 10 y + x, a read inside the image is the ramp
    # at each bin's centre: box (0, 0, 9, 9), shifted by -1/2 if aligned, in
    # bins of 9/5.
    centres = -0.5 * aligned + (np.arange(5) + 0.5) * 9 / 5
    ramp = 10 * centres[:, None] + centres  # Bins 1-4: no sample clamped at the edge.
    np.testing.assert_allclose(out[0, 1:, 1:, 0], ramp[1:, 1:], atol=1e-12)


def test_roi_align_adaptive_count_beyond_the_cap_uses_the_cap():
  image = np.random.default_rng(0).normal(size=(40, 40, 1))
  boxes = np.array([[0.0, 0.0, 36.0, 30.0]])  # ceil(36 / 3) = 12 > 4 on y, 15 on x.
  out = _roi(image, boxes, (3, 2), sampling_ratio=0, max_sampling_ratio=4)
  np.testing.assert_allclose(out, reference.roi_align_ref(image, boxes, (3, 2), sampling_ratio=4), atol=1e-12)
  within = _roi(image, boxes, (3, 2), sampling_ratio=0, max_sampling_ratio=15)
  np.testing.assert_allclose(within, reference.roi_align_ref(image, boxes, (3, 2), sampling_ratio=0), atol=1e-12)


@pytest.mark.parametrize("fn", ["roi_align", "crop_and_resize"])
def test_image_index_equals_the_broadcast_form(fn):
  rng = np.random.default_rng(1)
  images = rng.normal(size=(3, 7, 9, 2))
  boxes = rng.uniform(0, 6, size=(5, 4))
  boxes = np.where(np.arange(4) < 2, boxes, boxes + 2) / (1 if fn == "roi_align" else 8)
  index = np.array([2, 0, 2, 1, 0])
  read = _roi if fn == "roi_align" else _crop
  out = read(images, boxes, (3, 4), image_index=index)
  np.testing.assert_allclose(out, read(images[index], boxes, (3, 4)), rtol=0, atol=1e-12)
  # Under jit an index out of range is clipped; concrete, it raises.
  clipped = read(images, boxes, (3, 4), image_index=jnp.array([7, 0, 2, 1, -3]))
  np.testing.assert_allclose(clipped, read(images[np.array([2, 0, 2, 1, 0])], boxes, (3, 4)), atol=1e-12)
  with pytest.raises(ValueError, match=r"image_index must lie in \[0, 3\).*\[7\]"):
    getattr(jg, fn)(images, boxes, (3, 4), image_index=np.array([7, 0, 2, 1, 0]))


@pytest.mark.parametrize("fn", ["roi_align", "crop_and_resize"])
def test_image_index_never_reads_a_neighbouring_image(fn):
  # A sample on image 0's last row must not touch image 1's first (inf) row,
  # not even with weight 0: 0 * inf would be NaN, in value and gradient.
  images = np.zeros((2, 4, 4, 1))
  images[1, 0] = np.inf
  box = np.array([[3.5, 1.0, 3.5, 2.0]]) if fn == "roi_align" else np.array([[1.0, 0.0, 1.0, 1.0]])
  read = lambda b: getattr(jg, fn)(images, b, (1, 1), image_index=np.array([0]))
  value, grad = jax.jit(jax.value_and_grad(lambda b: jnp.sum(read(b))))(box)
  assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_image_index_float32_is_close_to_the_broadcast_form():
  rng = np.random.default_rng(2)
  images = rng.normal(size=(4, 30, 20, 3)).astype(np.float32)
  boxes = rng.uniform(0, 18, size=(6, 4)).astype(np.float32)
  boxes[:, 2:] += 2
  index = np.array([3, 3, 0, 1, 2, 3])
  out = _roi(images, boxes, (4, 4), image_index=index)
  np.testing.assert_allclose(out, _roi(images[index], boxes, (4, 4)), atol=1e-6)


def test_batch_axes_broadcast_like_a_loop():
  rng = np.random.default_rng(3)
  images = rng.normal(size=(2, 1, 7, 9, 1))
  boxes = rng.uniform(0, 5, size=(2, 3, 4)) + np.array([0, 0, 2, 2])
  out = _roi(images, boxes, (2, 2))
  assert out.shape == (2, 3, 2, 2, 1)
  for b in range(2):
    np.testing.assert_allclose(out[b], reference.roi_align_ref(images[b, 0], boxes[b], (2, 2)), atol=1e-12)
  crops = _crop(images, boxes / 8, (2, 2))
  for b in range(2):
    expected = reference.crop_and_resize_ref(images[b, 0], boxes[b] / 8, (2, 2))
    np.testing.assert_allclose(crops[b], expected, atol=1e-12)
  np.testing.assert_allclose(jg.roi_align(images, boxes, (2, 2)), out, atol=1e-12)  # Eager.


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_crop_and_resize_matches_tf_reference(n, method):
  rng = np.random.default_rng(10 + n)
  image = rng.normal(size=(*IMAGE[n], 2))
  lo = rng.uniform(-0.5, 1.0, size=(6, n))
  boxes = np.concatenate([lo, lo + rng.uniform(-0.6, 0.9, size=(6, n))], -1)  # Some flipped.
  boxes = np.concatenate([boxes, [np.r_[np.full(n, -0.5), np.full(n, 1.5)]]])
  for shape in (SHAPE[n], (1,) * n):
    out = _crop(image, boxes, shape, method=method, extrapolation_value=0.7)
    expected = reference.crop_and_resize_ref(image, boxes, shape, method, 0.7)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)


def test_crop_and_resize_nearest_rounds_halves_away_from_zero():
  image = np.arange(5.0)[:, None]
  # Samples at 0.5 and 2.5: roundf gives pixels 1 and 3 (half to even: 0, 2).
  out = jg.crop_and_resize(image, np.array([0.125, 0.625]), (2,), method="nearest")
  assert out[:, 0].tolist() == [1.0, 3.0]


def test_crop_and_resize_box_gradient_is_tfs():
  rng = np.random.default_rng(4)
  image = rng.normal(size=(6, 8, 2))
  # No sample on an integer coordinate, where TF's kernel gives 0 (see the docstring).
  boxes = np.array([[0.11, 0.07, 0.83, 0.91], [0.9, 0.6, 0.23, 0.13], [0.3, 0.27, 0.72, 0.61]])
  for shape in [(3, 4), (1, 3)]:
    grads = rng.normal(size=(3, *shape, 2))
    _, vjp = jax.vjp(lambda b: _crop(image, b, shape), boxes)
    expected = reference.crop_and_resize_box_grad_ref(image, boxes, shape, grads)
    np.testing.assert_allclose(vjp(grads)[0], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn", ["roi_align", "crop_and_resize"])
def test_gradients_in_image_and_boxes_away_from_kinks(fn):
  rng = np.random.default_rng(5)
  image = rng.normal(size=(6, 7, 2))
  if fn == "roi_align":
    boxes = np.array([[0.73, 1.21, 4.37, 5.93], [2.11, 0.37, 5.29, 3.47]])
    f = lambda x, b: jg.roi_align(x, b, (2, 3), sampling_ratio=2)
    g = lambda x, b: jg.roi_align(x, b, (2, 3), sampling_ratio=0)
  else:
    boxes = np.array([[0.13, 0.21, 0.77, 0.93], [0.81, 0.17, 0.29, 0.67]])
    f = g = lambda x, b: jg.crop_and_resize(x, b, (3, 2))
  check_grads(jax.jit(f), (image, boxes), order=1, modes=("fwd", "rev"), eps=1e-6)
  if g is not f:  # The adaptive count: the gradient users take.
    check_grads(jax.jit(g), (image, boxes), order=1, modes=("rev",), eps=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_box_gradients_are_finite_for_any_finite_box(dtype):
  image = jnp.asarray(np.random.default_rng(6).normal(size=(5, 6, 2)), dtype)
  big = float(jnp.finfo(dtype).max) / 4
  boxes = jnp.asarray([
      [2.0, 2.0, 2.0, 2.0], [4.0, 5.0, 1.0, 0.5], [-big, -big, big, big], [big, 3.0, big, 4.0],
      [-1e6, 2.0, 1e6, 3.0], [0.0, 0.0, 5.0, 6.0], [-1.0, -1.0, 0.0, 0.0],
  ], dtype)
  reads = [
      lambda b: jg.roi_align(image, b, (2, 2)),
      lambda b: jg.roi_align(image, b, (2, 2), sampling_ratio=0, aligned=False),
      lambda b: jg.crop_and_resize(image, b / 5, (2, 3)),
      lambda b: jg.crop_and_resize(image, b / 5, (1, 1), method="nearest", extrapolation_value=2.0),
  ]
  for read in reads:
    out, grad = jax.jit(jax.value_and_grad(lambda b: jnp.sum(read(b) ** 2)))(boxes)
    assert jnp.isfinite(out) and bool(jnp.all(jnp.isfinite(grad)))


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_images(dtype):
  rng = np.random.default_rng(7)
  image = rng.uniform(size=(2, 8, 8, 3)).astype(np.float32)
  boxes = np.array([[1.0, 1.5, 6.0, 7.0], [0.5, 0.0, 3.0, 8.0]], np.float32)
  for read, b in ((_roi, boxes), (_crop, boxes / 8)):
    full = read(image, b, (3, 3))
    half = read(jnp.asarray(image, dtype), b, (3, 3))
    assert half.dtype == dtype
    np.testing.assert_allclose(np.asarray(half, np.float32), full, atol=2e-2)


def test_rois_from_torchvision_reorders_to_axis_order():
  index, boxes = jg.rois_from_torchvision(np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 0, 1, 2, 3]]))
  assert index.dtype == jnp.int32 and index.tolist() == [1, 0]
  assert boxes.tolist() == [[3.0, 2.0, 5.0, 4.0], [1.0, 0.0, 3.0, 2.0]]
  with pytest.raises(ValueError, match=r"rois must have shape \(K, 5\)"):
    jg.rois_from_torchvision(np.zeros((3, 4)))


def test_malformed_arguments_name_the_argument():
  image = np.zeros((8, 8, 1))
  box = np.array([0.0, 0.0, 4.0, 4.0])
  with pytest.raises(ValueError, match=r"boxes must have shape \(\*batch, 4\).*\(y1, x1, y2, x2\).*got shape \(3,\)"):
    jg.roi_align(image, box[:3], (2, 2))
  with pytest.raises(ValueError, match=r"jg.rois_from_torchvision"):
    jg.roi_align(image[None], np.zeros((2, 5)), (2, 2))
  with pytest.raises(ValueError, match=r"boxes must have shape \(\*batch, 6\)"):
    jg.crop_and_resize(np.zeros((4, 4, 4, 1)), box, (2, 2, 2))
  with pytest.raises(TypeError, match="sampling_ratio must be a Python int.*2.0"):
    jg.roi_align(image, box, (2, 2), sampling_ratio=2.0)
  with pytest.raises(ValueError, match="max_sampling_ratio must be at least 1"):
    jg.roi_align(image, box, (2, 2), sampling_ratio=0, max_sampling_ratio=0)
  with pytest.raises(ValueError, match="spatial_scale must be a positive number"):
    jg.roi_align(image, box, (2, 2), spatial_scale=0.0)
  with pytest.raises(TypeError, match="aligned must be True or False"):
    jg.roi_align(image, box, (2, 2), aligned="yes")
  with pytest.raises(TypeError, match="image_index must be an integer array"):
    jg.roi_align(image[None], box, (2, 2), image_index=np.array([0.0]))
  with pytest.raises(ValueError, match=r"batch shapes do not broadcast: image_index \(3,\)"):
    jg.roi_align(image[None], np.stack([box, box]), (2, 2), image_index=np.array([0, 0, 0]))
  with pytest.raises(ValueError, match=r"with image_index, image must have shape \(N, \*spatial, C\)"):
    jg.crop_and_resize(image, box / 8, (2, 2), image_index=np.array(0))
  with pytest.raises(ValueError, match="method must be one of 'bilinear', 'nearest', got 'cubic'"):
    jg.crop_and_resize(image, box / 8, (2, 2), method="cubic")
  for bad in ([0.0, 1.0], 1j):
    with pytest.raises(ValueError, match="extrapolation_value must be a real scalar"):
      jg.crop_and_resize(image, box / 8, (2, 2), extrapolation_value=bad)
  with pytest.raises(TypeError, match="boxes must be a real-valued array"):
    jg.roi_align(image, box.astype(complex), (2, 2))
  with pytest.raises(TypeError, match="image must be a floating-point array"):
    jg.crop_and_resize(image.astype(np.uint8), box / 8, (2, 2))


def test_no_retrace_for_new_boxes_or_indices():
  traces = []

  @jax.jit
  def f(x, b, i):
    traces.append(None)
    return jg.roi_align(x, b, (2, 2), image_index=i), jg.crop_and_resize(x, b / 8, (2, 2), image_index=i)

  images = np.zeros((2, 8, 8, 1))
  f(images, np.array([[0.0, 0.0, 4.0, 4.0]]), np.array([0]))
  f(images + 1, np.array([[1.0, 2.0, 7.0, 3.0]]), np.array([1]))
  assert len(traces) == 1
