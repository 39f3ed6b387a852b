"""Network heads: a layer's raw outputs to valid glimpse parameters.

A model that learns where to look ends in a linear layer; a head maps its
unconstrained outputs to parameters that are valid for any input: DRAW's
Gaussian attention (`draw_params`) and a bounded, well-conditioned spatial
transformer (`affine_params`). Zero raw outputs give a glimpse of (nearly)
the whole image, so zero-initialising the layer starts there. The framework
adapters (`jaxglimpse.flax`, `jaxglimpse.haiku`) build on the helpers at the
end of this module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxglimpse import _checks
from jaxglimpse.affine import affine_to_box
from jaxglimpse.params import GaussianParams, box_to_gaussian

LOG_LIMIT = 30.0
"""`draw_params` clips its log-scale inputs to ±LOG_LIMIT, so exp() stays finite."""


def draw_params(
    raw: ArrayLike, image_shape: Sequence[int], glimpse_shape: Sequence[int]
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

  Parametrisation and gradients. ``raw = 0`` reads nearly the whole image:
  centred, with N strides spanning ``N / (N - 1) · (max(S) - 1)`` pixels, σ = 1
  and γ = 1, so zero-initialising the head's last layer starts there. The
  centre is linear in g̃ and unbounded: a glimpse may leave the image, where
  the renormalised filters pile onto the nearest edge pixels and the gradient
  with respect to mu fades. Stride, width and gamma are exponentials, always
  positive, whose gradient is proportional to their value: steps in raw are
  relative steps in them. So that they can never overflow, the three logs are
  clipped to ``[-LOG_LIMIT, LOG_LIMIT]`` (±30: factors from 1e-13 to 1e13),
  where their gradient is 0; `affine_params` is the bounded alternative for
  spatial transformers.

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
    >>> import jaxglimpse as jg
    >>> params, gamma = jg.draw_params(jnp.zeros(5), (28, 28), (12, 12))
    >>> params.mu.tolist(), round(float(params.delta[0]), 4), float(gamma)
    ([13.5, 13.5], 2.4545, 1.0)

  References:
    Gregor et al., "DRAW: A Recurrent Neural Network For Image Generation",
    ICML 2015, section 3.2.
  """
  fn = "draw_params"
  image_shape = _checks.shape_tuple(fn, "image_shape", image_shape)
  glimpse_shape = _checks.shape_tuple(fn, "glimpse_shape", glimpse_shape)
  n = _checks.ndim_of(fn, "image_shape", len(image_shape))
  _checks.per_axis(fn, "glimpse_shape", glimpse_shape, n, f"image_shape={image_shape!r}")
  raw = _checks.float_array(fn, "raw", raw)
  _checks.last_axis(fn, "raw", raw, n + 3, f": {n} centres, log σ², log δ̃ and log γ")
  dtype = _checks.compute_dtype(raw)
  raw = raw.astype(dtype)
  g = raw[..., :n]
  log_var, log_stride, log_gamma = (
      jnp.clip(raw[..., n + k], -LOG_LIMIT, LOG_LIMIT) for k in range(3)
  )
  size = jnp.asarray(image_shape, dtype)
  mu = (size + 1) / 2 * (g + 1) - 1
  big_n = max(glimpse_shape)
  scale = (max(image_shape) - 1) / max(big_n - 1, 1)
  ones = jnp.ones_like(g)
  delta = scale * jnp.exp(log_stride)[..., None] * ones
  sigma = jnp.exp(log_var / 2)[..., None] * ones
  return GaussianParams(mu, sigma, delta), jnp.exp(log_gamma)


_AFFINE_KINDS = ("scale_shift", "affine")


def affine_head_size(n: int, kind: str) -> int:
  """The number of head outputs `affine_params` takes for n spatial axes."""
  return 2 * n if kind == "scale_shift" else n * (n + 1)


def _cayley(k: jax.Array, n: int) -> jax.Array:
  """The rotation ``(I - K)⁻¹ (I + K)`` for the skew matrix K of ``k``.

  ``k`` is ``(*batch, n (n - 1) / 2)``, one entry per axis pair (i < j) with
  ``K[i, j] = -k`` and ``K[j, i] = k``. For n ≤ 3, ``K³ = -|k|² K``, which gives
  the closed form ``I + 2 (K + K²) / (1 + |k|²)``. It is evaluated with K
  divided by ``m = max(1, max |k|)``, which leaves the value unchanged and keeps
  every intermediate at most about 1 for any finite k.
  """
  eye = jnp.eye(n, dtype=k.dtype)
  if n == 1:
    return jnp.broadcast_to(eye, k.shape[:-1] + (1, 1))
  m = jax.lax.stop_gradient(jnp.maximum(1, jnp.max(jnp.abs(k), axis=-1)))[..., None]
  kh = k / m
  skew = jnp.zeros(k.shape[:-1] + (n, n), k.dtype)
  pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
  for p, (i, j) in enumerate(pairs):
    skew = skew.at[..., i, j].set(-kh[..., p]).at[..., j, i].set(kh[..., p])
  square = jnp.einsum("...ij,...jk->...ik", skew, skew, precision=jax.lax.Precision.HIGHEST)
  denom = (1 / m**2 + jnp.sum(kh**2, axis=-1, keepdims=True))[..., None]
  return eye + 2 * (skew / m[..., None] + square) / denom


def affine_params(
    raw: ArrayLike,
    *,
    kind: str = "scale_shift",
    scale_range: tuple[float, float] = (0.05, 2.0),
    init_scale: float = 1.0,
    max_shift: float = 1.0,
) -> jax.Array:
  """Returns a bounded, well-conditioned affine ``theta`` from a head's raw outputs.

  A spatial transformer's localisation network ends in a linear layer; this
  maps its unconstrained outputs to ``theta`` of shape ``(*batch, n, n + 1)``
  (glimpse normalised coordinates to image normalised coordinates, see the
  conventions in `jaxglimpse`). ``raw = 0`` gives ``scale = init_scale`` on
  every axis, no shift and no rotation: with the default ``init_scale = 1``,
  the identity transform, a glimpse of the whole image. Zero-initialise the
  head's last layer (weights and bias) to start there; started elsewhere, STN
  training often drifts off the image and does not recover.

  With ``(lo, hi) = scale_range``, ``p = (init_scale - lo) / (hi - lo)`` and
  ``b = log(p / (1 - p))``, the raw entries ``a`` (n), ``c`` (n) and, for
  ``kind="affine"``, ``u`` and ``v`` (n (n - 1) / 2 each) give::

      s = init_scale + (hi - lo) · (sigmoid(a + b) - p)      ∈ (lo, hi)
      t = max_shift · tanh(c)                                 ∈ (-max_shift, max_shift)
      "scale_shift":  theta = [diag(s) | t]
      "affine":       theta = [R(u) · diag(s) · R(v)ᵀ | t]

  where ``R(k) = (I - K)⁻¹ (I + K)`` is the Cayley rotation of the skew matrix
  K with ``K[i, j] = -k_p`` and ``K[j, i] = k_p`` for the p-th axis pair
  (i < j) in the order (0, 1), (0, 2), (1, 2); in 2-D it is the rotation by
  ``2 · arctan(k)``. ``raw[..., :2n]`` means the same for both kinds, so an
  ``"affine"`` head with ``u = v = 0`` is the ``"scale_shift"`` head.

  Parametrisation and gradients. The matrix part of ``"affine"`` is written as
  its singular value decomposition, so its singular values are exactly s:
  every output is invertible, with condition number at most ``hi / lo`` and
  ``det > 0`` (no mirroring). Shears and anisotropic zooms arise from
  rotations u ≠ v. Every output is bounded for any finite raw: ``|theta|`` is at
  most ``hi`` in the matrix part and ``max_shift`` in the shift. The sigmoid
  and tanh have slope 1/4 · (hi - lo) and max_shift at raw 0 and saturate for
  ``|raw| ≫ 1``: the output then sits at its bound and its gradient decays like
  ``exp(-|raw|)``, reaching 0 (never inf or NaN), so a saturated head stops
  learning; keep its outputs near 0. A rotation is smooth in k everywhere; its
  angle tends to ±π as ``|k|`` grows, with gradient falling like ``1 / k²``.

  Args:
    raw: ``(*batch, 2n)`` for ``kind="scale_shift"`` (``[a, c]``) or
      ``(*batch, n (n + 1))`` for ``kind="affine"`` (``[a, c, u, v]``), with
      n = 1, 2 or 3 spatial axes: 4 or 6 entries for images.
    kind: ``"scale_shift"`` (axis-aligned zoom and shift: n scales, n shifts) or
      ``"affine"`` (any orientation-preserving affine map with bounded
      singular values).
    scale_range: ``(lo, hi)`` with ``0 < lo < hi``: the range of the scales
      (singular values). Scale 1 spans the whole image, 1/2 half of each axis.
    init_scale: the scale at ``raw = 0``, strictly inside `scale_range`.
    max_shift: the bound on each shift, in normalised units (1 keeps the
      glimpse centre inside the image).

  Returns:
    ``theta`` of shape ``(*batch, n, n + 1)``, float32 or wider.

  Raises:
    ValueError: for an unknown kind, a last axis of raw that fits no n, or
      ranges that are empty, non-positive or do not contain init_scale.
    TypeError: for a non-float raw.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> jg.affine_params(jnp.zeros(4)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    >>> theta = jg.affine_params(jnp.array([-1e4, 1e4, 1e4, -1e4]))
    >>> theta.round(4).tolist()
    [[0.05, 0.0, 1.0], [0.0, 2.0, -1.0]]
    >>> jg.affine_params(jnp.zeros((8, 6)), kind="affine").shape
    (8, 2, 3)

  References:
    Jaderberg et al., "Spatial Transformer Networks", NeurIPS 2015, section 3.1.
  """
  fn = "affine_params"
  _checks.choice(fn, "kind", kind, _AFFINE_KINDS)
  try:
    lo, hi = (float(x) for x in scale_range)
  except (TypeError, ValueError):
    raise ValueError(
        f"{fn}: scale_range must be two numbers (lo, hi), got {scale_range!r}."
    ) from None
  if not 0 < lo < hi < float("inf"):
    raise ValueError(f"{fn}: scale_range must satisfy 0 < lo < hi, got {scale_range!r}.")
  if not lo < float(init_scale) < hi:
    raise ValueError(
        f"{fn}: init_scale must lie strictly inside scale_range {scale_range!r}, "
        f"got {init_scale!r}."
    )
  if not 0 < float(max_shift) < float("inf"):
    raise ValueError(f"{fn}: max_shift must be positive and finite, got {max_shift!r}.")
  raw = _checks.float_array(fn, "raw", raw)
  sizes = {affine_head_size(n, kind): n for n in (1, 2, 3)}
  if raw.ndim < 1 or raw.shape[-1] not in sizes:
    what = "2n" if kind == "scale_shift" else "n (n + 1)"
    raise ValueError(
        f"{fn}: raw must have shape (*batch, {what}) for kind={kind!r}, that is "
        f"a last axis of {' or '.join(map(str, sizes))} for n = 1, 2 or 3 "
        f"spatial axes, got shape {raw.shape}."
    )
  n = sizes[raw.shape[-1]]
  dtype = _checks.compute_dtype(raw)
  raw = raw.astype(dtype)
  p = (float(init_scale) - lo) / (hi - lo)
  b = math.log(p / (1 - p))
  # Subtracting sigmoid(b) in the same precision makes raw = 0 give exactly
  # init_scale; it equals p up to rounding.
  s = float(init_scale) + (hi - lo) * (
      jax.nn.sigmoid(raw[..., :n] + b) - jax.nn.sigmoid(jnp.asarray(b, dtype))
  )
  t = float(max_shift) * jnp.tanh(raw[..., n : 2 * n])
  if kind == "scale_shift" or n == 1:
    matrix = s[..., :, None] * jnp.eye(n, dtype=dtype)
  else:
    m = n * (n - 1) // 2
    rot_out = _cayley(raw[..., 2 * n : 2 * n + m], n)
    rot_in = _cayley(raw[..., 2 * n + m :], n)
    matrix = jnp.einsum(
        "...ij,...j,...kj->...ik", rot_out, s, rot_in, precision=jax.lax.Precision.HIGHEST
    )
  return jnp.concatenate([matrix, t[..., :, None]], axis=-1)


def gaussian_head_size(fn: str, kind: str, n: int) -> int:
  """The number of head outputs a Gaussian head of `kind` takes (adapters)."""
  _checks.choice(fn, "kind", kind, ("draw", "scale_shift"))
  return n + 2 if kind == "draw" else affine_head_size(n, "scale_shift")


def gaussian_head(
    raw: jax.Array,
    kind: str,
    image_shape: Sequence[int],
    glimpse_shape: tuple[int, ...],
    **options,
) -> GaussianParams:
  """`GaussianParams` from a head's raw outputs, for the framework adapters.

  ``"draw"``: raw is DRAW's ``(g̃, log σ², log δ̃)``, n + 2 numbers, read by
  `draw_params` with ``log γ = 0``. ``"scale_shift"``: raw is 2n numbers read
  by `affine_params` (with `options`); the glimpse is the one that tiles that
  theta's box, ``box_to_gaussian(affine_to_box(theta))``, so it is bounded
  like a spatial transformer's and starts at the whole image.
  """
  if kind == "draw":
    raw = jnp.concatenate([raw, jnp.zeros_like(raw[..., :1])], axis=-1)
    return draw_params(raw, image_shape, glimpse_shape)[0]
  theta = affine_params(raw, kind="scale_shift", **options)
  return box_to_gaussian(affine_to_box(theta, glimpse_shape, image_shape), glimpse_shape)


def projective_head_size(n: int) -> int:
  """The number of head outputs `projective_params` takes for n spatial axes."""
  return n * (n + 2)


def projective_params(
    raw: ArrayLike,
    *,
    scale_range: tuple[float, float] = (0.05, 2.0),
    init_scale: float = 1.0,
    max_shift: float = 1.0,
    max_perspective: float | None = None,
) -> jax.Array:
  """Returns a projective ``matrix`` whose glimpse lies in front of the horizon.

  ``raw[..., :n (n + 1)]`` gives the affine part ``theta`` exactly as
  `affine_params` with ``kind="affine"``, and the last n entries ``q`` the
  perspective row::

      matrix = [[theta], [max_perspective · tanh(q), 1]],

  so ``w = 1 + p · u >= 1 - n · max_perspective > 0`` over the glimpse's
  [-1, 1]^n. ``raw = 0`` gives the identity (with ``init_scale = 1``).

  Args:
    raw: ``(*batch, n (n + 2))``: 3, 8 or 15 entries for n = 1, 2, 3.
    scale_range, init_scale, max_shift: as in `affine_params`.
    max_perspective: the bound on each perspective entry, in (0, 1 / n);
      default ``0.5 / n``.

  Returns:
    ``matrix`` of shape ``(*batch, n + 1, n + 1)``, float32 or wider.

  Raises:
    ValueError: for a last axis of raw that fits no n, or options out of range.
    TypeError: for a non-float raw.

  Examples:
    >>> import jaxglimpse as jg
    >>> import jax.numpy as jnp
    >>> jg.projective_params(jnp.zeros(8)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
  """
  fn = "projective_params"
  raw = _checks.float_array(fn, "raw", raw)
  sizes = {projective_head_size(n): n for n in (1, 2, 3)}
  if raw.ndim < 1 or raw.shape[-1] not in sizes:
    raise ValueError(
        f"{fn}: raw must have shape (*batch, n (n + 2)), that is a last axis of "
        f"3, 8 or 15 for n = 1, 2 or 3 spatial axes, got shape {raw.shape}."
    )
  n = sizes[raw.shape[-1]]
  bound = 0.5 / n if max_perspective is None else max_perspective
  if not (isinstance(bound, (int, float)) and 0 < bound < 1 / n):
    raise ValueError(
        f"{fn}: max_perspective must lie in (0, 1/n) = (0, {1 / n:g}), got {max_perspective!r}."
    )
  raw = raw.astype(_checks.compute_dtype(raw))
  theta = affine_params(
      raw[..., : n * (n + 1)], kind="affine", scale_range=scale_range,
      init_scale=init_scale, max_shift=max_shift,
  )
  row = jnp.concatenate(
      [float(bound) * jnp.tanh(raw[..., n * (n + 1) :]), jnp.ones_like(raw[..., :1])], axis=-1
  )
  return jnp.concatenate([theta, row[..., None, :]], axis=-2)


def tps_params(raw: ArrayLike, controls: ArrayLike, *, max_offset: float = 0.5) -> jax.Array:
  """Returns thin-plate-spline ``targets``: the controls, each moved a bounded step.

  ``targets = controls + max_offset · tanh(raw)``, with raw read as
  ``(*batch, K, n)``; ``raw = 0`` gives the controls, the identity.

  Args:
    raw: ``(*batch, K n)``, the head's outputs.
    controls: ``(K, n)``, e.g. `tps_controls`.
    max_offset: the bound on each coordinate's step, in normalised units.

  Returns:
    ``targets`` of shape ``(*batch, K, n)``, float32 or wider.

  Raises:
    ValueError: if raw's last axis is not K n, or max_offset is not positive.
    TypeError: for a non-float raw or controls.

  Examples:
    >>> import jaxglimpse as jg
    >>> import jax.numpy as jnp
    >>> controls = jg.tps_controls(2)
    >>> bool((jg.tps_params(jnp.zeros(8), controls) == controls).all())
    True
  """
  fn = "tps_params"
  raw = _checks.float_array(fn, "raw", raw)
  controls = _checks.float_array(fn, "controls", controls)
  if controls.ndim != 2:
    raise ValueError(f"{fn}: controls must have shape (K, n), got shape {controls.shape}.")
  k, n = controls.shape
  if raw.ndim < 1 or raw.shape[-1] != k * n:
    raise ValueError(
        f"{fn}: raw must have shape (*batch, K n) = (*batch, {k * n}) for controls "
        f"of shape {controls.shape}, got shape {raw.shape}."
    )
  _checks.positive_number(fn, "max_offset", max_offset)
  dtype = _checks.compute_dtype(raw, controls)
  step = float(max_offset) * jnp.tanh(raw.astype(dtype)).reshape(*raw.shape[:-1], k, n)
  return controls.astype(dtype) + step
