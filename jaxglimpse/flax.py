"""Flax NNX modules: glimpses whose parameters a small head predicts.

Each module owns one linear head, features → glimpse parameters, and returns
the glimpse together with the parameters it used. The head's weights and bias
start at zero, so that before training every example reads (nearly) the whole
image, which is where spatial transformers and DRAW need to start. All the
maths is in the core (`jaxglimpse.draw_params`, `jaxglimpse.affine_params` and
the glimpse functions); this module is glue.

Requires the ``flax`` extra (``pip install "jaxglimpse[flax]"``); the core
never imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

try:
  from flax import nnx
except ImportError as error:  # An optional dependency: say which extra brings it.
  raise ModuleNotFoundError(  # As a missing module is reported, so importorskip works.
      'jaxglimpse.flax needs Flax: pip install "jaxglimpse[flax]" (or pip install flax).'
  ) from error

import jaxglimpse as _jg
from jaxglimpse.heads import affine_head_size, gaussian_head, gaussian_head_size, projective_head_size


class GaussianGlimpse(nnx.Module):
  """A Gaussian (DRAW) glimpse placed by a zero-initialised linear head.

  The default, ``kind="scale_shift"``, bounds where the glimpse can go; DRAW's
  own parametrisation is ``kind="draw"``.

  With ``kind="draw"`` the head maps features ``(*batch, in_features)`` to
  DRAW's ``(g̃, log σ², log δ̃)`` (n + 2 numbers) and `jaxglimpse.draw_params`
  turns them into `GaussianParams`, with DRAW's intensity γ fixed at 1 (a
  network after the glimpse can learn any scale). These are unbounded: a large
  learning rate can send the glimpse off the image for good.

  With ``kind="scale_shift"`` the head has 2n outputs and the same bounded
  parametrisation as a spatial transformer: `jaxglimpse.affine_params` gives a
  scale-and-shift theta, `jaxglimpse.affine_to_box` its box, and
  `jaxglimpse.box_to_gaussian` the glimpse that tiles the box, with the
  anti-aliasing width ``sigma = max(delta / 2, 1/2)``.

  Either way the glimpse covers the whole image at initialisation.

  Args:
    in_features: the size of the features' last axis.
    glimpse_shape: the glimpse's spatial shape, n Python ints.
    kind: ``"scale_shift"`` (the default) or ``"draw"``, as above.
    scale_range, init_scale, max_shift: for ``kind="scale_shift"``, as in
      `jaxglimpse.affine_params`.
    padding: as in `jaxglimpse.gaussian_glimpse`.
    rngs: an ``nnx.Rngs``; the zero initialisation draws nothing from it.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> import jaxglimpse.flax
    >>> from flax import nnx
    >>> attend = jg.flax.GaussianGlimpse(8, (4, 4), rngs=nnx.Rngs(0))
    >>> glimpse, params = attend(jnp.ones((2, 28, 28, 1)), jnp.ones((2, 8)))
    >>> glimpse.shape, params.mu.tolist()
    ((2, 4, 4, 1), [[13.5, 13.5], [13.5, 13.5]])
  """

  def __init__(
      self,
      in_features: int,
      glimpse_shape: Sequence[int],
      *,
      kind: str = "scale_shift",
      scale_range: tuple[float, float] = (0.05, 2.0),
      init_scale: float = 1.0,
      max_shift: float = 1.0,
      padding: str = "renormalize",
      rngs: nnx.Rngs,
  ):
    self.glimpse_shape = tuple(glimpse_shape)
    self.kind = kind
    size = gaussian_head_size("GaussianGlimpse", kind, len(self.glimpse_shape))
    self.head_options: dict[str, Any] = dict(
        scale_range=tuple(scale_range), init_scale=init_scale, max_shift=max_shift
    )
    if kind == "scale_shift":  # Bad options raise here rather than at the first call.
      _jg.affine_params(jnp.zeros(size), **self.head_options)
    self.padding = padding
    self.head = nnx.Linear(
        in_features,
        size,
        kernel_init=nnx.initializers.zeros_init(),
        bias_init=nnx.initializers.zeros_init(),
        rngs=rngs,
    )

  def glimpse_params(self, features: ArrayLike, image_shape: Sequence[int]) -> _jg.GaussianParams:
    """Returns the `GaussianParams` ``(*batch, n)`` for an image of `image_shape`."""
    raw = self.head(jnp.asarray(features))
    return gaussian_head(
        raw, self.kind, tuple(image_shape), self.glimpse_shape, **self.head_options
    )

  def __call__(self, image: ArrayLike, features: ArrayLike) -> tuple[jax.Array, _jg.GaussianParams]:
    """Returns ``(glimpse, params)``: ``(*batch, *glimpse_shape, C)`` and its params.

    Args:
      image: ``(*batch, *spatial, C)``.
      features: ``(*batch, in_features)``; batch axes broadcast with image's.
    """
    image = jnp.asarray(image)
    n = len(self.glimpse_shape)
    params = self.glimpse_params(features, image.shape[-(n + 1) : -1])
    glimpse = _jg.gaussian_glimpse(image, params, self.glimpse_shape, padding=self.padding)
    return glimpse, params


class AffineGlimpse(nnx.Module):
  """A spatial transformer glimpse placed by a zero-initialised linear head.

  The head maps features ``(*batch, in_features)`` to the raw outputs of
  `jaxglimpse.affine_params` (2n for ``kind="scale_shift"``, n (n + 1) for
  ``"affine"``), which give a bounded, well-conditioned theta. At
  initialisation theta is ``init_scale`` times the identity: with the default
  1, the glimpse is the whole image, resized.

  Args:
    in_features: the size of the features' last axis.
    glimpse_shape: the glimpse's spatial shape, n Python ints.
    kind, scale_range, init_scale, max_shift: as in `jaxglimpse.affine_params`.
    align_corners, padding, order, supersample: as in
      `jaxglimpse.affine_glimpse`.
    rngs: an ``nnx.Rngs``; the zero initialisation draws nothing from it.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> import jaxglimpse.flax
    >>> from flax import nnx
    >>> attend = jg.flax.AffineGlimpse(8, (4, 4), kind="affine", rngs=nnx.Rngs(0))
    >>> glimpse, theta = attend(jnp.ones((2, 28, 28, 1)), jnp.ones((2, 8)))
    >>> glimpse.shape, theta[0].tolist()
    ((2, 4, 4, 1), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
  """

  def __init__(
      self,
      in_features: int,
      glimpse_shape: Sequence[int],
      *,
      kind: str = "scale_shift",
      scale_range: tuple[float, float] = (0.05, 2.0),
      init_scale: float = 1.0,
      max_shift: float = 1.0,
      align_corners: bool = False,
      padding: str = "zeros",
      order: int = 1,
      supersample: int | tuple[int, ...] = 1,
      rngs: nnx.Rngs,
  ):
    self.glimpse_shape = tuple(glimpse_shape)
    self.head_options: dict[str, Any] = dict(
        kind=kind, scale_range=tuple(scale_range), init_scale=init_scale, max_shift=max_shift
    )
    self.glimpse_options: dict[str, Any] = dict(
        align_corners=align_corners, padding=padding, order=order, supersample=supersample
    )
    size = affine_head_size(len(self.glimpse_shape), kind)
    _jg.affine_params(jnp.zeros(size), **self.head_options)  # Checks the options.
    self.head = nnx.Linear(
        in_features,
        size,
        kernel_init=nnx.initializers.zeros_init(),
        bias_init=nnx.initializers.zeros_init(),
        rngs=rngs,
    )

  def glimpse_params(self, features: ArrayLike) -> jax.Array:
    """Returns theta ``(*batch, n, n + 1)`` for `features` ``(*batch, in_features)``."""
    return _jg.affine_params(self.head(jnp.asarray(features)), **self.head_options)

  def __call__(self, image: ArrayLike, features: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Returns ``(glimpse, theta)``: ``(*batch, *glimpse_shape, C)`` and its theta.

    Args:
      image: ``(*batch, *spatial, C)``.
      features: ``(*batch, in_features)``; batch axes broadcast with image's.
    """
    theta = self.glimpse_params(features)
    glimpse = _jg.affine_glimpse(image, theta, self.glimpse_shape, **self.glimpse_options)
    return glimpse, theta


class ProjectiveGlimpse(nnx.Module):
  """A projective glimpse placed by a zero-initialised linear head.

  The head maps features ``(*batch, in_features)`` to the n (n + 2) raw
  outputs of `jaxglimpse.projective_params`; at initialisation the matrix is
  the identity (with the default ``init_scale = 1``): the whole image.

  Args:
    in_features: the size of the features' last axis.
    glimpse_shape: the glimpse's spatial shape, n Python ints.
    scale_range, init_scale, max_shift, max_perspective: as in
      `jaxglimpse.projective_params`.
    align_corners, padding, order, supersample: as in
      `jaxglimpse.projective_glimpse`.
    rngs: an ``nnx.Rngs``; the zero initialisation draws nothing from it.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> import jaxglimpse.flax
    >>> from flax import nnx
    >>> attend = jg.flax.ProjectiveGlimpse(8, (4, 4), rngs=nnx.Rngs(0))
    >>> glimpse, matrix = attend(jnp.ones((2, 28, 28, 1)), jnp.ones((2, 8)))
    >>> glimpse.shape, matrix[0].tolist()
    ((2, 4, 4, 1), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
  """

  def __init__(
      self,
      in_features: int,
      glimpse_shape: tuple[int, ...],
      *,
      scale_range: tuple[float, float] = (0.05, 2.0),
      init_scale: float = 1.0,
      max_shift: float = 1.0,
      max_perspective: float | None = None,
      align_corners: bool = False,
      padding: str = "zeros",
      order: int = 1,
      supersample: int | tuple[int, ...] = 1,
      rngs: nnx.Rngs,
  ):
    self.glimpse_shape = tuple(glimpse_shape)
    self.head_options: dict[str, Any] = dict(
        scale_range=tuple(scale_range), init_scale=init_scale, max_shift=max_shift,
        max_perspective=max_perspective,
    )
    self.glimpse_options: dict[str, Any] = dict(
        align_corners=align_corners, padding=padding, order=order, supersample=supersample
    )
    size = projective_head_size(len(self.glimpse_shape))
    _jg.projective_params(jnp.zeros(size), **self.head_options)  # Checks the options.
    self.head = nnx.Linear(
        in_features, size, kernel_init=nnx.initializers.zeros_init(),
        bias_init=nnx.initializers.zeros_init(), rngs=rngs,
    )

  def __call__(self, image: ArrayLike, features: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Returns ``(glimpse, matrix)``: ``(*batch, *glimpse_shape, C)`` and its matrix."""
    matrix = _jg.projective_params(self.head(jnp.asarray(features)), **self.head_options)
    glimpse = _jg.projective_glimpse(image, matrix, self.glimpse_shape, **self.glimpse_options)
    return glimpse, matrix


class TPSGlimpse(nnx.Module):
  """A thin-plate-spline glimpse whose targets a zero-initialised head moves.

  The controls are the ``k x ... x k`` grid of `jaxglimpse.tps_controls`; the
  head maps features to the K n raw outputs of `jaxglimpse.tps_params`. At
  initialisation the targets are the controls: the identity, the whole image.

  Args:
    in_features: the size of the features' last axis.
    glimpse_shape: the glimpse's spatial shape, n Python ints.
    k: control points per axis (the STN paper used 4).
    max_offset: as in `jaxglimpse.tps_params`.
    align_corners, padding, order, supersample, regularization: as in
      `jaxglimpse.tps_glimpse`.
    rngs: an ``nnx.Rngs``; the zero initialisation draws nothing from it.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> import jaxglimpse.flax
    >>> from flax import nnx
    >>> attend = jg.flax.TPSGlimpse(8, (4, 4), rngs=nnx.Rngs(0))
    >>> glimpse, targets = attend(jnp.ones((2, 28, 28, 1)), jnp.ones((2, 8)))
    >>> glimpse.shape, targets.shape
    ((2, 4, 4, 1), (2, 16, 2))
  """

  def __init__(
      self,
      in_features: int,
      glimpse_shape: tuple[int, ...],
      *,
      k: int = 4,
      max_offset: float = 0.5,
      align_corners: bool = False,
      padding: str = "zeros",
      order: int = 1,
      supersample: int | tuple[int, ...] = 1,
      regularization: float = 0.0,
      rngs: nnx.Rngs,
  ):
    self.glimpse_shape = tuple(glimpse_shape)
    self.controls = nnx.Variable(_jg.tps_controls(k, len(self.glimpse_shape)))
    self.max_offset = max_offset
    self.glimpse_options: dict[str, Any] = dict(
        align_corners=align_corners, padding=padding, order=order, supersample=supersample,
        regularization=regularization,
    )
    size = self.controls[...].size
    self.head = nnx.Linear(
        in_features, size, kernel_init=nnx.initializers.zeros_init(),
        bias_init=nnx.initializers.zeros_init(), rngs=rngs,
    )

  def __call__(self, image: ArrayLike, features: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Returns ``(glimpse, targets)``: ``(*batch, *glimpse_shape, C)`` and ``(*batch, K, n)``."""
    controls = self.controls[...]
    targets = _jg.tps_params(self.head(jnp.asarray(features)), controls, max_offset=self.max_offset)
    glimpse = _jg.tps_glimpse(image, controls, targets, self.glimpse_shape, **self.glimpse_options)
    return glimpse, targets
