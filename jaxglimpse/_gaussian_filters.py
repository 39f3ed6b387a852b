"""Gaussian filter rows: their values, normalisers and derivative.

Row j of the filter matrix of an axis is a 1-D Gaussian over pixel positions,
centred at ``c_j = mu + (j - (N - 1) / 2) · delta``. This module builds those
rows, in float32 or wider, for the dense, windowed and banded glimpses of
`jaxglimpse.gaussian`, and says where windows and bands start. Everything
here is about getting the numbers right; `jaxglimpse._separable` applies them.

Float32 precision. The rows are computed relative to a reference pixel r
next to the centre (logits ``-(p - c)² + (r - c)²``, factored as
``-e (e + 2 (r - c))`` with ``e = p - r``), so that neither a filter far off
the image nor a tiny σ loses float32 precision to the difference of two large
numbers. Written directly, a row summed to e² instead of 1 at σ = 1e-4, and
centres in (-1, 0) were off by up to e^1.5 at small σ. The ``"zeros"``
normaliser is relative to the same integer (`log_grid_excess`), and the
derivative is written out in the same form (`rows`' JVP).

Speed. A renormalised row's maximum is its value at the pixel nearest the
centre, known per row without a pass over the pixels. The derivative
``df = f (dl - m)`` is written out with only ``e`` row-sized, so that the
gradient is a few reductions per row; under plain autodiff XLA built about a
dozen row-sized intermediates, which for 1-D signals and many glimpses cost
more than the contraction itself (the dense gradient fell by a third to a
half). Small filterbanks of a square glimpse are built as one stack
(`axis_filters`).

Safe values. σ is clamped to [`SIGMA_MIN`, `SIGMA_MAX`] and filter centres to
`CENTER_LIMIT` pixels outside the image, with gradient 0 where a clamp is
active, which keeps rows and gradients finite for any finite input.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from jaxglimpse._separable import Band

SIGMA_MIN = 1e-4
"""The floor, in pixels, applied to sigma: smaller or negative values act as it."""

SIGMA_MAX = 1e6
"""The ceiling, in pixels, applied to sigma: far wider than any image already."""

CENTER_LIMIT = 1e6
"""Filter centres are clamped to [-CENTER_LIMIT, S - 1 + CENTER_LIMIT] pixels."""

POISSON_SIGMA = 0.5
"""`log_grid_excess` switches from the direct sum to Poisson summation here."""

STACK_LIMIT = 2048
"""Filter matrices of at most this many entries are built together (see `axis_filters`)."""


def log_grid_excess(c: jax.Array, sigma: jax.Array) -> jax.Array:
  """log Σ_{k ∈ Z} exp(-(k - c)² / (2σ²)) less the log of its largest term,
  that of the integer r nearest c; accurate to about 1e-8.

  Relative to r, because at small σ the normaliser and the logits are both of
  order (r - c)² / σ², and their difference in float32 would lose the filter.
  Everything is written with q = r - c, which float arithmetic gives exactly,
  and the integers k - r.
  """
  q = jnp.round(c) - c  # In [-1/2, 1/2], exact (Sterbenz).
  # Direct sum over the seven integers nearest c: the first term left out is
  # at distance ≥ 3.5, exp(-3.5² / (2 · 0.5²)) ≈ 2e-11 at the largest σ here.
  small = sigma < POISSON_SIGMA
  # where(), not minimum(): at a tie minimum() would pass on half the gradient.
  s_small = jnp.where(small, sigma, POISSON_SIGMA)
  k = jnp.arange(-3, 4, dtype=c.dtype)  # k - r
  # -((k - c)² - (r - c)²) = -(k - r) (k - r + 2q).
  logits = -k * (k + 2 * q[..., None]) / (2 * s_small[..., None] ** 2)
  direct = jax.nn.logsumexp(logits, axis=-1)
  # Poisson: Z = σ√(2π) (1 + 2 Σ_m exp(-2π²σ²m²) cos(2πmc)), and cos(2πmc) =
  # cos(2πmq) for integer m; m = 4 would add exp(-8π²) ≈ 5e-35 at σ = 1/2.
  # Adding q² / (2σ²), minus the log of r's term, makes it the excess. The
  # clamp keeps the unused branch finite.
  s_big = jnp.where(small, POISSON_SIGMA, sigma)
  m = jnp.arange(1, 4, dtype=c.dtype)
  terms = jnp.exp(-2 * math.pi**2 * (s_big[..., None] * m) ** 2)
  theta = 1 + 2 * jnp.sum(terms * jnp.cos(2 * math.pi * m * q[..., None]), axis=-1)
  poisson = jnp.log(s_big * math.sqrt(2 * math.pi)) + jnp.log(theta) + q**2 / (2 * s_big**2)
  return jnp.where(small, direct, poisson)


def clamp_sigma(sigma: jax.Array) -> jax.Array:
  """sigma clamped to [SIGMA_MIN, SIGMA_MAX], with gradient 1 inside the range
  (its ends included) and 0 outside; jnp.clip would pass half at the ends."""
  sigma = jnp.where(sigma < SIGMA_MIN, SIGMA_MIN, sigma)
  return jnp.where(sigma > SIGMA_MAX, SIGMA_MAX, sigma).astype(sigma.dtype)


def block_starts(centers: jax.Array, length: int, size: int) -> jax.Array:
  """The first pixel of a block of `length` pixels around each centre, as int32.

  The block (a window, or a filter's band) is centred on the centre rounded
  to a pixel (``|start + (length - 1) / 2 - c| ≤ 1/2``), then moved inside
  the `size` pixels it reads from, as `jax.lax.dynamic_slice` would move it;
  the filters need the start it uses. It carries no gradient. Centres are
  clipped first so that the conversion to an integer is in range for any
  value, NaN included.
  """
  c = jnp.nan_to_num(jax.lax.stop_gradient(centers), nan=0.0)
  c = jnp.clip(c, -length, size + length)
  first = jnp.floor(c - (length - 1) / 2 + 0.5)
  return jnp.clip(first, 0, size - length).astype(jnp.int32)


def filterbank(
    mu: jax.Array,
    sigma: jax.Array,
    delta: jax.Array,
    samples: int,
    size: int,
    padding: str,
    dtype,
    start: jax.Array | None = None,
    length: int | None = None,
    taps: int | None = None,
    banded: bool = False,
):
  """The ``(*batch, samples, size)`` filter matrices; arguments already checked.

  With a window, the columns are the `length` pixels ``start + arange(length)``
  of an axis of `size` pixels: ``"renormalize"`` then sums each row to 1 over
  the window, and ``"zeros"`` keeps the infinite-grid normaliser.

  With `taps`, row j keeps only the `taps` pixels of its band (see
  `block_starts`), and is 0 elsewhere; ``"renormalize"`` sums it to 1 over the
  band. `banded` returns those rows compactly instead, as the pair
  ``(weights (*batch, samples, taps), band starts (*batch, samples) int32)``,
  the starts counted from the window's first pixel.
  """
  mu, sigma, delta = (x.astype(dtype)[..., None, None] for x in (mu, sigma, delta))
  sigma = clamp_sigma(sigma)
  j = jnp.arange(samples, dtype=dtype)[:, None] - (samples - 1) / 2
  centers = jnp.clip(mu + j * delta, -CENTER_LIMIT, size - 1 + CENTER_LIMIT)  # (..., samples, 1)
  first: int | jax.Array
  if start is None or length is None:
    length, first, offset = size, 0, centers[..., 0]
  else:
    first = start.astype(dtype)[..., None, None]
    offset = centers[..., 0] - first[..., 0]  # Centres from the window's first pixel.
  pixels = first + jnp.arange(length, dtype=dtype)
  lo, hi, band = first, first + (length - 1), None
  if taps is not None:
    band = block_starts(offset, taps, length)
    lo = first + band[..., None].astype(dtype)
    hi = lo + (taps - 1)
    if banded:
      pixels = lo + jnp.arange(taps, dtype=dtype)
  masked = taps is not None and not banded
  f = rows(padding, masked, centers, sigma, pixels, lo, hi)
  return (f, band) if banded else f


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def rows(padding: str, masked: bool, centers, sigma, pixels, lo, hi) -> jax.Array:
  """Gaussian rows ``exp(-(p - c)² / (2σ²))`` at `pixels`, normalised.

  centers (..., samples, 1) and sigma (..., 1, 1) are differentiable; pixels
  (..., L), or (..., samples, taps) when banded, and the band [lo, hi] of each
  row (zero outside it where `masked`) are positions in the image, with no
  derivative.

  For ``"renormalize"`` each row is divided by its value at the pixel nearest
  the centre, the row's largest, before the normalising sum: a softmax
  without the pass that finds the maximum, and with sums ≥ 1.
  """
  inv_sigma = 1 / sigma  # One division per filter, multiplications per pixel.
  inside = (pixels >= lo) & (pixels <= hi) if masked else True
  # The logits less the logit at the reference pixel r (module docstring):
  # e = p - r and r - c are exact, and their sum is rounded once. Only e is
  # pixel-sized. "renormalize" takes the nearest pixel of the row, which
  # softmax then ignores; "zeros" the nearest integer, to which
  # `log_grid_excess` is relative.
  nearest = _reference_pixel(padding, centers, lo, hi)
  e = pixels - nearest
  logits = -0.5 * inv_sigma**2 * e * (e + 2 * (nearest - centers))
  if padding == "renormalize":
    w = jnp.where(inside, jnp.exp(logits), 0)
    return w * (1 / jnp.sum(w, axis=-1, keepdims=True))
  excess = log_grid_excess(centers[..., 0], sigma[..., 0])
  return jnp.where(inside, jnp.exp(logits - excess[..., None]), 0)


def _reference_pixel(padding: str, centers, lo, hi):
  """The pixel r that `rows` measures the logits from."""
  if padding == "renormalize":
    return jnp.clip(jnp.round(centers), lo, hi)
  return jnp.round(centers)


@rows.defjvp
def _rows_jvp(padding, masked, primals, tangents):
  """``df = f (dl - m)``: the logits' tangent dl, less its mean under f
  (renormalize) or the normaliser's tangent (zeros).

  Written out so that the gradient is a few reductions over each row's pixels;
  autodiff of the rows instead materialises a dozen row-sized products.
  """
  centers, sigma, pixels, lo, hi = primals
  dc, ds = tangents[:2]
  f = rows(padding, masked, *primals)
  inv_sigma = 1 / sigma
  # The tangent of the logits l_p - l_r (see `rows`) is
  # dl = e (dc/σ² + (p + r - 2c) dσ/σ³) with e = p - r: small numbers, as
  # the value's are (p + r is exact, so one rounding), and only e is
  # pixel-sized, so that XLA builds no row-sized intermediate but f. p + r - 2c
  # equals the value's e + 2 (r - c), but written apart from it: XLA would
  # otherwise share, and so materialise, one row-sized array between them
  # (1.5 times slower 1-D gradient).
  nearest = _reference_pixel(padding, centers, lo, hi)
  e = pixels - nearest
  b = inv_sigma**3 * ds
  dl = e * (inv_sigma**2 * dc + b * ((pixels + nearest) - 2 * centers))
  if padding == "renormalize":
    m = jnp.sum(f * dl, axis=-1, keepdims=True)
  else:
    args, tangents = (centers[..., 0], sigma[..., 0]), (dc[..., 0], ds[..., 0])
    m = jax.jvp(log_grid_excess, args, tangents)[1][..., None]
  return f, f * (dl - m)


def axis_filters(mu, sigma, delta, shape, image_shape, sizes, starts, taps, banded, padding, dtype):
  """The filters of one glimpse: per axis a ``(shape[a], sizes[a])`` matrix or,
  where `banded`, a `Band` of ``taps[a]`` pixels per row.

  mu, sigma and delta are ``(ndim,)``; `starts` holds each axis's window
  start, or None per axis without a window.

  Axes whose filter matrices have the same shape and at most `STACK_LIMIT`
  entries are built as one stacked filterbank: for small glimpses the time
  goes into launching kernels, and stacking halves their number. Larger ones
  are built per axis, because the slice that takes a stacked matrix apart,
  and the pad that puts its gradient together, then cost more (measured on
  CPU: 1.4 times faster forward at 28×28 → 12×12, 1.8 times faster gradient at
  256² → 32²).
  """
  ndim = len(shape)
  groups = {}
  for a in range(ndim):
    key = (shape[a], image_shape[a], sizes[a], taps[a], banded[a])
    width = taps[a] if banded[a] else sizes[a]
    groups.setdefault(key if shape[a] * width <= STACK_LIMIT else (a,), []).append(a)
  filters = [None] * ndim
  for axes in groups.values():
    a = axes[0]
    if len(axes) == 1:
      args, start = (mu[a], sigma[a], delta[a]), starts[a]
    else:
      pick = lambda x: jnp.stack([x[b] for b in axes])
      args, start = (pick(mu), pick(sigma), pick(delta)), None if starts[a] is None else pick(starts)
    f = filterbank(
        *args, shape[a], image_shape[a], padding, dtype, start, sizes[a], taps[a], banded[a]
    )
    parts = [f] if len(axes) == 1 else [jax.tree.map(lambda x, k=k: x[k], f) for k in range(len(axes))]
    for b, part in zip(axes, parts):
      filters[b] = Band(*part) if banded[b] else part
  return filters
