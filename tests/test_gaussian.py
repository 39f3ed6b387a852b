"""Tests of the Gaussian filterbank read, write and mask."""

import functools
import math

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxglimpse as jg
from tests import reference

PADDINGS = ("renormalize", "zeros")

# (image spatial shape, glimpse shape, mu, sigma, delta): one case per rank,
# with a stride that zooms out, one that zooms in and a mirrored one.
CASES = {
    1: ((11,), (4,), [4.3], [0.8], [2.1]),
    2: ((9, 8), (5, 3), [3.7, 4.2], [0.9, 0.6], [1.3, -1.7]),
    3: ((5, 6, 4), (3, 2, 4), [2.2, 2.9, 1.4], [0.7, 1.1, 0.5], [1.2, 0.6, 0.8]),
}


def _params(mu, sigma, delta, dtype=jnp.float64):
  return jg.GaussianParams(*(jnp.asarray(x, dtype) for x in (mu, sigma, delta)))


def _case(n, channels=2, seed=0):
  spatial, shape, mu, sigma, delta = CASES[n]
  image = np.random.default_rng(seed).normal(size=spatial + (channels,))
  return image, shape, _params(mu, sigma, delta)


# --- Agreement with the float64 loop references ---


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize(
    "mu, sigma, delta, n, size",
    [
        (4.0, 1.0, 1.0, 5, 9),
        (0.3, 0.4, 2.5, 4, 7),  # Partly off the image.
        (-3.0, 0.7, 1.0, 3, 6),  # Off the left edge.
        (2.5, 0.35, 0.0, 4, 6),  # Zero stride: every filter on mu.
        (3.1, 2.0, -1.5, 5, 8),  # Mirrored.
        (5.0, 6.0, 3.0, 1, 11),  # One filter.
    ],
)
def test_filterbank_matches_reference(mu, sigma, delta, n, size, padding):
  got = jg.gaussian_filterbank(
      jnp.float64(mu), jnp.float64(sigma), jnp.float64(delta), n, size, padding=padding
  )
  want = reference.gaussian_filterbank(mu, sigma, delta, n, size, padding)
  np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_filterbank_broadcasts_batch_axes():
  mu = jnp.array([[1.0], [2.0]])
  sigma = jnp.array([0.5, 1.0, 2.0])
  got = jg.gaussian_filterbank(mu, sigma, jnp.float64(1.0), 3, 6)
  assert got.shape == (2, 3, 3, 6)
  np.testing.assert_allclose(
      got[1, 2], reference.gaussian_filterbank(2.0, 2.0, 1.0, 3, 6), rtol=1e-9
  )


@pytest.mark.parametrize("sigma", [0.3, 0.37, 0.49, 0.5, 0.51, 0.8, 1.7, 6.0, 40.0])
@pytest.mark.parametrize("center", [0.0, 0.25, 0.5, 0.83])
def test_zeros_normalizer_is_exact_over_the_infinite_grid(sigma, center):
  # A filter well inside a large image sums to 1 over the image exactly when
  # it was normalised over all integers.
  size = int(24 * sigma) + 64
  mu = size / 2 + center
  f = jg.gaussian_filterbank(
      jnp.float64(mu), jnp.float64(sigma), jnp.float64(0), 1, size, padding="zeros"
  )
  assert abs(float(f.sum()) - 1) <= 1e-7


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_glimpse_matches_reference(n, padding):
  image, shape, p = _case(n)
  got = jg.gaussian_glimpse(image, p, shape, padding=padding)
  want = reference.gaussian_glimpse(image, *map(np.asarray, p), shape, padding)
  assert got.shape == shape + (2,)
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_write_matches_reference(n, padding):
  image, shape, p = _case(n)
  glimpse = np.random.default_rng(1).normal(size=shape + (2,))
  got = jg.gaussian_write(glimpse, p, image.shape[:n], padding=padding)
  want = reference.gaussian_write(glimpse, *map(np.asarray, p), image.shape[:n], padding)
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_mask_matches_reference(n):
  image, shape, p = _case(n)
  got = jg.gaussian_mask(p, shape, image.shape[:n])
  want = reference.gaussian_mask(*map(np.asarray, p), shape, image.shape[:n])
  np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_contraction_order_does_not_change_the_result():
  # A tall image and a wide glimpse force a different order on each call.
  image = np.random.default_rng(2).normal(size=(30, 4, 1))
  p = _params([14.0, 1.5], [1.0, 0.6], [3.0, 0.3])
  for shape in [(2, 9), (9, 2)]:
    got = jg.gaussian_glimpse(image, p, shape)
    want = reference.gaussian_glimpse(image, *map(np.asarray, p), shape)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


# --- The glimpse as a linear map: identity and adjoint ---


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("spatial", [(7,), (6, 5), (3, 4, 5)])
def test_whole_image_box_with_small_sigma_is_the_identity(spatial, padding):
  image = np.random.default_rng(3).normal(size=spatial + (3,))
  size = np.asarray(spatial, np.float64)
  box = jg.Box(center=(size - 1) / 2, size=size)
  p = jg.box_to_gaussian(box, spatial, sigma=0.05)
  np.testing.assert_array_equal(p.delta, np.ones(len(spatial)))
  got = jg.gaussian_glimpse(image, p, spatial, padding=padding)
  np.testing.assert_allclose(got, image, atol=1e-12)


def _inner(a, b):
  return float(jnp.vdot(jnp.asarray(a), jnp.asarray(b)))


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_write_is_the_adjoint_of_the_glimpse(n, padding):
  image, shape, p = _case(n)
  g = np.random.default_rng(4).normal(size=shape + (2,))
  lhs = _inner(jg.gaussian_glimpse(image, p, shape, padding=padding), g)
  rhs = _inner(image, jg.gaussian_write(g, p, image.shape[:n], padding=padding))
  assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


_finite_float = st.floats(-1e3, 1e3, allow_nan=False)


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(
    mu=st.tuples(_finite_float, _finite_float),
    sigma=st.tuples(st.floats(1e-3, 50), st.floats(1e-3, 50)),
    delta=st.tuples(st.floats(-20, 20), st.floats(-20, 20)),
    padding=st.sampled_from(PADDINGS),
    seed=st.integers(0, 2**16),
)
def test_adjoint_and_finiteness_hold_for_any_parameters(mu, sigma, delta, padding, seed):
  rng = np.random.default_rng(seed)
  image, g = rng.normal(size=(6, 7, 2)), rng.normal(size=(3, 4, 2))
  p = _params(mu, sigma, delta)
  read = jg.gaussian_glimpse(image, p, (3, 4), padding=padding)
  write = jg.gaussian_write(g, p, (6, 7), padding=padding)
  assert np.all(np.isfinite(read)) and np.all(np.isfinite(write))
  scale = np.abs(image).sum() * np.abs(g).sum()
  assert abs(_inner(read, g) - _inner(image, write)) <= 1e-12 * scale


# --- Gradients ---


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_glimpse_gradients(n, padding):
  image, shape, p = _case(n, channels=1)
  glimpse = functools.partial(jg.gaussian_glimpse, shape=shape, padding=padding)
  check_grads(
      jax.jit(lambda mu, sigma, delta, x: glimpse(x, jg.GaussianParams(mu, sigma, delta))),
      (*p, jnp.asarray(image)),
      order=1,
      modes=("fwd", "rev"),
  )


def _plain_filterbank(mu, sigma, delta, n, size, *, padding):
  """The filter matrix as the formula reads, for autodiff to differentiate."""
  centers = mu + (jnp.arange(n) - (n - 1) / 2) * delta
  logits = lambda pixels: -((pixels - centers[:, None]) ** 2) / (2 * sigma**2)
  pixels = jnp.arange(size, dtype=jnp.float64)
  if padding == "renormalize":
    return jax.nn.softmax(logits(pixels), axis=-1)
  grid = jnp.arange(-400, size + 400, dtype=jnp.float64)  # Far beyond 40 sigma.
  return jnp.exp(logits(pixels) - jax.nn.logsumexp(logits(grid), axis=-1, keepdims=True))


@functools.cache
def _jacobian(filterbank, jac, padding):
  """The jitted Jacobian of a 4 × 9 filterbank wrt (mu, sigma, delta)."""
  f = lambda *a: filterbank(*a, 4, 9, padding=padding)
  return jax.jit(jac(f, argnums=(0, 1, 2)))


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize(
    "mu, sigma, delta",
    [
        (4.3, 1.3, 1.7),
        (0.4, 0.3, 2.5),  # Narrow filters, partly off the image.
        (-30.0, 2.0, 1.0),  # Far off the left edge: each filter sits on pixel 0.
        (3.0, 4.0, 0.0),  # Zero stride.
        (6.2, 0.8, -1.1),  # Mirrored.
    ],
)
def test_filterbank_derivatives_equal_autodiff_of_the_formula(mu, sigma, delta, padding):
  # The filter rows have a written-out derivative rule; it must agree with
  # autodiff of the plain formula in both modes, off the image included.
  args = tuple(jnp.float64(x) for x in (mu, sigma, delta))
  for jac in (jax.jacfwd, jax.jacrev):
    got, want = (_jacobian(f, jac, padding)(*args) for f in (jg.gaussian_filterbank, _plain_filterbank))
    for g, w in zip(got, want):
      assert np.all(np.isfinite(g))
      # Relative to the largest entry, so that tiny Jacobians (far off the
      # image, "zeros") are checked too.
      np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-10 * np.max(np.abs(w)))


@pytest.mark.parametrize("mu", (-5000.0, 5300.0))
def test_filterbank_derivatives_keep_float32_precision_far_off_the_image(mu):
  # "renormalize" puts a filter far off the image on the nearest pixels; its
  # derivative is computed relative to the nearest pixel so that float32
  # does not lose it to the difference of two numbers of order (mu / sigma)².
  args = (mu, 100.0, 3.0)
  for jac in (jax.jacfwd, jax.jacrev):
    got = _jacobian(jg.gaussian_filterbank, jac, "renormalize")(*(jnp.float32(a) for a in args))
    want = _jacobian(_plain_filterbank, jac, "renormalize")(*(jnp.float64(a) for a in args))
    for g, w in zip(got, want):
      assert g.dtype == jnp.float32
      np.testing.assert_allclose(g, w, atol=1e-5 * np.max(np.abs(w)))


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize(
    "mu, delta",
    [
        (2.3, 1.0),
        (2.4999, 1.0),
        (40.37, 1.0),  # Off the image.
        (-0.3962, 0.0),  # In (-1, 0), where c - floor(c) is not exact.
        (-0.49998, 0.0),
        (0.50001, 0.0),  # Just past a half-integer.
    ],
)
@pytest.mark.parametrize("sigma", (1e-4, 1e-3, 0.01, 0.3))
def test_float32_filters_and_derivatives_at_small_sigma(mu, delta, sigma, padding):
  # The logits and the normaliser are both of order (mu - round(mu))² / σ²;
  # in float32 their difference must not be taken directly (a "zeros" row
  # once summed to e² at σ = 1e-4). The derivatives' terms reach 1e11 here,
  # so the reference is in extended precision.
  args = (jnp.float32(mu), jnp.float32(sigma), jnp.float32(delta))
  want, want_grads = reference.gaussian_filterbank_derivatives(*map(float, args), 4, 9, padding)
  got = jg.gaussian_filterbank(*args, 4, 9, padding=padding)
  np.testing.assert_allclose(got, want.astype(np.float64), atol=2e-6)
  for jac in (jax.jacfwd, jax.jacrev):
    for g, w in zip(_jacobian(jg.gaussian_filterbank, jac, padding)(*args), want_grads):
      w = w.astype(np.float64)
      np.testing.assert_allclose(g, w, atol=1e-5 * max(1.0, np.max(np.abs(w))))


@pytest.mark.parametrize("padding", PADDINGS)
def test_filterbank_second_derivatives(padding):
  f = jax.jit(lambda mu, sigma, delta: jg.gaussian_filterbank(mu, sigma, delta, 4, 7, padding=padding))
  args = (jnp.float64(2.3), jnp.float64(0.9), jnp.float64(1.4))
  check_grads(f, args, order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("padding", PADDINGS)
def test_write_gradients(padding):
  image, shape, p = _case(2, channels=1)
  g = jnp.asarray(np.random.default_rng(5).normal(size=shape + (1,)))
  write = functools.partial(jg.gaussian_write, image_shape=image.shape[:2], padding=padding)
  check_grads(
      jax.jit(lambda mu, sigma, delta, x: write(x, jg.GaussianParams(mu, sigma, delta))),
      (*p, g),
      order=1,
      modes=("fwd", "rev"),
  )


def test_mask_gradients():
  _, shape, p = _case(2)
  check_grads(
      jax.jit(lambda mu, sigma, delta: jg.gaussian_mask(jg.GaussianParams(mu, sigma, delta), shape, (9, 8))),
      tuple(p),
      order=1,
      modes=("fwd", "rev"),
  )


def test_grad_of_params_has_a_field_per_parameter():
  image, shape, p = _case(2)
  grads = jax.grad(lambda q: jg.gaussian_glimpse(image, q, shape).sum())(p)
  assert isinstance(grads, jg.GaussianParams)
  for field in grads:
    assert field.shape == (2,) and np.all(np.abs(field) > 0)


# --- Degenerate values stay finite ---

DEGENERATE = {
    "tiny_sigma": ([3.3, 2.7], [1e-3, 1e-3], [1.0, 1.0]),
    "zero_sigma": ([3.3, 2.7], [0.0, 0.0], [1.0, 1.0]),
    "negative_sigma": ([3.3, 2.7], [-2.0, -2.0], [1.0, 1.0]),
    "far_off_image": ([1e4, -1e4], [1.0, 1.0], [1.0, 1.0]),
    "very_far_off_image": ([1e9, -3e12], [1e-3, 1.0], [1.0, 1.0]),
    "zero_stride": ([3.0, 4.0], [0.5, 0.5], [0.0, 0.0]),
    "negative_stride": ([3.0, 4.0], [0.5, 0.5], [-1.0, -2.0]),
    "huge_stride": ([3.0, 4.0], [0.5, 0.5], [1e7, -1e7]),
    "huge_sigma": ([3.0, 4.0], [1e6, 1e6], [1.0, 1.0]),
    "sigma_near_float32_max": ([3.0, 4.0], [3e38, 1e38], [1.0, 1.0]),
    "delta_near_float32_max": ([3.0, 4.0], [0.5, 0.5], [3e38, -3e38]),
    "mu_near_float32_max": ([3e38, -3e38], [0.5, 0.5], [1.0, 1.0]),
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("padding", PADDINGS)
def test_degenerate_parameters_give_finite_values_and_gradients(padding, dtype):
  # All cases at once, as a batch: one compile, and a NaN in one case would
  # still show in its own row.
  names = sorted(DEGENERATE)
  p = _params(*(np.array([DEGENERATE[c][f] for c in names]) for f in range(3)), dtype=dtype)
  image = jnp.asarray(np.random.default_rng(6).normal(size=(7, 9, 2)), dtype)

  def loss(q, x):
    read = jg.gaussian_glimpse(x, q, (4, 5), padding=padding)
    write = jg.gaussian_write(read, q, (7, 9), padding=padding)
    mask = jg.gaussian_mask(q, (4, 5), (7, 9))
    return jnp.sum(read**2) + jnp.sum(write * x) + jnp.sum(mask)

  per_case = jax.jit(jax.vmap(jax.value_and_grad(loss, argnums=(0, 1)), in_axes=(0, None)))
  values, (grad_p, grad_x) = per_case(p, image)
  for i, name in enumerate(names):
    assert np.isfinite(values[i]), name
    for leaf in (*grad_p, grad_x):
      assert np.all(np.isfinite(leaf[i])), name


def test_tiny_sigma_samples_the_nearest_pixel():
  image = np.random.default_rng(7).normal(size=(6, 6, 1))
  p = _params([2.0, 3.0], [1e-3, 1e-3], [1.0, 2.0])
  got = jg.gaussian_glimpse(image, p, (3, 2))
  np.testing.assert_allclose(got, image[1:4, [2, 4]], atol=1e-12)


def test_off_image_is_dark_with_zeros_and_edge_with_renormalize():
  image = np.random.default_rng(8).normal(size=(5, 6, 1))
  p = _params([2.0, 1e4], [0.5, 0.5], [1.0, 1.0])
  np.testing.assert_array_equal(jg.gaussian_glimpse(image, p, (3, 3), padding="zeros"), 0)
  edge = jg.gaussian_glimpse(image, p, (3, 3), padding="renormalize")
  want = reference.gaussian_glimpse(image[:, -1:], [2.0, 0.0], [0.5, 0.5], [1.0, 0.0], (3, 3))
  np.testing.assert_allclose(edge, want, atol=1e-12)


def test_zero_stride_repeats_the_centre_sample():
  image = np.random.default_rng(9).normal(size=(8, 1))
  g = jg.gaussian_glimpse(image, _params([3.4], [0.6], [0.0]), (5,))
  np.testing.assert_allclose(g, np.broadcast_to(g[:1], g.shape), atol=1e-14)


def test_negative_stride_mirrors_the_glimpse():
  image = np.random.default_rng(10).normal(size=(9, 8, 2))
  up = jg.gaussian_glimpse(image, _params([4.0, 3.5], [0.7, 0.7], [1.5, 1.0]), (4, 5))
  down = jg.gaussian_glimpse(image, _params([4.0, 3.5], [0.7, 0.7], [-1.5, 1.0]), (4, 5))
  np.testing.assert_allclose(down, up[::-1], atol=1e-12)


# --- Dtypes ---

TOLERANCES = {jnp.float16: 2e-2, jnp.bfloat16: 1e-1, jnp.float32: 1e-5, jnp.float64: 1e-10}


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=lambda d: jnp.dtype(d).name)
def test_dtypes(dtype, padding):
  image, shape, p = _case(2, channels=3)
  image = np.abs(image)  # Keep relative errors meaningful: no cancellation.
  want = reference.gaussian_glimpse(image, *map(np.asarray, p), shape, padding)
  got = jg.gaussian_glimpse(jnp.asarray(image, dtype), p, shape, padding=padding)
  assert got.dtype == dtype
  np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=TOLERANCES[dtype])
  written = jg.gaussian_write(jnp.asarray(want, dtype), p, image.shape[:2], padding=padding)
  assert written.dtype == dtype and np.all(np.isfinite(np.asarray(written, np.float64)))


def test_float32_params_with_float32_image_stay_float32():
  image, shape, p = _case(2)
  p32 = jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), p)
  out = jg.gaussian_glimpse(jnp.asarray(image, jnp.float32), p32, shape)
  assert out.dtype == jnp.float32
  assert jg.gaussian_filterbank(p32.mu[0], p32.sigma[0], p32.delta[0], 3, 5).dtype == jnp.float32


def _equations(jaxpr):
  """Every equation of a jaxpr, those of nested jaxprs (custom_jvp, pjit) too."""
  for eqn in jaxpr.eqns:
    yield eqn
    for param in eqn.params.values():
      for sub in param if isinstance(param, (tuple, list)) else (param,):
        sub = getattr(sub, "jaxpr", sub)  # A ClosedJaxpr holds a Jaxpr.
        if hasattr(sub, "eqns"):
          yield from _equations(sub)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_low_precision_image_uses_float32_filters_and_sums(dtype):
  # Every product accumulates in float32, and its filters are float32 or, for
  # a bfloat16 image, float32 filters split in two (see the next test).
  image = jnp.ones((6, 7, 1), dtype)
  p = _params([2.5, 3.0], [0.7, 0.9], [1.0, 1.2], jnp.float32)
  read = lambda x: jg.gaussian_glimpse(x, p, (3, 4))
  write = lambda g: jg.gaussian_write(g, p, (6, 7))
  for f, x in ((read, image), (write, image[:3, :4])):
    dots = [e for e in _equations(jax.make_jaxpr(f)(x).jaxpr) if e.primitive.name == "dot_general"]
    assert dots
    for eqn in dots:
      assert eqn.outvars[0].aval.dtype == jnp.float32, eqn
      inputs = {v.aval.dtype for v in eqn.invars}
      assert inputs == {jnp.dtype(jnp.float32)} or (dtype == jnp.bfloat16 and inputs == {jnp.dtype(dtype)})
    assert f(x).dtype == dtype


# --- Batching, jit and tracing ---


@pytest.mark.parametrize("window", [None, (6, 5)], ids=["dense", "windowed"])
@pytest.mark.parametrize("padding", PADDINGS)
def test_broadcast_glimpses_match_a_python_loop(padding, window):
  rng = np.random.default_rng(11)
  b, k = 2, 3
  images = rng.normal(size=(b, 1, 15, 12, 2))
  p = _params(
      rng.uniform(-2, 16, size=(b, k, 2)),
      rng.uniform(0.4, 2, size=(b, k, 2)),
      rng.uniform(-2, 2, size=(b, k, 2)),
  )
  options = dict(padding=padding, window=window)
  read = jax.jit(functools.partial(jg.gaussian_glimpse, shape=(3, 4), **options))
  write = jax.jit(functools.partial(jg.gaussian_write, image_shape=(15, 12), **options))
  got = read(images, p)
  assert got.shape == (b, k, 3, 4, 2)
  written = write(got, p)
  assert written.shape == (b, k, 15, 12, 2)
  for i in range(b):
    for j in range(k):
      pij = jax.tree_util.tree_map(lambda x: x[i, j], p)
      np.testing.assert_allclose(got[i, j], read(images[i, 0], pij), rtol=1e-12)
      np.testing.assert_allclose(written[i, j], write(got[i, j], pij), rtol=1e-12)


def test_one_set_of_params_for_a_batch_of_images():
  images = np.random.default_rng(12).normal(size=(4, 6, 6, 1))
  _, _, p = _case(2)
  got = jg.gaussian_glimpse(images, p, (5, 3))
  want = jax.vmap(lambda x: jg.gaussian_glimpse(x, p, (5, 3)))(images)
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_jit_equals_eager():
  image, shape, p = _case(2)
  f = lambda x, q: jg.gaussian_glimpse(x, q, shape, padding="zeros")
  np.testing.assert_allclose(jax.jit(f)(image, p), f(image, p), rtol=1e-12)
  m = lambda q: jg.gaussian_mask(q, shape, (9, 8))
  np.testing.assert_allclose(jax.jit(m)(p), m(p), rtol=1e-12)


def test_second_call_with_the_same_shapes_does_not_retrace():
  traces = []

  @jax.jit
  def f(x, q):
    traces.append(None)
    return jg.gaussian_glimpse(x, q, (3, 3)), jg.gaussian_write(x[:3, :3], q, (6, 6))

  image, _, p = _case(2)
  image = image[:6, :6]
  f(image, p)
  f(image + 1, jax.tree_util.tree_map(lambda x: x * 1.1, p))
  assert len(traces) == 1


# --- Malformed input ---

GOOD_IMAGE = np.zeros((6, 7, 2))
GOOD_PARAMS = jg.GaussianParams(*(jnp.ones(2),) * 3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(image=np.zeros((6, 7))), ValueError, r"image must have shape .*\(6, 7\)"),
        (dict(image=np.zeros((6, 7, 2), np.uint8)), TypeError, r"image .*uint8.*astype"),
        (dict(image=np.zeros((6, 7, 2), bool)), TypeError, r"image .*bool"),
        (dict(shape=()), ValueError, r"shape must have at least one axis"),
        (dict(shape=(3, 0)), ValueError, r"shape must be positive.*\(3, 0\)"),
        (dict(shape=(3, -2)), ValueError, r"shape must be positive"),
        (dict(shape=(3.0, 2)), TypeError, r"shape must hold Python ints.*float"),
        (dict(shape=3), TypeError, r"shape must be a tuple of ints.*\(3,\)"),
        (dict(shape=(3, 2, 2), image=np.zeros((6, 7, 2, 1))), ValueError, r"shape=\(3, 2, 2\) gives 3 spatial axes but params has 2 .*params.mu.*\(2,\)"),
        # The image's rank fits neither; the mistake is between shape and params.
        (dict(shape=(3, 2, 2)), ValueError, r"shape=\(3, 2, 2\) gives 3 spatial axes but params has 2"),
        (dict(image=np.zeros((0, 7, 2))), ValueError, r"image of shape \(0, 7, 2\) has an empty spatial axis"),
        (dict(shape=(1, 1, 1, 1)), ValueError, r"4 spatial axes"),
        (dict(params=jg.GaussianParams(jnp.ones(2), jnp.ones(3), jnp.ones(2))), ValueError, r"params.sigma"),
        (dict(params=jg.GaussianParams(jnp.ones(2, bool), jnp.ones(2), jnp.ones(2))), TypeError, r"params.mu .*bool"),
        (dict(params=jg.GaussianParams(jnp.ones(2, jnp.float16), jnp.ones(2), jnp.ones(2))), TypeError, r"params.mu must be float32 or wider.*float16"),
        (dict(params={"mu": 1}), TypeError, r"params must be a GaussianParams.*jg.GaussianParams\(\*\*params\)"),
        (
            dict(params=jg.GaussianParams(*(jnp.ones((4, 2)),) * 3), image=np.zeros((3, 6, 7, 2))),
            ValueError,
            r"batch shapes do not broadcast.*\(3,\).*\(4,\)",
        ),
        (dict(padding="reflect"), ValueError, r"padding must be one of 'renormalize', 'zeros', got 'reflect'"),
    ],
)
def test_malformed_glimpse_arguments(kwargs, error, match):
  args = dict(image=GOOD_IMAGE, params=GOOD_PARAMS, shape=(3, 2), padding="zeros") | kwargs
  with pytest.raises(error, match=match):
    jg.gaussian_glimpse(args["image"], args["params"], args["shape"], padding=args["padding"])


def test_malformed_write_arguments_name_the_glimpse():
  with pytest.raises(TypeError, match=r"gaussian_write: glimpse .*int32"):
    jg.gaussian_write(np.zeros((3, 2, 1), np.int32), GOOD_PARAMS, (6, 7))
  with pytest.raises(ValueError, match=r"gaussian_write: image_shape=\(6, 7, 2\) gives 3 spatial axes but params has 2"):
    jg.gaussian_write(np.zeros((3, 2, 1, 1)), GOOD_PARAMS, (6, 7, 2))


def test_malformed_filterbank_and_mask_arguments():
  with pytest.raises(ValueError, match="gaussian_filterbank: .*positive"):
    jg.gaussian_filterbank(1.0, 1.0, 1.0, 0, 5)
  with pytest.raises(TypeError, match="gaussian_filterbank: mu .*bool"):
    jg.gaussian_filterbank(jnp.array(True), 1.0, 1.0, 3, 5)
  with pytest.raises(ValueError, match="gaussian_filterbank: batch shapes"):
    jg.gaussian_filterbank(jnp.ones(2), jnp.ones(3), 1.0, 3, 5)
  with pytest.raises(ValueError, match="gaussian_filterbank: padding"):
    jg.gaussian_filterbank(1.0, 1.0, 1.0, 3, 5, padding="same")
  with pytest.raises(ValueError, match="gaussian_mask: image_shape"):
    jg.gaussian_mask(GOOD_PARAMS, (3, 2), (6,))


def test_errors_are_raised_at_trace_time_under_jit():
  f = jax.jit(lambda x: jg.gaussian_glimpse(x, GOOD_PARAMS, (3, 2, 1)))
  with pytest.raises(ValueError, match="params.mu"):
    f(GOOD_IMAGE[..., None])


# --- The mask ---


def test_mask_is_a_soft_box():
  p = _params([10.0, 20.0], [1.0, 2.0], [2.0, 1.5])
  mask = np.asarray(jg.gaussian_mask(p, (4, 8), (24, 40)))
  assert mask.shape == (24, 40)
  assert mask.min() >= 0 and mask.max() <= 1
  # Box: rows [6, 14], columns [14, 26]; deep inside ~1, far outside ~0.
  assert mask[10, 20] > 0.99 and mask[8:13, 17:24].min() > 0.9
  assert mask[:2].max() < 1e-6 and mask[:, 34:].max() < 1e-3
  assert mask[6, 20] == pytest.approx(0.5, abs=0.02)  # At the edge: half.
  # A larger sigma spreads it out: less inside, more outside.
  blurred = np.asarray(jg.gaussian_mask(p._replace(sigma=p.sigma * 3), (4, 8), (24, 40)))
  assert blurred[10, 20] < mask[10, 20] and blurred[3, 20] > mask[3, 20]


def test_mask_batches():
  p = _params(np.ones((3, 2)) * 4, np.ones((3, 2)), np.ones((3, 2)))
  assert jg.gaussian_mask(p, (2, 2), (8, 9)).shape == (3, 8, 9)
  assert math.isclose(float(jg.gaussian_mask(_params([4.0], [1.0], [0.0]), (3,), (9,)).max()), 0.0)
