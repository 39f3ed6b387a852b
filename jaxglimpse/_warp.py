"""The glue between a warp's grid and the sampler: what every grid glimpse shares.

The affine, projective and thin-plate-spline glimpses differ only in how a
glimpse's normalised coordinate ``u`` maps to the image's normalised
coordinate ``x``. Everything else lives here: where the samples (and their
sub-samples) sit in ``u``, the conversion of ``x`` to pixels, the affine
grid as one matrix product per axis, and the read and the write that
broadcast batch axes, keep the image's own batch axes in place, average the
sub-samples and mask points that have no image position.

Supersampling. With ``supersample=s`` (per axis) each output sample is the
mean of ``s_1 ... s_n`` reads at the centres of ``s`` equal parts of its
cell, as torchvision's ``roi_align`` places ``sampling_ratio`` samples in a
bin. A sample's cell is the sample spacing centred on it: ``2 / N`` in ``u``
with ``align_corners=False``, ``2 / (N - 1)`` (2 when N = 1) with True. In
centred sample indices ``c = j - (N - 1) / 2`` the sub-samples of sample j
sit at ``c + ((2m + 1) / s - 1) / 2`` for m = 0 ... s - 1, whatever
`align_corners`. The write is the exact transpose: each sample is spread
over its sub-samples with weight ``1 / (s_1 ... s_n)``.
"""

from __future__ import annotations

import functools
import math
import operator

import jax
import jax.numpy as jnp
import numpy as np

from jaxglimpse._interpolation import Spec, kept_axes, read, write

LIMIT = 1e18
"""Transform entries and projected pixel coordinates are clamped to ±LIMIT
(gradient 0 beyond), so that grids stay finite in float32."""


def clamp(x: jax.Array, limit: float = LIMIT) -> jax.Array:
  """x clipped to ±limit, written with `where`: jnp.clip's gradient splits
  ties with a division, which costs the gradient a kernel of its own."""
  x = jnp.where(x < -limit, -limit, x)
  return jnp.where(x > limit, limit, x)


def centred(shape: tuple[int, ...], supersample: tuple[int, ...]) -> list[np.ndarray]:
  """Per axis, the centred sample index of each (sub-)sample, fine index
  ``j * s + m``, in float64."""
  out = []
  for size, s in zip(shape, supersample):
    c = np.arange(size) - (size - 1) / 2
    if s > 1:
      c = (c[:, None] + ((2 * np.arange(s) + 1) / s - 1) / 2).reshape(-1)
    out.append(c)
  return out


def unit_scale(shape: tuple[int, ...], align_corners: bool) -> np.ndarray:
  """Per axis, ``du / dc``: 2 / N, or 2 / (N - 1) (2 when N = 1) if aligned."""
  if align_corners:
    return np.array([2 / (m - 1) if m > 1 else 2.0 for m in shape])
  return np.array([2 / m for m in shape])


def units(shape: tuple[int, ...], align_corners: bool, supersample: tuple[int, ...]) -> np.ndarray:
  """``(P, n)``: the normalised glimpse coordinate of every (sub-)sample, in
  row-major order; with ``align_corners=True`` an axis of 1 sample is at 0."""
  axes = [c * k for c, k in zip(centred(shape, supersample), unit_scale(shape, align_corners))]
  mesh = np.meshgrid(*axes, indexing="ij")
  return np.stack([m.reshape(-1) for m in mesh], axis=-1)


def basis(shape: tuple[int, ...], supersample: tuple[int, ...], dtype) -> jax.Array:
  """``(n + 1, P)``: ``[c_0; ...; c_{n-1}; 1]`` over the (sub-)samples."""
  mesh = np.meshgrid(*centred(shape, supersample), indexing="ij")
  rows = [m.reshape(-1) for m in mesh] + [np.ones(mesh[0].size)]
  return jnp.asarray(np.stack(rows), dtype)


def pixel_scale(image_shape: tuple[int, ...], align_corners: bool) -> tuple[np.ndarray, np.ndarray]:
  """``(h, o)`` per axis with pixel ``p = h x + o`` for normalised x."""
  size = np.asarray(image_shape, dtype=np.float64)
  if align_corners:
    return (size - 1) / 2, (size - 1) / 2
  return size / 2, (size - 1) / 2


def affine_scale(
    shape: tuple[int, ...], image_shape: tuple[int, ...], align_corners: bool
) -> tuple[np.ndarray, np.ndarray]:
  """``(scale, offset)``, each ``(n, n + 1)``: ``theta * scale + offset``
  maps ``[c; 1]`` to pixels (see `affine_coords`)."""
  n = len(shape)
  scale = np.zeros((n, n + 1))
  offset = np.zeros((n, n + 1))  # (S_i - 1) / 2, in the column of the ones.
  for i, size in enumerate(image_shape):
    if align_corners:
      # N = 1 puts its one sample at c = 0; its sub-samples span a cell of 2.
      scale[i, :n] = [(size - 1) / max(m - 1, 1) for m in shape]
      scale[i, n] = (size - 1) / 2
    else:
      scale[i, :n] = [size / m for m in shape]
      scale[i, n] = size / 2
    offset[i, n] = (size - 1) / 2
  return scale, offset


def apply_rows(rows: jax.Array, points: jax.Array) -> tuple[jax.Array, ...]:
  """``rows`` ``(*batch, m, n + 1)`` times the basis ``(n + 1, P)``: m arrays
  ``(*batch, P)``, one matrix product per row.

  The rows are kept apart (not stacked) so that the gradient of each is a
  kernel of its own, rather than one kernel that evaluates every row's branch
  for every element; and the gradient with respect to the rows is one matrix
  product per row, rather than a reduction over the samples per entry.
  """
  if points.shape[0] == 2:  # A multiply-add, fused into the read, beats a kernel for the product.
    return tuple(rows[..., i, :1] * points[0] + rows[..., i, 1:] for i in range(rows.shape[-2]))
  return tuple(
      jnp.einsum("...k,kp->...p", rows[..., i, :], points, precision=jax.lax.Precision.HIGHEST)
      for i in range(rows.shape[-2])
  )


def affine_coords(
    theta: jax.Array,
    shape: tuple[int, ...],
    image_shape: tuple[int, ...],
    align_corners: bool,
    supersample: tuple[int, ...] | None = None,
) -> tuple[jax.Array, ...]:
  """`affine_grid` for a batch of thetas: n arrays ``(*batch, P)`` of pixels.

  Array i holds axis i's coordinate of the P samples (sub-samples included),
  in row-major order. The grid equation is expanded around the centred sample
  index ``c_k = j_k - (N_k - 1) / 2`` (exact half-integers)::

      p_i = sum_k theta[i, k] step[i, k] c_k + h_i theta[i, n] + (S_i - 1) / 2,

  with ``u_k = 2 c_k / N_k`` and ``step = S_i / N_k``, ``h = S_i / 2``
  (align_corners=False) or ``u_k = 2 c_k / (N_k - 1)`` and
  ``step = (S_i - 1) / (N_k - 1)``, ``h = (S_i - 1) / 2`` (True). It equals
  the equations of `jaxglimpse.affine`, but an identity theta with
  ``shape == image_shape`` lands exactly on the pixel centres, so a sample
  meant for pixel 0 is not read at -1e-16, where the gradient would be the
  backward rather than the forward difference.
  """
  supersample = supersample or (1,) * len(shape)
  theta = clamp(theta)
  scale, offset = affine_scale(shape, image_shape, align_corners)
  theta = theta * jnp.asarray(scale, theta.dtype) + jnp.asarray(offset, theta.dtype)
  return apply_rows(theta, basis(shape, supersample, theta.dtype))


def read_points(
    image: jax.Array,
    coords: tuple[jax.Array, ...],
    shape: tuple[int, ...],
    supersample: tuple[int, ...],
    spec: Spec,
    dtype,
    valid: jax.Array | None = None,
    index: jax.Array | None = None,
) -> jax.Array:
  """The glimpse ``(*batch, *shape, C)`` of `image` at the (sub-)samples.

  Args:
    image: ``(*image_batch, *spatial, C)``.
    coords: n arrays ``(*coords_batch, P)`` of pixels, P covering the
      sub-samples; the batch shapes broadcast.
    shape: the glimpse's spatial shape.
    supersample: the sub-samples per axis.
    spec: the read's options; its `kept` and `channels` are filled in here.
    dtype: the compute dtype.
    valid: optional ``(*coords_batch, P)``: points where it is False read 0.
    index: optional ints ``(*coords_batch)``: `image` is ``(N, *spatial,
      C)`` and each batch of points reads image ``index`` of the N.
  """
  out = read_flat(image, coords, spec, dtype, valid, index)
  return average(out, out.shape[:-2], shape, supersample, out.shape[-1])


def read_flat(
    image: jax.Array, coords: tuple[jax.Array, ...], spec: Spec, dtype,
    valid: jax.Array | None = None, index: jax.Array | None = None,
) -> jax.Array:
  """`read_points` before the sub-samples are averaged: ``(*batch, P, C)``."""
  n = len(coords)
  image_shape = image.shape[-(n + 1) : -1]
  channels = image.shape[-1]
  image_batch = image.shape[: -(n + 1)] if index is None else ()
  extra = () if index is None else (index.shape,)
  batch = np.broadcast_shapes(image_batch, *(c.shape[:-1] for c in coords), *extra)
  coords = tuple(jnp.broadcast_to(c, (*batch, c.shape[-1])) for c in coords)
  kept = kept_axes(image_batch, batch) if index is None else ()
  if index is None:
    # The batch axes the image is broadcast along are dropped, not copied.
    image = image.reshape(*(batch[d] for d in kept), *image_shape, channels)
  else:
    index = jnp.broadcast_to(index, batch)[..., None]
  out = read(image, coords, spec._replace(kept=kept, channels=channels), dtype, index)
  if valid is not None:
    out = jnp.where(jnp.broadcast_to(valid, (*batch, valid.shape[-1]))[..., None], out, 0)
  return out


def average(out, batch, shape, supersample, channels, scale=None):
  """``(*batch, P, C)`` to ``(*batch, *shape, C)``, the mean of the sub-samples,
  times `scale` ``(*batch)`` if given (before the one rounding to the dtype)."""
  if all(s == 1 for s in supersample) and scale is None:
    return out.reshape(*batch, *shape, channels)
  fine = [x for pair in zip(shape, supersample) for x in pair]
  total = out.reshape(*batch, *fine, channels).astype(jnp.promote_types(out.dtype, jnp.float32))
  axes = tuple(len(batch) + 2 * a + 1 for a in range(len(shape)))
  total = _sum_axes(axes, total) / math.prod(supersample)
  if scale is not None:
    total = total * scale.astype(total.dtype)[(...,) + (None,) * (len(shape) + 1)]
  return total.astype(out.dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _sum_axes(axes: tuple[int, ...], x: jax.Array) -> jax.Array:
  """``jnp.sum(x, axes)``, computed as a sum of strided slices per axis.

  XLA on CPU runs a reduction over axes that are not minor up to 10 times
  slower than additions of slices, which also fuse with the read that feeds
  them. The tangent is the plain reduction, whose transpose (the gradient)
  is a broadcast, where the slices' transpose would be one zero-padded
  copy of the input per slice.
  """
  for axis in reversed(axes):
    x = functools.reduce(
        operator.add, [jax.lax.index_in_dim(x, i, axis, keepdims=False) for i in range(x.shape[axis])]
    )
  return x


@_sum_axes.defjvp
def _sum_axes_jvp(axes, primals, tangents):
  return _sum_axes(axes, *primals), jnp.sum(tangents[0], axis=axes)


def write_points(
    glimpse: jax.Array,
    coords: tuple[jax.Array, ...],
    image_shape: tuple[int, ...],
    supersample: tuple[int, ...],
    spec: Spec,
    dtype,
    valid: jax.Array | None = None,
) -> jax.Array:
  """The transpose of `read_points`: ``(*batch, *image_shape, C)`` canvases.

  Args:
    glimpse: ``(*glimpse_batch, *shape, C)``.
    coords, supersample, dtype, valid: as for `read_points`, with
      ``spec.spatial == image_shape``.
  """
  n = len(image_shape)
  shape = glimpse.shape[-(n + 1) : -1]
  channels = glimpse.shape[-1]
  batch = np.broadcast_shapes(glimpse.shape[: -(n + 1)], *(c.shape[:-1] for c in coords))
  coords = tuple(jnp.broadcast_to(c, (*batch, c.shape[-1])) for c in coords)
  values = jnp.broadcast_to(glimpse.astype(dtype), (*batch, *glimpse.shape[-(n + 1) :]))
  if any(s > 1 for s in supersample):
    fine = [x for m, s in zip(shape, supersample) for x in (m, s)]
    values = values / math.prod(supersample)
    values = jnp.broadcast_to(
        values.reshape(*batch, *(x for m in shape for x in (m, 1)), channels),
        (*batch, *fine, channels),
    )
  values = values.reshape(*batch, -1, channels)
  if valid is not None:
    values = jnp.where(jnp.broadcast_to(valid, values.shape[:-1])[..., None], values, 0)
  spec = spec._replace(kept=tuple(range(len(batch))), channels=channels)
  return write(values, coords, spec, dtype).astype(glimpse.dtype)
