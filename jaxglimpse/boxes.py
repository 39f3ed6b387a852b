"""Box glimpses: torchvision's ``roi_align`` and TF's ``crop_and_resize``.

Both read an axis-aligned box of an image onto a fixed grid, as a detector's
second stage or an object-detection pipeline does, and both are
differentiable in the image *and* the boxes (their anchors give no gradient,
or only TF's, for the boxes). Boxes are corner boxes in axis order,
``(*batch, 2n)`` = ``(lo_0, ..., lo_{n-1}, hi_0, ..., hi_{n-1})``, i.e.
``(y1, x1, y2, x2)`` for images; each function takes them in its anchor's
coordinates, which its docstring states. Both work for n = 1, 2 and 3, with
the 2-D anchor's rule applied on every axis.

Batches. Batch axes of the image and the boxes broadcast as everywhere in
jaxglimpse. Or pass ``image_index`` ``(K,)``: then the image is
``(N, *spatial, C)`` and box k reads image ``image_index[k]``, which is
torchvision's ``(K, 5)`` roi format (`rois_from_torchvision` converts) and
TF's ``box_indices``: the index is one more coordinate of the gather, so no
image is copied per box. An index out of ``[0, N)`` raises when it is
concrete and is clipped into range under ``jit``.

Gradients. Every sample is a bilinear (or nearest) read, so the gradient
with respect to a box is the chain rule through the sample positions, which
are linear in the box. It is finite for every finite box: flipped, empty and
far-off-image boxes included. Where a sample leaves the image the output
jumps (to 0, or to ``extrapolation_value``); the gradient does not see the
jump and is 0 for the samples outside.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxglimpse import _checks, _warp
from jaxglimpse._interpolation import Spec

METHODS = ("bilinear", "nearest")


def _clamp(x: jax.Array, size: int) -> jax.Array:
  """x clipped to [0, size - 1] with gradient 0 outside and at both ends, as
  torchvision's and TF's kernels stop at the last pixel."""
  return jnp.where(x <= 0, 0, jnp.where(x >= size - 1, size - 1, x)).astype(x.dtype)


def _operands(
    fn: str, image: ArrayLike, boxes: ArrayLike, shape: Sequence[int], image_index
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array | None, tuple[int, ...], int, jnp.dtype]:
  """Shared checks: returns (image, lo, hi, index or None, shape, n, dtype)."""
  shape = _checks.shape_tuple(fn, "shape", shape)
  n = _checks.ndim_of(fn, "shape", len(shape))
  boxes = _checks.corner_boxes(fn, "boxes", boxes, n, f"shape={shape!r}")
  source = f"boxes of shape {boxes.shape}"
  if image_index is None:
    image, shape = _checks.warp_operand(
        fn, image, "image", shape, "shape", n, source, boxes.shape[:-1]
    )
    index = None
  else:
    image, shape = _checks.warp_operand(fn, image, "image", shape, "shape", n, source, ())
    index = _index(fn, image_index, image, n, boxes.shape[:-1])
  dtype = _checks.compute_dtype(image, boxes)
  boxes = _warp.clamp(boxes.astype(dtype))  # Finite coordinates for any finite box.
  return image, boxes[..., :n], boxes[..., n:], index, shape, n, dtype


def _index(fn: str, image_index: ArrayLike, image: jax.Array, n: int, batch) -> jax.Array:
  """Checks `image_index` against an image ``(N, *spatial, C)``; clips it."""
  index = jnp.asarray(image_index)
  if not jnp.issubdtype(index.dtype, jnp.integer):
    raise TypeError(
        f"{fn}: image_index must be an integer array (K,), the image each box "
        f"reads, got dtype {index.dtype}. torchvision's (K, 5) rois convert "
        f"with `jg.rois_from_torchvision(rois)`."
    )
  if image.ndim != n + 2:
    raise ValueError(
        f"{fn}: with image_index, image must have shape (N, *spatial, C) with "
        f"{n} spatial axes and one batch axis of N images, got shape {image.shape}."
    )
  _checks.batch_shape(fn, image_index=index.shape, **{"boxes (batch axes)": batch})
  count = image.shape[0]
  if not isinstance(index, jax.core.Tracer):
    bad = np.asarray(index)
    bad = bad[(bad < 0) | (bad >= count)]
    if bad.size:
      raise ValueError(
          f"{fn}: image_index must lie in [0, {count}) for an image of "
          f"{count} images (shape {image.shape}), got {bad.tolist()[:5]}."
      )
  return jnp.clip(index, 0, count - 1)


def _grid(ys: list, shape: tuple[int, ...], samples: tuple[int, ...]) -> list:
  """Per-axis arrays ``(*batch, F_a)`` laid out as the n-axis grid of
  ``(*batch, F_0, ..., F_{n-1})``, ``F_a = shape_a * samples_a``."""
  fine = [m * s for m, s in zip(shape, samples)]
  out = []
  for a, y in enumerate(ys):
    view = [1] * len(fine)
    view[a] = fine[a]
    out.append(y.reshape(*y.shape[:-1], *view))
  return out


def _all(masks: list) -> jax.Array:
  """The broadcast logical and of boolean arrays."""
  out = masks[0]
  for m in masks[1:]:
    out = out & m
  return out


def _read(image, ys, valid, shape, samples, order, index, dtype, scale=None) -> jax.Array:
  """The image read at the grid of per-axis pixel positions `ys`.

  Args:
    ys: n arrays ``(*batch, N_a s_a)``, in order sample, then sub-sample.
    valid: n boolean arrays like `ys`, or None: a grid point reads 0 unless
      valid on every axis.
    samples: s, the sub-samples per output sample on each axis, averaged.
    index: ``(*batch)`` image indices, or None.
    scale: ``(*batch)`` factors of the mean, or None.

  Returns:
    ``(*batch, *shape, C)``.
  """
  n = len(ys)
  spatial = image.shape[-(n + 1) : -1]
  ys = [_clamp(y, size) for y, size in zip(ys, spatial)]
  grid = _grid(ys, shape, samples)
  batch = np.broadcast_shapes(*(y.shape for y in grid))
  coords = tuple(jnp.broadcast_to(y, batch).reshape(*batch[:-n], -1) for y in grid)
  mask = None
  if valid is not None:
    mask = jnp.broadcast_to(_all(_grid(valid, shape, samples)), batch).reshape(*batch[:-n], -1)
  spec = Spec(tuple(spatial), order, "border", False)
  out = _warp.read_flat(image, coords, spec, dtype, mask, index)
  return _warp.average(out, out.shape[:-2], shape, samples, out.shape[-1], scale)


def roi_align(
    image: ArrayLike,
    boxes: ArrayLike,
    shape: Sequence[int],
    *,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
    aligned: bool = True,
    image_index: ArrayLike | None = None,
    max_sampling_ratio: int = 8,
) -> jax.Array:
  """Returns torchvision's ``roi_align`` of each box: ``(*batch, *shape, C)``.

  Boxes are in torchvision's coordinates, scaled by `spatial_scale`: pixel i
  covers ``[i, i + 1]``. With ``aligned=True`` the box is shifted by -1/2
  pixel, into jaxglimpse's coordinates (pixel i centred at i); with
  ``aligned=False`` it is not, and its size is clamped to at least 1 pixel.
  Along each axis, with the box from ``start`` of length L over N bins of
  ``b = L / N``, bin j averages g samples at::

      y = start + j b + (i + 1/2) b / g,    i = 0 ... g - 1,

  and the output is their mean over all axes. A sample reads the image
  bilinearly, as torchvision does: 0 if it lies more than 1 pixel outside
  (``y < -1`` or ``y > S``), else with y clamped to ``[0, S - 1]``.

  torchvision gives no gradient for the boxes; this one does, through the
  sample positions. A clamped coordinate and a sample more than 1 pixel
  outside contribute 0 to it, and the adaptive count, a step function of the
  box size, is held constant (its jumps have no gradient).

  Args:
    image: ``(*batch, *spatial, C)`` with n = ``len(shape)`` spatial axes
      (channel-last), or ``(N, *spatial, C)`` with `image_index`.
    boxes: ``(*batch, 2n)`` corner boxes ``(y1, x1, y2, x2)`` in axis order
      (torchvision writes x first: see `rois_from_torchvision`).
    shape: the output's spatial shape (torchvision's ``output_size``), n
      static ints.
    spatial_scale: a static positive number that multiplies the boxes: 1/16
      for boxes given in the pixels of an image that a network has reduced
      16 times.
    sampling_ratio: g, a static int. ``<= 0`` is torchvision's adaptive
      count ``g = ceil(L / N)`` per box and axis, computed under jit: the
      read then takes `max_sampling_ratio` samples per bin and axis and masks
      those past a box's own count. It equals torchvision whenever the
      adaptive count is at most `max_sampling_ratio`; a larger box is
      averaged over `max_sampling_ratio` evenly spread samples per bin and
      axis instead (the same mean, less finely estimated). Every box then
      costs the cap's ``max_sampling_ratio**n`` reads per bin, whatever its
      size.
    aligned: torchvision's ``aligned``; True is the half-pixel-correct one.
      The defaults (``sampling_ratio=2, aligned=True``) are Detectron2's and
      Mask R-CNN's; torchvision's own defaults are -1 and False.
    image_index: optional ``(K,)`` ints: box k reads image
      ``image_index[k]`` of an ``(N, *spatial, C)`` image, and the result is
      ``(K, *shape, C)`` (see the module docstring).
    max_sampling_ratio: the static cap of the adaptive count.

  Returns:
    ``(*batch, *shape, C)`` in the image's dtype, computed in float32 or
    wider.

  Raises:
    TypeError: for an integer image or non-real boxes, a non-int
      `sampling_ratio`, `max_sampling_ratio` or shape, a non-bool `aligned`,
      or a non-integer `image_index`.
    ValueError: for boxes whose last axis is not ``2 len(shape)``, batch
      shapes that do not broadcast, a concrete `image_index` out of range, a
      `max_sampling_ratio` below 1, or a `spatial_scale` that is not a
      static positive number.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> image = jnp.arange(16.0).reshape(4, 4, 1)
    >>> jg.roi_align(image, jnp.array([0.0, 0.0, 4.0, 4.0]), (2, 2))[..., 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]

  References:
    He, Gkioxari, Dollár and Girshick, "Mask R-CNN", ICCV 2017;
    ``torchvision.ops.roi_align``.
  """
  fn = "roi_align"
  ratio = _checks.static_int(fn, "sampling_ratio", sampling_ratio)
  cap = _checks.static_int(fn, "max_sampling_ratio", max_sampling_ratio, minimum=1)
  scale = _checks.positive_number(fn, "spatial_scale", spatial_scale)
  if not isinstance(aligned, (bool, np.bool_)):
    raise TypeError(f"{fn}: aligned must be True or False, got {aligned!r}.")
  image, lo, hi, index, shape, n, dtype = _operands(fn, image, boxes, shape, image_index)
  offset = 0.5 if aligned else 0.0
  start = lo * scale - offset
  length = (hi * scale - offset) - start
  if not aligned:
    length = jnp.maximum(length, 1)
  bins = length / jnp.asarray(shape, dtype)
  adaptive = ratio <= 0
  g = cap if adaptive else ratio
  spatial = image.shape[-(n + 1) : -1]
  ys, valid = [], []
  count: jax.Array | int = 1
  for a, m in enumerate(shape):
    b = bins[..., a, None, None]
    if adaptive:
      own = jnp.clip(jnp.ceil(bins[..., a]), 0, cap)[..., None, None]  # ceil(L / N).
      per_bin = jnp.maximum(own, 1)
      count = count * per_bin[..., 0, 0]
    else:
      per_bin = jnp.asarray(g, dtype)
    i = jnp.arange(g, dtype=dtype)
    y = start[..., a, None, None] + jnp.arange(m, dtype=dtype)[:, None] * b + (i + 0.5) * b / per_bin
    ok = (y >= -1) & (y <= spatial[a])
    if adaptive:
      ok = ok & (i < own)
    ys.append(y.reshape(*y.shape[:-2], m * g))
    valid.append(ok.reshape(*ok.shape[:-2], m * g))
  # Adaptive: the mean over g^n samples, rescaled to torchvision's count.
  factor = jnp.asarray(g**n / count, dtype) if adaptive else None
  return _read(image, ys, valid, shape, (g,) * n, 1, index, dtype, factor)


def rois_from_torchvision(rois: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Returns ``(image_index, boxes)`` for torchvision's ``(K, 5)`` rois.

  torchvision writes a roi as ``(batch_index, x1, y1, x2, y2)``; jaxglimpse
  takes the index apart and the box in axis order, ``(y1, x1, y2, x2)``.

  Args:
    rois: ``(K, 5)`` floats.

  Returns:
    ``image_index`` ``(K,)`` int32 and ``boxes`` ``(K, 4)``, for
    ``roi_align(image, boxes, shape, image_index=image_index)``.

  Raises:
    ValueError: if rois is not ``(K, 5)``.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> index, boxes = jg.rois_from_torchvision(jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0]]))
    >>> index.tolist(), boxes.tolist()
    ([1], [[3.0, 2.0, 5.0, 4.0]])
  """
  rois = _checks.float_param("rois_from_torchvision", "rois", rois)
  if rois.ndim != 2 or rois.shape[-1] != 5:
    raise ValueError(
        "rois_from_torchvision: rois must have shape (K, 5), rows (batch_index, "
        f"x1, y1, x2, y2), got shape {rois.shape}."
    )
  return rois[:, 0].astype(jnp.int32), rois[:, jnp.array([2, 1, 4, 3])]


def crop_and_resize(
    image: ArrayLike,
    boxes: ArrayLike,
    shape: Sequence[int],
    *,
    method: str = "bilinear",
    extrapolation_value: float = 0.0,
    image_index: ArrayLike | None = None,
) -> jax.Array:
  """Returns TF's ``crop_and_resize`` of each box: ``(*batch, *shape, C)``.

  Boxes are normalised: coordinate y maps to pixel ``y (S - 1)``, so 0 and
  1 are the centres of the first and last pixels. Along an axis of N
  samples, sample i sits at::

      p_i = y1 (S - 1) + i (y2 - y1) (S - 1) / (N - 1)    (N > 1),
      p_0 = (y1 + y2) (S - 1) / 2                          (N = 1),

  so a flipped box (``y2 < y1``) flips the crop. A sample with any
  coordinate outside ``[0, S - 1]`` is `extrapolation_value` whole (not
  blended with the image); the others read the image bilinearly, or at the
  nearest pixel with halves rounded away from zero, as TF's ``roundf``.

  Gradients with respect to the boxes are TF's ``CropAndResizeGradBoxes``
  where it is defined (bilinear, samples inside the image, coordinates not
  integers). At an integer coordinate strictly inside the image TF's kernel
  reads the same pixel as floor and ceil and returns 0; this one returns the
  forward difference, as `sample` does, so that a box whose samples land on
  pixel centres still learns. On the first and last pixel (coordinate 0 or
  S - 1) both give 0, so the samples on the edges of a whole-image box
  ``(0, 0, 1, 1)`` do not move it. ``"nearest"`` has gradient 0 in the
  boxes, and samples outside the image have gradient 0.

  Args:
    image: ``(*batch, *spatial, C)`` (channel-last), or ``(N, *spatial, C)``
      with `image_index`.
    boxes: ``(*batch, 2n)`` normalised corner boxes, ``(y1, x1, y2, x2)``
      for images, as TF's.
    shape: the crop's spatial shape (TF's ``crop_size``), n static ints.
    method: ``"bilinear"`` or ``"nearest"``.
    extrapolation_value: the value of samples outside the image, a scalar.
    image_index: optional ``(K,)`` ints, TF's ``box_indices``: box k reads
      image ``image_index[k]`` of an ``(N, *spatial, C)`` image (see the
      module docstring).

  Returns:
    ``(*batch, *shape, C)`` in the image's dtype (TF returns float32).

  Raises:
    TypeError: for an integer image or non-real boxes, a non-int shape or a
      non-integer `image_index`.
    ValueError: for boxes whose last axis is not ``2 len(shape)``, batch
      shapes that do not broadcast, an unknown method, a non-scalar
      `extrapolation_value` or a concrete `image_index` out of range.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> image = jnp.arange(16.0).reshape(4, 4, 1)
    >>> jg.crop_and_resize(image, jnp.array([0.0, 0.0, 1.0, 1.0]), (2, 2))[..., 0].tolist()
    [[0.0, 3.0], [12.0, 15.0]]

  References:
    ``tf.image.crop_and_resize``, TensorFlow's object-detection API.
  """
  fn = "crop_and_resize"
  _checks.choice(fn, "method", method, METHODS)
  image, lo, hi, index, shape, n, dtype = _operands(fn, image, boxes, shape, image_index)
  fill = jnp.asarray(extrapolation_value)
  if fill.ndim != 0 or not (
      jnp.issubdtype(fill.dtype, jnp.integer) or jnp.issubdtype(fill.dtype, jnp.floating)
  ):
    raise ValueError(f"{fn}: extrapolation_value must be a real scalar, got {extrapolation_value!r}.")
  spatial = image.shape[-(n + 1) : -1]
  ys, valid = [], []
  for a, m in enumerate(shape):
    top = float(spatial[a] - 1)
    if m > 1:  # TF's order of operations (XLA may still fuse it into an FMA).
      step = (hi[..., a, None] - lo[..., a, None]) * top / (m - 1)
      y = lo[..., a, None] * top + jnp.arange(m, dtype=dtype) * step
    else:
      y = 0.5 * (lo[..., a, None] + hi[..., a, None]) * top
    valid.append((y >= 0) & (y <= top))
    if method == "nearest":  # roundf: halves away from zero (y >= 0 where it counts).
      down = jnp.floor(y)
      y = jax.lax.stop_gradient(jnp.where(y - down >= 0.5, down + 1, down))
    ys.append(y)
  order = 0 if method == "nearest" else 1
  out = _read(image, ys, None, shape, (1,) * n, order, index, dtype)
  inside = _all(_grid(valid, shape, (1,) * n))
  return jnp.where(inside[..., None], out, fill.astype(out.dtype))
