"""Gaussian filterbank attention: DRAW's read and write, in n dimensions.

Along one axis of S pixels, a glimpse of N samples is a matrix ``F`` of shape
``(N, S)`` whose row j is a 1-D Gaussian over pixel positions i::

    F[j, i] ∝ exp(-(i - c_j)² / (2 σ²)),    c_j = mu + (j - (N - 1) / 2) · delta.

The glimpse of an image is the separable product ``F_y · I · F_xᵀ``, which in n
dimensions contracts each spatial axis with its own filterbank. The write is the
transpose of that linear map.

Rows are normalised in one of two ways (``padding``):

* ``"renormalize"`` (DRAW, HART): each row sums to 1 over the image's pixels.
  It is a softmax over positions, so a filter entirely off the image
  concentrates on the nearest edge pixel rather than dividing 0 by 0.
* ``"zeros"``: each row sums to 1 over the infinite pixel grid, so what falls
  off the image is dark, as with zero padding. The normaliser is summed
  directly for σ < 1/2 and by Poisson summation above; both are accurate to
  about 1e-8 relative, in float32 too (see `jaxglimpse._gaussian_filters`).

Windows. A filter is negligible a few σ from its centre, so a glimpse only
needs the pixels within about ``|delta| (N - 1) / 2 + k σ`` of ``mu`` on each
axis. With ``window=(L_0, ..., L_{n-1})`` the read slices a static block of
``L_a`` pixels per axis, centred on ``mu`` (rounded to a pixel) and moved
inside the image where it would leave it, and builds the filters on the block's
pixels only; the cost then depends on the window, not on the image. Where the
glimpse's support fits the window (`gaussian_window` gives a size that
ensures it, with k = `WINDOW_SIGMAS` = 5), the result equals the dense glimpse
to about 1e-6 of the image's largest value: the window drops under 6e-7 of
each filter's mass. ``"renormalize"`` normalises over the window instead of
the image, which then differs only by that mass; ``"zeros"`` keeps the exact
infinite-grid normaliser. Where the support does not fit, each filter is cut
to the window: ``"renormalize"`` spreads the rest of its mass over the window
and ``"zeros"`` drops it (the glimpse darkens). The block never leaves the
image, so indices are always valid, and values and gradients stay finite. The
window's position is an integer and carries no gradient: gradients with
respect to mu, sigma and delta flow through the filter weights, as in the
dense glimpse.

Taps. Each filter is negligible beyond a few σ of its own centre too. With
``taps=T`` (an int, or one per axis) row j keeps only the T pixels nearest its
centre: a band starting at ``floor(c_j - (T - 1) / 2 + 1/2)``, moved inside
the image (or the window) where it would leave it. ``"renormalize"`` sums the
row to 1 over its band, ``"zeros"`` keeps the infinite-grid normaliser, as for
a window. Building the filters then costs N·T entries instead of N·L, and where
a cost model rates it cheaper (1-D signals, and axes contracted after the
image has shrunk) each sample gathers only its own T pixels, so that the axis
costs N·T rather than N·L (see `jaxglimpse._separable`). `gaussian_taps`
gives a T that holds each filter to kσ; with it the glimpse equals the one
without taps to about 1e-6 of the image's largest value. Windows and taps
combine: the window bounds the block read, the taps each filter within it.
Band positions are integers and carry no gradient.

Values that jit cannot check are made safe by construction: σ is clamped to
[`SIGMA_MIN`, `SIGMA_MAX`], and filter centres (and the mask's box edges)
further than `CENTER_LIMIT` pixels outside the image are clamped there (the
filter is then far off the image either way), which keeps outputs and
gradients finite for any finite input. Where a clamp is active its gradient
is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxglimpse import _checks, _separable
from jaxglimpse._gaussian_filters import CENTER_LIMIT as CENTER_LIMIT
from jaxglimpse._gaussian_filters import SIGMA_MAX as SIGMA_MAX
from jaxglimpse._gaussian_filters import SIGMA_MIN as SIGMA_MIN
from jaxglimpse._gaussian_filters import axis_filters, block_starts, clamp_sigma, filterbank
from jaxglimpse.params import GaussianParams

WINDOW_SIGMAS = 5.0
"""The default k of `gaussian_window`: the window holds each filter to kσ.

Beyond 5σ (plus the half pixel the window adds) a sampled Gaussian keeps less
than 6e-7 of its mass, for any σ and any position of its centre.
"""

_ZERO = np.int32(0)  # The channel start of a window; slice starts are int32.


def gaussian_filterbank(
    mu: ArrayLike,
    sigma: ArrayLike,
    delta: ArrayLike,
    n: int,
    size: int,
    *,
    padding: str = "renormalize",
) -> jax.Array:
  """Returns the ``(*batch, n, size)`` Gaussian filter matrix for one axis.

  ``F[j, i] = exp(-(i - c_j)² / (2σ²)) / Z_j`` with
  ``c_j = mu + (j - (n - 1) / 2) · delta`` and pixel i centred at i. ``Z_j``
  sums the numerator over the ``size`` image pixels (``"renormalize"``) or
  over all integers (``"zeros"``); see the module docstring.

  Args:
    mu: ``(*batch,)``, the glimpse centre on this axis, in pixels.
    sigma: ``(*batch,)``, the filter width; clamped to at least `SIGMA_MIN`.
    delta: ``(*batch,)``, the stride between filter centres.
    n: the number of filters (glimpse samples).
    size: the number of pixels on this axis.
    padding: ``"renormalize"`` or ``"zeros"``.

  Returns:
    The filters, float32 or wider, with batch axes broadcast.

  Raises:
    ValueError: for a non-positive ``n`` or ``size``, batch shapes that do not
      broadcast, or an unknown padding.
    TypeError: for non-float parameters or non-int sizes.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> f = jg.gaussian_filterbank(jnp.array(2.0), jnp.array(0.5), jnp.array(1.0), 3, 5)
    >>> f.shape, f.sum(-1).round(6).tolist()
    ((3, 5), [1.0, 1.0, 1.0])

  References:
    Gregor et al., "DRAW: A Recurrent Neural Network For Image Generation",
    ICML 2015, eq. (25)-(26).
  """
  fn = "gaussian_filterbank"
  _checks.choice(fn, "padding", padding, _checks.PADDINGS_GAUSSIAN)
  samples, size = _checks.shape_tuple(fn, "(n, size)", (n, size))
  mu, sigma, delta = (
      _checks.float_param(fn, name, x)
      for name, x in (("mu", mu), ("sigma", sigma), ("delta", delta))
  )
  _checks.batch_shape(fn, mu=mu.shape, sigma=sigma.shape, delta=delta.shape)
  dtype = _checks.compute_dtype(mu, sigma, delta)
  return filterbank(mu, sigma, delta, samples, size, padding, dtype)



class _Setup(NamedTuple):
  """What the read and the write share, checked: `_setup` returns it."""

  x: jax.Array  # The image (read) or the glimpse (write).
  params: GaussianParams
  shape: tuple[int, ...]  # The glimpse's spatial shape.
  image_shape: tuple[int, ...]
  window: tuple[int, ...] | None  # None: the dense path.
  sizes: tuple[int, ...]  # The pixels the filters span: the window or the image.
  taps: tuple[int | None, ...]
  order: tuple[int, ...]  # Of the contraction, from `_separable.plan`.
  banded: tuple[bool, ...]
  dtype: jnp.dtype  # Of filters and accumulation.


def _setup(fn: str, x, x_name: str, params, static_shape, padding, window, taps) -> _Setup:
  """The shared checks and plan of `gaussian_glimpse` (x is the image and
  `static_shape` the glimpse's) and `gaussian_write` (the glimpse, and the
  image's)."""
  _checks.choice(fn, "padding", padding, _checks.PADDINGS_GAUSSIAN)
  shape_name = "shape" if x_name == "image" else "image_shape"
  static_shape = _checks.shape_tuple(fn, shape_name, static_shape)
  ndim = _checks.ndim_of(fn, shape_name, len(static_shape))
  against = f"{shape_name}={static_shape!r}"
  params = GaussianParams(*_checks.fields(fn, "params", params, GaussianParams, ndim, against))
  x = _checks.float_image(fn, x_name, x, ndim + 1)
  if x_name == "image":
    _checks.channel_layout(fn, x_name, x, ndim)
  _checks.batch_shape(
      fn,
      **{f"{x_name} (batch axes of shape {x.shape})": x.shape[: -(ndim + 1)]},
      **{f"params.{k}": v.shape[:-1] for k, v in params._asdict().items()},
  )
  x_shape = x.shape[-(ndim + 1) : -1]
  shape, image_shape = (static_shape, x_shape) if x_name == "image" else (x_shape, static_shape)
  window = _check_window(fn, window, image_shape)
  sizes = image_shape if window is None else window
  taps = _check_taps(fn, taps, sizes)
  sizes_in, sizes_out = (sizes, shape) if x_name == "image" else (shape, sizes)
  order, banded = _separable.plan(sizes_in, sizes_out, taps, x.shape[-1], shape)
  dtype = _checks.compute_dtype(x, *params)
  return _Setup(x, params, shape, image_shape, window, sizes, taps, order, banded, dtype)


def _check_window(fn: str, window, image_shape: tuple[int, ...]) -> tuple[int, ...] | None:
  """Returns the window clipped to the image, or None for the dense path."""
  if window is None:
    return None
  window = _checks.shape_tuple(fn, "window", window)
  _checks.per_axis(fn, "window", window, len(image_shape), f"the image {image_shape}")
  window = tuple(min(w, s) for w, s in zip(window, image_shape))
  return None if window == image_shape else window


def _check_taps(fn: str, taps, sizes: tuple[int, ...]) -> tuple[int | None, ...]:
  """Returns taps per axis, None where a filter may read every pixel anyway."""
  ndim = len(sizes)
  if taps is None:
    return (None,) * ndim
  if isinstance(taps, (int, np.integer)) and not isinstance(taps, bool):
    taps = (taps,) * ndim
  taps = _checks.shape_tuple(fn, "taps", taps)
  _checks.per_axis(fn, "taps", taps, ndim, "the image", hint="one int, or one")
  return tuple(None if t >= s else t for t, s in zip(taps, sizes))


def _window_starts(mu: jax.Array, window: tuple[int, ...], image_shape: tuple[int, ...]):
  """The first pixel of the window on each axis, as int32 scalars."""
  return [block_starts(mu[a], length, size)
          for a, (length, size) in enumerate(zip(window, image_shape))]


def _signature(ndim: int, x_letter: str, out_letter: str) -> str:
  x, out = (_checks.spatial_signature(ndim, letter) for letter in (x_letter, out_letter))
  return f"{x},(n),(n),(n)->{out}"


def gaussian_glimpse(
    image: ArrayLike,
    params: GaussianParams,
    shape: Sequence[int],
    *,
    padding: str = "renormalize",
    window: Sequence[int] | None = None,
    taps: int | Sequence[int] | None = None,
) -> jax.Array:
  """Returns the Gaussian filterbank glimpse ``(*batch, *shape, C)`` of an image.

  In two dimensions the glimpse is ``G = F_y · I · F_xᵀ`` per channel, with
  ``F_y`` and ``F_x`` from `gaussian_filterbank`; in n dimensions each spatial
  axis is contracted with its own filterbank, each as one matrix product, in
  the order that a cost model (multiply-adds plus transposes) rates cheapest
  (see `jaxglimpse._separable`).

  Args:
    image: ``(*batch, *spatial, C)``, a float image with n = ``len(shape)``
      spatial axes.
    params: `GaussianParams` with fields ``(*batch, n)``. Batch axes of image
      and params broadcast, so an image ``(B, 1, H, W, C)`` with params
      ``(B, K, 2)`` gives K glimpses per image without copying it.
    shape: the glimpse's spatial shape, n positive Python ints (static).
    padding: ``"renormalize"`` (DRAW; filters sum to 1 over the image) or
      ``"zeros"`` (filters sum to 1 over the infinite grid: off-image is dark).
    window: ``None`` (the default) reads every pixel: the exact dense
      glimpse. Or n static ints: read only a window of that many pixels per
      axis around the glimpse, so that the cost no longer grows with the
      image (see "Windows" in the module docstring, and `gaussian_window`
      for a size that holds the glimpse).
    taps: ``None`` (the default) lets each filter read every pixel (of the
      window, if any). Or an int, or n static ints: each filter reads only
      that many pixels around its centre, so that building the filters costs
      N·taps instead of N·L, and, where that is cheaper, each sample gathers
      only its own pixels (see "Taps" in the module docstring, and
      `gaussian_taps` for a size that holds the filters).

  Returns:
    The glimpse, in the image's dtype. Filters are built and the contraction
    accumulated in float32 or wider.

  Raises:
    ValueError: for a wrong rank, batch shapes that do not broadcast, params
      whose n differs from ``len(shape)``, or a bad shape, padding or window.
    TypeError: for an integer image, non-float params or a non-int shape or
      window.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> image = jnp.arange(100.0).reshape(10, 10, 1)
    >>> params = jg.GaussianParams(mu=jnp.array([4.5, 4.5]), sigma=jnp.array([0.1, 0.1]),
    ...                         delta=jnp.array([1.0, 1.0]))
    >>> g = jg.gaussian_glimpse(image, params, (10, 10))
    >>> g.shape, bool(jnp.allclose(g, image, atol=1e-4))
    ((10, 10, 1), True)

  References:
    Gregor et al., "DRAW: A Recurrent Neural Network For Image Generation",
    ICML 2015, section 3.2.
    Kosiorek et al., "Hierarchical Attentive Recurrent Tracking", NeurIPS 2017.
  """
  s = _setup("gaussian_glimpse", image, "image", params, shape, padding, window, taps)

  def one(x, mu, sigma, delta):
    starts = [None] * len(s.shape)
    if s.window is not None:
      starts = _window_starts(mu, s.window, s.image_shape)
      # A window is small: converted once here, it needs no bfloat16 split
      # products, and the filters' cotangent does not convert it again.
      x = jax.lax.dynamic_slice(x, (*starts, _ZERO), (*s.window, x.shape[-1])).astype(s.dtype)
    filters = axis_filters(
        mu, sigma, delta, s.shape, s.image_shape, s.sizes, starts, s.taps, s.banded, padding,
        s.dtype,
    )
    out = _separable.contract(_separable.operand(x, s.dtype), filters, s.order)
    return out.astype(s.x.dtype)

  return jnp.vectorize(one, signature=_signature(len(s.shape), "s", "g"))(s.x, *s.params)


def gaussian_write(
    glimpse: ArrayLike,
    params: GaussianParams,
    image_shape: Sequence[int],
    *,
    padding: str = "renormalize",
    window: Sequence[int] | None = None,
    taps: int | Sequence[int] | None = None,
) -> jax.Array:
  """Returns DRAW's write: the glimpse spread back onto an image-sized canvas.

  In two dimensions ``W = F_yᵀ · G · F_x`` per channel: the exact transpose of
  `gaussian_glimpse` as a linear map of the image, so that
  ``<gaussian_glimpse(x, p), g> == <x, gaussian_write(g, p)>``. Under
  broadcasting each glimpse is written to its own canvas: when one image was
  read by K parameter sets, the adjoint of that read is the sum of the K
  canvases over the K axis.

  Args:
    glimpse: ``(*batch, *shape, C)``, a float glimpse with n spatial axes.
    params: `GaussianParams` with fields ``(*batch, n)``; batch axes broadcast.
    image_shape: the canvas's spatial shape, n positive Python ints (static).
    padding: as in `gaussian_glimpse`; use the one the read used.
    window: as in `gaussian_glimpse`; use the one the read used. The glimpse
      is spread over the window only and the rest of the canvas is 0, which
      keeps the write the exact transpose of the windowed read.
    taps: as in `gaussian_glimpse`; use the one the read used.

  Returns:
    ``(*batch, *image_shape, C)`` in the glimpse's dtype.

  Raises:
    ValueError, TypeError: as `gaussian_glimpse`.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> params = jg.GaussianParams(jnp.array([5.5]), jnp.array([1.0]), jnp.array([2.0]))
    >>> canvas = jg.gaussian_write(jnp.ones((3, 1)), params, (12,), padding="zeros")
    >>> canvas.shape, round(float(canvas.sum()), 3)
    ((12, 1), 3.0)

  References:
    Gregor et al., "DRAW: A Recurrent Neural Network For Image Generation",
    ICML 2015, eq. (29).
  """
  s = _setup("gaussian_write", glimpse, "glimpse", params, image_shape, padding, window, taps)

  def one(g, mu, sigma, delta):
    starts = [None] * len(s.shape)
    if s.window is not None:
      starts = _window_starts(mu, s.window, s.image_shape)
    filters = axis_filters(
        mu, sigma, delta, s.shape, s.image_shape, s.sizes, starts, s.taps, s.banded, padding,
        s.dtype,
    )
    transposed = [_separable.transpose(f, size) for f, size in zip(filters, s.sizes)]
    out = _separable.contract(_separable.operand(g, s.dtype), transposed, s.order)
    out = out.astype(s.x.dtype)
    if s.window is None:
      return out
    canvas = jnp.zeros(s.image_shape + out.shape[-1:], out.dtype)
    return jax.lax.dynamic_update_slice(canvas, out, (*starts, _ZERO))

  return jnp.vectorize(one, signature=_signature(len(s.shape), "g", "s"))(s.x, *s.params)


def gaussian_window(
    shape: Sequence[int],
    max_delta,
    max_sigma,
    *,
    k: float = WINDOW_SIGMAS,
    image_shape: Sequence[int] | None = None,
) -> tuple[int, ...]:
  """Returns a window, in pixels per axis, that holds a glimpse's support.

  The N filter centres of an axis span ``|delta| (N - 1)`` pixels, and each
  filter is negligible beyond kσ, so the support is::

      |delta| (N - 1) + 2 k σ

  pixels long. The window is ``ceil(support) + 2`` pixels: one pixel for the
  rounding of the window's start to a pixel, and one for half a pixel on each
  side, so that every pixel within kσ + 1/2 of a filter centre lies in the
  window wherever mu is. With this window and the default k,
  ``gaussian_glimpse(..., window=w)`` equals the dense glimpse to about 1e-6
  of the image's largest value (see "Windows" in the module docstring).

  Args:
    shape: the glimpse shape, n positive ints.
    max_delta: a bound on ``|delta|``: a number, or n numbers (one per axis).
      They must be static Python or NumPy numbers, since the window is a shape.
    max_sigma: a bound on sigma, in the same form.
    k: how many σ of each filter to keep; the default is `WINDOW_SIGMAS`.
    image_shape: the image's spatial shape; if given, the window is clipped
      to it (a window as large as the image is the dense glimpse).

  Returns:
    n positive Python ints.

  Raises:
    ValueError: for bounds that are negative, not finite or of the wrong
      length, a non-positive k, or a malformed shape or image_shape.
    TypeError: for traced (non-static) bounds.

  Examples:
    >>> import jaxglimpse as jg
    >>> jg.gaussian_window((64, 64), 1.0, 0.5)
    (70, 70)
    >>> jg.gaussian_window((12, 12), [2.0, 1.0], 1.0, image_shape=(28, 28))
    (28, 23)
  """
  fn = "gaussian_window"
  shape = _checks.shape_tuple(fn, "shape", shape)
  ndim = _checks.ndim_of(fn, "shape", len(shape))
  where = f" (one per axis of shape {shape})"
  max_delta = _checks.static_bounds(fn, "max_delta", max_delta, ndim, where)
  max_sigma = _checks.static_bounds(fn, "max_sigma", max_sigma, ndim, where)
  _checks.positive_number(fn, "k", k)
  if image_shape is not None:
    image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
    _checks.per_axis(fn, "image_shape", image_shape, ndim, f"shape={shape!r}")
  window = []
  for a in range(ndim):
    length = _support(max_delta[a] * (shape[a] - 1) + 2 * k * max_sigma[a])
    window.append(length if image_shape is None else min(length, image_shape[a]))
  return tuple(window)


def gaussian_taps(max_sigma: float | Sequence[float], *, k: float = WINDOW_SIGMAS) -> int | tuple[int, ...]:
  """Returns a number of taps that holds each filter to kσ of its centre.

  A window for a single filter: ``ceil(2 k σ) + 2`` pixels, so that every
  pixel within kσ + 1/2 of the filter's centre lies in its band wherever the
  centre is (see `gaussian_window`). With it and the default k,
  ``gaussian_glimpse(..., taps=t)`` equals the glimpse without taps to about
  1e-6 of the image's largest value.

  Args:
    max_sigma: a bound on sigma: a number (the taps of every axis), or a
      sequence of numbers (one per axis). They must be static Python or NumPy
      numbers, since the taps are a shape.
    k: how many σ of each filter to keep; the default is `WINDOW_SIGMAS`.

  Returns:
    A positive Python int for a number, a tuple of them for a sequence.

  Raises:
    ValueError: for bounds that are negative or not finite, or a non-positive k.
    TypeError: for traced (non-static) bounds.

  Examples:
    >>> import jaxglimpse as jg
    >>> jg.gaussian_taps(2.0)
    22
    >>> jg.gaussian_taps([0.5, 1.0])
    (7, 12)
  """
  fn = "gaussian_taps"
  _checks.positive_number(fn, "k", k)
  scalar = np.ndim(max_sigma) == 0
  bounds = _checks.static_bounds(fn, "max_sigma", max_sigma, 1 if scalar else np.shape(max_sigma)[0])
  taps = tuple(_support(2 * k * s) for s in bounds)
  return taps[0] if scalar else taps


def _support(pixels: float) -> int:
  # One pixel for rounding the start to a pixel, one for half a pixel per side.
  return math.ceil(pixels) + 2


def gaussian_mask(
    params: GaussianParams, shape: Sequence[int], image_shape: Sequence[int]
) -> jax.Array:
  """Returns the soft attention map ``a = a_y ⊗ a_x`` (⊗ over the n axes).

  Each factor is the glimpse's box ``[mu - N|delta|/2, mu + N|delta|/2]``
  (see `gaussian_to_box`) blurred by the filters' Gaussian::

      a(i) = Φ((i - lo) / σ) - Φ((i - hi) / σ),

  with Φ the standard normal CDF. Values lie in [0, 1]: near 1 over the
  glimpse's footprint, falling off over a few σ at its edges, and 0 when
  delta is 0 (the footprint is a point).

  Args:
    params: `GaussianParams` with fields ``(*batch, n)``.
    shape: the glimpse shape, n positive ints.
    image_shape: the image's spatial shape, n positive ints.

  Returns:
    ``(*batch, *image_shape)``, float32 or wider.

  Raises:
    ValueError, TypeError: for malformed arguments.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> p = jg.GaussianParams(jnp.array([4.5]), jnp.array([0.01]), jnp.array([1.0]))
    >>> jg.gaussian_mask(p, (4,), (10,)).round(3).tolist()
    [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
  """
  fn = "gaussian_mask"
  shape = _checks.shape_tuple(fn, "shape", shape)
  image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
  ndim = _checks.ndim_of(fn, "shape", len(shape))
  _checks.per_axis(fn, "image_shape", image_shape, ndim, f"shape={shape!r}")
  mu, sigma, delta = _checks.fields(fn, "params", params, GaussianParams, ndim, f"shape={shape!r}")
  dtype = _checks.compute_dtype(mu, sigma, delta)
  mu, sigma, delta = jnp.broadcast_arrays(*(x.astype(dtype) for x in (mu, sigma, delta)))
  half = jnp.abs(delta) * jnp.asarray(shape, dtype) / 2
  scale = math.sqrt(2) * clamp_sigma(sigma)
  limit = jnp.asarray(image_shape, dtype) - 1 + CENTER_LIMIT
  lo = jnp.clip(mu - half, -CENTER_LIMIT, limit)
  hi = jnp.clip(mu + half, -CENTER_LIMIT, limit)
  mask = jnp.ones(mu.shape[:-1], dtype)  # The empty product, over no axes yet.
  for a in range(ndim):
    i = jnp.arange(image_shape[a], dtype=dtype)
    lo_a, hi_a, s = (x[..., a, None] for x in (lo, hi, scale))
    factor = (jax.scipy.special.erf((i - lo_a) / s) - jax.scipy.special.erf((i - hi_a) / s)) / 2
    # Outer product: (*batch, S_0..S_{a-1}, 1) * (*batch, 1..1, S_a).
    mask = mask[..., None] * factor.reshape(factor.shape[:-1] + (1,) * a + factor.shape[-1:])
  return mask
