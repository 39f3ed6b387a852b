"""The separable contraction engine under the Gaussian read and write.

A Gaussian glimpse applies one filter matrix per spatial axis: in 2-D
``F_y · I · F_xᵀ``, in n-D each axis contracted with its own matrix. This
module does that contraction, and its derivative, fast; it knows nothing
about Gaussians. It is the one place that explains how the speed is obtained
(`benchmarks/README.md` has the measurements):

* **One matrix product per axis** (`step`). The tensor is reshaped to
  ``(before, in, after)``, so that XLA sees a plain GEMM and never transposes
  the image: over the leading axis ``F @ X``, elsewhere ``X @ Fᵀ`` followed
  by a transpose of the (usually small) result.
* **The order of the axes** (`plan`). A cost model, multiply-adds plus a
  charge for each element moved by a transpose or a gather, tries every order
  (at most six for n ≤ 3) and picks the cheapest. XLA does not pick well for
  a three-operand einsum.
* **Bands** (`Band`, `band_step`). A filter row that is non-zero on only T
  contiguous pixels (the ``taps`` of `jaxglimpse.gaussian_glimpse`) can be
  applied as one ``lax.gather`` of a T-pixel slice per sample and a weighted
  sum, and its transpose as the matching ``scatter_add``: N·T per line
  instead of N·L. Slices with slice sizes are about 6 times faster on CPU than
  gathering T single indices. `plan` decides per axis whether the band beats
  the matrix product with the full, mostly zero, filter matrix.
* **A written-out derivative** (`contract`'s JVP): the chain rule step by step,
  with zero tangents skipped, so that a gradient with respect to the
  parameters alone does no work on the image's tangent. The filters' tangent
  of the leading-axis product is written so that its transpose, which reverse
  mode runs for the filters' cotangent, comes out pixels first: the layout in
  which XLA's CPU GEMM does not copy the image (1.5 to 2 times faster).
* **bfloat16 images** (`dot`). XLA converts a bfloat16 operand that meets a
  float32 one, which for a whole image costs more than the product. Instead
  the float32 filters are split into two bfloat16 parts (16 significant bits
  between them), each multiplied with the bfloat16 image by XLA's native
  bfloat16 product and accumulated in float32: 2.5 times faster on CPU, and
  within 2e-5 of the float32 product, far below bfloat16's own rounding.

Every product is at ``precision=HIGHEST``: on accelerators a TF32 or bf16
pass would otherwise cost about 1e-3 in accuracy.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp

HIGHEST = jax.lax.Precision.HIGHEST

MOVE_COST = 32
"""Multiply-adds that `plan` charges for moving one element.

A contraction over a non-leading axis transposes its input and output, and a
banded one gathers (or scatters) the pixels it reads. The value is a rough,
untuned estimate for a 2-core x86 CPU, where moving an element costs tens to a
hundred multiply-adds of a well-shaped matrix product (less on accelerators);
it only breaks near-ties between plans.
"""

EXP_COST = 16
"""Multiply-adds that `plan` charges for one filter entry (an exp, mostly)."""


def plan(
    sizes_in: tuple[int, ...],
    sizes_out: tuple[int, ...],
    taps: tuple[int | None, ...],
    channels: int,
    samples: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[bool, ...]]:
  """The cheapest way, in a cost model, to do a separable contraction.

  Returns the order of the axes and, per axis, whether to apply its filters
  banded (gather the `taps` pixels each filter reads; see `band_step`) rather
  than as one matrix product with the full, mostly zero, filter matrix.

  Contracting axis a as a matrix product costs the current tensor size times
  sizes_out[a] multiply-adds, plus `MOVE_COST` per element of input and output
  for the transposes that `step` needs when the axis is neither first nor
  last; banded, it costs `MOVE_COST` per pixel gathered. Either way, building
  the filters costs `EXP_COST` per entry; there is one filter per glimpse
  sample (`samples`, the glimpse's shape, which is sizes_out for a read and
  sizes_in for a write).
  """
  ndim = len(sizes_in)

  def step_cost(shape, current, a):
    new = current // shape[a] * sizes_out[a]
    dense = current * sizes_out[a] + EXP_COST * sizes_in[a] * sizes_out[a]
    if math.prod(shape[:a]) > 1 and math.prod(shape[a + 1 :]) * channels > 1:
      dense += MOVE_COST * (current + new)
    if taps[a] is None:
      return dense, False
    gathered = current // shape[a] * samples[a] * taps[a]
    band = (MOVE_COST + 1) * gathered + EXP_COST * samples[a] * taps[a]
    return min((dense, False), (band, True))

  def cost(order):
    shape = list(sizes_in)
    current, total, banded = math.prod(shape) * channels, 0, [False] * ndim
    for a in order:
      c, banded[a] = step_cost(shape, current, a)
      total += c
      current = current // shape[a] * sizes_out[a]
      shape[a] = sizes_out[a]
    return total, tuple(banded)

  order = min(itertools.permutations(range(ndim)), key=lambda o: cost(o)[0])
  return order, cost(order)[1]


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=["weights", "starts"], meta_fields=["size"]
)
@dataclasses.dataclass(frozen=True)
class Band:
  """Banded filters along one axis.

  Row j is ``weights[j]`` on the pixels ``starts[j] + arange(taps)`` and 0
  elsewhere. `size` is None for a read; for the transpose (a write) it is the
  number of pixels written to.
  """

  weights: jax.Array  # (samples, taps)
  starts: jax.Array  # (samples,) int32
  size: int | None = None


def step(x: jax.Array, f, a: int, for_cotangent: bool = False) -> jax.Array:
  """Applies f (out, in) along spatial axis a of x: one matrix product.

  With `for_cotangent`, the leading-axis product is written ``(Fᵀ)ᵀ @ x``
  with Fᵀ laid out pixels first behind an optimisation barrier. The value is
  the same; what changes is its transpose, the cotangent of F (see the module
  docstring). Not for a single column (1-D, one channel): that cotangent is
  an outer product, where the barrier only adds two transposes of it.

  A `Band` f is applied by `band_step` instead.
  """
  if isinstance(f, Band):
    return band_step(x, f, a)
  shape = x.shape
  before, size, after = math.prod(shape[:a]), shape[a], math.prod(shape[a + 1 :])
  if before == 1 and after > 1 and for_cotangent:
    ft = jax.lax.optimization_barrier(jnp.swapaxes(f, 0, 1))
    y = jax.lax.dot_general(
        ft, x.reshape(size, after), (((0,), (0,)), ((), ())), precision=HIGHEST,
        preferred_element_type=f.dtype,
    )
  elif before == 1:
    y = dot(f, x.reshape(size, after), (((1,), (0,)), ((), ())))
  else:
    y = dot(x.reshape(before, size, after), f, (((1,), (1,)), ((), ())))
    y = jnp.swapaxes(y, 1, 2)
  return y.reshape(shape[:a] + (f.shape[0],) + shape[a + 1 :])


def dot(a: jax.Array, b: jax.Array, dims) -> jax.Array:
  """``lax.dot_general`` of the filters and the data, in float32 or wider.

  A bfloat16 operand that meets float32 filters is multiplied with their
  leading bits and with the rest, as two bfloat16 products accumulated in
  float32 (see the module docstring).
  """
  if a.dtype == b.dtype:
    return jax.lax.dot_general(a, b, dims, precision=HIGHEST)
  narrow, wide = (a, b) if a.dtype == jnp.bfloat16 else (b, a)
  if narrow.dtype != jnp.bfloat16 or wide.dtype != jnp.float32:
    return jax.lax.dot_general(a, b, dims, precision=HIGHEST, preferred_element_type=wide.dtype)
  hi = wide.astype(jnp.bfloat16)
  lo = (wide - hi.astype(wide.dtype)).astype(jnp.bfloat16)

  def product(w):
    operands = (narrow, w) if narrow is a else (w, narrow)
    return jax.lax.dot_general(*operands, dims, preferred_element_type=wide.dtype)

  return product(hi) + product(lo)


def band_step(x: jax.Array, band: Band, a: int) -> jax.Array:
  """Applies banded filters along axis a: a gather, or its transpose.

  Each sample reads (or, transposed, writes) only its own `taps` pixels. The
  pixels of a sample are contiguous, so they are moved as one slice per
  sample (a gather with slice sizes).
  """
  samples, taps = band.weights.shape
  starts = band.starts[:, None]
  window = tuple(range(1, x.ndim + 1))  # Dims of the slices, after the sample dim.
  if band.size is None:  # Read: y[j] = Σ_t w[j, t] x[starts[j] + t].
    dims = jax.lax.GatherDimensionNumbers(
        offset_dims=window, collapsed_slice_dims=(), start_index_map=(a,)
    )
    sizes = x.shape[:a] + (taps,) + x.shape[a + 1 :]
    g = jax.lax.gather(x, starts, dims, sizes, mode="clip")  # (samples, *before, taps, *after)
    y = jnp.einsum(g, [0, *window], band.weights, [0, a + 1], [0, *window[:a], *window[a + 1 :]],
                   precision=HIGHEST)
    return jnp.moveaxis(y, 0, a)
  # Write: y[starts[j] + t] += w[j, t] x[j], the transpose of the read.
  w = band.weights.reshape((samples,) + (1,) * a + (taps,) + (1,) * (x.ndim - a - 1))
  spread = jnp.expand_dims(jnp.moveaxis(x, a, 0), a + 1) * w  # (samples, *before, taps, *after)
  scatter = jax.lax.ScatterDimensionNumbers(
      update_window_dims=window, inserted_window_dims=(), scatter_dims_to_operand_dims=(a,)
  )
  y = jnp.zeros(x.shape[:a] + (band.size,) + x.shape[a + 1 :], spread.dtype)
  return jax.lax.scatter_add(y, starts, spread, scatter, mode="clip")


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def contract(x: jax.Array, filters: list, order: tuple[int, ...]) -> jax.Array:
  """Applies ``filters[a]`` (out_a, in_a) along spatial axis a of x, in `order`.

  A filter is a matrix or a `Band`. The rule below differentiates it by the
  chain rule, step by step (see the module docstring).
  """
  for a in order:
    x = step(x, filters[a], a)
  return x


def _contract_jvp(order, primals, tangents):
  x, filters = primals
  dx, dfilters = tangents
  zero = lambda t: isinstance(t, jax.custom_derivatives.SymbolicZero)
  dout = None if zero(dx) else dx
  for a in order:
    f, df = filters[a], dfilters[a]
    terms = [] if dout is None else [step(dout, f, a)]
    if isinstance(f, Band):  # Linear in the weights; the starts are integers.
      if not zero(df.weights):
        terms.append(band_step(x, dataclasses.replace(f, weights=df.weights), a))
    elif not zero(df):
      terms.append(step(x, df, a, for_cotangent=True))
    x = step(x, f, a)
    dout = None if not terms else functools.reduce(jnp.add, terms)
  return x, jnp.zeros_like(x) if dout is None else dout


contract.defjvp(_contract_jvp, symbolic_zeros=True)


def transpose(f, size: int):
  """The filter of the transposed map: ``f.T``, or a `Band` that writes to
  `size` pixels."""
  return dataclasses.replace(f, size=size) if isinstance(f, Band) else f.T


def operand(x: jax.Array, dtype) -> jax.Array:
  """The image or glimpse as `contract` takes it: a bfloat16 one as it is (see
  `dot`), any other in the compute dtype."""
  return x if x.dtype == jnp.bfloat16 and dtype == jnp.float32 else x.astype(dtype)
