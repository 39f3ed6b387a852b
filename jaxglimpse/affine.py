"""Affine grids and the spatial transformer glimpse, in n dimensions.

An affine glimpse of N_1 x ... x N_n samples places sample j at the normalised
glimpse coordinate ``u`` (one entry per axis, in [-1, 1]), maps it to the
image's normalised coordinate ``x = theta @ [u; 1]``, converts that to pixels
and reads the image there as `jaxglimpse.sample` does. Along an axis of N
samples and an image axis of S pixels::

    align_corners=False (default, PyTorch's):
        u_j = (2j + 1) / N - 1,                  p = ((x + 1) S - 1) / 2
    align_corners=True:
        u_j = 2j / (N - 1) - 1  (0 if N = 1),    p = (x + 1) (S - 1) / 2

With ``align_corners=False`` normalised -1 and +1 are the outer edges of the
first and last pixels; with ``align_corners=True`` they are those pixels'
centres. These are PyTorch's ``affine_grid`` and ``grid_sample``, except that
theta here acts in axis order ((y, x) for images) where PyTorch uses (x, y):
`theta_from_torch` and `theta_to_torch` convert.

`affine_write` is the exact transpose of `affine_glimpse` as a linear map of
the image; `box_to_affine` and `affine_to_box` convert to and from the `Box`
form shared with the Gaussian glimpse.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxglimpse import _checks, _warp
from jaxglimpse._interpolation import Spec
from jaxglimpse.params import Box


THETA_LIMIT = _warp.LIMIT
"""Entries of theta are clamped to ±THETA_LIMIT (gradient 0 beyond), so that
the grid stays finite in float32 for any finite theta."""


def _flip_axes(theta: jax.Array) -> jax.Array:
  n = theta.shape[-2]
  linear = theta[..., ::-1, :n][..., ::-1]
  return jnp.concatenate([linear, theta[..., ::-1, n:]], axis=-1)


def theta_from_torch(theta: ArrayLike) -> jax.Array:
  """Returns a PyTorch ``affine_grid`` theta rewritten in axis order.

  PyTorch orders the axes of theta (x, y) or (x, y, z), fastest first; here
  they follow the array's axes, (y, x) or (z, y, x). The conversion reverses
  the n rows and the first n columns; the translation column stays last. For
  the same theta, ``affine_glimpse`` and PyTorch's ``affine_grid`` followed by
  ``grid_sample`` (on channel-first arrays) agree in values and gradients.

  Args:
    theta: ``(*batch, n, n + 1)``, a PyTorch theta (as an array).

  Returns:
    ``(*batch, n, n + 1)``, the same map in axis order. The conversion is its
    own inverse: `theta_to_torch` does the same.

  Raises:
    TypeError: if theta is not floating-point.
    ValueError: if theta is not ``(*batch, n, n + 1)`` with n in 1..3.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> jg.theta_from_torch(jnp.array([[1., 2., 3.], [4., 5., 6.]])).tolist()
    [[5.0, 4.0, 6.0], [2.0, 1.0, 3.0]]
  """
  theta, _ = _checks.theta("theta_from_torch", theta)
  return _flip_axes(theta)


def theta_to_torch(theta: ArrayLike) -> jax.Array:
  """Returns a theta in axis order rewritten for PyTorch's ``affine_grid``.

  The inverse of `theta_from_torch` (and the same operation): reverses the n
  rows and the first n columns.

  Args:
    theta: ``(*batch, n, n + 1)`` in axis order.

  Returns:
    ``(*batch, n, n + 1)`` in PyTorch's (x, y[, z]) order.

  Raises:
    TypeError: if theta is not floating-point.
    ValueError: if theta is not ``(*batch, n, n + 1)`` with n in 1..3.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> jg.theta_to_torch(jnp.array([[5., 4., 6.], [2., 1., 3.]])).tolist()
    [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
  """
  theta, _ = _checks.theta("theta_to_torch", theta)
  return _flip_axes(theta)


def _scale_shift(scale: jax.Array, shift: jax.Array) -> jax.Array:
  """``[diag(scale) | shift]``; scale and shift have one shape ``(*batch, n)``."""
  n = scale.shape[-1]
  eye = np.eye(n, dtype=bool)
  linear = jnp.where(eye, scale[..., None, :], jnp.zeros((), scale.dtype))
  return jnp.concatenate([linear, shift[..., :, None]], axis=-1)


def scale_shift_theta(scale: ArrayLike, shift: ArrayLike) -> jax.Array:
  """Returns the shear-free theta ``[diag(scale) | shift]``.

  Along axis i, ``x_i = scale_i * u_i + shift_i`` in normalised coordinates:
  the glimpse spans `scale` times the image's extent, centred at `shift`.

  Args:
    scale: ``(*batch, n)``, per-axis scale, in axis order.
    shift: ``(*batch, n)``, per-axis translation, in axis order. The batch
      shapes of scale and shift broadcast.

  Returns:
    theta ``(*batch, n, n + 1)`` in the dtype of ``scale + shift``.

  Raises:
    TypeError: if scale or shift is not floating-point.
    ValueError: if their last axes differ or are not 1, 2 or 3 long, or if
      their batch shapes do not broadcast.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> jg.scale_shift_theta(jnp.array([0.5, 0.25]), jnp.array([0.1, -0.2])).tolist()
    [[0.5, 0.0, 0.1], [0.0, 0.25, -0.2]]
  """
  fn = "scale_shift_theta"
  scale = _checks.float_param(fn, "scale", scale)
  shift = _checks.float_param(fn, "shift", shift)
  if scale.ndim < 1:
    raise ValueError(f"{fn}: scale must have shape (*batch, n), got shape {scale.shape}.")
  n = _checks.ndim_of(fn, f"scale of shape {scale.shape}", scale.shape[-1])
  _checks.last_axis(fn, "shift", shift, n, f" to match scale of shape {scale.shape}")
  batch = _checks.batch_shape(fn, scale=scale.shape[:-1], shift=shift.shape[:-1])
  dtype = jnp.result_type(scale, shift)
  scale = jnp.broadcast_to(scale.astype(dtype), (*batch, n))
  shift = jnp.broadcast_to(shift.astype(dtype), (*batch, n))
  return _scale_shift(scale, shift)


def affine_grid(
    theta: ArrayLike,
    shape: Sequence[int],
    image_shape: Sequence[int],
    *,
    align_corners: bool = False,
) -> jax.Array:
  """Returns the pixel positions that an affine glimpse samples.

  Sample ``j = (j_1, ..., j_n)`` of a glimpse of `shape` sits at the normalised
  glimpse coordinate ``u`` with ``u_k = (2 j_k + 1) / N_k - 1``
  (``align_corners=False``) or ``u_k = 2 j_k / (N_k - 1) - 1``
  (``align_corners=True``; 0 when N_k = 1). It maps to
  ``x = theta[:, :n] @ u + theta[:, n]`` in the image's normalised coordinates,
  and then to pixels: ``p_i = ((x_i + 1) S_i - 1) / 2`` (False) or
  ``p_i = (x_i + 1) (S_i - 1) / 2`` (True). With ``align_corners=True`` a
  1-pixel image axis maps every x to pixel 0, as in PyTorch. The identity
  theta with ``shape == image_shape`` gives exactly the pixel centres.

  Args:
    theta: ``(*batch, n, n + 1)``, in axis order (see `theta_from_torch`).
    shape: the glimpse's spatial shape, n positive Python ints (static).
    image_shape: the image's spatial shape, n positive Python ints (static).
    align_corners: whether normalised -1 and +1 are the centres (True) or the
      outer edges (False) of the first and last pixels, as in PyTorch.

  Returns:
    ``(*batch, *shape, n)`` pixel coordinates in axis order, in float32 or
    wider; feed them to `sample`.

  Raises:
    TypeError: if theta is not floating-point, or a shape holds non-ints.
    ValueError: if theta is not ``(*batch, n, n + 1)`` with n in 1..3, or if
      `shape` or `image_shape` is empty, non-positive or not n long.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> identity = jnp.array([[1.0, 0.0]])
    >>> jg.affine_grid(identity, (4,), (4,))[..., 0].tolist()
    [0.0, 1.0, 2.0, 3.0]
    >>> jg.affine_grid(0.5 * identity, (2,), (4,))[..., 0].tolist()
    [1.0, 2.0]
  """
  fn = "affine_grid"
  theta, n = _checks.theta(fn, theta)
  shape = _checks.shape_tuple(fn, "shape", shape)
  image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
  _checks.per_axis(fn, "shape", shape, n, f"theta of shape {theta.shape}")
  _checks.per_axis(fn, "image_shape", image_shape, n, f"theta of shape {theta.shape}")
  theta = theta.astype(_checks.compute_dtype(theta))
  grid = _warp.affine_coords(theta, shape, image_shape, align_corners)
  return jnp.stack(grid, -1).reshape(*theta.shape[:-2], *shape, n)


def _prepare(
    fn: str, x: ArrayLike, x_name: str, theta: ArrayLike, shape: Sequence[int], shape_name: str,
    order: int, padding: str, align_corners: bool,
) -> tuple[jax.Array, jax.Array, tuple[int, ...], int, jnp.dtype]:
  """Shared checks of glimpse and write: returns (x, theta, shape, n, dtype)."""
  _checks.sampler_options(fn, order, padding, align_corners)
  theta, n = _checks.theta(fn, theta)
  x, shape = _checks.warp_operand(
      fn, x, x_name, shape, shape_name, n, f"theta of shape {theta.shape}", theta.shape[:-2]
  )
  return x, theta, shape, n, _checks.compute_dtype(x, theta)


def affine_glimpse(
    image: ArrayLike,
    theta: ArrayLike,
    shape: Sequence[int],
    *,
    align_corners: bool = False,
    padding: str = "zeros",
    order: int = 1,
    supersample: int | Sequence[int] = 1,
) -> jax.Array:
  """Returns the spatial transformer glimpse ``(*batch, *shape, C)``.

  The image is read with `sample` at the positions of `affine_grid`::

      glimpse[j] = sum_p w(p; affine_grid(theta)[j]) image[p],

  with N-linear (``order=1``), cubic (``order=3``) or nearest (``order=0``)
  weights w. It matches
  PyTorch's ``grid_sample(input, affine_grid(theta_to_torch(theta), ...))`` in
  values and gradients.

  Args:
    image: ``(*batch, *spatial, C)``, a float image with n spatial axes.
    theta: ``(*batch, n, n + 1)``, in axis order (see `theta_from_torch`).
      Batch axes of image and theta broadcast, so an image
      ``(B, 1, H, W, C)`` with theta ``(B, K, 2, 3)`` gives K glimpses per
      image without copying it.
    shape: the glimpse's spatial shape, n positive Python ints (static).
    align_corners: as in `affine_grid`.
    padding: ``"zeros"``, ``"border"`` or ``"reflection"``, as in `sample`.
    order: 1 for N-linear interpolation, 3 for cubic convolution (as
      `sample`; PyTorch's ``mode="bicubic"``), 0 for nearest (not
      differentiable in theta).
    supersample: a static int, or one per axis (default 1): each sample is
      the mean of that many reads per axis, spread over its cell, which
      antialiases a zoom-out (see the conventions in `jaxglimpse`).

  Returns:
    ``(*batch, *shape, C)`` in the image's dtype. Grid and weights are
    computed in float32 or wider.

  Raises:
    TypeError: for an integer image or theta, or a non-int shape.
    ValueError: for a malformed theta or shape, an image with too few axes,
      batch shapes that do not broadcast, an unknown padding or order, or a
      supersample that is not one positive int or one per axis.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> image = jnp.arange(16.0).reshape(4, 4, 1)
    >>> zoom = jnp.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])  # The central 2x2.
    >>> jg.affine_glimpse(image, zoom, (2, 2))[..., 0].tolist()
    [[5.0, 6.0], [9.0, 10.0]]

  References:
    Jaderberg, Simonyan, Zisserman and Kavukcuoglu, "Spatial Transformer
    Networks", NeurIPS 2015.
  """
  image, theta, shape, n, dtype = _prepare(
      "affine_glimpse", image, "image", theta, shape, "shape", order, padding, align_corners
  )
  supersample = _checks.supersample("affine_glimpse", supersample, n)
  image_shape = image.shape[-(n + 1) : -1]
  coords = _warp.affine_coords(theta.astype(dtype), shape, image_shape, align_corners, supersample)
  spec = Spec(image_shape, order, padding, align_corners)
  return _warp.read_points(image, coords, shape, supersample, spec, dtype)


def affine_write(
    glimpse: ArrayLike,
    theta: ArrayLike,
    image_shape: Sequence[int],
    *,
    align_corners: bool = False,
    padding: str = "zeros",
    order: int = 1,
    supersample: int | Sequence[int] = 1,
) -> jax.Array:
  """Returns the glimpse spread back onto an image-sized canvas.

  The exact transpose of `affine_glimpse` as a linear map of the image::

      canvas[p] = sum_j w(p; affine_grid(theta)[j]) glimpse[j],

  so that ``<affine_glimpse(x, theta), g> == <x, affine_write(g, theta)>``.
  Each sample is scattered to the pixels it would have read, with the same
  weights, padding included: with ``"border"`` or ``"reflection"`` what falls
  outside lands on the pixels it was read from, with ``"zeros"`` it is lost.
  Where the read broadcast one image over several thetas, the write returns
  one canvas per theta; sum them over that axis for the transpose of the
  broadcast read.

  Args:
    glimpse: ``(*batch, *shape, C)``, a float glimpse with n spatial axes.
    theta: ``(*batch, n, n + 1)``, in axis order; batch axes broadcast.
    image_shape: the canvas's spatial shape, n positive Python ints (static).
    align_corners: as in `affine_grid`.
    padding: as in `affine_glimpse`; use the one the read used.
    order: as in `affine_glimpse`.
    supersample: as in `affine_glimpse`; use the one the read used.

  Returns:
    ``(*batch, *image_shape, C)`` in the glimpse's dtype, accumulated in
    float32 or wider.

  Raises:
    ValueError, TypeError: as `affine_glimpse`, and if `image_shape` is not n
      positive ints.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> right_half = jnp.array([[0.5, 0.5]])
    >>> jg.affine_write(jnp.ones((2, 1)), right_half, (4,))[..., 0].tolist()
    [0.0, 0.0, 1.0, 1.0]
  """
  glimpse, theta, image_shape, n, dtype = _prepare(
      "affine_write", glimpse, "glimpse", theta, image_shape, "image_shape", order, padding,
      align_corners,
  )
  supersample = _checks.supersample("affine_write", supersample, n)
  shape = glimpse.shape[-(n + 1) : -1]
  coords = _warp.affine_coords(theta.astype(dtype), shape, image_shape, align_corners, supersample)
  spec = Spec(image_shape, order, padding, align_corners)
  return _warp.write_points(glimpse, coords, image_shape, supersample, spec, dtype)


def _corner_scale(shape: tuple[int, ...], align_corners: bool) -> np.ndarray:
  """k_N per axis: the glimpse's sample span over its footprint, in u."""
  if not align_corners:
    return np.ones(len(shape))
  return np.array([(size - 1) / size if size > 1 else 1.0 for size in shape])


def _pixel_scale(
    image_shape: tuple[int, ...], align_corners: bool
) -> tuple[np.ndarray, np.ndarray]:
  """``(h, o)`` per axis with ``p = h x + o``; S - 1 is read as 1 when S = 1."""
  size = np.asarray(image_shape, dtype=np.float64)
  if align_corners:
    half = np.maximum(size - 1, 1) / 2
    return half, half
  return size / 2, size / 2 - 0.5


def box_to_affine(
    box: Box,
    shape: Sequence[int],
    image_shape: Sequence[int],
    *,
    align_corners: bool = False,
) -> jax.Array:
  """Returns the shear-free theta whose glimpse of `shape` tiles `box`.

  The glimpse's samples sit where a `Box` glimpse puts them,
  ``center + (j - (N - 1) / 2) * size / N`` along each axis, for either
  `align_corners`. Per axis, with S image pixels and N samples::

      align_corners=False:  scale = size / S,
                            shift = (2 center + 1) / S - 1
      align_corners=True:   scale = k_N size / (S - 1),
                            shift = 2 center / (S - 1) - 1,

  with ``k_N = (N - 1) / N`` (``k_1 = 1``: one sample at u = 0 does not see
  the scale). With ``align_corners=True`` an axis of S = 1 pixel is computed
  with S - 1 read as 1, but `affine_grid` maps every coordinate of such an
  axis to pixel 0 whatever theta is.

  Args:
    box: a `Box` with fields ``(*batch, n)`` in pixels; batch shapes of
      center and size broadcast. A negative size mirrors the glimpse.
    shape: the glimpse's spatial shape, n positive Python ints.
    image_shape: the image's spatial shape, n positive Python ints.
    align_corners: as in `affine_grid`.

  Returns:
    theta ``(*batch, n, n + 1)``, in float32 or wider.

  Raises:
    TypeError: for a box that is not a ``Box(center, size)`` of floats, or a
      non-int shape.
    ValueError: for fields whose last axis is not ``len(shape)``, batch shapes
      that do not broadcast, or a bad shape or image_shape.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> box = jg.Box(center=jnp.array([1.5, 3.5]), size=jnp.array([4.0, 4.0]))
    >>> jg.box_to_affine(box, (2, 2), (4, 8)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.5, 0.0]]
  """
  fn = "box_to_affine"
  shape = _checks.shape_tuple(fn, "shape", shape)
  n = _checks.ndim_of(fn, "shape", len(shape))
  image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
  _checks.per_axis(fn, "image_shape", image_shape, n, f"shape={shape!r}")
  center, size = _checks.fields(fn, "box", box, Box, n, f"shape={shape!r}")
  dtype = _checks.compute_dtype(center, size)
  center, size = jnp.broadcast_arrays(center.astype(dtype), size.astype(dtype))
  half, offset = _pixel_scale(image_shape, align_corners)
  k = _corner_scale(shape, align_corners)
  # Invert p = half * x + offset at the centre, and match the sample spacing.
  scale = size * jnp.asarray(k / (2 * half), dtype)
  shift = (center - jnp.asarray(offset, dtype)) / jnp.asarray(half, dtype)
  return _scale_shift(scale, shift)


def affine_to_box(
    theta: ArrayLike,
    shape: Sequence[int],
    image_shape: Sequence[int],
    *,
    align_corners: bool = False,
) -> Box:
  """Returns the axis-aligned box covered by an affine glimpse's footprint.

  In pixels the glimpse is ``p = A u + p0``, and its footprint (each sample
  with its share of the glimpse) is ``u`` in ``[-e_k, e_k]`` per axis, with
  ``e = 1`` (``align_corners=False``) or ``e = 1 / k_N``
  (``align_corners=True``, k_N as in `box_to_affine`). The box is::

      center = p0,    size_i = 2 sum_k |A[i, k]| e_k.

  For a shear-free theta that is exactly the box `box_to_affine` started from
  (with a positive size for a mirrored glimpse); for a rotated or sheared one
  it is the bounding box of the footprint.

  Args:
    theta: ``(*batch, n, n + 1)``, in axis order.
    shape: the glimpse's spatial shape, n positive Python ints.
    image_shape: the image's spatial shape, n positive Python ints.
    align_corners: as in `affine_grid`. An image axis of 1 pixel is treated
      as in `box_to_affine`.

  Returns:
    A `Box` with fields ``(*batch, n)``, in float32 or wider.

  Raises:
    TypeError: if theta is not floating-point or a shape holds non-ints.
    ValueError: for a malformed theta, shape or image_shape.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> theta = jnp.array([[1.0, 0.0, 0.0], [0.0, -0.5, 0.0]])
    >>> box = jg.affine_to_box(theta, (2, 2), (4, 8))
    >>> box.center.tolist(), box.size.tolist()
    ([1.5, 3.5], [4.0, 4.0])
  """
  fn = "affine_to_box"
  theta, n = _checks.theta(fn, theta)
  shape = _checks.shape_tuple(fn, "shape", shape)
  image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
  _checks.per_axis(fn, "shape", shape, n, f"theta of shape {theta.shape}")
  _checks.per_axis(fn, "image_shape", image_shape, n, f"theta of shape {theta.shape}")
  dtype = _checks.compute_dtype(theta)
  theta = theta.astype(dtype)
  half, offset = _pixel_scale(image_shape, align_corners)
  extent = 1 / _corner_scale(shape, align_corners)
  linear = jnp.asarray(half, dtype)[:, None] * theta[..., :n]
  center = jnp.asarray(half, dtype) * theta[..., n] + jnp.asarray(offset, dtype)
  size = 2 * jnp.sum(jnp.abs(linear) * jnp.asarray(extent, dtype), axis=-1)
  return Box(center, size)
