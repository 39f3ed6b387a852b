"""The interpolation engine: reads images at real-valued pixel coordinates.

Under `jaxglimpse.sample` and every grid-based glimpse and write. For a
batch of points it finds the pixels each point reads, its stencil: the 2**n
pixels around it (order 1), the 4**n pixels from ``floor(x) - 1`` to
``floor(x) + 2`` on each axis (order 3, cubic convolution) or the nearest one
(order 0). Their indices are clipped into the image and every read that falls
outside reads 0, so no coordinate, however large, makes an out-of-range
gather, and a finite coordinate gets a finite gradient. The interpolation
weights use the pixels from ``floor(x)`` on, with ``t = x - floor(x)``: at an
integer coordinate the gradient is then the forward difference
``image[i + 1] - image[i]`` (order 1), as in PyTorch and ``scipy.ndimage``,
where the ``ceil`` pixel would give 0.

Padding. Orders 0 and 1 apply the padding to the coordinate, as PyTorch's
``grid_sample`` does: clipped or mirrored into the image, with the padding's
derivative in the gradient. Order 3 applies it to each tap's integer index,
as PyTorch's bicubic ``grid_sample`` does: ``"border"`` clips the index,
``"reflection"`` mirrors it (about ``-1/2`` and ``S - 1/2``, or ``0`` and
``S - 1`` with ``align_corners``), and the coordinate's gradient is that of
the cubic weights alone.

Speed. Each of the stencil's pixels is one ``lax.gather`` over the batch,
with the image's batch axes as the gather's batch axes: K glimpses of an image
read the one image in place (no broadcast copy), and a batch sharded over
devices is read where it lies (no collective). The pixels stay separate arrays
(no stack and no reduction over a stencil axis, which XLA on CPU ran several
times slower), N-linear interpolation is nested ``v0 + t (v1 - v0)``, and its
JVP is written out, so that the gradient with respect to the coordinates is
one product with the cotangent per pixel instead of autodiff of the index
arithmetic. The write (`write`) is the matching ``scatter_add``.
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
from jax.custom_derivatives import SymbolicZero

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


def _fold_cubic(x: jax.Array, size: int, padding: str, align_corners: bool) -> jax.Array:
  """Folds a coordinate that order 3 reads into a range of the same reads.

  Within ``[-3, size + 2]`` x is left as it is. Beyond it, with ``"zeros"``
  every tap is outside and with ``"border"`` every tap is clipped to the same
  end pixel, so x is clamped (gradient 0); with ``"reflection"`` the taps'
  indices repeat with the mirror's period, so x is moved by whole periods
  (gradient 1), which keeps even a huge coordinate's index in range.
  """
  lo, hi = -3, size + 2
  beyond = (x < lo) | (x > hi)
  if padding != "reflection":
    return jnp.where(x < lo, lo, jnp.where(x > hi, hi, x)).astype(x.dtype)
  period = 2 * size if not align_corners else max(2 * (size - 1), 1)
  folded = x - period * jnp.floor((x - lo) / period)
  folded = jnp.where(jnp.isfinite(folded), folded, 0)
  return jnp.where(beyond, folded, x).astype(x.dtype)


def _pad_index(i: jax.Array, size: int, padding: str, align_corners: bool):
  """Order 3: a tap's integer index padded, and whether it is in the image.

  ``"border"`` clips the index, ``"reflection"`` mirrors it, as PyTorch's
  bicubic ``grid_sample`` does for each tap; both always land inside (None).
  """
  if padding == "zeros":
    unsigned = jax.lax.bitcast_convert_type(i, _unsigned(i.dtype))
    return i, unsigned <= size - 1
  if padding == "reflection":
    if align_corners:
      period = max(2 * (size - 1), 1)
      j = jnp.remainder(i, period)
      i = jnp.where(j > size - 1, period - j, j)
    else:
      j = jnp.remainder(i, 2 * size)
      i = jnp.where(j >= size, 2 * size - 1 - j, j)
  return jnp.where(i < 0, 0, jnp.where(i > size - 1, size - 1, i)), None


def _index_dtype(size: int):
  """The integer dtype of the indices along an image axis of `size` pixels,
  with room for the stencil's pixels just outside either end."""
  return jnp.int32 if size + 4 < np.iinfo(np.int32).max else jnp.int64


class Spec(NamedTuple):
  """What a read or write of a batch of points needs to know, all static.

  The image is read as ``(*kept, *spatial, C)``: of its batch axes, only
  those it shares with the points; axes along which the image is broadcast
  are dropped, not copied. The kept axes are batch axes of the
  gather, so that each point reads its own image (K glimpses of one image
  read the one image, never a broadcast copy) and a batch sharded over
  devices is read where it lies.

  Attributes:
    spatial: the image's spatial shape, n ints.
    order: 0 (nearest), 1 (N-linear) or 3 (cubic convolution).
    padding: ``"zeros"``, ``"border"`` or ``"reflection"``.
    align_corners: only used by ``padding="reflection"``.
    kept: which of the points' leading (batch) axes the image has too, in
      order; the image is broadcast along the others.
    channels: the number of channels.
  """

  spatial: tuple[int, ...]
  order: int
  padding: str
  align_corners: bool
  kept: tuple[int, ...] = ()
  channels: int = 1


def kept_axes(image_batch: tuple[int, ...], lead: tuple[int, ...]) -> tuple[int, ...]:
  """`Spec.kept` for an image batch broadcast against the points' `lead`."""
  image_batch = (1,) * (len(lead) - len(image_batch)) + tuple(image_batch)
  return tuple(d for d, (i, o) in enumerate(zip(image_batch, lead)) if i == o)


class Stencil(NamedTuple):
  """The pixels that a batch of points reads, from `stencil`.

  Attributes:
    indices: K = 2**n (order 1), 4**n (order 3) or 1 (order 0) arrays
      ``(*lead, P, n)``, the k-th pixel of each point's stencil, right where
      `inside` holds and arbitrary elsewhere. Pixel k is, along axis a, tap
      ``k_a`` of that axis, with k written in base 2 (order 1) or 4 (order 3)
      as ``(k_0, ..., k_{n-1})``, the last axis varying fastest; tap 0 is the
      lowest pixel.
    inside: K boolean arrays ``(*lead, P)``, or None where the pixel is
      always inside: whether pixel k lies in the image. Pixels outside read 0.
    frac: orders 1 and 3: n arrays ``(*lead, P)``, the position
      ``t = x - floor(x)`` of the point past pixel ``floor(x)`` on each axis;
      order 0: None.
    slope: orders 1 and 3 and only if asked for: n arrays ``(*lead, P)``, the
      padding's derivative on each axis (0 where the coordinate is clipped,
      -1 where reflection mirrors it, else 1); else None.
    cubic: order 3: per axis, the 4 weights of its taps (`cubic_weights`);
      else None.
  """

  indices: list
  inside: list
  frac: list | None
  slope: list | None
  cubic: list | None = None


CUBIC_A = -0.75
"""The free parameter of Keys' cubic convolution kernel, as in PyTorch."""


def cubic_weights(t: jax.Array) -> list:
  """The 4 weights of Keys' kernel for taps ``floor(x) - 1 + k`` at ``t``.

  ``W(d) = (A + 2)|d|^3 - (A + 3)|d|^2 + 1`` for ``|d| <= 1`` and
  ``A|d|^3 - 5A|d|^2 + 8A|d| - 4A`` for ``1 < |d| < 2``, at the distances
  ``d = t + 1, t, 1 - t, 2 - t``; they sum to 1.
  """
  a = CUBIC_A
  near = lambda d: ((a + 2) * d - (a + 3)) * d * d + 1
  far = lambda d: ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
  return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def cubic_slopes(t: jax.Array) -> list:
  """The derivatives of `cubic_weights` with respect to t."""
  a = CUBIC_A
  near = lambda d: (3 * (a + 2) * d - 2 * (a + 3)) * d
  far = lambda d: (3 * a * d - 10 * a) * d + 8 * a
  return [far(t + 1), near(t), -near(1 - t), -far(2 - t)]


def stencil(coords: tuple, spec: Spec, slopes: bool = False) -> Stencil:
  """Returns the pixels each point reads and where it lies between them.

  Args:
    coords: n arrays ``(*lead, P)``, the points' pixel coordinates along
      each axis, in the compute dtype.
    spec: the static description of the read.
    slopes: whether to return the padding's derivatives (order 1).

  Returns:
    A `Stencil`. Its K pixels are lists rather than stacked ``(..., K)``
    arrays: on CPU, XLA runs K gathers and K fused multiply-adds several times
    faster than a stack of them and a reduction over the stencil axis.
  """
  spatial, order = spec.spatial, spec.order
  index_dtype = _index_dtype(max(spatial))
  per_axis, frac, slope, cubic = [], [], [], []
  for a, size in enumerate(spatial):
    pad = _fold_cubic if order == 3 else _pad_coordinate
    pad = functools.partial(pad, size=size, padding=spec.padding, align_corners=spec.align_corners)
    x = coords[a]
    if order != 0 and slopes:
      x, dx = jax.jvp(pad, (x,), (jnp.ones_like(x),))
      slope.append(dx)
    else:
      x = pad(x)
    if order != 0:
      pos = jnp.floor(x)
      frac.append(x - pos)
    else:
      pos = jnp.round(x)  # Half to even, as PyTorch.
    if order == 3:
      cubic.append(cubic_weights(frac[-1]))
      # Folding keeps x in [-3, size + 2] (reflection: [-3, period - 3]).
      i = jnp.where(pos >= -3, pos, -3).astype(index_dtype) - 1
      ends = [
          _pad_index(i + k, size, spec.padding, spec.align_corners) for k in range(4)
      ]
      per_axis.append(ends)
      continue
    # Padding keeps x in [-2, size + 1]; a NaN goes to -2, outside the image.
    i = jnp.where(pos >= -2, pos, -2).astype(index_dtype)
    # 0 <= i <= size - 1 as one unsigned comparison.
    unsigned = lambda j: jax.lax.bitcast_convert_type(j, _unsigned(j.dtype))
    ends = [(i, unsigned(i) <= size - 1)]
    if order == 1:
      ends.append((i + 1, unsigned(i + 1) <= size - 1))
    per_axis.append(ends)

  indices, inside = [], []
  for combo in itertools.product(*per_axis):
    indices.append(jnp.stack([i for i, _ in combo], axis=-1))
    masks = [m for _, m in combo if m is not None]
    inside.append(functools.reduce(operator.and_, masks) if masks else None)
  if order == 0:
    return Stencil(indices, inside, None, None)
  return Stencil(indices, inside, frac, slope or None, cubic or None)


def _unsigned(dtype):
  """The unsigned integer dtype of the same width as `dtype`."""
  return jnp.uint32 if jnp.dtype(dtype).itemsize == 4 else jnp.uint64


def weights(pixels: Stencil) -> list:
  """The weight of each pixel: prod over axes of t or 1 - t (order 1), of
  the taps' cubic weights (order 3)."""
  if pixels.frac is None:
    return [1]
  if pixels.cubic is not None:
    return [math.prod(combo) for combo in itertools.product(*pixels.cubic)]
  bits = itertools.product((0, 1), repeat=len(pixels.frac))
  return [math.prod(t if b else 1 - t for t, b in zip(pixels.frac, k)) for k in bits]


def gather(image: jax.Array, pixels: Stencil, spec: Spec, dtype, index=None) -> list:
  """The values of the stencil's pixels, 0 outside, in `dtype`.

  Args:
    image: ``(*kept, *spatial, C)``, indexed in place: a reshape would cost
      XLA a layout copy of the image's gradient when C is 1. With `index`,
      ``(N, *spatial, C)`` (no kept axes).
    pixels: from `stencil`.
    spec: the static description of the read.
    dtype: the compute dtype.
    index: optional integers ``(*lead, 1)`` in ``[0, N)``: each point reads
      image ``index`` of the N, as one more gather coordinate (no copy of
      the image per point, and no pixel of one image next to another's).

  Returns:
    K arrays ``(*lead, P, C)``, or ``(*lead, P)`` for one channel: without
    a channel axis of 1, XLA's kernels loop over the points rather than over
    an axis of 1.
  """
  batch, n = len(spec.kept), len(spec.spatial) + (index is not None)
  channels = image.shape[-1]
  window = () if channels == 1 else (channels,)
  channel_axis = pixels.indices[0].ndim - 1  # After (*lead, P).
  dims = jax.lax.GatherDimensionNumbers(
      offset_dims=(channel_axis,),
      collapsed_slice_dims=tuple(range(batch, batch + n)),
      start_index_map=tuple(range(batch, batch + n)),
      operand_batching_dims=tuple(range(batch)),
      start_indices_batching_dims=spec.kept,
  )
  indices = pixels.indices
  if index is not None:
    whole = jnp.broadcast_to(index, indices[0].shape[:-1]).astype(indices[0].dtype)[..., None]
    indices = [jnp.concatenate([whole, i], -1) for i in indices]
  out = []
  for i, inside in zip(indices, pixels.inside):
    if inside is None:
      value = jax.lax.gather(image, i, dims, (1,) * (batch + n) + (channels,), mode="clip")
      out.append((value if window else value[..., 0]).astype(dtype))
      continue
    if not window:
      mask = inside
    else:
      # The same test per element rather than per pixel: a mask that does
      # not depend on the channel makes LLVM split the channel loop on it
      # instead of vectorising (2-3 times slower on CPU).
      skip = jnp.where(inside, 0, channels).astype(jnp.int32)[..., None]
      mask = skip + jnp.arange(channels, dtype=jnp.int32) < channels
    value = jax.lax.gather(image, i, dims, (1,) * (batch + n) + (channels,), mode="clip")
    value = value if window else value[..., 0]
    out.append(jnp.where(mask, value, 0).astype(dtype))
  return out


def lerp(values: list, frac: list | None, cubic: list | None = None) -> jax.Array:
  """Interpolation of the pixels' values, one axis at a time.

  Order 1: ``v0 + t (v1 - v0)`` along the last axis, then the one before, and
  so on: the weighted sum of the pixels in fewer operations, and exact at
  t = 0. Order 3 (`cubic` given): the 4 taps' weighted sum along each axis.
  """
  if cubic is not None:
    for w in reversed(cubic):
      w = [x if x.ndim == values[0].ndim else x[..., None] for x in w]
      values = [
          w[0] * values[k] + w[1] * values[k + 1] + w[2] * values[k + 2] + w[3] * values[k + 3]
          for k in range(0, len(values), 4)
      ]
    return values[0]
  for t in reversed(frac or []):
    t = t if t.ndim == values[0].ndim else t[..., None]
    values = [v0 + t * (v1 - v0) for v0, v1 in zip(values[0::2], values[1::2])]
  return values[0]


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def interpolate(spec: Spec, dtype, image: jax.Array, coords: tuple, index=None) -> jax.Array:
  """`image` read at `coords` (see `stencil`); shapes as for `gather`."""
  pixels = stencil(coords, spec)
  values = gather(image, pixels, spec, dtype, index)
  return lerp(values, pixels.frac, pixels.cubic).astype(image.dtype)


@functools.partial(interpolate.defjvp, symbolic_zeros=True)
def _interpolate_jvp(spec, dtype, primals, tangents):
  """The derivative, written out rather than traced through the read.

  The coordinates' part is ``sum_k (sum_a dw_k / dx_a dx_a) v_k``, with the
  pixels v gathered for the value; its transpose, the gradient, is a product
  with the cotangent and a sum over channels per pixel. Autodiff of the read
  instead differentiates the pixel arithmetic piece by piece, into many more
  kernels.
  """
  image, coords, index = primals
  image_dot, coords_dot = tangents[:2]
  moving = [a for a, d in enumerate(coords_dot) if not isinstance(d, SymbolicZero)]
  pixels = stencil(coords, spec, slopes=bool(moving))
  values = gather(image, pixels, spec, dtype, index)
  out = lerp(values, pixels.frac, pixels.cubic).astype(image.dtype)
  parts = []
  if not isinstance(image_dot, SymbolicZero):
    # Converted first, so that the image's gradient (the transpose) is
    # accumulated in the compute dtype, as `write` does: a scatter-add in
    # bfloat16 is also several times slower on CPU.
    parts.append(lerp(
        gather(image_dot.astype(dtype), pixels, spec, dtype, index), pixels.frac, pixels.cubic
    ))
  if pixels.slope is not None and pixels.cubic is not None:
    # Order 3: per moving axis, the read with that axis's weights replaced by
    # their derivatives, times the tangent.
    for a in moving:
      step = pixels.slope[a] * jnp.where(pixels.slope[a] != 0, coords_dot[a], 0)
      kernels = list(pixels.cubic)
      kernels[a] = cubic_slopes(pixels.frac[a])
      d = lerp(values, pixels.frac, kernels)
      parts.append(d * (step if d.ndim == step.ndim else step[..., None]))
  elif pixels.slope is not None:
    # The padding's derivative times the tangent; `where` rather than the
    # product alone, so that the gradient is 0, not NaN, where the
    # coordinate is clipped next to an infinite pixel, as under autodiff.
    step = {
        a: pixels.slope[a] * jnp.where(pixels.slope[a] != 0, coords_dot[a], 0) for a in moving
    }
    factors = [(1 - t, t) for t in pixels.frac]
    shifts = []
    for bits in itertools.product((0, 1), repeat=len(factors)):
      # d/dx_a of the pixel's weight prod_b (t_b or 1 - t_b) is +-prod_{b != a}.
      shifts.append(sum(
          (d if bits[a] else -d)
          * math.prod(f[bits[b]] for b, f in enumerate(factors) if b != a)
          for a, d in step.items()
      ))
    if values[0].ndim == shifts[0].ndim:  # One channel.
      parts.extend(s * v for s, v in zip(shifts, values))
    elif 0 < spec.channels <= 4:
      # Per channel: the gradient's sum over the channels of the cotangent
      # times the pixels is then a few fused multiply-adds, where a
      # broadcast's transpose is a reduction kernel over a short minor axis,
      # several times slower on CPU.
      parts.append(jnp.stack(
          [sum(s * v[..., c] for s, v in zip(shifts, values)) for c in range(spec.channels)],
          axis=-1,
      ))
    else:
      parts.extend(s[..., None] * v for s, v in zip(shifts, values))
  if not parts:
    return out, jnp.zeros_like(out)
  return out, sum(parts).astype(image.dtype)


def read(image: jax.Array, coords: tuple, spec: Spec, dtype, index=None) -> jax.Array:
  """`image` ``(*kept, *spatial, C)`` read at `coords` (see `stencil`), or
  ``(N, *spatial, C)`` with each point's image `index` (see `gather`).

  Returns:
    ``(*lead, P, C)`` in the image's dtype.
  """
  out = interpolate(spec, jnp.dtype(dtype), image, coords, index)
  return out if image.shape[-1] != 1 else out[..., None]  # See `gather`.


def write(values: jax.Array, coords: tuple, spec: Spec, dtype) -> jax.Array:
  """The adjoint of `read`: scatter-adds ``weight * values`` into images.

  Args:
    values: ``(*lead, P, C)``.
    coords: n arrays ``(*lead, P)``, as for `stencil`.
    spec: the static description of the write (its `kept` is not used:
      there is one canvas per batch of points).
    dtype: the accumulation dtype.

  Returns:
    ``(*lead, *spatial, C)`` in the dtype of `values`.
  """
  channels, out_dtype = values.shape[-1], values.dtype
  lead, n = values.shape[:-2], len(spec.spatial)
  values = values.astype(dtype)
  pixels = stencil(coords, spec)
  # The updates of every pixel of the stencil side by side along the points
  # axis; pixels outside go past the end, where the scatter drops them.
  updates = jnp.concatenate([jnp.asarray(w, dtype)[..., None] * values for w in weights(pixels)], -2)
  outside = jnp.asarray(spec.spatial, pixels.indices[0].dtype)
  index = jnp.concatenate(
      [
          i if m is None else jnp.where(m[..., None], i, outside)
          for i, m in zip(pixels.indices, pixels.inside)
      ],
      -2,
  )
  batch = len(lead)
  dims = jax.lax.ScatterDimensionNumbers(
      update_window_dims=(batch + 1,),
      inserted_window_dims=tuple(range(batch, batch + n)),
      scatter_dims_to_operand_dims=tuple(range(batch, batch + n)),
      operand_batching_dims=tuple(range(batch)),
      scatter_indices_batching_dims=tuple(range(batch)),
  )
  canvas = jax.lax.scatter_add(
      jnp.zeros((*lead, *spec.spatial, channels), dtype), index, updates, dims,
      mode=jax.lax.GatherScatterMode.FILL_OR_DROP,
  )
  return canvas.astype(out_dtype)
