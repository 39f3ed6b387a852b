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

Values that jit cannot check are made safe by construction: σ is clamped to
at least `SIGMA_MIN`, and filter centres further than `CENTER_LIMIT` pixels
outside the image are clamped there (the filter is then far off the image
either way), which keeps outputs and gradients finite for any finite input.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxglimpse import _checks
from jaxglimpse.params import GaussianParams, as_gaussian_params

SIGMA_MIN = 1e-4
"""The floor, in pixels, applied to sigma: smaller or negative values act as it."""

CENTER_LIMIT = 1e6
"""Filter centres are clamped to [-CENTER_LIMIT, S - 1 + CENTER_LIMIT] pixels."""

_POISSON_SIGMA = 0.5  # Switch from the direct sum to Poisson summation here.
_HIGHEST = jax.lax.Precision.HIGHEST


def _log_grid_normalizer(c: jax.Array, sigma: jax.Array) -> jax.Array:
  """log Σ_{k ∈ Z} exp(-(k - c)² / (2σ²)), accurate to ~1e-8 relative."""
  frac = c - jnp.floor(c)  # The sum is periodic in c; this keeps cos() exact.
  # Direct sum over the six integers nearest c: the first term left out is at
  # distance ≥ 3, exp(-9 / (2 · 0.5²)) ≈ 1.5e-8 at the largest σ used here.
  small = sigma < _POISSON_SIGMA
  # where(), not minimum(): at a tie minimum() would pass on half the gradient.
  s_small = jnp.where(small, sigma, _POISSON_SIGMA)
  d = jnp.arange(-2, 4, dtype=c.dtype) - frac[..., None]
  direct = jax.nn.logsumexp(-(d**2) / (2 * s_small[..., None] ** 2), axis=-1)
  # Poisson: σ√(2π) (1 + 2 Σ_m exp(-2π²σ²m²) cos(2πmc)); m = 4 would add
  # exp(-8π²σ²) < 1e-17 at σ = 1/2. The clamp keeps the unused branch finite.
  s_big = jnp.where(small, _POISSON_SIGMA, sigma)
  m = jnp.arange(1, 4, dtype=c.dtype)
  terms = jnp.exp(-2 * math.pi**2 * (s_big[..., None] * m) ** 2)
  theta = 1 + 2 * jnp.sum(terms * jnp.cos(2 * math.pi * m * frac[..., None]), axis=-1)
  poisson = jnp.log(s_big * math.sqrt(2 * math.pi)) + jnp.log(theta)
  return jnp.where(small, direct, poisson)


def _filterbank(
    mu: jax.Array,
    sigma: jax.Array,
    delta: jax.Array,
    n: int,
    size: int,
    padding: str,
    dtype,
) -> jax.Array:
  """The (*batch, n, size) filter matrices; arguments already checked."""
  mu, sigma, delta = (x.astype(dtype)[..., None, None] for x in (mu, sigma, delta))
  sigma = jnp.maximum(sigma, SIGMA_MIN)
  j = jnp.arange(n, dtype=dtype)[:, None] - (n - 1) / 2
  centers = jnp.clip(mu + j * delta, -CENTER_LIMIT, size - 1 + CENTER_LIMIT)
  pixels = jnp.arange(size, dtype=dtype)
  logits = -(((pixels - centers) / sigma) ** 2) / 2
  if padding == "renormalize":
    return jax.nn.softmax(logits, axis=-1)
  log_z = _log_grid_normalizer(centers[..., 0], sigma[..., 0])
  return jnp.exp(logits - log_z[..., None])


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


def _cheapest_order(sizes_in: tuple[int, ...], sizes_out: tuple[int, ...]) -> tuple[int, ...]:
  """The axis order that minimises the multiply-adds of a separable contraction.

  Contracting axis a multiplies the current tensor size by sizes_out[a] to get
  the cost, then scales the tensor by sizes_out[a] / sizes_in[a]. With n ≤ 3
  there are at most six orders, so try them all.
  """

  def cost(order):
    current, total = math.prod(sizes_in), 0
    for a in order:
      total += current * sizes_out[a]
      current = current // sizes_in[a] * sizes_out[a]
    return total

  return min(itertools.permutations(range(len(sizes_in))), key=cost)


def _contract(x: jax.Array, filters: list[jax.Array], order: tuple[int, ...]) -> jax.Array:
  """Applies ``filters[a]`` (out_a, in_a) along spatial axis a of x, in `order`."""
  for a in order:
    y = jnp.tensordot(filters[a], x, axes=(1, a), precision=_HIGHEST)
    x = jnp.moveaxis(y, 0, a)
  return x


def _signature(n: int, image_letter: str, out_letter: str) -> str:
  spatial = lambda letter: ",".join(f"{letter}{a}" for a in range(n))
  return (
      f"({spatial(image_letter)},c),(n),(n),(n)->({spatial(out_letter)},c)"
  )


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
) -> jax.Array:
  """Returns the Gaussian filterbank glimpse ``(*batch, *shape, C)`` of an image.

  In two dimensions the glimpse is ``G = F_y · I · F_xᵀ`` per channel, with
  ``F_y`` and ``F_x`` from `gaussian_filterbank`; in n dimensions each spatial
  axis is contracted with its own filterbank, in the order that costs the
  fewest multiply-adds.

  Args:
    image: ``(*batch, *spatial, C)``, a float image with n = ``len(shape)``
      spatial axes.
    params: `GaussianParams` with fields ``(*batch, n)``. Batch axes of image
      and params broadcast, so an image ``(B, 1, H, W, C)`` with params
      ``(B, K, 2)`` gives K glimpses per image without copying it.
    shape: the glimpse's spatial shape, n positive Python ints (static).
    padding: ``"renormalize"`` (DRAW; filters sum to 1 over the image) or
      ``"zeros"`` (filters sum to 1 over the infinite grid: off-image is dark).

  Returns:
    The glimpse, in the image's dtype. Filters are built and the contraction
    accumulated in float32 or wider.

  Raises:
    ValueError: for a wrong rank, batch shapes that do not broadcast, params
      whose n differs from ``len(shape)``, or a bad shape or padding.
    TypeError: for an integer image, non-float params or a non-int shape.

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
  order = _cheapest_order(image_shape, shape)

  def one(x, mu, sigma, delta):
    filters = [
        _filterbank(mu[a], sigma[a], delta[a], shape[a], image_shape[a], padding, dtype)
        for a in range(n)
    ]
    return _contract(x.astype(dtype), filters, order).astype(image.dtype)

  return jnp.vectorize(one, signature=_signature(n, "s", "g"))(image, *params)


def gaussian_write(
    glimpse: ArrayLike,
    params: GaussianParams,
    image_shape: tuple[int, ...],
    *,
    padding: str = "renormalize",
) -> jax.Array:
  """Returns DRAW's write: the glimpse spread back onto an image-sized canvas.

  In two dimensions ``W = F_yᵀ · G · F_x`` per channel: the exact transpose of
  `gaussian_glimpse` as a linear map of the image, so that
  ``<gaussian_glimpse(x, p), g> == <x, gaussian_write(g, p)>``.

  Args:
    glimpse: ``(*batch, *shape, C)``, a float glimpse with n spatial axes.
    params: `GaussianParams` with fields ``(*batch, n)``; batch axes broadcast.
    image_shape: the canvas's spatial shape, n positive Python ints (static).
    padding: as in `gaussian_glimpse`; use the one the read used.

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
  order = _cheapest_order(shape, image_shape)

  def one(g, mu, sigma, delta):
    filters = [
        _filterbank(mu[a], sigma[a], delta[a], shape[a], image_shape[a], padding, dtype).T
        for a in range(n)
    ]
    return _contract(g.astype(dtype), filters, order).astype(glimpse.dtype)

  return jnp.vectorize(one, signature=_signature(n, "g", "s"))(glimpse, *params)


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
  if len(image_shape) != n:
    raise ValueError(
        f"{fn}: image_shape {image_shape} must have as many axes as shape {shape}."
    )
  mu, sigma, delta = as_gaussian_params(fn, params, n)
  dtype = _checks.compute_dtype(mu, sigma, delta)
  mu, sigma, delta = jnp.broadcast_arrays(*(x.astype(dtype) for x in (mu, sigma, delta)))
  half = jnp.abs(delta) * jnp.asarray(shape, dtype) / 2
  scale = math.sqrt(2) * jnp.maximum(sigma, SIGMA_MIN)
  mask = None
  for a in range(n):
    i = jnp.arange(image_shape[a], dtype=dtype)
    lo, hi, s = (x[..., a, None] for x in (mu - half, mu + half, scale))
    factor = (jax.scipy.special.erf((i - lo) / s) - jax.scipy.special.erf((i - hi) / s)) / 2
    if mask is None:
      mask = factor
    else:  # Outer product: (*batch, S_0..S_{a-1}, 1) * (*batch, 1..1, S_a).
      mask = mask[..., None] * factor.reshape(factor.shape[:-1] + (1,) * a + factor.shape[-1:])
  return mask
