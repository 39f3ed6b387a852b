"""Private argument checks, shared by every public function.

Everything here runs at trace time, on shapes and dtypes only, so it costs
nothing under ``jit``. Messages name the function and the argument and quote
what was received, so that a user sees their mistake rather than an
``IndexError`` from deep inside a contraction.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

PADDINGS_GAUSSIAN = ("renormalize", "zeros")
PADDINGS_SAMPLER = ("zeros", "border", "reflection")


def shape_tuple(fn: str, name: str, shape) -> tuple[int, ...]:
  """Returns `shape` as a non-empty tuple of positive Python ints."""
  if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
    raise TypeError(
        f"{fn}: {name} must be a tuple of ints, one per spatial axis, got the "
        f"int {shape!r}; write ({shape},) for one axis."
    )
  if isinstance(shape, np.ndarray) and shape.ndim == 1:
    shape = shape.tolist()  # A concrete NumPy array is as static as a tuple.
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
  if n not in allowed:
    raise ValueError(
        f"{fn}: {name} describes {n} spatial axes; jaxglimpse supports "
        f"{', '.join(map(str, allowed))}."
    )
  return n


def float_array(fn: str, name: str, x: ArrayLike) -> jnp.ndarray:
  """Returns `x` as a floating-point array, or raises a TypeError."""
  x = jnp.asarray(x)
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise TypeError(
        f"{fn}: {name} must be a floating-point array, got dtype {x.dtype} "
        f"with shape {x.shape}. Convert it first, e.g. "
        f"`{name}.astype(jnp.float32)`."
    )
  return x


def float_image(fn: str, name: str, image: ArrayLike, min_rank: int) -> jnp.ndarray:
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
        f"{min_rank - 1} spatial axes and a channel axis, got shape "
        f"{image.shape}. Add a trailing channel axis for single-channel data: "
        f"`{name}[..., None]`."
    )
  return image


def last_axis(fn: str, name: str, x: jnp.ndarray, n: int, what: str = "") -> None:
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


def choice(fn: str, name: str, value, allowed: Sequence) -> None:
  if value not in allowed:
    raise ValueError(
        f"{fn}: {name} must be one of {', '.join(map(repr, allowed))}, got "
        f"{value!r}."
    )


def compute_dtype(*arrays) -> jnp.dtype:
  """The dtype for filters, grids and accumulation: float32 or wider."""
  return jnp.result_type(jnp.float32, *arrays)


def same_ndim(fn: str, name: str, shape: tuple[int, ...], other: str, n: int) -> None:
  if len(shape) != n:
    raise ValueError(
        f"{fn}: {name} {shape} must have one entry per spatial axis: {n}, as "
        f"{other}."
    )


def spatial_signature(n: int, letter: str) -> str:
  """The core dimensions ``(l0,...,l{n-1},c)`` of an image for jnp.vectorize."""
  return "(" + ",".join(f"{letter}{a}" for a in range(n)) + ",c)"
