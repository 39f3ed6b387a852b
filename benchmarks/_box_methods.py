"""The timed box-glimpse methods and their peers (see run.py).

Each builder takes a `_cases.BoxCase` and its data and returns a
`_methods.Method` whose kinds are the forward pass, ``grad_params`` (the
gradient with respect to the boxes) and ``grad_image``. All read the same
boxes (``(y1, x1, y2, x2)`` pixels, pixel i centred at i), K of them over N
images, box k from image ``index[k]``:

* ``roi_align``: `roi_align` with ``image_index`` (the boxes shifted by +1/2
  into torchvision's coordinates, ``aligned=True``, ``sampling_ratio=2``).
* ``roi_map_coordinates``: the same semantics written straightforwardly with
  ``jax.scipy.ndimage.map_coordinates`` (order 1) over the ``(N, H, W)``
  stack of each channel, with the image index as a coordinate (no copy per
  box): sample positions, torchvision's clamp and mask, the mean per bin.
* ``roi_affine``: `affine_glimpse` with ``supersample=2`` and
  ``padding="border"`` (torchvision's clamp, for boxes inside the image)
  over the same boxes (`box_to_affine`), images ``(N, 1, H, W, C)`` with the
  boxes ``(N, K / N)``: the same reads through our own grid glimpse.
* ``crop_and_resize``, ``crop_map_coordinates``, ``crop_affine``: likewise
  for `crop_and_resize` (the boxes normalised by ``S - 1``); the affine peer
  is `affine_glimpse` with ``align_corners=True``, whose samples are TF's.
* ``retina_gaussian``: `retina` (3 scales, ratio 2) against
  ``gaussian_x3``: 3 separate `gaussian_glimpse` calls of the same boxes.
* ``retina_affine`` against ``affine_x3``: likewise with
  ``method="affine"`` and 3 `affine_glimpse` calls with ``supersample=1, 2,
  4``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from _methods import Method, Skip, jax_method

import jaxglimpse as jg

BOX_METHODS = (
    "roi_align",
    "roi_map_coordinates",
    "roi_affine",
    "crop_and_resize",
    "crop_map_coordinates",
    "crop_affine",
    "retina_gaussian",
    "gaussian_x3",
    "retina_affine",
    "affine_x3",
)
RATIO = 2.0


def _inputs(case, data):
  image, boxes, index = data
  cot = np.random.default_rng(1).normal(size=(case.boxes, *case.shape, case.channels))
  if case.scales:
    cot = np.random.default_rng(1).normal(size=(case.boxes, case.scales, *case.shape, case.channels))
  return jnp.asarray(image), jnp.asarray(boxes), jnp.asarray(index), jnp.asarray(cot, jnp.float32)


def _needs(case, retina: bool):
  if bool(case.scales) != retina:
    raise Skip("a retina method" if retina else "a box method, not a retina one")


def _map_coordinates(image, index, ys, xs):
  """Bilinear reads of ``image`` (N, H, W, C) at (index, ys, xs) per channel."""
  i = jnp.broadcast_to(index.reshape(-1, *(1,) * (ys.ndim - 1)), ys.shape).astype(ys.dtype)
  read = lambda channel: jax.scipy.ndimage.map_coordinates(channel, [i, ys, xs], order=1, mode="nearest")
  return jax.vmap(read, in_axes=-1, out_axes=-1)(image)


def roi_align(case, data, kinds) -> Method:
  _needs(case, False)
  image, boxes, index, cot = _inputs(case, data)
  read = lambda x, b: jg.roi_align(x, b + 0.5, case.shape, image_index=index)
  return jax_method(read, image, boxes, cot, kinds)


def roi_map_coordinates(case, data, kinds) -> Method:
  _needs(case, False)
  image, boxes, index, cot = _inputs(case, data)
  (h, w), g = case.shape, 2
  size = np.asarray(case.image)

  def read(x, b):
    start, bins = b[:, :2], (b[:, 2:] - b[:, :2]) / jnp.asarray(case.shape, b.dtype)
    ts = [(jnp.arange(m)[:, None] + (jnp.arange(g) + 0.5) / g).reshape(-1) for m in (h, w)]
    ys = start[:, 0, None] + ts[0] * bins[:, 0, None]
    xs = start[:, 1, None] + ts[1] * bins[:, 1, None]
    valid = ((ys >= -1) & (ys <= size[0]))[:, :, None] & ((xs >= -1) & (xs <= size[1]))[:, None]
    ys = jnp.clip(ys, 0, size[0] - 1)[:, :, None] + 0 * xs[:, None]
    xs = jnp.clip(xs, 0, size[1] - 1)[:, None] + 0 * ys
    out = jnp.where(valid[..., None], _map_coordinates(x, index, ys, xs), 0)
    return out.reshape(-1, h, g, w, g, x.shape[-1]).mean((2, 4))

  return jax_method(read, image, boxes, cot, kinds)


def _per_image(case, boxes):
  """``(N, K / N, ...)``: the boxes of each image along their own axis."""
  return boxes.reshape(case.images, case.boxes // case.images, *boxes.shape[1:])


def roi_affine(case, data, kinds) -> Method:
  _needs(case, False)
  image, boxes, _, cot = _inputs(case, data)

  def read(x, b):
    b = _per_image(case, b)
    box = jg.Box((b[..., :2] + b[..., 2:]) / 2, b[..., 2:] - b[..., :2])
    theta = jg.box_to_affine(box, case.shape, case.image)
    out = jg.affine_glimpse(x[:, None], theta, case.shape, padding="border", supersample=2)
    return out.reshape(case.boxes, *out.shape[2:])

  return jax_method(read, image, boxes, cot, kinds)


def _normalised(case, boxes):
  return boxes / jnp.asarray(np.tile(np.asarray(case.image) - 1.0, 2), boxes.dtype)


def crop_and_resize(case, data, kinds) -> Method:
  _needs(case, False)
  image, boxes, index, cot = _inputs(case, data)
  read = lambda x, b: jg.crop_and_resize(x, _normalised(case, b), case.shape, image_index=index)
  return jax_method(read, image, boxes, cot, kinds)


def crop_map_coordinates(case, data, kinds) -> Method:
  _needs(case, False)
  image, boxes, index, cot = _inputs(case, data)
  top = np.asarray(case.image) - 1.0

  def read(x, b):
    b = _normalised(case, b)
    axes = []
    for a, m in enumerate(case.shape):
      lo, hi = b[:, a, None], b[:, 2 + a, None]
      axes.append(lo * top[a] + jnp.arange(m) * ((hi - lo) * top[a] / (m - 1)))
    ys, xs = axes[0][:, :, None] + 0 * axes[1][:, None], axes[1][:, None] + 0 * axes[0][:, :, None]
    valid = (ys >= 0) & (ys <= top[0]) & (xs >= 0) & (xs <= top[1])
    return jnp.where(valid[..., None], _map_coordinates(x, index, ys, xs), 0.0)

  return jax_method(read, image, boxes, cot, kinds)


def crop_affine(case, data, kinds) -> Method:
  _needs(case, False)
  image, boxes, _, cot = _inputs(case, data)

  def read(x, b):
    b = _per_image(case, _normalised(case, b))
    # TF's samples are align_corners=True's with scale y2 - y1, shift y1 + y2 - 1.
    theta = jg.scale_shift_theta(b[..., 2:] - b[..., :2], b[..., :2] + b[..., 2:] - 1)
    out = jg.affine_glimpse(x[:, None], theta, case.shape, align_corners=True)
    return out.reshape(case.boxes, *out.shape[2:])

  return jax_method(read, image, boxes, cot, kinds)


def _scaled(b, k):
  center, size = (b[..., :2] + b[..., 2:]) / 2, (b[..., 2:] - b[..., :2]) * RATIO**k
  return jg.Box(center, size)


def retina(case, data, kinds, method: str) -> Method:
  _needs(case, True)
  image, boxes, _, cot = _inputs(case, data)
  read = lambda x, b: jg.retina(x, b, case.shape, scales=case.scales, ratio=RATIO, method=method)
  return jax_method(read, image, boxes, cot, kinds)


def separate(case, data, kinds, method: str) -> Method:
  _needs(case, True)
  image, boxes, _, cot = _inputs(case, data)

  def read(x, b):
    outs = []
    for k in range(case.scales):
      box = _scaled(b, k)
      if method == "gaussian":
        params = jg.box_to_gaussian(box, case.shape)
        outs.append(jg.gaussian_glimpse(x, params, case.shape, padding="zeros"))
      else:
        theta = jg.box_to_affine(box, case.shape, case.image)
        outs.append(jg.affine_glimpse(x, theta, case.shape, supersample=int(RATIO**k)))
    return jnp.stack(outs, axis=1)

  return jax_method(read, image, boxes, cot, kinds)


BOX_BUILDERS = {
    "roi_align": roi_align,
    "roi_map_coordinates": roi_map_coordinates,
    "roi_affine": roi_affine,
    "crop_and_resize": crop_and_resize,
    "crop_map_coordinates": crop_map_coordinates,
    "crop_affine": crop_affine,
    "retina_gaussian": lambda case, data, kinds: retina(case, data, kinds, "gaussian"),
    "gaussian_x3": lambda case, data, kinds: separate(case, data, kinds, "gaussian"),
    "retina_affine": lambda case, data, kinds: retina(case, data, kinds, "affine"),
    "affine_x3": lambda case, data, kinds: separate(case, data, kinds, "affine"),
}
