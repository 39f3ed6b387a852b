"""Hard attention: an integer-positioned crop of fixed shape.

A crop is the glimpse of recurrent attention models trained with REINFORCE:
not differentiable in its position, but exact and cheap (one dynamic slice per
example). Anything that reads whole pixels at integer positions belongs here;
the differentiable glimpses live in `jaxglimpse.gaussian` and
`jaxglimpse.affine`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxglimpse import _checks


def crop(image: ArrayLike, start: ArrayLike, shape: Sequence[int]) -> jax.Array:
  """Returns the window ``image[..., start : start + shape, :]`` of each example.

  Along spatial axis a the window covers pixels ``s_a, ..., s_a + N_a - 1``
  with ``s_a = clip(start_a, 0, S_a - N_a)``: a window that would reach past
  the image is moved back inside it, so a negative start reads from pixel 0
  and a start beyond ``S_a - N_a`` reads the last N_a pixels. The window never
  holds padding. `start` may be traced under ``jit``; `shape` is static.

  A crop is hard attention: it is not differentiable in `start`, which is an
  integer. For a glimpse that is differentiable in where it looks, use
  `gaussian_glimpse` or `affine_glimpse` (with `box_to_gaussian` or
  `box_to_affine` for the same box). The gradient with respect to `image`
  exists as for any slice.

  Args:
    image: ``(*batch, *spatial, C)`` with n = ``len(shape)`` spatial axes, any
      dtype.
    start: ``(*batch, n)`` integer pixel indices of the window's first pixel,
      in axis order. Batch axes of image and start broadcast as in NumPy.
    shape: the window's spatial shape, n positive Python ints, at most the
      image's size on each axis.

  Returns:
    ``(*batch, *shape, C)``, in the image's dtype.

  Raises:
    TypeError: if start is not an integer array, or shape holds non-ints.
    ValueError: if shape is empty, non-positive or larger than the image, if
      image has too few axes, if ``start.shape[-1] != len(shape)``, or if the
      batch shapes do not broadcast.

  Examples:
    >>> import jax.numpy as jnp
    >>> import jaxglimpse as jg
    >>> image = jnp.arange(16).reshape(4, 4, 1)
    >>> jg.crop(image, jnp.array([1, 2]), (2, 2))[..., 0].tolist()
    [[6, 7], [10, 11]]
    >>> jg.crop(image, jnp.array([-5, 3]), (2, 2))[..., 0].tolist()  # Clamped.
    [[2, 3], [6, 7]]
  """
  fn = "crop"
  shape = _checks.shape_tuple(fn, "shape", shape)
  n = _checks.ndim_of(fn, "shape", len(shape))
  image = jnp.asarray(image)
  if image.ndim < n + 1:
    raise ValueError(
        f"{fn}: image must have shape (*batch, *spatial, C), channel-last, "
        f"with {n} spatial axes (len(shape)) and a channel axis, got shape "
        f"{image.shape}. Add a trailing channel axis for single-channel data: "
        "`image[..., None]`; move a leading channel axis last: "
        f"`jnp.moveaxis(image, -{n + 1}, -1)`."
    )
  _checks.channel_layout(fn, "image", image, n)
  image_shape = image.shape[-(n + 1) : -1]
  if any(w > s for w, s in zip(shape, image_shape)):
    raise ValueError(
        f"{fn}: shape={shape!r} is larger than the image's spatial shape "
        f"{image_shape} (image shape {image.shape}, read channel-last); a crop "
        "never pads."
    )
  start = jnp.asarray(start)
  if not jnp.issubdtype(start.dtype, jnp.integer):
    raise TypeError(
        f"{fn}: start must be an integer array of pixel indices, got dtype "
        f"{start.dtype} with shape {start.shape}. Round it first, e.g. "
        "`jnp.round(start).astype(jnp.int32)`; a crop is not differentiable "
        "in start (use affine_glimpse or gaussian_glimpse for that)."
    )
  _checks.last_axis(fn, "start", start, n, f" to match shape={shape!r}")
  _checks.batch_shape(
      fn,
      **{f"image (batch axes of shape {image.shape})": image.shape[: -(n + 1)]},
      **{f"start (batch axes of shape {start.shape})": start.shape[:-1]},
  )
  start = start.astype(jnp.result_type(start.dtype, jnp.int32))
  limit = jnp.asarray([s - w for s, w in zip(image_shape, shape)], start.dtype)

  def one(x, s):
    s = jnp.clip(s, 0, limit)
    zero = jnp.zeros((), s.dtype)
    return jax.lax.dynamic_slice(
        x, (*(s[a] for a in range(n)), zero), (*shape, x.shape[-1])
    )

  signature = f"{_checks.spatial_signature(n, 'i')},(n)->{_checks.spatial_signature(n, 'o')}"
  return jnp.vectorize(one, signature=signature)(image, start)
