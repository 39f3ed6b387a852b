"""Glimpse parameters and the conversions between their forms.

`GaussianParams` is the canonical form of a Gaussian glimpse: centre, width and
stride per axis, in pixels. `Box` is the form people think in, shared with the
affine glimpse. The first-centre form (used by HART and much ported code)
converts to it too. Network heads, which map a layer's raw outputs to
parameters, live in `jaxglimpse.heads`. Coordinates follow the package
conventions (see `jaxglimpse`).
"""

from __future__ import annotations

from collections.abc import Sequence
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


def box_to_gaussian(
    box: Box, shape: Sequence[int], *, sigma: ArrayLike | None = None
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
    >>> import jaxglimpse as jg
    >>> p = jg.box_to_gaussian(jg.Box(jnp.array([13.5, 13.5]), jnp.array([28., 14.])), (28, 7))
    >>> p.delta.tolist(), p.sigma.tolist()
    ([1.0, 2.0], [0.5, 1.0])
  """
  fn = "box_to_gaussian"
  shape = _checks.shape_tuple(fn, "shape", shape)
  _checks.ndim_of(fn, "shape", len(shape))
  center, size = _checks.fields(fn, "box", box, Box, len(shape), f"shape={shape!r}")
  dtype = _checks.compute_dtype(center, size)
  delta = size.astype(dtype) / jnp.asarray(shape, dtype)
  if sigma is None:
    sigma = jnp.maximum(jnp.abs(delta) / 2, 0.5)
  elif isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
    sigma = jnp.asarray(sigma, dtype)  # A literal such as sigma=1 is fine.
  sigma = _checks.float_param(fn, "sigma", sigma)
  out = _checks.batch_shape(fn, sigma=sigma.shape, **{"box (*batch, n)": delta.shape})
  center, sigma, delta = (jnp.broadcast_to(x.astype(dtype), out) for x in (center, sigma, delta))
  return GaussianParams(center, sigma, delta)


def gaussian_to_box(params: GaussianParams, shape: Sequence[int]) -> Box:
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
    >>> import jaxglimpse as jg
    >>> p = jg.GaussianParams(jnp.array([5.0]), jnp.array([1.0]), jnp.array([-2.0]))
    >>> jg.gaussian_to_box(p, (4,)).size.tolist()
    [8.0]
  """
  fn = "gaussian_to_box"
  shape = _checks.shape_tuple(fn, "shape", shape)
  mu, _, delta = _checks.fields(fn, "params", params, GaussianParams, len(shape), f"shape={shape!r}")
  size = jnp.abs(delta) * jnp.asarray(shape, delta.dtype)
  mu, size = jnp.broadcast_arrays(mu, size)
  return Box(mu, size)


def first_center_to_gaussian(
    first_center: ArrayLike, sigma: ArrayLike, delta: ArrayLike, shape: Sequence[int]
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
    >>> import jaxglimpse as jg
    >>> p = jg.first_center_to_gaussian(jnp.array([2.0, 2.0]), jnp.array([0.5, 0.5]),
    ...                              jnp.array([1.0, 1.0]), (5, 5))
    >>> p.mu.tolist()
    [4.0, 4.0]
  """
  fn = "first_center_to_gaussian"
  shape = _checks.shape_tuple(fn, "shape", shape)
  u, sigma, delta = _checks.fields(
      fn, "params", (first_center, sigma, delta), GaussianParams, len(shape), f"shape={shape!r}",
      names=("first_center", "sigma", "delta"),
  )
  half = (jnp.asarray(shape, delta.dtype) - 1) / 2
  return GaussianParams(*jnp.broadcast_arrays(u + half * delta, sigma, delta))


def gaussian_to_first_center(params: GaussianParams, shape: Sequence[int]) -> jax.Array:
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
    >>> import jaxglimpse as jg
    >>> p = jg.GaussianParams(jnp.array([4.0]), jnp.array([0.5]), jnp.array([1.0]))
    >>> jg.gaussian_to_first_center(p, (5,)).tolist()
    [2.0]
  """
  fn = "gaussian_to_first_center"
  shape = _checks.shape_tuple(fn, "shape", shape)
  mu, _, delta = _checks.fields(fn, "params", params, GaussianParams, len(shape), f"shape={shape!r}")
  return mu - (jnp.asarray(shape, delta.dtype) - 1) / 2 * delta
