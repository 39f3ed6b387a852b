"""Thin-plate-spline grids, glimpses and writes, and their control points.

A thin-plate-spline (TPS) glimpse maps the normalised glimpse coordinate u to
the image's normalised coordinate::

    x(u) = a_0 + A u + sum_k w_k U(|u - c_k|),    U(r) = r^2 log r  (U(0) = 0),

the spline through K control points ``c_k`` (glimpse coordinates) that lands
on their targets ``t_k`` (image coordinates), with the affine part fitted by
the side conditions ``sum_k w_k = 0`` and ``sum_k w_k c_k = 0``. With
`regularization` λ, λ is added to the kernel matrix's diagonal and the spline
smooths rather than interpolates. It is scipy's
``RBFInterpolator(controls, targets, kernel="thin_plate_spline", degree=1,
smoothing=λ)``, in every n. The system is solved by a pseudo-inverse, so that
coinciding controls give finite values and gradients. The image is then read
at x as `jaxglimpse.affine_glimpse` reads (the same `align_corners`,
padding, orders and supersampling).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxglimpse import _checks, _warp
from jaxglimpse._interpolation import Spec


def tps_controls(k: int, n: int = 2) -> jax.Array:
  """Returns the k x ... x k grid of control points on [-1, 1]^n.

  Args:
    k: points per axis, at least 2 (the STN paper used 4 in 2-D).
    n: the number of spatial axes, 1, 2 or 3.

  Returns:
    ``(k**n, n)`` in row-major order, in axis order, in JAX's default float
    dtype.

  Raises:
    ValueError: if k < 2 or n is not 1, 2 or 3.

  Examples:
    >>> import jaxglimpse as jg
    >>> jg.tps_controls(2).tolist()
    [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]]
  """
  fn = "tps_controls"
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
    raise ValueError(f"{fn}: k must be an int of at least 2, got {k!r}.")
  n = _checks.ndim_of(fn, "n", n)
  axes = np.meshgrid(*[np.linspace(-1.0, 1.0, k)] * n, indexing="ij")
  return jnp.asarray(np.stack([a.reshape(-1) for a in axes], axis=-1), dtype=float)


def _kernel(squared: jax.Array) -> jax.Array:
  """``U(r) = r^2 log r = r^2 log(r^2) / 2``, 0 at r = 0 with gradient 0."""
  positive = squared > 0
  safe = jnp.where(positive, squared, 1)
  return jnp.where(positive, 0.5 * safe * jnp.log(safe), 0)


def _squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
  """``(..., P, K)``: squared distances of points ``(..., P, n)`` to ``(..., K, n)``."""
  return jnp.sum((a[..., :, None, :] - b[..., None, :, :]) ** 2, axis=-1)


def _prepare_points(
    fn: str, controls: ArrayLike, targets: ArrayLike, regularization
) -> tuple[jax.Array, jax.Array, int, tuple[int, ...]]:
  """Checks controls and targets; returns them, n and their batch shape."""
  controls = _checks.float_param(fn, "controls", controls)
  targets = _checks.float_param(fn, "targets", targets)
  if controls.ndim < 2:
    raise ValueError(f"{fn}: controls must have shape (*batch, K, n), got shape {controls.shape}.")
  n = _checks.ndim_of(fn, f"controls of shape {controls.shape}", controls.shape[-1])
  if targets.ndim < 2 or targets.shape[-2:] != controls.shape[-2:]:
    raise ValueError(
        f"{fn}: targets must have shape (*batch, K, n) = (*batch, "
        f"{controls.shape[-2]}, {n}) to match controls of shape "
        f"{controls.shape}, got shape {targets.shape}."
    )
  if controls.shape[-2] < n + 1:
    raise ValueError(
        f"{fn}: a thin-plate spline in {n} dimensions needs at least {n + 1} "
        f"controls, got {controls.shape[-2]}."
    )
  if not isinstance(regularization, jax.core.Tracer):
    reg = np.asarray(regularization)
    if reg.shape != () or not np.isfinite(reg) or reg < 0:
      raise ValueError(
          f"{fn}: regularization must be a finite number >= 0, got {regularization!r}."
      )
  batch = _checks.batch_shape(
      fn, controls=controls.shape[:-2], targets=targets.shape[:-2]
  )
  return controls, targets, n, batch


def _coords(controls, targets, shape, image_shape, align_corners, supersample, regularization):
  """n arrays ``(*batch, P)`` of pixels: the spline at the (sub-)samples."""
  n, k = controls.shape[-1], controls.shape[-2]
  dtype = controls.dtype
  # The system [[U + λI, Q], [Qᵀ, 0]] [w; a] = [t; 0] with Q = [1, c].
  kernel = _kernel(_squared_distances(controls, controls))
  kernel = kernel + jnp.asarray(regularization, dtype) * jnp.eye(k, dtype=dtype)
  poly = jnp.concatenate([jnp.ones_like(controls[..., :1]), controls], axis=-1)
  top = jnp.concatenate([kernel, poly], axis=-1)
  bottom = jnp.concatenate(
      [jnp.swapaxes(poly, -1, -2), jnp.zeros((*poly.shape[:-2], n + 1, n + 1), dtype)], axis=-1
  )
  inverse = jnp.linalg.pinv(jnp.concatenate([top, bottom], axis=-2), hermitian=True)
  highest = jax.lax.Precision.HIGHEST
  coefficients = jnp.einsum("...ak,...kn->...an", inverse[..., :, :k], targets, precision=highest)
  units = jnp.asarray(_warp.units(shape, align_corners, supersample), dtype)
  basis = jnp.concatenate(
      [
          _kernel(_squared_distances(units, controls)),
          jnp.ones((*controls.shape[:-2], units.shape[0], 1), dtype),
          jnp.broadcast_to(units, (*controls.shape[:-2], *units.shape)),
      ],
      axis=-1,
  )
  x = jnp.einsum("...pa,...an->...np", basis, coefficients, precision=highest)
  h, o = _warp.pixel_scale(image_shape, align_corners)
  return tuple(x[..., i, :] * h[i] + o[i] for i in range(n))


def tps_grid(
    controls: ArrayLike,
    targets: ArrayLike,
    shape: Sequence[int],
    image_shape: Sequence[int],
    *,
    align_corners: bool = False,
    regularization: float = 0.0,
) -> jax.Array:
  """Returns the pixel positions that a thin-plate-spline glimpse samples.

  Sample j sits at the normalised glimpse coordinate u of `affine_grid`; the
  spline of the module docstring maps it to x, and x goes to pixels as in
  `affine_grid`. Targets equal to the controls give the identity.

  Args:
    controls: ``(*batch, K, n)``, control points in normalised glimpse
      coordinates, in axis order (e.g. `tps_controls`), K >= n + 1.
    targets: ``(*batch, K, n)``, where they land in normalised image
      coordinates; batch shapes broadcast.
    shape: the glimpse's spatial shape, n positive Python ints (static).
    image_shape: the image's spatial shape, n positive Python ints (static).
    align_corners: as in `affine_grid`.
    regularization: λ >= 0 added to the kernel matrix's diagonal (scipy's
      ``smoothing``); 0 interpolates the targets exactly.

  Returns:
    ``(*batch, *shape, n)`` pixel coordinates, float32 or wider.

  Raises:
    TypeError: if controls or targets are not floating-point, or a shape
      holds non-ints.
    ValueError: if controls are not ``(*batch, K, n)`` with n in 1..3 and
      K >= n + 1, targets do not match them, a shape is malformed or λ < 0.

  Examples:
    >>> import jaxglimpse as jg
    >>> controls = jg.tps_controls(3, n=1)
    >>> (jg.tps_grid(controls, controls, (4,), (4,)).round(6) + 0.0)[..., 0].tolist()
    [0.0, 1.0, 2.0, 3.0]

  References:
    Bookstein, "Principal warps: thin-plate splines and the decomposition of
    deformations", IEEE TPAMI 1989.
  """
  fn = "tps_grid"
  controls, targets, n, batch = _prepare_points(fn, controls, targets, regularization)
  shape = _checks.shape_tuple(fn, "shape", shape)
  image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
  _checks.per_axis(fn, "shape", shape, n, f"controls of shape {controls.shape}")
  _checks.per_axis(fn, "image_shape", image_shape, n, f"controls of shape {controls.shape}")
  dtype = _checks.compute_dtype(controls, targets)
  coords = _coords(
      controls.astype(dtype), targets.astype(dtype), shape, image_shape, align_corners,
      (1,) * n, regularization,
  )
  coords = [jnp.broadcast_to(c, (*batch, c.shape[-1])) for c in coords]
  return jnp.stack(coords, -1).reshape(*batch, *shape, n)


def _prepare(
    fn: str, x: ArrayLike, x_name: str, controls: ArrayLike, targets: ArrayLike,
    shape: Sequence[int], shape_name: str, options: tuple,
) -> tuple[jax.Array, jax.Array, jax.Array, tuple[int, ...], tuple[int, ...], jnp.dtype]:
  """Shared checks of glimpse and write."""
  order, padding, align_corners, supersample, regularization = options
  _checks.sampler_options(fn, order, padding, align_corners)
  controls, targets, n, batch = _prepare_points(fn, controls, targets, regularization)
  x, shape = _checks.warp_operand(
      fn, x, x_name, shape, shape_name, n, f"controls of shape {controls.shape}", batch
  )
  supersample = _checks.supersample(fn, supersample, n)
  dtype = _checks.compute_dtype(x, controls, targets)
  return x, controls.astype(dtype), targets.astype(dtype), shape, supersample, dtype


def tps_glimpse(
    image: ArrayLike,
    controls: ArrayLike,
    targets: ArrayLike,
    shape: Sequence[int],
    *,
    align_corners: bool = False,
    padding: str = "zeros",
    order: int = 1,
    supersample: int | Sequence[int] = 1,
    regularization: float = 0.0,
) -> jax.Array:
  """Returns the thin-plate-spline glimpse ``(*batch, *shape, C)``.

  The image is read at the positions of `tps_grid` as `affine_glimpse` reads
  at `affine_grid`.

  Args:
    image: ``(*batch, *spatial, C)``, a float image with n spatial axes.
    controls, targets: ``(*batch, K, n)``, as in `tps_grid`; batch axes
      broadcast with the image's.
    shape: the glimpse's spatial shape, n positive Python ints (static).
    align_corners, padding, order, supersample: as in `affine_glimpse`.
    regularization: as in `tps_grid`.

  Returns:
    ``(*batch, *shape, C)`` in the image's dtype.

  Raises:
    TypeError, ValueError: as `tps_grid`, and for a malformed image, batch
      shapes that do not broadcast, an unknown padding or order, or a bad
      supersample.

  Examples:
    >>> import jaxglimpse as jg
    >>> import jax.numpy as jnp
    >>> image = jnp.arange(16.0).reshape(4, 4, 1)
    >>> controls = jg.tps_controls(2)
    >>> glimpse = jg.tps_glimpse(image, controls, 0.5 * controls, (2, 2))
    >>> glimpse[..., 0].round(4).tolist()  # The central 2x2.
    [[5.0, 6.0], [9.0, 10.0]]

  References:
    Jaderberg, Simonyan, Zisserman and Kavukcuoglu, "Spatial Transformer
    Networks", NeurIPS 2015.
  """
  options = (order, padding, align_corners, supersample, regularization)
  image, controls, targets, shape, supersample, dtype = _prepare(
      "tps_glimpse", image, "image", controls, targets, shape, "shape", options
  )
  n = len(shape)
  image_shape = image.shape[-(n + 1) : -1]
  coords = _coords(
      controls, targets, shape, image_shape, align_corners, supersample, regularization
  )
  spec = Spec(image_shape, order, padding, align_corners)
  return _warp.read_points(image, coords, shape, supersample, spec, dtype)


def tps_write(
    glimpse: ArrayLike,
    controls: ArrayLike,
    targets: ArrayLike,
    image_shape: Sequence[int],
    *,
    align_corners: bool = False,
    padding: str = "zeros",
    order: int = 1,
    supersample: int | Sequence[int] = 1,
    regularization: float = 0.0,
) -> jax.Array:
  """Returns the glimpse spread back onto an image-sized canvas.

  The exact transpose of `tps_glimpse` as a linear map of the image, as
  `affine_write` is of `affine_glimpse`.

  Args:
    glimpse: ``(*batch, *shape, C)``, a float glimpse with n spatial axes.
    controls, targets: ``(*batch, K, n)``, as in `tps_grid`.
    image_shape: the canvas's spatial shape, n positive Python ints (static).
    align_corners, padding, order, supersample, regularization: as the read
      used.

  Returns:
    ``(*batch, *image_shape, C)`` in the glimpse's dtype.

  Raises:
    TypeError, ValueError: as `tps_glimpse`.

  Examples:
    >>> import jaxglimpse as jg
    >>> import jax.numpy as jnp
    >>> controls = jg.tps_controls(2, n=1)
    >>> canvas = jg.tps_write(jnp.ones((2, 1)), controls, 0.5 * controls + 0.5, (4,))
    >>> canvas[..., 0].round(4).tolist()
    [0.0, 0.0, 1.0, 1.0]
  """
  options = (order, padding, align_corners, supersample, regularization)
  glimpse, controls, targets, image_shape, supersample, dtype = _prepare(
      "tps_write", glimpse, "glimpse", controls, targets, image_shape, "image_shape", options
  )
  n = len(image_shape)
  shape = glimpse.shape[-(n + 1) : -1]
  coords = _coords(
      controls, targets, shape, image_shape, align_corners, supersample, regularization
  )
  spec = Spec(image_shape, order, padding, align_corners)
  return _warp.write_points(glimpse, coords, image_shape, supersample, spec, dtype)
