"""Argument checks shared by the public functions: one wording per mistake.

Everything here runs at trace time, on shapes, dtypes and static options
only, so it costs nothing under ``jit``. Each message names the function and
the argument and quotes what it received, so that a user sees their mistake
rather than an ``IndexError`` from deep inside a contraction. A check that
only one function makes stays in that function's module.

This module imports nothing from the package: every other module may use it.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

PADDINGS_GAUSSIAN = ("renormalize", "zeros")
PADDINGS_SAMPLER = ("zeros", "border", "reflection")
ORDERS = (0, 1, 3)


def shape_tuple(fn: str, name: str, shape) -> tuple[int, ...]:
  """Returns `shape` as a non-empty tuple of positive Python ints."""
  if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
    raise TypeError(
        f"{fn}: {name} must be a tuple of ints, one per spatial axis, got the "
        f"int {shape!r}; write ({shape},) for one axis."
    )
  if isinstance(shape, np.ndarray) and shape.ndim == 1:
    shape = shape.tolist()  # A concrete NumPy array is as static as a tuple.
  if isinstance(shape, jax.core.Tracer) or (
      isinstance(shape, Sequence) and any(isinstance(s, jax.core.Tracer) for s in shape)
  ):
    static = repr(name) if name.isidentifier() else str(tuple(name.strip("()").split(", ")))
    raise TypeError(
        f"{fn}: {name} must be static Python ints, but it is traced: jax.jit "
        f"turns its arguments into arrays. Mark it static, e.g. "
        f"`jax.jit(jg.{fn}, static_argnames={static})`, or close over it "
        f"with a lambda."
    )
  if not isinstance(shape, Sequence) or isinstance(shape, str):
    raise TypeError(
        f"{fn}: {name} must be a tuple of ints, got {type(shape).__name__} "
        f"{shape!r}. It has to be static: pass Python ints, not traced arrays."
    )
  out = []
  for s in shape:
    if isinstance(s, bool):
      raise TypeError(f"{fn}: {name} must hold ints, got {shape!r}.")
    try:
      out.append(operator.index(s))
    except TypeError:
      raise TypeError(
          f"{fn}: {name} must hold Python ints (it is static under jit), got "
          f"{shape!r} with an element of type {type(s).__name__}."
      ) from None
  if not out:
    raise ValueError(f"{fn}: {name} must have at least one axis, got {shape!r}.")
  if any(s <= 0 for s in out):
    raise ValueError(f"{fn}: {name} must be positive on every axis, got {shape!r}.")
  return tuple(out)


def ndim_of(fn: str, name: str, n: int, allowed=(1, 2, 3)) -> int:
  """Returns n, the number of spatial axes that `name` describes, if allowed."""
  if n not in allowed:
    raise ValueError(
        f"{fn}: {name} describes {n} spatial axes; jaxglimpse supports "
        f"{', '.join(map(str, allowed))}."
    )
  return n


def per_axis(
    fn: str, name: str, value: tuple, n: int, source: str, hint: str = "one"
) -> None:
  """Raises unless `value` has one entry per spatial axis: n, as `source`."""
  if len(value) != n:
    raise ValueError(
        f"{fn}: {name}={tuple(value)!r} has length {len(value)}, but {source} "
        f"has {_axes(n)}; give {hint} per spatial axis."
    )


def _axes(n: int) -> str:
  return f"{n} spatial axis" if n == 1 else f"{n} spatial axes"


def float_array(fn: str, name: str, x: ArrayLike) -> jax.Array:
  """Returns `x` as a floating-point array, or raises a TypeError."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(
        f"{fn}: {name} must be a floating-point array, got dtype {x.dtype} "
        f"with shape {x.shape}. Convert it first, e.g. "
        f"`{name}.astype(jnp.float32)`."
    )
  return x


def float_image(fn: str, name: str, image: ArrayLike, min_rank: int) -> jax.Array:
  """Returns `image` as a float array with at least `min_rank` axes."""
  image = jnp.asarray(image)
  if not jnp.issubdtype(image.dtype, jnp.floating):
    hint = (
        f"`{name}.astype(jnp.float32) / 255` for 8-bit pixels"
        if jnp.issubdtype(image.dtype, jnp.integer) or image.dtype == jnp.bool_
        else f"`{name}.astype(jnp.float32)`"
    )
    raise TypeError(
        f"{fn}: {name} must be a floating-point array, got dtype {image.dtype} "
        f"with shape {image.shape}. Convert it first, e.g. {hint}."
    )
  if image.ndim < min_rank:
    raise ValueError(
        f"{fn}: {name} must have shape (*batch, *spatial, C) with "
        f"{min_rank - 1} spatial axes and a channel axis (channel-last), got "
        f"shape {image.shape}. Add a trailing channel axis for single-channel "
        f"data: `{name}[..., None]`."
    )
  spatial = image.shape[image.ndim - min_rank : -1]
  if 0 in spatial:
    raise ValueError(
        f"{fn}: {name} of shape {image.shape} has an empty spatial axis "
        f"{spatial}; there is nothing to read or write."
    )
  return image


CHANNEL_FIRST_HINT = "looks channel-first"
"""Part of the layout warning's text, to filter it by:
``warnings.filterwarnings("ignore", message=".*looks channel-first")``."""


def channel_layout(fn: str, name: str, image: jax.Array, n: int) -> None:
  """Warns when an image of n spatial axes looks channel-first.

  jaxglimpse reads ``(*batch, *spatial, C)``. A ``(C, H, W)`` image passes
  every shape check but is read as H = C, W = H and C = W: a wrong answer,
  not an error. The tell is a first spatial axis as small as a channel axis
  (at most 4) and a last axis that is not (more than 4): rare in a real
  channel-last image, and then silenced by the filter in `CHANNEL_FIRST_HINT`.
  """
  spatial, channels = image.shape[-(n + 1) : -1], image.shape[-1]
  if spatial[0] <= 4 < channels:
    warnings.warn(
        f"{fn}: {name} of shape {image.shape} {CHANNEL_FIRST_HINT}: it is "
        f"read channel-last, as spatial axes {spatial} with {channels} "
        f"channels. jaxglimpse takes (*batch, *spatial, C); move the "
        f"channels last, e.g. `jnp.moveaxis({name}, -{n + 1}, -1)`. If the "
        f"layout is right, silence this with warnings.filterwarnings("
        f"\"ignore\", message=\".*{CHANNEL_FIRST_HINT}\").",
        UserWarning,
        stacklevel=3,
    )


def last_axis(fn: str, name: str, x: jax.Array, n: int, what: str = "") -> None:
  """Raises unless `x` has shape ``(*batch, n)``; `what` says what n counts."""
  if x.ndim < 1 or x.shape[-1] != n:
    raise ValueError(
        f"{fn}: {name} must have shape (*batch, {n}){what}, got shape "
        f"{x.shape}."
    )


def batch_shape(fn: str, **shapes: tuple[int, ...]) -> tuple[int, ...]:
  """Broadcasts named batch shapes, or raises a ValueError naming them."""
  try:
    return np.broadcast_shapes(*shapes.values())
  except ValueError:
    got = ", ".join(f"{k} {v}" for k, v in shapes.items())
    raise ValueError(
        f"{fn}: batch shapes do not broadcast: {got}. Leading axes broadcast "
        "as in NumPy; add size-1 axes to line them up."
    ) from None


def float_param(fn: str, name: str, x: ArrayLike) -> jax.Array:
  """Returns a position-like parameter (a centre, size, width, theta, a
  coordinate) as a float array of at least float32.

  Integers and Python lists are converted as ``jnp.asarray(x, float)``
  would: a pixel position is as natural to write as ``[20, 30]``. Half
  precision is refused rather than silently widened, because the gradient
  comes back in the parameter's dtype: float16 overflows it at small sigma,
  and bfloat16 cannot place a glimpse to the pixel beyond 256 pixels.
  """
  x = jnp.asarray(x)
  if jnp.issubdtype(x.dtype, jnp.integer):
    x = x.astype(jnp.asarray(0.0).dtype)  # The default float: float32 unless x64.
  elif not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(
        f"{fn}: {name} must be a real-valued array (floats, or integer "
        f"pixels), got dtype {x.dtype} with shape {x.shape}."
    )
  if x.dtype in (jnp.float16, jnp.bfloat16):
    raise TypeError(
        f"{fn}: {name} must be float32 or wider, got {x.dtype}: its gradient "
        f"comes back in its own dtype, where float16 overflows at small sigma "
        f"and bfloat16 resolves no better than a pixel beyond 256 pixels. "
        f"Pass `{name}.astype(jnp.float32)`; the image may stay {x.dtype}."
    )
  return x


def fields(
    fn: str,
    name: str,
    value,
    kind: type,
    n: int,
    against: str | None = None,
    names: Sequence[str] | None = None,
) -> list[jax.Array]:
  """The fields of a `GaussianParams` or `Box` as float arrays ``(*batch, n)``.

  Any tuple of the right length is accepted, so that a plain ``(mu, sigma,
  delta)`` works too; the batch shapes of the fields must broadcast. n comes
  from a static shape, `against` (e.g. ``"shape=(4, 4)"``): when the fields
  agree with each other but not with it, the message blames the pair, not
  the fields. `names` replaces ``name.field`` in messages, for functions
  that take the fields as separate arguments.
  """
  kinds = kind._fields  # type: ignore[attr-defined]
  label = list(names) if names is not None else [f"{name}.{k}" for k in kinds]
  what = f"{kind.__name__}({', '.join(kinds)})"
  if isinstance(value, dict):
    raise TypeError(
        f"{fn}: {name} must be a {what}, got a dict; build one with "
        f"`jg.{kind.__name__}(**{name})`."
    )
  if not isinstance(value, tuple) or len(value) != len(kinds):
    raise TypeError(f"{fn}: {name} must be a {what}, got {type(value).__name__}.")
  arrays = [float_param(fn, k, x) for k, x in zip(label, value)]
  lasts = {x.shape[-1] if x.ndim else None for x in arrays}
  if against is not None and len(lasts) == 1 and None not in lasts and lasts != {n}:
    (m,) = lasts
    subject = "the arguments have" if names else f"{name} has"
    raise ValueError(
        f"{fn}: {against} gives {_axes(n)} but {subject} {m} (the last axis "
        f"of {label[0]}, of shape {arrays[0].shape}); give one entry per "
        f"spatial axis to both."
    )
  for k, x in zip(label, arrays):
    last_axis(fn, k, x, n, " with one entry per spatial axis")
  batch_shape(fn, **{k: x.shape[:-1] for k, x in zip(label, arrays)})
  return arrays


def theta(fn: str, matrix: ArrayLike) -> tuple[jax.Array, int]:
  """Returns an affine theta as a float array and its number of spatial axes."""
  matrix = float_param(fn, "theta", matrix)
  if matrix.ndim < 2 or matrix.shape[-1] != matrix.shape[-2] + 1:
    raise ValueError(
        f"{fn}: theta must have shape (*batch, n, n + 1) for n = 1, 2 or 3 "
        f"spatial axes, got shape {matrix.shape}."
    )
  return matrix, ndim_of(fn, f"theta of shape {matrix.shape}", matrix.shape[-2])


def warp_operand(
    fn: str, x: ArrayLike, x_name: str, shape, shape_name: str, n: int, source: str,
    batch: tuple[int, ...],
) -> tuple[jax.Array, tuple[int, ...]]:
  """The checks every grid read and write shares, once its transform has given
  n: the static shape, the image or glimpse (and, for a read, its layout), and
  the batch axes of both. `source` names the transform in messages ("theta of
  shape (2, 3)") and `batch` is its batch shape."""
  shape = shape_tuple(fn, shape_name, shape)
  per_axis(fn, shape_name, shape, n, source)
  x = float_image(fn, x_name, x, n + 1)
  if x_name == "image":
    channel_layout(fn, x_name, x, n)
  batch_shape(
      fn,
      **{f"{x_name} (batch axes of shape {x.shape})": x.shape[: -(n + 1)]},
      **{f"{source.split(' of ')[0]} (batch axes)": batch},
  )
  return x, shape


CORNER_NAMES = {1: "(lo, hi)", 2: "(y1, x1, y2, x2)", 3: "(z1, y1, x1, z2, y2, x2)"}


def corner_boxes(fn: str, name: str, boxes: ArrayLike, n: int, source: str) -> jax.Array:
  """Returns corner boxes ``(*batch, 2n)`` as a float array of at least float32.

  `source` says where n comes from (``"shape=(7, 7)"``). A last axis of 5
  with n = 2 is most likely torchvision's ``(K, 5)`` rois, and the message
  says how to convert them.
  """
  boxes = float_param(fn, name, boxes)
  if boxes.ndim < 1 or boxes.shape[-1] != 2 * n:
    hint = ""
    if n == 2 and boxes.ndim == 2 and boxes.shape[-1] == 5:
      hint = (
          " These look like torchvision's (K, 5) rois (batch_index, x1, y1, "
          "x2, y2): convert them with `image_index, boxes = "
          "jg.rois_from_torchvision(rois)`."
      )
    raise ValueError(
        f"{fn}: {name} must have shape (*batch, {2 * n}), corner boxes "
        f"{CORNER_NAMES[n]} in axis order, for {source} ({_axes(n)}); got "
        f"shape {boxes.shape}.{hint}"
    )
  return boxes


def static_int(fn: str, name: str, value, minimum: int | None = None) -> int:
  """Returns `value` if it is a Python or NumPy int (not a bool), at least
  `minimum`: an option that sets a shape, so static under jit."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(
        f"{fn}: {name} must be a Python int (it is static under jit), got "
        f"{type(value).__name__} {value!r}."
    )
  if minimum is not None and value < minimum:
    raise ValueError(f"{fn}: {name} must be at least {minimum}, got {value!r}.")
  return int(value)


def choice(fn: str, name: str, value, allowed: Sequence) -> None:
  """Raises unless `value` is one of `allowed`."""
  if value not in allowed:
    raise ValueError(
        f"{fn}: {name} must be one of {', '.join(map(repr, allowed))}, got "
        f"{value!r}."
    )


def sampler_options(fn: str, order: int, padding: str, align_corners: bool) -> None:
  """Checks the options of every read through the sampler."""
  if isinstance(order, bool) or order not in ORDERS:
    raise ValueError(
        f"{fn}: order must be 0 (nearest), 1 (linear) or 3 (cubic), got {order!r}."
    )
  choice(fn, "padding", padding, PADDINGS_SAMPLER)
  if not isinstance(align_corners, (bool, np.bool_)):
    raise TypeError(f"{fn}: align_corners must be True or False, got {align_corners!r}.")


def supersample(fn: str, value, n: int) -> tuple[int, ...]:
  """Returns ``supersample=`` as n positive Python ints (it sets shapes)."""
  values = value if isinstance(value, (tuple, list)) else (value,) * n
  for v in values:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
      raise TypeError(
          f"{fn}: supersample must be a positive int or {n} of them (it is "
          f"static under jit), got {value!r}."
      )
  if len(values) != n or any(v < 1 for v in values):
    raise ValueError(
        f"{fn}: supersample must be a positive int or {n} of them, one per "
        f"spatial axis, got {value!r}."
    )
  return tuple(int(v) for v in values)


def static_bounds(fn: str, name: str, value, n: int, where: str = "") -> np.ndarray:
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


def positive_number(fn: str, name: str, value) -> float:
  """Returns `value` if it is a finite, positive Python or NumPy number."""
  if not (
      isinstance(value, (int, float, np.number))
      and not isinstance(value, bool)
      and math.isfinite(value)
      and value > 0
  ):
    raise ValueError(f"{fn}: {name} must be a positive number, got {value!r}.")
  return float(value)


def compute_dtype(*arrays) -> jnp.dtype:
  """The dtype for filters, grids and accumulation: float32 or wider."""
  return jnp.result_type(jnp.float32, *arrays)


def spatial_signature(n: int, letter: str) -> str:
  """The core dimensions ``(l0,...,l{n-1},c)`` of an image for jnp.vectorize."""
  return "(" + ",".join(f"{letter}{a}" for a in range(n)) + ",c)"
