"""The sampler: reads an image at real-valued pixel coordinates.

`sample` is the interpolation half of a spatial transformer (Jaderberg et al.
2015); `jaxglimpse.affine` builds the coordinates. It follows PyTorch's
``grid_sample`` for the values and gradients of every padding mode, but takes
coordinates in pixels (see the conventions in `jaxglimpse`), not in [-1, 1].

Each sample reads the 2**n pixels around it (order 1) or the nearest one
(order 0). Their flat indices are clipped into the image and every read that
falls outside gets weight 0, so no coordinate, however large, makes an
out-of-range gather, and the gradient stays finite. The interpolation weights
use the corners ``floor(x)`` and ``floor(x) + 1`` with ``t = x - floor(x)``:
at an integer coordinate the gradient is then the forward difference
``image[i + 1] - image[i]``, as in PyTorch and ``scipy.ndimage``, where the
``ceil`` corner would give 0.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxglimpse import _checks

ORDERS = (0, 1)


def _clip(x: jax.Array, size: int) -> jax.Array:
  """Clips x to [0, size - 1], with gradient 0 outside and at both ends.

  ``jnp.clip`` passes half the gradient at a tie; PyTorch counts the borders as
  out of bounds and passes none, so this is written with ``where``.
  """
  hi = size - 1
  return jnp.where(x <= 0, 0, jnp.where(x >= hi, hi, x)).astype(x.dtype)


def _reflect(x: jax.Array, twice_low: int, twice_high: int) -> jax.Array:
  """Folds x into [twice_low / 2, twice_high / 2] by repeated mirroring."""
  if twice_low == twice_high:
    return jnp.zeros_like(x)
  low = twice_low / 2
  span = (twice_high - twice_low) / 2
  x = x - low
  x = jnp.where(x < 0, -x, x)  # The gradient is -1 below `low` and +1 at it.
  extra = jnp.fmod(x, span)
  flips = jnp.floor(x / span)
  even = jnp.fmod(flips, 2) == 0
  return jnp.where(even, extra + low, span - extra + low)


def _pad_coordinate(x: jax.Array, size: int, padding: str, align_corners: bool) -> jax.Array:
  """Applies the padding mode to a coordinate along an axis of `size` pixels."""
  if padding == "border":
    return _clip(x, size)
  if padding == "reflection":
    if align_corners:
      x = _reflect(x, 0, 2 * (size - 1))
    else:
      x = _reflect(x, -1, 2 * size - 1)
    return _clip(x, size)
  # "zeros": beyond [-2, size + 1] every read is outside and the gradient is 0
  # anyway. Folding such coordinates onto that range keeps even infinite ones
  # finite and the float-to-int conversion below in range.
  return jnp.where(x < -2, -2, jnp.where(x > size + 1, size + 1, x)).astype(x.dtype)


def _index_dtype(spatial: tuple[int, ...]):
  if math.prod(spatial) < np.iinfo(np.int32).max:
    return jnp.int32
  return jnp.int64


class _Taps(NamedTuple):
  """The pixels that a set of coordinates reads, from `_taps`.

  Attributes:
    index: K = 2**n (order 1) or 1 (order 0) arrays ``(...)`` of flat indices
      into the image's ``prod(spatial)`` pixels, always in range. Tap k reads,
      along axis a, the lower pixel if bit ``n - 1 - a`` of k is 0, the upper
      one if it is 1 (the last axis varies fastest).
    inside: K boolean arrays ``(...)``: whether tap k is a pixel of the image.
      Taps outside read 0.
    frac: order 1: n arrays ``(...)``, the position ``t = x - floor(x)``
      between the lower and the upper pixel on each axis; order 0: None.
  """

  index: list
  inside: list
  frac: list | None


def _taps(
    coords: jax.Array,
    spatial: tuple[int, ...],
    order: int,
    padding: str,
    align_corners: bool,
) -> _Taps:
  """Returns the pixels each coordinate reads and where it lies between them.

  Args:
    coords: ``(..., n)`` pixel coordinates, in the compute dtype.
    spatial: the image's spatial shape, n ints.
    order: 0 (nearest) or 1 (N-linear).
    padding: one of `_checks.PADDINGS_SAMPLER`.
    align_corners: only used by ``padding="reflection"``.

  Returns:
    A `_Taps`. The taps are lists rather than stacked ``(..., K)`` arrays: on
    CPU, XLA runs K gathers and K fused multiply-adds several times faster
    than a stack of the taps and a reduction over the tap axis.
  """
  index_dtype = _index_dtype(spatial)
  per_axis, frac = [], []
  for a, size in enumerate(spatial):
    x = _pad_coordinate(coords[..., a], size, padding, align_corners)
    if order == 1:
      lo = jnp.floor(x)
      frac.append(x - lo)
      positions = (lo, lo + 1)
    else:
      positions = (jnp.round(x),)  # Half to even, as PyTorch.
    axis_taps = []
    for pos in positions:
      inside = (pos >= 0) & (pos <= size - 1)
      axis_taps.append((jnp.where(inside, pos, 0).astype(index_dtype), inside))
    per_axis.append(axis_taps)

  strides = [math.prod(spatial[a + 1 :]) for a in range(len(spatial))]
  indices, insides = [], []
  for combo in itertools.product(*per_axis):
    indices.append(sum(i * s for (i, _), s in zip(combo, strides)))
    insides.append(functools.reduce(operator.and_, (m for _, m in combo)))
  return _Taps(indices, insides, frac if order == 1 else None)


def _weights(taps: _Taps) -> list[jax.Array]:
  """The N-linear weight of each tap: prod over axes of t or 1 - t, 0 outside."""
  if taps.frac is None:
    return [m.astype(jnp.float32) for m in taps.inside]
  n = len(taps.frac)
  weights = []
  for k, inside in enumerate(taps.inside):
    bits = [(k >> (n - 1 - a)) & 1 for a in range(n)]
    w = math.prod(t if bit else 1 - t for t, bit in zip(taps.frac, bits))
    weights.append(jnp.where(inside, w, 0))
  return weights


def _read(image: jax.Array, taps: _Taps, dtype) -> jax.Array:
  """The image at the taps' coordinates, ``(..., C)``, in the image's dtype.

  N-linear interpolation is computed as nested linear interpolations,
  ``v0 + t (v1 - v0)`` along the last axis, then the one before, and so on:
  the same value as the sum of weighted taps, but its gradient with respect
  to t is one sum over the channels per axis rather than one per tap.
  """
  flat = image.reshape(-1, image.shape[-1])
  # Without the barrier XLA fuses the index arithmetic into each gather and
  # redoes it for every channel (several times slower on CPU).
  index = jax.lax.optimization_barrier(taps.index)
  values = [
      jnp.where(m[..., None], jnp.take(flat, i, axis=0, mode="clip").astype(dtype), 0)
      for i, m in zip(index, taps.inside)
  ]
  for t in reversed(taps.frac or []):
    t = t[..., None]
    values = [v0 + t * (v1 - v0) for v0, v1 in zip(values[0::2], values[1::2])]
  return values[0].astype(image.dtype)


def _write(values: jax.Array, taps: _Taps, spatial: tuple[int, ...], dtype) -> jax.Array:
  """The adjoint of `_read`: scatter-adds ``weight * values`` into an image."""
  channels, out_dtype = values.shape[-1], values.dtype
  values = values.astype(dtype)
  weights = _weights(taps)
  updates = jnp.concatenate(
      [(w.astype(dtype)[..., None] * values).reshape(-1, channels) for w in weights]
  )
  flat = jnp.zeros((math.prod(spatial), channels), dtype)
  flat = flat.at[jnp.concatenate([i.reshape(-1) for i in taps.index])].add(updates)
  return flat.reshape(*spatial, channels).astype(out_dtype)


def _check_options(fn: str, order: int, padding: str, align_corners: bool) -> None:
  if isinstance(order, bool) or order not in ORDERS:
    raise ValueError(
        f"{fn}: order must be 0 (nearest) or 1 (linear), got {order!r}."
    )
  _checks.choice(fn, "padding", padding, _checks.PADDINGS_SAMPLER)
  if not isinstance(align_corners, (bool, np.bool_)):
    raise TypeError(f"{fn}: align_corners must be True or False, got {align_corners!r}.")


def sample(
    image: ArrayLike,
    coords: ArrayLike,
    *,
    order: int = 1,
    padding: str = "zeros",
    align_corners: bool = False,
) -> jax.Array:
  """Returns `image` read at the pixel coordinates `coords`.

  With order 1 the value at x is the N-linear interpolation of the 2**n pixels
  around it: along each axis, pixel ``floor(x)`` has weight ``1 - t`` and pixel
  ``floor(x) + 1`` has weight ``t``, with ``t = x - floor(x)``; the weights of
  the n axes multiply. With order 0 it is the nearest pixel, ``round(x)``, with
  ties to even (as PyTorch). `padding` decides what lies outside the image,
  with the meanings of PyTorch's ``grid_sample``:

  * ``"zeros"``: pixels outside the image read as 0.
  * ``"border"``: each coordinate is first clipped to [0, S - 1]; the gradient
    is 0 where it is clipped, at the ends included.
  * ``"reflection"``: each coordinate is first mirrored into the image, about
    [-1/2, S - 1/2] (``align_corners=False``) or about [0, S - 1]
    (``align_corners=True``), then clipped as for ``"border"``.

  Coordinates are in pixels, so `align_corners` changes nothing but where
  ``"reflection"`` mirrors: pass the value you pass to `affine_grid`.

  Args:
    image: one example, ``(*spatial, C)`` with n = 1, 2 or 3 spatial axes. It
      is not batched; use ``jax.vmap`` or `affine_glimpse` for batches.
    coords: ``(..., n)`` pixel coordinates in axis order, any leading shape.
    order: 1 for N-linear interpolation, 0 for nearest (no gradient in
      `coords`).
    padding: ``"zeros"``, ``"border"`` or ``"reflection"``.
    align_corners: the mirror used by ``padding="reflection"``; see above.

  Returns:
    ``(..., C)``, in the dtype of `image`. The weights are computed in float32
    or wider.

  Raises:
    TypeError: if `image` or `coords` is not floating-point.
    ValueError: if ``coords.shape[-1]`` is not 1, 2 or 3, if `image` does not
      have ``coords.shape[-1] + 1`` axes, or for an unknown `order` or
      `padding`.

  Examples:
    >>> import jax.numpy as jnp
    >>> image = jnp.arange(6.0).reshape(2, 3, 1)
    >>> sample(image, jnp.array([[0.5, 1.5], [1.0, 2.5]]))[..., 0].tolist()
    [3.0, 2.5]
    >>> sample(image, jnp.array([[1.0, 3.0]]), padding="border")[..., 0].tolist()
    [5.0]

  References:
    Jaderberg, Simonyan, Zisserman and Kavukcuoglu, "Spatial Transformer
    Networks", NeurIPS 2015.
  """
  fn = "sample"
  _check_options(fn, order, padding, align_corners)
  coords = _checks.float_array(fn, "coords", coords)
  if coords.ndim < 1:
    raise ValueError(
        f"{fn}: coords must have shape (..., n) with n = 1, 2 or 3 coordinates "
        f"per point, got a scalar of shape {coords.shape}."
    )
  n = _checks.ndim_of(fn, f"coords of shape {coords.shape}", coords.shape[-1])
  image = _checks.float_image(fn, "image", image, n + 1)
  if image.ndim != n + 1:
    raise ValueError(
        f"{fn}: image must be one example of shape (*spatial, C) with {n} "
        f"spatial axes, to match coords of shape {coords.shape}, got image "
        f"shape {image.shape}. For a batch, use jax.vmap or affine_glimpse."
    )
  dtype = _checks.compute_dtype(image, coords)
  taps = _taps(coords.astype(dtype), image.shape[:-1], order, padding, align_corners)
  return _read(image, taps, dtype)
