"""The sampler: reads an image at real-valued pixel coordinates.

`sample` is the interpolation half of a spatial transformer (Jaderberg et al.
2015); `jaxglimpse.affine` builds the coordinates. It follows PyTorch's
``grid_sample`` for the values and gradients of every padding mode, but takes
coordinates in pixels (see the conventions in `jaxglimpse`), not in [-1, 1].
The engine under it is `jaxglimpse._interpolation`.
"""

from __future__ import annotations

import jax
from jax.typing import ArrayLike

from jaxglimpse import _checks
from jaxglimpse._interpolation import Spec, read


def sample(
    image: ArrayLike,
    coords: ArrayLike,
    *,
    order: int = 1,
    padding: str = "zeros",
    align_corners: bool = False,
) -> jax.Array:
  """Returns `image` read at the pixel coordinates `coords`.

  With order 1 the value at x is the N-linear interpolation of the 2**n pixels
  around it: along each axis, pixel ``floor(x)`` has weight ``1 - t`` and pixel
  ``floor(x) + 1`` has weight ``t``, with ``t = x - floor(x)``; the weights of
  the n axes multiply. With order 0 it is the nearest pixel, ``round(x)``, with
  ties to even (as PyTorch). With order 3 it is cubic convolution with Keys'
  kernel (A = -0.75, as PyTorch's bicubic ``grid_sample``) over the 4**n
  pixels ``floor(x) - 1`` to ``floor(x) + 2`` of each axis, whose weights at
  the distances ``d = t + 1, t, 1 - t, 2 - t`` are
  ``(A + 2)|d|^3 - (A + 3)|d|^2 + 1`` for ``|d| <= 1`` and
  ``A|d|^3 - 5A|d|^2 + 8A|d| - 4A`` beyond. `padding` decides what lies
  outside the image, with the meanings of PyTorch's ``grid_sample``:

  * ``"zeros"``: pixels outside the image read as 0.
  * ``"border"``: each coordinate is first clipped to [0, S - 1]; the gradient
    is 0 where it is clipped, at the ends included.
  * ``"reflection"``: each coordinate is first mirrored into the image, about
    [-1/2, S - 1/2] (``align_corners=False``) or about [0, S - 1]
    (``align_corners=True``), then clipped as for ``"border"``.

  Order 3 pads each of the 4 tap indices instead of the coordinate, as
  PyTorch does: ``"border"`` clips the index, ``"reflection"`` mirrors it;
  the gradient in `coords` is that of the weights alone.

  Coordinates are in pixels, so `align_corners` changes nothing but where
  ``"reflection"`` mirrors: pass the value you pass to `affine_grid`.

  Args:
    image: one example, ``(*spatial, C)`` with n = 1, 2 or 3 spatial axes. It
      is not batched; use ``jax.vmap`` or `affine_glimpse` for batches.
    coords: ``(..., n)`` pixel coordinates in axis order, any leading shape.
    order: 1 for N-linear interpolation, 3 for cubic convolution, 0 for
      nearest (no gradient in `coords`).
    padding: ``"zeros"``, ``"border"`` or ``"reflection"``.
    align_corners: the mirror used by ``padding="reflection"``; see above.

  Returns:
    ``(..., C)``, in the dtype of `image`. The weights are computed in float32
    or wider.

  Raises:
    TypeError: if `image` or `coords` is not floating-point.
    ValueError: if ``coords.shape[-1]`` is not 1, 2 or 3, if `image` does not
      have ``coords.shape[-1] + 1`` axes, or for an unknown `order` or
      `padding`.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> image = jnp.arange(6.0).reshape(2, 3, 1)
    >>> jg.sample(image, jnp.array([[0.5, 1.5], [1.0, 2.5]]))[..., 0].tolist()
    [3.0, 2.5]
    >>> jg.sample(image, jnp.array([[1.0, 3.0]]), padding="border")[..., 0].tolist()
    [5.0]
    >>> jg.sample(image, jnp.array([[1.0, 1.0]]), order=3)[..., 0].tolist()
    [4.0]

  References:
    Jaderberg, Simonyan, Zisserman and Kavukcuoglu, "Spatial Transformer
    Networks", NeurIPS 2015.
  """
  fn = "sample"
  _checks.sampler_options(fn, order, padding, align_corners)
  coords = _checks.float_param(fn, "coords", coords)
  if coords.ndim < 1:
    raise ValueError(
        f"{fn}: coords must have shape (..., n) with n = 1, 2 or 3 coordinates "
        f"per point, got a scalar of shape {coords.shape}."
    )
  n = _checks.ndim_of(fn, f"coords of shape {coords.shape}", coords.shape[-1])
  image = _checks.float_image(fn, "image", image, n + 1)
  _checks.channel_layout(fn, "image", image, n)
  if image.ndim != n + 1:
    raise ValueError(
        f"{fn}: image must be one example of shape (*spatial, C) with {n} "
        f"spatial axes, to match coords of shape {coords.shape}, got image "
        f"shape {image.shape}. For a batch, use jax.vmap or affine_glimpse."
    )
  dtype = _checks.compute_dtype(image, coords)
  spatial = image.shape[:-1]
  spec = Spec(spatial, order, padding, align_corners, channels=image.shape[-1])
  points = tuple(coords.astype(dtype).reshape(-1, n).T)
  out = read(image, points, spec, dtype)
  return out.reshape(*coords.shape[:-1], image.shape[-1])
