"""Projective grids, glimpses and writes, and homographies from four points.

A projective glimpse maps the homogeneous normalised glimpse coordinate
``(u, 1)`` through an ``(n + 1) x (n + 1)`` matrix and divides by the last
component::

    (y, w) = matrix @ (u, 1),    x = y / w,

then reads the image at x as `jaxglimpse.affine_glimpse` does (the same
normalised coordinates, `align_corners`, padding, orders and
supersampling). A matrix whose last row is ``(0, ..., 0, 1)`` is the affine
glimpse of its first n rows: the same arithmetic, bit for bit in float64.
In float32 it agrees to rounding: XLA may fuse the two programs differently
(seen with supersampling, and on older jax).
Points with ``w <= 0`` (in practice ``w`` below ``1e-19`` in float32,
``1e-154`` in float64) lie at or behind the horizon: they have no image
position and read 0, whatever the padding, with finite values and
gradients. Other points are clamped to ±1e18 pixels. `homography_from_points` builds
the 2-D matrix that maps four points to four others.
"""

from __future__ import annotations

from collections.abc import Sequence
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxglimpse import _checks, _warp
from jaxglimpse._interpolation import Spec


def _matrix(fn: str, matrix: ArrayLike) -> tuple[jax.Array, int]:
  """Returns a projective matrix as a float array and its number of spatial axes."""
  matrix = _checks.float_param(fn, "matrix", matrix)
  if matrix.ndim < 2 or matrix.shape[-1] != matrix.shape[-2] or matrix.shape[-1] < 2:
    raise ValueError(
        f"{fn}: matrix must have shape (*batch, n + 1, n + 1) for n = 1, 2 or 3 "
        f"spatial axes, got shape {matrix.shape}."
    )
  return matrix, _checks.ndim_of(fn, f"matrix of shape {matrix.shape}", matrix.shape[-1] - 1)


def _coords(matrix, shape, image_shape, align_corners, supersample):
  """n arrays ``(*batch, P)`` of pixels and ``(*batch, P)``: where w > 0.

  Written as the affine grid of `jaxglimpse._warp.affine_coords` with the
  denominator folded in: in centred sample indices c, pixel
  ``p_i = (A_i . [c; 1]) / (D . [c; 1])`` with ``D = matrix[n] * du/dc`` and
  ``A_i = matrix[i] * scale_i + o_i D``, so that a last row ``(0, ..., 0, 1)``
  gives D = (0, ..., 0, 1), w = 1 and exactly the affine grid's arithmetic.
  """
  n = len(shape)
  matrix = _warp.clamp(matrix)
  scale, offset = _warp.affine_scale(shape, image_shape, align_corners)
  per_unit = np.append(_warp.unit_scale(shape, align_corners), 1.0)
  denominator = matrix[..., n:, :] * jnp.asarray(per_unit, matrix.dtype)
  rows = matrix[..., :n, :] * jnp.asarray(scale, matrix.dtype)
  rows = rows + jnp.asarray(offset[:, n:], matrix.dtype) * denominator
  points = _warp.basis(shape, supersample, matrix.dtype)
  numerators = _warp.apply_rows(rows, points)
  (w,) = _warp.apply_rows(denominator, points)
  valid = w > _horizon(w.dtype)
  w = jnp.where(valid, w, 1)
  coords = []
  for q in numerators:
    # Beyond ±LIMIT pixels the clamp's value, without dividing, so that the
    # gradient (-q / w^2) stays finite.
    near = jnp.abs(q) <= _warp.LIMIT * w
    p = q / jnp.where(near, w, 1)
    coords.append(jnp.where(valid, jnp.where(near, p, jnp.sign(q) * _warp.LIMIT), 0))
  return tuple(coords), valid


def _horizon(dtype) -> float:
  """Points with ``w`` at or below this lie on or behind the horizon: the
  square root of the smallest normal number (1e-19 in float32, 1e-154 in
  float64), so that ``1 / w**2`` stays finite."""
  return float(np.sqrt(np.finfo(dtype).tiny))


def projective_grid(
    matrix: ArrayLike,
    shape: Sequence[int],
    image_shape: Sequence[int],
    *,
    align_corners: bool = False,
) -> jax.Array:
  """Returns the pixel positions that a projective glimpse samples.

  Sample j sits at the normalised glimpse coordinate u of `affine_grid`; it
  maps to ``x = y / w`` with ``(y, w) = matrix @ (u, 1)``, and x to pixels as
  in `affine_grid`. Coordinates are clamped to ±1e18 pixels.

  Args:
    matrix: ``(*batch, n + 1, n + 1)``, in axis order, acting on homogeneous
      normalised coordinates.
    shape: the glimpse's spatial shape, n positive Python ints (static).
    image_shape: the image's spatial shape, n positive Python ints (static).
    align_corners: as in `affine_grid`.

  Returns:
    ``(*batch, *shape, n)`` pixel coordinates in axis order, in float32 or
    wider; NaN where ``w <= 0`` (at or behind the horizon).

  Raises:
    TypeError: if matrix is not floating-point, or a shape holds non-ints.
    ValueError: if matrix is not ``(*batch, n + 1, n + 1)`` with n in 1..3,
      or a shape is empty, non-positive or not n long.

  Examples:
    >>> import jaxglimpse as jg
    >>> import jax.numpy as jnp
    >>> halve = jnp.array([[1.0, 0.0], [0.0, 2.0]])  # x = u / 2.
    >>> jg.projective_grid(halve, (4,), (4,))[..., 0].tolist()
    [0.75, 1.25, 1.75, 2.25]
  """
  fn = "projective_grid"
  matrix, n = _matrix(fn, matrix)
  shape = _checks.shape_tuple(fn, "shape", shape)
  image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
  _checks.per_axis(fn, "shape", shape, n, f"matrix of shape {matrix.shape}")
  _checks.per_axis(fn, "image_shape", image_shape, n, f"matrix of shape {matrix.shape}")
  matrix = matrix.astype(_checks.compute_dtype(matrix))
  coords, valid = _coords(matrix, shape, image_shape, align_corners, (1,) * n)
  grid = jnp.where(valid[..., None], jnp.stack(coords, -1), jnp.nan)
  return grid.reshape(*matrix.shape[:-2], *shape, n)


def _prepare(
    fn: str, x: ArrayLike, x_name: str, matrix: ArrayLike, shape: Sequence[int], shape_name: str,
    order: int, padding: str, align_corners: bool, supersample: int | Sequence[int],
) -> tuple[jax.Array, jax.Array, tuple[int, ...], tuple[int, ...], jnp.dtype]:
  """Shared checks of glimpse and write: (x, matrix, shape, supersample, dtype)."""
  _checks.sampler_options(fn, order, padding, align_corners)
  matrix, n = _matrix(fn, matrix)
  x, shape = _checks.warp_operand(
      fn, x, x_name, shape, shape_name, n, f"matrix of shape {matrix.shape}", matrix.shape[:-2]
  )
  supersample = _checks.supersample(fn, supersample, n)
  dtype = _checks.compute_dtype(x, matrix)
  return x, matrix.astype(dtype), shape, supersample, dtype


def projective_glimpse(
    image: ArrayLike,
    matrix: ArrayLike,
    shape: Sequence[int],
    *,
    align_corners: bool = False,
    padding: str = "zeros",
    order: int = 1,
    supersample: int | Sequence[int] = 1,
) -> jax.Array:
  """Returns the projective glimpse ``(*batch, *shape, C)``.

  The image is read at the positions of `projective_grid`::

      glimpse[j] = mean_sub-samples sum_p w(p; projective_grid(matrix)[j]) image[p],

  exactly as `affine_glimpse` reads at `affine_grid`. Points at or behind the
  horizon (``w <= 0``) read 0.

  Args:
    image: ``(*batch, *spatial, C)``, a float image with n spatial axes.
    matrix: ``(*batch, n + 1, n + 1)``, in axis order; batch axes broadcast
      with the image's.
    shape: the glimpse's spatial shape, n positive Python ints (static).
    align_corners, padding, order, supersample: as in `affine_glimpse`.

  Returns:
    ``(*batch, *shape, C)`` in the image's dtype.

  Raises:
    TypeError: for an integer image or matrix, or a non-int shape.
    ValueError: for a malformed matrix or shape, an image with too few axes,
      batch shapes that do not broadcast, an unknown padding or order, or a
      bad supersample.

  Examples:
    >>> import jaxglimpse as jg
    >>> import jax.numpy as jnp
    >>> image = jnp.arange(16.0).reshape(4, 4, 1)
    >>> zoom = jnp.diag(jnp.array([0.5, 0.5, 1.0]))  # The central 2x2.
    >>> jg.projective_glimpse(image, zoom, (2, 2))[..., 0].tolist()
    [[5.0, 6.0], [9.0, 10.0]]

  References:
    Jaderberg, Simonyan, Zisserman and Kavukcuoglu, "Spatial Transformer
    Networks", NeurIPS 2015.
  """
  image, matrix, shape, supersample, dtype = _prepare(
      "projective_glimpse", image, "image", matrix, shape, "shape", order, padding,
      align_corners, supersample,
  )
  n = len(shape)
  image_shape = image.shape[-(n + 1) : -1]
  coords, valid = _coords(matrix, shape, image_shape, align_corners, supersample)
  spec = Spec(image_shape, order, padding, align_corners)
  return _warp.read_points(image, coords, shape, supersample, spec, dtype, valid)


def projective_write(
    glimpse: ArrayLike,
    matrix: ArrayLike,
    image_shape: Sequence[int],
    *,
    align_corners: bool = False,
    padding: str = "zeros",
    order: int = 1,
    supersample: int | Sequence[int] = 1,
) -> jax.Array:
  """Returns the glimpse spread back onto an image-sized canvas.

  The exact transpose of `projective_glimpse` as a linear map of the image,
  as `affine_write` is of `affine_glimpse`; samples at or behind the horizon
  write nothing.

  Args:
    glimpse: ``(*batch, *shape, C)``, a float glimpse with n spatial axes.
    matrix: ``(*batch, n + 1, n + 1)``, in axis order; batch axes broadcast.
    image_shape: the canvas's spatial shape, n positive Python ints (static).
    align_corners, padding, order, supersample: as the read used.

  Returns:
    ``(*batch, *image_shape, C)`` in the glimpse's dtype.

  Raises:
    ValueError, TypeError: as `projective_glimpse`.

  Examples:
    >>> import jaxglimpse as jg
    >>> import jax.numpy as jnp
    >>> right_half = jnp.array([[0.5, 0.5], [0.0, 1.0]])
    >>> jg.projective_write(jnp.ones((2, 1)), right_half, (4,))[..., 0].tolist()
    [0.0, 0.0, 1.0, 1.0]
  """
  glimpse, matrix, image_shape, supersample, dtype = _prepare(
      "projective_write", glimpse, "glimpse", matrix, image_shape, "image_shape", order,
      padding, align_corners, supersample,
  )
  n = len(image_shape)
  shape = glimpse.shape[-(n + 1) : -1]
  coords, valid = _coords(matrix, shape, image_shape, align_corners, supersample)
  spec = Spec(image_shape, order, padding, align_corners)
  return _warp.write_points(glimpse, coords, image_shape, supersample, spec, dtype, valid)


def _collinear(points: np.ndarray) -> bool:
  """Whether any three of the four points ``(..., 4, 2)`` lie on a line."""
  scale = np.max(np.abs(points - points.mean(axis=-2, keepdims=True)), axis=(-2, -1))
  for i, j, k in itertools.combinations(range(4), 3):
    a, b = points[..., j, :] - points[..., i, :], points[..., k, :] - points[..., i, :]
    cross = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    if np.any(np.abs(cross) <= 1e-9 * scale**2):
      return True
  return False


def homography_from_points(src: ArrayLike, dst: ArrayLike) -> jax.Array:
  """Returns the 2-D projective matrix that maps four points to four others.

  The matrix H with ``H[2, 2] = 1`` and ``(dst_k, 1) ~ H (src_k, 1)`` for
  k = 0..3, as OpenCV's ``getPerspectiveTransform``: the 8 unknowns solve::

      h00 a + h01 b + h02 - h20 a a' - h21 b a' = a'
      h10 a + h11 b + h12 - h20 a b' - h21 b b' = b'

  for each pair ``(a, b) -> (a', b')``. Use it with `projective_glimpse`:
  `src` are then points of the glimpse and `dst` where they land in the
  image, both in normalised coordinates, in axis order.

  Args:
    src: ``(*batch, 4, 2)``, the points to map.
    dst: ``(*batch, 4, 2)``, where they go; batch shapes broadcast.

  Returns:
    ``(*batch, 3, 3)``, float32 or wider, differentiable in both. Under
    ``jit``, where three points of src or of dst are collinear (no such map
    exists), it is the identity with zero gradients.

  Raises:
    TypeError: if src or dst is not floating-point.
    ValueError: if they are not ``(*batch, 4, 2)`` or their batch shapes do
      not broadcast, or, for concrete (not traced) arguments, if three points
      of src or of dst are collinear.

  Examples:
    >>> import jaxglimpse as jg
    >>> import jax.numpy as jnp
    >>> square = jnp.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    >>> (jg.homography_from_points(square, 0.5 * square + 0.25).round(6) + 0.0).tolist()
    [[0.5, 0.0, 0.25], [0.0, 0.5, 0.25], [0.0, 0.0, 1.0]]
  """
  fn = "homography_from_points"
  src = _checks.float_param(fn, "src", src)
  dst = _checks.float_param(fn, "dst", dst)
  for name, x in (("src", src), ("dst", dst)):
    if x.ndim < 2 or x.shape[-2:] != (4, 2):
      raise ValueError(f"{fn}: {name} must have shape (*batch, 4, 2), got shape {x.shape}.")
  batch = _checks.batch_shape(fn, src=src.shape[:-2], dst=dst.shape[:-2])
  for name, x in (("src", src), ("dst", dst)):
    if not isinstance(x, jax.core.Tracer) and _collinear(np.asarray(x, np.float64)):
      raise ValueError(
          f"{fn}: three of the four {name} points are collinear, so no "
          f"projective map exists; got {np.asarray(x).tolist()}."
      )
  dtype = _checks.compute_dtype(src, dst)
  src = jnp.broadcast_to(src.astype(dtype), (*batch, 4, 2))
  dst = jnp.broadcast_to(dst.astype(dtype), (*batch, 4, 2))
  a, b = src[..., 0], src[..., 1]
  a2, b2 = dst[..., 0], dst[..., 1]
  one, zero = jnp.ones_like(a), jnp.zeros_like(a)
  rows_a = jnp.stack([a, b, one, zero, zero, zero, -a * a2, -b * a2], -1)
  rows_b = jnp.stack([zero, zero, zero, a, b, one, -a * b2, -b * b2], -1)
  system = jnp.concatenate([rows_a, rows_b], axis=-2)  # (*batch, 8, 8)
  rhs = jnp.concatenate([a2, b2], axis=-1)
  # A collinear triple makes the system singular: solve a harmless one there.
  cond = jnp.linalg.cond(jax.lax.stop_gradient(system))
  bad = ~(cond < 1 / jnp.finfo(dtype).eps)
  system = jnp.where(bad[..., None, None], jnp.eye(8, dtype=dtype), system)
  identity = jnp.asarray([1, 0, 0, 0, 1, 0, 0, 0], dtype)
  rhs = jnp.where(bad[..., None], identity, rhs)
  h = jnp.linalg.solve(system, rhs[..., None])[..., 0]
  h = jnp.concatenate([h, jnp.ones_like(h[..., :1])], axis=-1)
  return h.reshape(*batch, 3, 3)
