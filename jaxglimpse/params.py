"""Glimpse parameters and the conversions between their forms.

`GaussianParams` is the canonical form of a Gaussian glimpse: centre, width and
stride per axis, in pixels. `Box` is the form people think in. The first-centre
form (used by HART and much ported code) and DRAW's linear-head form convert to
it. Coordinates follow the package conventions (see `jaxglimpse`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxglimpse import _checks


class GaussianParams(NamedTuple):
  """Parameters of a Gaussian filterbank glimpse; a pytree.

  Each field has shape ``(*batch, n)``, one entry per spatial axis in axis
  order, in pixels. Sample j of N along an axis is centred at
  ``mu + (j - (N - 1) / 2) * delta``.

  Attributes:
    mu: the glimpse centre.
    sigma: the standard deviation of each 1-D Gaussian filter. Values below
      ``jaxglimpse.gaussian.SIGMA_MIN`` are clamped to it.
    delta: the stride between filter centres. Zero collapses every filter onto
      ``mu``; a negative stride mirrors the glimpse.
  """

  mu: jax.Array
  sigma: jax.Array
  delta: jax.Array


class Box(NamedTuple):
  """An axis-aligned box covering ``[center - size/2, center + size/2]``.

  Attributes:
    center: ``(*batch, n)``, in pixels, in axis order.
    size: ``(*batch, n)``, in pixels.
  """

  center: jax.Array
  size: jax.Array


def as_gaussian_params(fn: str, params, n: int) -> GaussianParams:
  """Checks `params` and returns its fields as float arrays of one `n`."""
  if not isinstance(params, tuple) or len(params) != 3:
    raise TypeError(
        f"{fn}: params must be a GaussianParams(mu, sigma, delta), got "
        f"{type(params).__name__}."
    )
  fields = [
      _checks.float_array(fn, f"params.{name}", x)
      for name, x in zip(GaussianParams._fields, params)
  ]
  for name, x in zip(GaussianParams._fields, fields):
    _checks.last_axis(fn, f"params.{name}", x, n, " with one entry per spatial axis")
  _checks.batch_shape(
      fn, **{f"params.{k}": x.shape[:-1] for k, x in zip(GaussianParams._fields, fields)}
  )
  return GaussianParams(*fields)


def _as_box(fn: str, box, n: int) -> Box:
  if not isinstance(box, tuple) or len(box) != 2:
    raise TypeError(f"{fn}: box must be a Box(center, size), got {type(box).__name__}.")
  center = _checks.float_array(fn, "box.center", box[0])
  size = _checks.float_array(fn, "box.size", box[1])
  _checks.last_axis(fn, "box.center", center, n, f" for a glimpse shape with {n} axes")
  _checks.last_axis(fn, "box.size", size, n, f" for a glimpse shape with {n} axes")
  _checks.batch_shape(fn, **{"box.center": center.shape[:-1], "box.size": size.shape[:-1]})
  return Box(center, size)


def box_to_gaussian(
    box: Box, shape: tuple[int, ...], *, sigma: ArrayLike | None = None
) -> GaussianParams:
  """Returns the Gaussian glimpse of `shape` samples that tiles `box`.

  ``mu = center`` and ``delta = size / N`` on each axis, so the samples sit at
  ``center + (j - (N - 1) / 2) * size / N``: the centres of N equal cells of the
  box. The box over a whole image of size S with N = S gives delta = 1 and
  samples at every pixel centre.

  Args:
    box: a `Box` with fields ``(*batch, n)``.
    shape: the glimpse shape, n positive ints.
    sigma: the filter width in pixels, broadcastable to ``(*batch, n)``. The
      default is ``max(|delta| / 2, 1/2)``: half the stride, the usual
      anti-aliasing width when zooming out, and never under half a pixel, so
      that the glimpse stays smooth in ``mu`` when zooming in.

  Returns:
    `GaussianParams` with fields ``(*batch, n)``.

  Raises:
    ValueError, TypeError: for a malformed box or shape.

  Examples:
    >>> import jax.numpy as jnp
    >>> p = box_to_gaussian(Box(jnp.array([13.5, 13.5]), jnp.array([28., 14.])), (28, 7))
    >>> p.delta.tolist(), p.sigma.tolist()
    ([1.0, 2.0], [0.5, 1.0])
  """
  fn = "box_to_gaussian"
  shape = _checks.shape_tuple(fn, "shape", shape)
  center, size = _as_box(fn, box, len(shape))
  dtype = _checks.compute_dtype(center, size)
  delta = size.astype(dtype) / jnp.asarray(shape, dtype)
  if sigma is None:
    sigma = jnp.maximum(jnp.abs(delta) / 2, 0.5)
  sigma = _checks.float_array(fn, "sigma", sigma)
  sigma = jnp.broadcast_to(sigma, jnp.broadcast_shapes(sigma.shape, delta.shape))
  return GaussianParams(center.astype(dtype), sigma.astype(dtype), delta)


def gaussian_to_box(params: GaussianParams, shape: tuple[int, ...]) -> Box:
  """Returns the box tiled by a Gaussian glimpse: the inverse of `box_to_gaussian`.

  ``center = mu`` and ``size = |delta| * N``. The box ignores sigma, and a
  mirrored glimpse (negative delta) gives the same box as its mirror image.

  Args:
    params: `GaussianParams` with fields ``(*batch, n)``.
    shape: the glimpse shape, n positive ints.

  Returns:
    A `Box` with fields ``(*batch, n)``.

  Raises:
    ValueError, TypeError: for malformed params or shape.

  Examples:
    >>> import jax.numpy as jnp
    >>> p = GaussianParams(jnp.array([5.0]), jnp.array([1.0]), jnp.array([-2.0]))
    >>> gaussian_to_box(p, (4,)).size.tolist()
    [8.0]
  """
  fn = "gaussian_to_box"
  shape = _checks.shape_tuple(fn, "shape", shape)
  mu, _, delta = as_gaussian_params(fn, params, len(shape))
  size = jnp.abs(delta) * jnp.asarray(shape, delta.dtype)
  mu, size = jnp.broadcast_arrays(mu, size)
  return Box(mu, size)


def first_center_to_gaussian(
    first_center: ArrayLike, sigma: ArrayLike, delta: ArrayLike, shape: tuple[int, ...]
) -> GaussianParams:
  """Returns `GaussianParams` from the first-centre form ``(u, sigma, d)``.

  HART and much ported DRAW code place filter j at ``u + j * d``, where u is
  the centre of the *first* filter. Here filters are placed about the glimpse
  centre, so ``mu = u + (N - 1) / 2 * d``.

  Args:
    first_center: ``(*batch, n)``, the centre of filter 0 on each axis.
    sigma: ``(*batch, n)``, the filter width.
    delta: ``(*batch, n)``, the stride.
    shape: the glimpse shape, n positive ints.

  Returns:
    `GaussianParams` with fields ``(*batch, n)``.

  Raises:
    ValueError, TypeError: for malformed arguments.

  Examples:
    >>> import jax.numpy as jnp
    >>> p = first_center_to_gaussian(jnp.array([2.0, 2.0]), jnp.array([0.5, 0.5]),
    ...                              jnp.array([1.0, 1.0]), (5, 5))
    >>> p.mu.tolist()
    [4.0, 4.0]
  """
  fn = "first_center_to_gaussian"
  shape = _checks.shape_tuple(fn, "shape", shape)
  u, sigma, delta = as_gaussian_params(fn, (first_center, sigma, delta), len(shape))
  half = (jnp.asarray(shape, delta.dtype) - 1) / 2
  return GaussianParams(*jnp.broadcast_arrays(u + half * delta, sigma, delta))


def gaussian_to_first_center(params: GaussianParams, shape: tuple[int, ...]) -> jax.Array:
  """Returns ``u = mu - (N - 1) / 2 * delta``, the centre of filter 0.

  The inverse of `first_center_to_gaussian`; sigma and delta carry over
  unchanged.

  Args:
    params: `GaussianParams` with fields ``(*batch, n)``.
    shape: the glimpse shape, n positive ints.

  Returns:
    ``(*batch, n)``: the first filter's centre on each axis.

  Raises:
    ValueError, TypeError: for malformed arguments.

  Examples:
    >>> import jax.numpy as jnp
    >>> p = GaussianParams(jnp.array([4.0]), jnp.array([0.5]), jnp.array([1.0]))
    >>> gaussian_to_first_center(p, (5,)).tolist()
    [2.0]
  """
  fn = "gaussian_to_first_center"
  shape = _checks.shape_tuple(fn, "shape", shape)
  mu, _, delta = as_gaussian_params(fn, params, len(shape))
  return mu - (jnp.asarray(shape, delta.dtype) - 1) / 2 * delta


def draw_params(
    raw: ArrayLike, image_shape: tuple[int, ...], glimpse_shape: tuple[int, ...]
) -> tuple[GaussianParams, jax.Array]:
  """Returns DRAW's attention parameters, and the intensity gamma, from a linear head.

  DRAW (Gregor et al. 2015, eq. 21-24) emits ``(g̃_y, g̃_x, log σ², log δ̃,
  log γ)``; in n dimensions ``raw[..., :n]`` holds one g̃ per axis in axis
  order, followed by the other three. In this library's 0-based pixels:

  * ``mu_a = (S_a + 1) / 2 * (g̃_a + 1) - 1``, so g̃ = 0 is the exact image
    centre ``(S_a - 1) / 2``. The paper counts pixels and filters from 1;
    widely copied code that counts from 0 but keeps the paper's formulas puts
    the glimpse one stride minus one pixel off centre (5.75 px on a 28×28
    image with N = 5).
  * ``delta = (max(S) - 1) / (N - 1) * exp(log δ̃)`` on every axis, with
    ``N = max(glimpse_shape)``; for N = 1 the divisor is taken as 1.
  * ``sigma = exp(log σ² / 2)`` on every axis and ``gamma = exp(log γ)``.

  Args:
    raw: ``(*batch, n + 3)``, the head's outputs.
    image_shape: the image's spatial shape, n ints.
    glimpse_shape: the glimpse shape, n ints.

  Returns:
    ``(params, gamma)``: `GaussianParams` with fields ``(*batch, n)``, and
    gamma of shape ``(*batch,)``, the factor DRAW multiplies the read by.

  Raises:
    ValueError, TypeError: for malformed arguments.

  Examples:
    >>> import jax.numpy as jnp
    >>> params, gamma = draw_params(jnp.zeros(5), (28, 28), (12, 12))
    >>> params.mu.tolist(), round(float(params.delta[0]), 4), float(gamma)
    ([13.5, 13.5], 2.4545, 1.0)

  References:
    Gregor et al., "DRAW: A Recurrent Neural Network For Image Generation",
    ICML 2015, section 3.2.
  """
  fn = "draw_params"
  image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
  glimpse_shape = _checks.shape_tuple(fn, "glimpse_shape", glimpse_shape)
  n = len(image_shape)
  if len(glimpse_shape) != n:
    raise ValueError(
        f"{fn}: glimpse_shape {glimpse_shape} and image_shape {image_shape} "
        "must have the same number of axes."
    )
  raw = _checks.float_array(fn, "raw", raw)
  _checks.last_axis(fn, "raw", raw, n + 3, f": {n} centres, log σ², log δ̃ and log γ")
  dtype = _checks.compute_dtype(raw)
  raw = raw.astype(dtype)
  g, log_var, log_stride, log_gamma = (
      raw[..., :n], raw[..., n], raw[..., n + 1], raw[..., n + 2]
  )
  size = jnp.asarray(image_shape, dtype)
  mu = (size + 1) / 2 * (g + 1) - 1
  big_n = max(glimpse_shape)
  scale = (max(image_shape) - 1) / max(big_n - 1, 1)
  ones = jnp.ones_like(g)
  delta = scale * jnp.exp(log_stride)[..., None] * ones
  sigma = jnp.exp(log_var / 2)[..., None] * ones
  return GaussianParams(mu, sigma, delta), jnp.exp(log_gamma)
