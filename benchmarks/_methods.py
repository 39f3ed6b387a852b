"""The timed methods: jaxglimpse's glimpse paths and their peers.

Each builder takes a `Case` and its data and returns a `Method`: up to three
callables with no arguments, for the forward pass, the gradient with respect
to the glimpse's parameters and the gradient with respect to the image. Both
gradients are of ``sum(glimpse * cotangent)`` with a fixed random cotangent,
so they cost one forward and one backward pass. JAX callables are compiled
ahead of time, and the time that takes is recorded separately. A builder
raises `Skip` when a method does not apply to a case.

Every method reads the same boxes (see `_cases`):

* ``gaussian_dense``: `gaussian_glimpse`, every pixel.
* ``gaussian_window``: `gaussian_glimpse` with ``window=gaussian_window(...)``
  from the case's largest stride and sigma.
* ``gaussian_taps``: the same window, and ``taps=gaussian_taps(...)`` from the
  case's largest sigma.
* ``affine``: `affine_glimpse`, bilinear, zeros padding.
* ``crop``: `crop` at the box's first pixel (an integer start: no parameter
  gradient).
* ``scale_and_translate``: ``jax.image.scale_and_translate`` (linear, with
  antialiasing) per glimpse, with its samples where the Gaussian's are.
* ``map_coordinates``: ``jax.scipy.ndimage.map_coordinates`` (order 1) at
  `affine_grid`'s pixel coordinates.
* ``torch_grid_sample``: PyTorch's ``affine_grid`` + ``grid_sample``
  (bilinear, zeros padding), on the same thetas, in PyTorch's NC... layout.

The transformers beyond the affine bilinear read, each with its peer:

* ``affine_bicubic``: `affine_glimpse` with ``order=3``; its peer
  ``torch_grid_sample_bicubic`` is ``grid_sample(mode="bicubic")`` (2-D only).
* ``affine_supersample``: `affine_glimpse` with ``supersample=S``, S the
  zoom-out ``ceil(box / glimpse)`` per axis, so the reads cover each cell (only
  where S > 1); its peer is ``scale_and_translate`` (linear, antialiased).
* ``projective``: `projective_glimpse` with the case's theta and the last row
  ``(0, ..., 0, 1)``; its peer is ``affine``.
* ``tps_grid_16``, ``tps_grid_64``: `tps_grid` alone with K = 16 or 64 controls
  (``tps_controls(k)`` with k**n = K; skipped where no such k), targets the
  box's affine map of the controls; no image, so no image gradient. Their peer
  is ``sample``: `sample` at `affine_grid`'s pixel coordinates, the read a grid
  feeds, with the gradient taken with respect to the coordinates.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

import jaxglimpse as jg

METHODS = (
    "gaussian_dense",
    "gaussian_window",
    "gaussian_taps",
    "affine",
    "crop",
    "scale_and_translate",
    "map_coordinates",
    "torch_grid_sample",
    "affine_bicubic",
    "torch_grid_sample_bicubic",
    "affine_supersample",
    "projective",
    "sample",
    "tps_grid_16",
    "tps_grid_64",
)
SWEPT = METHODS[:8]
"""The methods of the image-size sweep: the Gaussian, affine and crop paths and their peers."""
KINDS = ("fwd", "grad_params", "grad_image")


class Skip(Exception):
  """The method does not apply to the case; the message says why."""


@dataclasses.dataclass
class Method:
  """Callables to time, keyed by kind, with their compile times in seconds."""

  calls: dict[str, Callable[[], object]]
  compile_s: dict[str, float]
  notes: dict[str, str] = dataclasses.field(default_factory=dict)


def _loss(out, cot):
  return jnp.sum(out.astype(jnp.float32) * cot)


def jax_method(glimpse, image, params, cot, kinds) -> Method:
  """Compiles forward and both gradients of ``glimpse(image, params)``."""
  fns = {
      "fwd": (glimpse, (image, params)),
      "grad_params": (jax.grad(lambda p, x: _loss(glimpse(x, p), cot)), (params, image)),
      "grad_image": (jax.grad(lambda x, p: _loss(glimpse(x, p), cot)), (image, params)),
  }
  calls, compile_s = {}, {}
  for kind, (fn, args) in fns.items():
    if kind not in kinds:
      continue
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s[kind] = time.perf_counter() - t
    calls[kind] = lambda compiled=compiled, args=args: compiled(*args)
  return Method(calls, compile_s)


def _inputs(case, data):
  image, center, size = data
  dtype = jnp.dtype(case.dtype)
  box = jg.Box(jnp.asarray(center), jnp.asarray(size))
  out_shape = center.shape[:-1] + case.glimpse + (case.channels,)
  cot = jnp.asarray(np.random.default_rng(1).normal(size=out_shape), jnp.float32)
  return jnp.asarray(image, dtype), box, cot


def gaussian(case, data, kinds, windowed: bool, tapped: bool = False) -> Method:
  image, box, cot = _inputs(case, data)
  params = jg.box_to_gaussian(box, case.glimpse)
  max_delta, max_sigma = float(jnp.max(jnp.abs(params.delta))), float(jnp.max(params.sigma))
  window = taps = None
  if windowed:
    window = jg.gaussian_window(case.glimpse, max_delta, max_sigma, image_shape=case.image)
  if tapped:
    taps = jg.gaussian_taps(max_sigma)
  glimpse = lambda x, p: jg.gaussian_glimpse(x, p, case.glimpse, window=window, taps=taps)
  method = jax_method(glimpse, image, params, cot, kinds)
  if windowed:
    method.notes["window"] = "×".join(map(str, window))
  if tapped:
    method.notes["taps"] = str(taps)
  return method


def affine(case, data, kinds, order: int = 1, supersample: bool = False) -> Method:
  image, box, cot = _inputs(case, data)
  theta = jg.box_to_affine(box, case.glimpse, case.image)
  affine_glimpse, notes = jg.affine_glimpse, {}
  options: dict = dict(order=order)
  if supersample:
    factors = tuple(max(1, math.ceil(case.box / g - 1e-6)) for g in case.glimpse)
    if max(factors) == 1:
      raise Skip("no zoom-out: one read per cell already covers it")
    options["supersample"] = factors
    notes["supersample"] = "×".join(map(str, factors))
  glimpse = lambda x, t: affine_glimpse(x, t, case.glimpse, **options)
  method = jax_method(glimpse, image, theta, cot, kinds)
  method.notes.update(notes)
  return method


def projective(case, data, kinds) -> Method:
  image, box, cot = _inputs(case, data)
  theta = jg.box_to_affine(box, case.glimpse, case.image)
  last = jnp.zeros(theta.shape[:-2] + (1, case.n + 1), theta.dtype).at[..., -1].set(1.0)
  matrix = jnp.concatenate([theta, last], -2)
  projective_glimpse = jg.projective_glimpse
  glimpse = lambda x, m: projective_glimpse(x, m, case.glimpse)
  return jax_method(glimpse, image, matrix, cot, kinds)


def sample(case, data, kinds) -> Method:
  image, box, cot = _inputs(case, data)
  coords = jg.affine_grid(jg.box_to_affine(box, case.glimpse, case.image), case.glimpse, case.image)
  sample = jg.sample
  return jax_method(lambda x, c: _per_glimpse(sample, case)(x, c), image, coords, cot, kinds)


def tps_grid(case, data, kinds, controls: int) -> Method:
  _, box, _ = _inputs(case, data)
  k = round(controls ** (1 / case.n))
  if k ** case.n != controls:
    raise Skip(f"K={controls} is not k**{case.n} for an integer k")
  theta = jg.box_to_affine(box, case.glimpse, case.image)  # (*batch, n, n + 1)
  points = jg.tps_controls(k, case.n)  # (K, n)
  targets = jnp.einsum("...ij,kj->...ki", theta[..., :-1], points) + theta[..., None, :, -1]
  cot = jnp.asarray(
      np.random.default_rng(1).normal(size=targets.shape[:-2] + case.glimpse + (case.n,)),
      jnp.float32,
  )
  grid = lambda t: jg.tps_grid(points, t, case.glimpse, case.image)
  fns = {"fwd": grid, "grad_params": jax.grad(lambda t: _loss(grid(t), cot))}
  calls, compile_s = {}, {}
  for kind, fn in fns.items():
    if kind not in kinds:
      continue
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(targets).compile()
    compile_s[kind] = time.perf_counter() - t
    calls[kind] = lambda compiled=compiled: compiled(targets)
  return Method(calls, compile_s, {"grad_image": "a grid reads no image", "K": str(controls)})


def crop(case, data, kinds) -> Method:
  image, box, cot = _inputs(case, data)
  start = jnp.floor(box.center - box.size / 2 + 0.5).astype(jnp.int32)
  crop = jg.crop
  fns = {
      "fwd": lambda x, s: crop(x, s, case.glimpse),
      "grad_image": jax.grad(lambda x, s: _loss(crop(x, s, case.glimpse), cot)),
  }
  calls, compile_s = {}, {}
  for kind, fn in fns.items():
    if kind not in kinds:
      continue
    t = time.perf_counter()
    compiled = jax.jit(fn).lower(image, start).compile()
    compile_s[kind] = time.perf_counter() - t
    calls[kind] = lambda compiled=compiled: compiled(image, start)
  return Method(calls, compile_s, {"grad_params": "integer start: no gradient"})


def _per_glimpse(fn, case):
  """Maps ``fn(image, *params)`` of one glimpse over the batch (and K) axes."""
  if case.per_image > 1:  # image (B, 1, ...) with params (B, K, ...): no copy.
    inner = lambda x, *p: jax.vmap(fn, in_axes=(None,) + (0,) * len(p))(x[0], *p)
    return jax.vmap(inner)
  return jax.vmap(fn)


def scale_and_translate(case, data, kinds) -> Method:
  image, box, cot = _inputs(case, data)
  p = jg.box_to_gaussian(box, case.glimpse)
  n, shape, c = case.n, case.glimpse, case.channels
  sizes = jnp.asarray(shape, jnp.float32)

  def one(x, mu, delta):
    # Output pixel j samples input (j + 1/2 - t) / s - 1/2 = mu + (j - (N-1)/2) delta.
    scale = 1 / delta
    translation = sizes / 2 - (mu + 0.5) / delta
    return jax.image.scale_and_translate(
        x, shape + (c,), tuple(range(n)), scale, translation, method="linear", antialias=True
    )

  glimpse = lambda x, q: _per_glimpse(one, case)(x, q[0], q[1])
  return jax_method(glimpse, image, (p.mu, p.delta), cot, kinds)


def map_coordinates(case, data, kinds) -> Method:
  image, box, cot = _inputs(case, data)
  theta = jg.box_to_affine(box, case.glimpse, case.image)
  affine_grid = jg.affine_grid

  def one(x, th):
    grid = affine_grid(th, case.glimpse, case.image)  # (*shape, n) pixels.
    coords = [grid[..., a] for a in range(case.n)]
    read = lambda channel: jax.scipy.ndimage.map_coordinates(
        channel, coords, order=1, mode="constant", cval=0.0
    )
    return jnp.moveaxis(jax.vmap(read, in_axes=-1)(x), 0, -1)

  return jax_method(lambda x, t: _per_glimpse(one, case)(x, t), image, theta, cot, kinds)


def torch_grid_sample(case, data, kinds, mode: str = "bilinear") -> Method:
  if mode == "bicubic" and case.n != 2:
    raise Skip("torch's bicubic grid_sample is 2-D only")
  try:
    import torch
    import torch.nn.functional as F
  except ImportError:
    raise Skip("torch is not installed") from None
  image, box, cot = _inputs(case, data)
  theta = jg.theta_to_torch(jg.box_to_affine(box, case.glimpse, case.image))
  dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[case.dtype]
  device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
  b, k, n, c = case.batch, case.per_image, case.n, case.channels
  # NC<spatial> input; a 1-D signal is an image of height 1.
  x = torch.from_numpy(np.array(data[0]).reshape((b,) + case.image + (c,)))
  x = x.movedim(-1, 1).contiguous().to(device, dtype)
  th = torch.from_numpy(np.array(theta, np.float32).reshape(b * k, n, n + 1))
  if n == 1:  # (x) -> (x, y) with y = identity on an axis of one pixel.
    full = torch.zeros(b * k, 2, 3)
    full[:, 0, 0], full[:, 0, 2], full[:, 1, 1] = th[:, 0, 0], th[:, 0, 1], 1.0
    th, x = full, x[:, :, None]
  th = th.to(device, dtype)
  glimpse = case.glimpse if n > 1 else (1,) + case.glimpse
  g = torch.from_numpy(np.array(cot).reshape((b * k,) + glimpse + (c,)))
  # K glimpses of one image share its grid_sample call: their grids are
  # stacked along the first output axis, so the image is not repeated.
  g = g.reshape((b, k * glimpse[0]) + glimpse[1:] + (c,)).movedim(-1, 1).to(device, dtype)

  def forward(x, th):
    grid = F.affine_grid(th, (b * k, c) + glimpse, align_corners=False)
    grid = grid.reshape((b, k * glimpse[0]) + grid.shape[2:])
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)

  def sync():
    if device == "cuda":
      torch.cuda.synchronize()

  def fwd():
    with torch.no_grad():
      out = forward(x, th)
    sync()
    return out

  def grad(wrt):
    def call():
      xi = x.detach().requires_grad_(wrt == "image")
      ti = th.detach().requires_grad_(wrt == "params")
      forward(xi, ti).backward(g)
      sync()
      return (ti if wrt == "params" else xi).grad

    return call

  calls = {"fwd": fwd, "grad_params": grad("params"), "grad_image": grad("image")}
  calls = {kind: call for kind, call in calls.items() if kind in kinds}
  try:
    for call in calls.values():
      call()
  except RuntimeError as e:  # For example a dtype grid_sample lacks on this device.
    raise Skip(f"torch: {str(e).splitlines()[0]}") from None
  threads = torch.get_num_threads()
  return Method(calls, {}, {"device": f"torch {torch.__version__} {device}, {threads} threads"})


BUILDERS = {
    "gaussian_dense": lambda case, data, kinds: gaussian(case, data, kinds, windowed=False),
    "gaussian_window": lambda case, data, kinds: gaussian(case, data, kinds, windowed=True),
    "gaussian_taps": lambda case, data, kinds: gaussian(case, data, kinds, True, tapped=True),
    "affine": affine,
    "crop": crop,
    "scale_and_translate": scale_and_translate,
    "map_coordinates": map_coordinates,
    "torch_grid_sample": torch_grid_sample,
    "affine_bicubic": lambda case, data, kinds: affine(case, data, kinds, order=3),
    "torch_grid_sample_bicubic": lambda case, data, kinds: torch_grid_sample(
        case, data, kinds, mode="bicubic"
    ),
    "affine_supersample": lambda case, data, kinds: affine(case, data, kinds, supersample=True),
    "projective": projective,
    "sample": sample,
    "tps_grid_16": lambda case, data, kinds: tps_grid(case, data, kinds, 16),
    "tps_grid_64": lambda case, data, kinds: tps_grid(case, data, kinds, 64),
}
