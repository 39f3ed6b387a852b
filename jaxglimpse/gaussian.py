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
  about 1e-8 relative.

Both are computed relative to a pixel next to the centre (logits
``-(p - c)² + (n - c)²``, factored), so that neither a filter far off the
image nor a tiny σ loses float32 precision to the difference of two large
numbers; the derivative is written out in the same form (`_rows_jvp`).

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
the cost model of `_plan` rates it cheaper (1-D signals, and axes contracted
after the image has shrunk) each sample gathers only its own T pixels, so that
the axis costs N·T rather than N·L. `gaussian_taps` gives a T that holds each
filter to kσ; with it the glimpse equals the one without taps to about 1e-6
of the image's largest value. Windows and taps combine: the window bounds the
block read, the taps each filter within it. Band positions are integers and
carry no gradient.

Values that jit cannot check are made safe by construction: σ is clamped to
[`SIGMA_MIN`, `SIGMA_MAX`], and filter centres (and the mask's box edges)
further than `CENTER_LIMIT` pixels outside the image are clamped there (the
filter is then far off the image either way), which keeps outputs and
gradients finite for any finite input. Where a clamp is active its gradient
is 0.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxglimpse import _checks
from jaxglimpse.params import GaussianParams, as_gaussian_params

SIGMA_MIN = 1e-4
"""The floor, in pixels, applied to sigma: smaller or negative values act as it."""

SIGMA_MAX = 1e6
"""The ceiling, in pixels, applied to sigma: far wider than any image already."""

CENTER_LIMIT = 1e6
"""Filter centres are clamped to [-CENTER_LIMIT, S - 1 + CENTER_LIMIT] pixels."""

_POISSON_SIGMA = 0.5  # Switch from the direct sum to Poisson summation here.
_HIGHEST = jax.lax.Precision.HIGHEST
_ZERO = np.int32(0)  # The channel start of a window; slice starts are int32.


def _log_grid_excess(c: jax.Array, sigma: jax.Array) -> jax.Array:
  """log Σ_{k ∈ Z} exp(-(k - c)² / (2σ²)) less the log of its largest term,
  that of the integer n nearest c; accurate to about 1e-8.

  Relative to n, because at small σ the normaliser and the logits are both of
  order (n - c)² / σ², and their difference in float32 would lose the filter
  (a row summed to e² instead of 1 at σ = 1e-4). Everything is written with
  q = n - c, which float arithmetic gives exactly, and the integers k - n.
  """
  q = jnp.round(c) - c  # In [-1/2, 1/2], exact (Sterbenz).
  # Direct sum over the seven integers nearest c: the first term left out is
  # at distance ≥ 3.5, exp(-3.5² / (2 · 0.5²)) ≈ 2e-11 at the largest σ here.
  small = sigma < _POISSON_SIGMA
  # where(), not minimum(): at a tie minimum() would pass on half the gradient.
  s_small = jnp.where(small, sigma, _POISSON_SIGMA)
  k = jnp.arange(-3, 4, dtype=c.dtype)  # k - n
  # -((k - c)² - (n - c)²) = -(k - n) (k - n + 2q).
  logits = -k * (k + 2 * q[..., None]) / (2 * s_small[..., None] ** 2)
  direct = jax.nn.logsumexp(logits, axis=-1)
  # Poisson: Z = σ√(2π) (1 + 2 Σ_m exp(-2π²σ²m²) cos(2πmc)), and cos(2πmc) =
  # cos(2πmq) for integer m; m = 4 would add exp(-8π²) ≈ 5e-35 at σ = 1/2.
  # Adding q² / (2σ²), minus the log of n's term, makes it the excess. The
  # clamp keeps the unused branch finite.
  s_big = jnp.where(small, _POISSON_SIGMA, sigma)
  m = jnp.arange(1, 4, dtype=c.dtype)
  terms = jnp.exp(-2 * math.pi**2 * (s_big[..., None] * m) ** 2)
  theta = 1 + 2 * jnp.sum(terms * jnp.cos(2 * math.pi * m * q[..., None]), axis=-1)
  poisson = jnp.log(s_big * math.sqrt(2 * math.pi)) + jnp.log(theta) + q**2 / (2 * s_big**2)
  return jnp.where(small, direct, poisson)


def _clamp_sigma(sigma: jax.Array) -> jax.Array:
  """sigma clamped to [SIGMA_MIN, SIGMA_MAX], with gradient 1 inside the range
  (its ends included) and 0 outside; jnp.clip would pass half at the ends."""
  sigma = jnp.where(sigma < SIGMA_MIN, SIGMA_MIN, sigma)
  return jnp.where(sigma > SIGMA_MAX, SIGMA_MAX, sigma).astype(sigma.dtype)


def _filterbank(
    mu: jax.Array,
    sigma: jax.Array,
    delta: jax.Array,
    n: int,
    size: int,
    padding: str,
    dtype,
    start: jax.Array | None = None,
    length: int | None = None,
    taps: int | None = None,
    banded: bool = False,
):
  """The (*batch, n, size) filter matrices; arguments already checked.

  For ``"renormalize"`` each row is divided by its value at the pixel nearest
  the centre, the row's largest, before the normalising sum: a softmax
  without the pass that finds the maximum, and with sums ≥ 1.

  With a window, the columns are the `length` pixels ``start + arange(length)``
  of an axis of `size` pixels: ``"renormalize"`` then sums each row to 1 over
  the window, and ``"zeros"`` keeps the infinite-grid normaliser.

  With `taps`, row j keeps only the `taps` pixels of its band (see
  `_band_starts`), and is 0 elsewhere; ``"renormalize"`` sums it to 1 over the
  band. `banded` returns those rows compactly instead, as the pair
  ``(weights (*batch, n, taps), band starts (*batch, n) int32)``, the starts
  counted from the window's first pixel.
  """
  mu, sigma, delta = (x.astype(dtype)[..., None, None] for x in (mu, sigma, delta))
  sigma = _clamp_sigma(sigma)
  j = jnp.arange(n, dtype=dtype)[:, None] - (n - 1) / 2
  centers = jnp.clip(mu + j * delta, -CENTER_LIMIT, size - 1 + CENTER_LIMIT)  # (..., n, 1)
  length = size if start is None else length
  first = 0 if start is None else start.astype(dtype)[..., None, None]
  pixels = first + jnp.arange(length, dtype=dtype)
  lo, hi, band = first, first + (length - 1), None
  if taps is not None:
    offset = centers[..., 0] if start is None else centers[..., 0] - first[..., 0]
    band = _band_starts(offset, taps, length)
    lo = first + band[..., None].astype(dtype)
    hi = lo + (taps - 1)
    if banded:
      pixels = lo + jnp.arange(taps, dtype=dtype)
  masked = taps is not None and not banded
  f = _rows(padding, masked, centers, sigma, pixels, lo, hi)
  return (f, band) if banded else f


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _rows(padding: str, masked: bool, centers, sigma, pixels, lo, hi) -> jax.Array:
  """Gaussian rows ``exp(-(p - c)² / (2σ²))`` at `pixels`, normalised.

  centers (..., n, 1) and sigma (..., 1, 1) are differentiable; pixels
  (..., L), or (..., n, taps) when banded, and the band [lo, hi] of each row
  (zero outside it where `masked`) are positions in the image, with no
  derivative.
  """
  inv_sigma = 1 / sigma  # One division per filter, multiplications per pixel.
  inside = (pixels >= lo) & (pixels <= hi) if masked else True
  # The logits less the logit at a reference pixel n near the centre:
  # -(p - c)² + (n - c)² = -e (e + 2 (n - c)) with e = p - n, factored so that
  # no precision is lost to the difference of two large numbers (far off the
  # image, or at small σ): e and n - c are exact, and their sum is rounded
  # once. Only e is pixel-sized. "renormalize" takes the nearest pixel of
  # the row, which softmax then ignores; "zeros" the nearest integer, to
  # which `_log_grid_excess` is relative.
  nearest = _reference_pixel(padding, centers, lo, hi)
  e = pixels - nearest
  logits = -0.5 * inv_sigma**2 * e * (e + 2 * (nearest - centers))
  if padding == "renormalize":
    w = jnp.where(inside, jnp.exp(logits), 0)
    return w * (1 / jnp.sum(w, axis=-1, keepdims=True))
  excess = _log_grid_excess(centers[..., 0], sigma[..., 0])
  return jnp.where(inside, jnp.exp(logits - excess[..., None]), 0)


def _reference_pixel(padding: str, centers, lo, hi):
  """The pixel n that `_rows` measures the logits from (see there)."""
  if padding == "renormalize":
    return jnp.clip(jnp.round(centers), lo, hi)
  return jnp.round(centers)


@_rows.defjvp
def _rows_jvp(padding, masked, primals, tangents):
  """``df = f (dl - m)``: the logits' tangent dl, less its mean under f
  (renormalize) or the normaliser's tangent (zeros).

  Written out so that the gradient is a few reductions over each row's pixels;
  autodiff of the rows instead materialises a dozen row-sized products.
  """
  centers, sigma, pixels, lo, hi = primals
  dc, ds = tangents[:2]
  f = _rows(padding, masked, *primals)
  inv_sigma = 1 / sigma
  # The tangent of the logits l_p - l_n (see `_rows`) is
  # dl = e (dc/σ² + (p + n - 2c) dσ/σ³) with e = p - n: small numbers, as
  # the value's are (p + n is exact, so one rounding), and only e is
  # pixel-sized, so that XLA builds no row-sized intermediate but f. p + n - 2c
  # equals the value's e + 2 (n - c), but written apart from it: XLA would
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
    m = jax.jvp(_log_grid_excess, args, tangents)[1][..., None]
  return f, f * (dl - m)


def _band_starts(centers: jax.Array, taps: int, length: int) -> jax.Array:
  """The first pixel of each filter's band of `taps` pixels, as int32.

  Like a window, the band is centred on the filter's centre rounded to a pixel
  (``|start + (taps - 1) / 2 - c| ≤ 1/2``) and moved inside the `length`
  pixels it reads from; it carries no gradient. Centres are relative to the
  first of those pixels, and clipped so that the conversion to an integer is in
  range for any value, NaN included.
  """
  c = jnp.nan_to_num(jax.lax.stop_gradient(centers), nan=0.0)
  c = jnp.clip(c, -taps, length + taps)
  first = jnp.floor(c - (taps - 1) / 2 + 0.5)
  return jnp.clip(first, 0, length - taps).astype(jnp.int32)


def _check_padding(fn: str, padding: str) -> None:
  _checks.choice(fn, "padding", padding, _checks.PADDINGS_GAUSSIAN)


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
    >>> f = gaussian_filterbank(jnp.array(2.0), jnp.array(0.5), jnp.array(1.0), 3, 5)
    >>> f.shape, f.sum(-1).round(6).tolist()
    ((3, 5), [1.0, 1.0, 1.0])

  References:
    Gregor et al., "DRAW: A Recurrent Neural Network For Image Generation",
    ICML 2015, eq. (25)-(26).
  """
  fn = "gaussian_filterbank"
  _check_padding(fn, padding)
  n, size = _checks.shape_tuple(fn, "(n, size)", (n, size))
  mu, sigma, delta = (
      _checks.float_array(fn, name, x)
      for name, x in (("mu", mu), ("sigma", sigma), ("delta", delta))
  )
  _checks.batch_shape(fn, mu=mu.shape, sigma=sigma.shape, delta=delta.shape)
  return _filterbank(mu, sigma, delta, n, size, padding, _checks.compute_dtype(mu, sigma, delta))


_MOVE_COST = 32
"""Multiply-adds that `_plan` charges for moving one element.

A contraction over a non-leading axis transposes its input and output, and a
banded one gathers (or scatters) the pixels it reads. The value is a rough,
untuned estimate for a 2-core x86 CPU, where moving an element costs tens to a
hundred multiply-adds of a well-shaped matrix product (less on accelerators);
it only breaks near-ties between plans.
"""

_EXP_COST = 16
"""Multiply-adds that `_plan` charges for one filter entry (an exp, mostly)."""


def _plan(
    sizes_in: tuple[int, ...],
    sizes_out: tuple[int, ...],
    taps: tuple[int | None, ...],
    channels: int,
    samples: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[bool, ...]]:
  """The cheapest way, in a cost model, to do a separable contraction.

  Returns the order of the axes and, per axis, whether to apply its filters
  banded (gather the `taps` pixels each filter reads; see `_band_step`) rather
  than as one matrix product with the full, mostly zero, filter matrix.

  Contracting axis a as a matrix product costs the current tensor size times
  sizes_out[a] multiply-adds, plus `_MOVE_COST` per element of input and output
  for the transposes that `_step` needs when the axis is neither first nor
  last; banded, it costs `_MOVE_COST` per pixel gathered. Either way, building
  the filters costs `_EXP_COST` per entry; there is one filter per glimpse
  sample (`samples`, the glimpse's shape, which is sizes_out for a read and
  sizes_in for a write). With n ≤ 3 there are at most six
  orders, so try them all.
  """
  n = len(sizes_in)

  def step_cost(shape, current, a):
    new = current // shape[a] * sizes_out[a]
    dense = current * sizes_out[a] + _EXP_COST * sizes_in[a] * sizes_out[a]
    if math.prod(shape[:a]) > 1 and math.prod(shape[a + 1 :]) * channels > 1:
      dense += _MOVE_COST * (current + new)
    if taps[a] is None:
      return dense, False
    gathered = current // shape[a] * samples[a] * taps[a]
    band = (_MOVE_COST + 1) * gathered + _EXP_COST * samples[a] * taps[a]
    return min((dense, False), (band, True))

  def cost(order):
    shape = list(sizes_in)
    current, total, banded = math.prod(shape) * channels, 0, [False] * n
    for a in order:
      c, banded[a] = step_cost(shape, current, a)
      total += c
      current = current // shape[a] * sizes_out[a]
      shape[a] = sizes_out[a]
    return total, tuple(banded)

  order = min(itertools.permutations(range(n)), key=lambda o: cost(o)[0])
  return order, cost(order)[1]


def _step(x: jax.Array, f, a: int, for_cotangent: bool = False) -> jax.Array:
  """Applies f (out, in) along spatial axis a of x: one matrix product.

  x is reshaped to (before, in, after), so that XLA sees a plain GEMM and no
  transpose of x: over the leading axis ``F @ x``, elsewhere ``x @ Fᵀ``
  followed by a transpose of the (usually small) result.

  With `for_cotangent`, the leading-axis product is written ``(Fᵀ)ᵀ @ x``
  with Fᵀ laid out pixels first behind an optimisation barrier. The value is
  the same; what changes is its transpose, which reverse mode uses for the
  cotangent of F: it then comes out pixels first, the layout in which XLA's
  CPU matrix product does not copy the image (1.5 to 2 times faster). Not
  for a single column (1-D, one channel): that cotangent is an outer product,
  where the barrier only adds two transposes of it.

  A `_Band` f is applied by `_band_step` instead.
  """
  if isinstance(f, _Band):
    return _band_step(x, f, a)
  shape = x.shape
  before, size, after = math.prod(shape[:a]), shape[a], math.prod(shape[a + 1 :])
  if before == 1 and after > 1 and for_cotangent:
    ft = jax.lax.optimization_barrier(jnp.swapaxes(f, 0, 1))
    y = jax.lax.dot_general(
        ft, x.reshape(size, after), (((0,), (0,)), ((), ())), precision=_HIGHEST,
        preferred_element_type=f.dtype,
    )
  elif before == 1:
    y = _dot(f, x.reshape(size, after), (((1,), (0,)), ((), ())))
  else:
    y = _dot(x.reshape(before, size, after), f, (((1,), (1,)), ((), ())))
    y = jnp.swapaxes(y, 1, 2)
  return y.reshape(shape[:a] + (f.shape[0],) + shape[a + 1 :])


def _dot(a: jax.Array, b: jax.Array, dims) -> jax.Array:
  """``lax.dot_general`` of the filters and the data, in float32 or wider.

  A bfloat16 image meets float32 filters as two bfloat16 products, of the
  filters' leading bits and of the rest (hi + lo, 16 significant bits between
  them), accumulated in float32. The value is within 2e-5 of the float32
  product, far below bfloat16's own rounding, and on CPU it is 2.5 times faster:
  XLA has a native bfloat16 matrix product, but converts a bfloat16 operand
  that meets a float32 one, which for a whole image costs more than the product.
  """
  if a.dtype == b.dtype:
    return jax.lax.dot_general(a, b, dims, precision=_HIGHEST)
  narrow, wide = (a, b) if a.dtype == jnp.bfloat16 else (b, a)
  if narrow.dtype != jnp.bfloat16 or wide.dtype != jnp.float32:
    return jax.lax.dot_general(a, b, dims, precision=_HIGHEST, preferred_element_type=wide.dtype)
  hi = wide.astype(jnp.bfloat16)
  lo = (wide - hi.astype(wide.dtype)).astype(jnp.bfloat16)
  dot = lambda w: jax.lax.dot_general(
      *((narrow, w) if narrow is a else (w, narrow)), dims, preferred_element_type=wide.dtype
  )
  return dot(hi) + dot(lo)


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=["weights", "starts"], meta_fields=["size"]
)
@dataclasses.dataclass(frozen=True)
class _Band:
  """Banded filters along one axis.

  Row j is ``weights[j]`` on the pixels ``starts[j] + arange(taps)`` and 0
  elsewhere. `size` is None for a read; for the transpose (a write) it is the
  number of pixels written to.
  """

  weights: jax.Array  # (n, taps)
  starts: jax.Array  # (n,) int32
  size: int | None = None


def _band_step(x: jax.Array, band: _Band, a: int) -> jax.Array:
  """Applies banded filters along axis a: a gather, or its transpose.

  Each of the n samples reads (or, transposed, writes) only its own `taps`
  pixels, so the cost is n·taps per line of x instead of n times its length.
  The pixels of a sample are contiguous, so they are moved as one slice per
  sample (a gather with slice sizes), several times faster on CPU than
  gathering them one index at a time.
  """
  n, taps = band.weights.shape
  starts = band.starts[:, None]
  window = tuple(range(1, x.ndim + 1))  # Dims of the slices, after the sample dim.
  if band.size is None:  # Read: y[j] = Σ_t w[j, t] x[starts[j] + t].
    dims = jax.lax.GatherDimensionNumbers(
        offset_dims=window, collapsed_slice_dims=(), start_index_map=(a,)
    )
    sizes = x.shape[:a] + (taps,) + x.shape[a + 1 :]
    g = jax.lax.gather(x, starts, dims, sizes, mode="clip")  # (n, *before, taps, *after)
    y = jnp.einsum(g, [0, *window], band.weights, [0, a + 1], [0, *window[:a], *window[a + 1 :]],
                   precision=_HIGHEST)
    return jnp.moveaxis(y, 0, a)
  # Write: y[starts[j] + t] += w[j, t] x[j], the transpose of the read.
  w = band.weights.reshape((n,) + (1,) * a + (taps,) + (1,) * (x.ndim - a - 1))
  spread = jnp.expand_dims(jnp.moveaxis(x, a, 0), a + 1) * w  # (n, *before, taps, *after)
  dims = jax.lax.ScatterDimensionNumbers(
      update_window_dims=window, inserted_window_dims=(), scatter_dims_to_operand_dims=(a,)
  )
  y = jnp.zeros(x.shape[:a] + (band.size,) + x.shape[a + 1 :], spread.dtype)
  return jax.lax.scatter_add(y, starts, spread, dims, mode="clip")


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _contract(x: jax.Array, filters: list, order: tuple[int, ...]) -> jax.Array:
  """Applies ``filters[a]`` (out_a, in_a) along spatial axis a of x, in `order`.

  A filter is a matrix or a `_Band`. The rule below differentiates it by the
  chain rule, step by step, with the filters' tangents written so that their
  transposes are fast (see `_step`). Zero tangents are skipped, so a gradient
  with respect to the parameters alone does no work on the image's tangent.
  """
  for a in order:
    x = _step(x, filters[a], a)
  return x


def _contract_jvp(order, primals, tangents):
  x, filters = primals
  dx, dfilters = tangents
  zero = lambda t: isinstance(t, jax.custom_derivatives.SymbolicZero)
  dout = None if zero(dx) else dx
  for a in order:
    f, df = filters[a], dfilters[a]
    terms = [] if dout is None else [_step(dout, f, a)]
    if isinstance(f, _Band):  # Linear in the weights; the starts are integers.
      if not zero(df.weights):
        terms.append(_band_step(x, dataclasses.replace(f, weights=df.weights), a))
    elif not zero(df):
      terms.append(_step(x, df, a, for_cotangent=True))
    x = _step(x, f, a)
    dout = None if not terms else functools.reduce(jnp.add, terms)
  return x, jnp.zeros_like(x) if dout is None else dout


_contract.defjvp(_contract_jvp, symbolic_zeros=True)


def _check_window(fn: str, window, image_shape: tuple[int, ...]) -> tuple[int, ...] | None:
  """Returns the window clipped to the image, or None for the dense path."""
  if window is None:
    return None
  window = _checks.shape_tuple(fn, "window", window)
  if len(window) != len(image_shape):
    raise ValueError(
        f"{fn}: window {window} must have one length per spatial axis, "
        f"{len(image_shape)} for an image of spatial shape {image_shape}."
    )
  window = tuple(min(w, s) for w, s in zip(window, image_shape))
  return None if window == image_shape else window


def _check_taps(fn: str, taps, sizes: tuple[int, ...]) -> tuple[int | None, ...]:
  """Returns taps per axis, None where a filter may read every pixel anyway."""
  n = len(sizes)
  if taps is None:
    return (None,) * n
  if isinstance(taps, (int, np.integer)) and not isinstance(taps, bool):
    taps = (taps,) * n
  taps = _checks.shape_tuple(fn, "taps", taps)
  if len(taps) != n:
    raise ValueError(
        f"{fn}: taps {taps} must be one int, or one per spatial axis ({n} here)."
    )
  return tuple(None if t >= s else t for t, s in zip(taps, sizes))


def _window_starts(mu: jax.Array, window: tuple[int, ...], image_shape: tuple[int, ...]):
  """The first pixel of the window on each axis, as int32 scalars.

  The window of L pixels is centred on mu rounded to a pixel (so
  ``|start + (L - 1) / 2 - mu| ≤ 1/2``), then clamped to [0, S - L] to stay
  inside the image; `jax.lax.dynamic_slice` would clamp it the same way, and
  the filters need the start it uses. mu is clipped first so that the
  conversion to an integer is in range for any value, NaN included.
  """
  starts = []
  for a, (length, size) in enumerate(zip(window, image_shape)):
    m = jnp.nan_to_num(jax.lax.stop_gradient(mu[a]), nan=0.0)
    m = jnp.clip(m, -length, size + length)
    first = jnp.floor(m - (length - 1) / 2 + 0.5)
    starts.append(jnp.clip(first, 0, size - length).astype(jnp.int32))
  return starts


_STACK_LIMIT = 2048
"""Filter matrices of at most this many entries are built together (see `_filters`)."""


def _filters(mu, sigma, delta, shape, image_shape, sizes, starts, taps, banded, padding, dtype):
  """The filters of one glimpse, per axis a ``(shape[a], sizes[a])`` matrix or,
  where `banded`, a `_Band` of ``taps[a]`` pixels per row.

  Axes whose filter matrices have the same shape and at most `_STACK_LIMIT`
  entries are built as one stacked filterbank: for small glimpses the time
  goes into launching kernels, and stacking halves their number. Larger ones
  are built per axis, because the slice that takes a stacked matrix apart,
  and the pad that puts its gradient together, then cost more (measured on
  CPU: 1.4 times faster forward at 28×28 → 12×12, 1.8 times faster gradient at
  256² → 32²).
  """
  n = len(shape)
  groups = {}
  for a in range(n):
    key = (shape[a], image_shape[a], sizes[a], taps[a], banded[a])
    width = taps[a] if banded[a] else sizes[a]
    groups.setdefault(key if shape[a] * width <= _STACK_LIMIT else (a,), []).append(a)
  filters = [None] * n
  for axes in groups.values():
    a = axes[0]
    if len(axes) == 1:
      args, start = (mu[a], sigma[a], delta[a]), starts[a]
    else:
      pick = lambda x: jnp.stack([x[b] for b in axes])
      args, start = (pick(mu), pick(sigma), pick(delta)), None if starts[a] is None else pick(starts)
    f = _filterbank(
        *args, shape[a], image_shape[a], padding, dtype, start, sizes[a], taps[a], banded[a]
    )
    parts = [f] if len(axes) == 1 else [jax.tree.map(lambda x, k=k: x[k], f) for k in range(len(axes))]
    for b, part in zip(axes, parts):
      filters[b] = _Band(*part) if banded[b] else part
  return filters


def _operand(x: jax.Array, dtype) -> jax.Array:
  """The image or glimpse as the contraction takes it: a bfloat16 one as it
  is (see `_dot`), any other in the compute dtype."""
  return x if x.dtype == jnp.bfloat16 and dtype == jnp.float32 else x.astype(dtype)


def _signature(n: int, image_letter: str, out_letter: str) -> str:
  image, out = (_checks.spatial_signature(n, x) for x in (image_letter, out_letter))
  return f"{image},(n),(n),(n)->{out}"


def _prepare(fn: str, x, params, shape, padding, x_name: str):
  """Shared checks of glimpse and write: returns (x, params, shape, dtype)."""
  _check_padding(fn, padding)
  shape = _checks.shape_tuple(fn, "shape" if x_name == "image" else "image_shape", shape)
  n = _checks.ndim_of(fn, "shape" if x_name == "image" else "image_shape", len(shape))
  x = _checks.float_image(fn, x_name, x, n + 1)
  params = as_gaussian_params(fn, params, n)
  _checks.batch_shape(
      fn,
      **{f"{x_name} (batch axes of shape {x.shape})": x.shape[: -(n + 1)]},
      **{f"params.{k}": v.shape[:-1] for k, v in params._asdict().items()},
  )
  return x, params, shape, _checks.compute_dtype(x, *params)


def gaussian_glimpse(
    image: ArrayLike,
    params: GaussianParams,
    shape: tuple[int, ...],
    *,
    padding: str = "renormalize",
    window: tuple[int, ...] | None = None,
    taps: int | tuple[int, ...] | None = None,
) -> jax.Array:
  """Returns the Gaussian filterbank glimpse ``(*batch, *shape, C)`` of an image.

  In two dimensions the glimpse is ``G = F_y · I · F_xᵀ`` per channel, with
  ``F_y`` and ``F_x`` from `gaussian_filterbank`; in n dimensions each spatial
  axis is contracted with its own filterbank, each as one matrix product, in
  the order that the cost model of `_plan` (multiply-adds plus
  transposes) rates cheapest.

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
    >>> image = jnp.arange(100.0).reshape(10, 10, 1)
    >>> params = GaussianParams(mu=jnp.array([4.5, 4.5]), sigma=jnp.array([0.1, 0.1]),
    ...                         delta=jnp.array([1.0, 1.0]))
    >>> g = gaussian_glimpse(image, params, (10, 10))
    >>> g.shape, bool(jnp.allclose(g, image, atol=1e-4))
    ((10, 10, 1), True)

  References:
    Gregor et al., "DRAW: A Recurrent Neural Network For Image Generation",
    ICML 2015, section 3.2.
    Kosiorek et al., "Hierarchical Attentive Recurrent Tracking", NeurIPS 2017.
  """
  fn = "gaussian_glimpse"
  image, params, shape, dtype = _prepare(fn, image, params, shape, padding, "image")
  n = len(shape)
  image_shape = image.shape[-(n + 1) : -1]
  window = _check_window(fn, window, image_shape)
  sizes = image_shape if window is None else window
  taps = _check_taps(fn, taps, sizes)
  order, banded = _plan(sizes, shape, taps, image.shape[-1], shape)

  def one(x, mu, sigma, delta):
    starts = [None] * n
    if window is not None:
      starts = _window_starts(mu, window, image_shape)
      # A window is small: converted once here, it needs no bfloat16 split
      # products, and the filters' cotangent does not convert it again.
      x = jax.lax.dynamic_slice(x, (*starts, _ZERO), (*window, x.shape[-1])).astype(dtype)
    filters = _filters(
        mu, sigma, delta, shape, image_shape, sizes, starts, taps, banded, padding, dtype
    )
    return _contract(_operand(x, dtype), filters, order).astype(image.dtype)

  return jnp.vectorize(one, signature=_signature(n, "s", "g"))(image, *params)


def gaussian_write(
    glimpse: ArrayLike,
    params: GaussianParams,
    image_shape: tuple[int, ...],
    *,
    padding: str = "renormalize",
    window: tuple[int, ...] | None = None,
    taps: int | tuple[int, ...] | None = None,
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
    >>> params = GaussianParams(jnp.array([5.5]), jnp.array([1.0]), jnp.array([2.0]))
    >>> canvas = gaussian_write(jnp.ones((3, 1)), params, (12,), padding="zeros")
    >>> canvas.shape, round(float(canvas.sum()), 3)
    ((12, 1), 3.0)

  References:
    Gregor et al., "DRAW: A Recurrent Neural Network For Image Generation",
    ICML 2015, eq. (29).
  """
  fn = "gaussian_write"
  glimpse, params, image_shape, dtype = _prepare(
      fn, glimpse, params, image_shape, padding, "glimpse"
  )
  n = len(image_shape)
  shape = glimpse.shape[-(n + 1) : -1]
  window = _check_window(fn, window, image_shape)
  sizes = image_shape if window is None else window
  taps = _check_taps(fn, taps, sizes)
  order, banded = _plan(shape, sizes, taps, glimpse.shape[-1], shape)

  def one(g, mu, sigma, delta):
    starts = [None] * n
    if window is not None:
      starts = _window_starts(mu, window, image_shape)
    filters = _filters(
        mu, sigma, delta, shape, image_shape, sizes, starts, taps, banded, padding, dtype
    )
    transposed = [
        dataclasses.replace(f, size=sizes[a]) if banded[a] else f.T for a, f in enumerate(filters)
    ]
    out = _contract(_operand(g, dtype), transposed, order).astype(glimpse.dtype)
    if window is None:
      return out
    canvas = jnp.zeros(image_shape + out.shape[-1:], out.dtype)
    return jax.lax.dynamic_update_slice(canvas, out, (*starts, _ZERO))

  return jnp.vectorize(one, signature=_signature(n, "g", "s"))(glimpse, *params)


WINDOW_SIGMAS = 5.0
"""The default k of `gaussian_window`: the window holds each filter to kσ.

Beyond 5σ (plus the half pixel the window adds) a sampled Gaussian keeps less
than 6e-7 of its mass, for any σ and any position of its centre.
"""


def gaussian_window(
    shape: tuple[int, ...],
    max_delta,
    max_sigma,
    *,
    k: float = WINDOW_SIGMAS,
    image_shape: tuple[int, ...] | None = None,
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
    >>> gaussian_window((64, 64), 1.0, 0.5)
    (70, 70)
    >>> gaussian_window((12, 12), [2.0, 1.0], 1.0, image_shape=(28, 28))
    (28, 23)
  """
  fn = "gaussian_window"
  shape = _checks.shape_tuple(fn, "shape", shape)
  n = _checks.ndim_of(fn, "shape", len(shape))
  where = f" (one per axis of shape {shape})"
  max_delta = _static_bounds(fn, "max_delta", max_delta, n, where)
  max_sigma = _static_bounds(fn, "max_sigma", max_sigma, n, where)
  _check_k(fn, k)
  if image_shape is not None:
    image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
    _checks.same_ndim(fn, "image_shape", image_shape, f"shape {shape}", n)
  window = []
  for a in range(n):
    length = _support(max_delta[a] * (shape[a] - 1) + 2 * k * max_sigma[a])
    window.append(length if image_shape is None else min(length, image_shape[a]))
  return tuple(window)


def gaussian_taps(max_sigma, *, k: float = WINDOW_SIGMAS) -> int | tuple[int, ...]:
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
    >>> gaussian_taps(2.0)
    22
    >>> gaussian_taps([0.5, 1.0])
    (7, 12)
  """
  fn = "gaussian_taps"
  _check_k(fn, k)
  scalar = np.ndim(max_sigma) == 0
  n = 1 if scalar else np.shape(max_sigma)[0]
  bounds = _static_bounds(fn, "max_sigma", max_sigma, n, "")
  taps = tuple(_support(2 * k * s) for s in bounds)
  return taps[0] if scalar else taps


def _support(pixels: float) -> int:
  # One pixel for rounding the start to a pixel, one for half a pixel per side.
  return math.ceil(pixels) + 2


def _check_k(fn: str, k) -> None:
  if not (isinstance(k, (int, float, np.number)) and math.isfinite(k) and k > 0):
    raise ValueError(f"{fn}: k must be a positive number, got {k!r}.")


def _static_bounds(fn: str, name: str, value, n: int, where: str) -> np.ndarray:
  """Returns a static, finite, non-negative bound as n float64 numbers."""
  try:
    b = np.asarray(value, dtype=np.float64)
  except jax.errors.TracerArrayConversionError:
    raise TypeError(
        f"{fn}: {name} must be static numbers (it sets a shape), got a "
        "traced array; pass Python or NumPy numbers."
    ) from None
  except (TypeError, ValueError):
    raise TypeError(f"{fn}: {name} must be a number or {n} numbers, got {value!r}.") from None
  if b.ndim > 1 or (b.ndim == 1 and b.shape[0] != n):
    raise ValueError(f"{fn}: {name} must be a number or {n} numbers{where}, got {value!r}.")
  if not np.all(np.isfinite(b)) or np.any(b < 0):
    raise ValueError(f"{fn}: {name} must be finite and non-negative, got {value!r}.")
  return np.broadcast_to(b, (n,))


def gaussian_mask(
    params: GaussianParams, shape: tuple[int, ...], image_shape: tuple[int, ...]
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
    >>> p = GaussianParams(jnp.array([4.5]), jnp.array([0.01]), jnp.array([1.0]))
    >>> gaussian_mask(p, (4,), (10,)).round(3).tolist()
    [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
  """
  fn = "gaussian_mask"
  shape = _checks.shape_tuple(fn, "shape", shape)
  image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
  n = _checks.ndim_of(fn, "shape", len(shape))
  _checks.same_ndim(fn, "image_shape", image_shape, f"shape {shape}", n)
  mu, sigma, delta = as_gaussian_params(fn, params, n)
  dtype = _checks.compute_dtype(mu, sigma, delta)
  mu, sigma, delta = jnp.broadcast_arrays(*(x.astype(dtype) for x in (mu, sigma, delta)))
  half = jnp.abs(delta) * jnp.asarray(shape, dtype) / 2
  scale = math.sqrt(2) * _clamp_sigma(sigma)
  limit = jnp.asarray(image_shape, dtype) - 1 + CENTER_LIMIT
  lo = jnp.clip(mu - half, -CENTER_LIMIT, limit)
  hi = jnp.clip(mu + half, -CENTER_LIMIT, limit)
  mask = None
  for a in range(n):
    i = jnp.arange(image_shape[a], dtype=dtype)
    lo_a, hi_a, s = (x[..., a, None] for x in (lo, hi, scale))
    factor = (jax.scipy.special.erf((i - lo_a) / s) - jax.scipy.special.erf((i - hi_a) / s)) / 2
    if mask is None:
      mask = factor
    else:  # Outer product: (*batch, S_0..S_{a-1}, 1) * (*batch, 1..1, S_a).
      mask = mask[..., None] * factor.reshape(factor.shape[:-1] + (1,) * a + factor.shape[-1:])
  return mask
