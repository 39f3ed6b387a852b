"""Tests of the parameter heads: `draw_params`, `affine_params` and the adapters' helpers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxglimpse as jg
from jaxglimpse.heads import gaussian_head, gaussian_head_size

# Compiled once per option set: eager dispatch of the small ops is slow on 2 cores.
head = jax.jit(
    jg.affine_params, static_argnames=("kind", "scale_range", "init_scale", "max_shift")
)

# --- float64 NumPy reference, straight from the docstring's formulas ---


def _sigmoid(x):
  return 1 / (1 + np.exp(-x))


def _rotation(k, n):
  """Cayley rotation (I - K)^-1 (I + K), by a linear solve."""
  skew = np.zeros((n, n))
  pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
  for p, (i, j) in enumerate(pairs):
    skew[i, j], skew[j, i] = -k[p], k[p]
  eye = np.eye(n)
  return np.linalg.solve(eye - skew, eye + skew)


def reference_affine_params(raw, kind, scale_range=(0.05, 2.0), init_scale=1.0, max_shift=1.0):
  raw = np.asarray(raw, np.float64)
  n = raw.shape[-1] // 2 if kind == "scale_shift" else {2: 1, 6: 2, 12: 3}[raw.shape[-1]]
  lo, hi = scale_range
  p = (init_scale - lo) / (hi - lo)
  out = np.zeros(raw.shape[:-1] + (n, n + 1))
  for index in np.ndindex(*raw.shape[:-1]):
    r = raw[index]
    s = lo + (hi - lo) * _sigmoid(r[:n] + math.log(p / (1 - p)))
    t = max_shift * np.tanh(r[n : 2 * n])
    if kind == "scale_shift" or n == 1:
      a = np.diag(s)
    else:
      m = n * (n - 1) // 2
      a = _rotation(r[2 * n : 2 * n + m], n) @ np.diag(s) @ _rotation(r[2 * n + m :], n).T
    out[index] = np.concatenate([a, t[:, None]], axis=1)
  return out


def _raw_size(n, kind):
  return 2 * n if kind == "scale_shift" else n * (n + 1)


CASES = [(n, kind) for n in (1, 2, 3) for kind in ("scale_shift", "affine")]


@pytest.mark.parametrize("n, kind", CASES)
def test_matches_reference_float64(n, kind):
  raw = jax.random.normal(jax.random.key(n), (4, _raw_size(n, kind)), jnp.float64) * 2
  got = head(raw, kind=kind)
  assert got.shape == (4, n, n + 1) and got.dtype == jnp.float64
  np.testing.assert_allclose(got, reference_affine_params(raw, kind), rtol=1e-12, atol=1e-12)


def test_options_match_reference():
  raw = jax.random.normal(jax.random.key(1), (3, 6), jnp.float64)
  kw = dict(scale_range=(0.2, 1.5), init_scale=0.5, max_shift=0.7)
  np.testing.assert_allclose(
      head(raw, kind="affine", **kw),
      reference_affine_params(raw, "affine", **kw),
      rtol=1e-12,
      atol=1e-12,
  )


def test_rotation_2d_is_twice_arctan():
  k = 0.3
  raw = jnp.array([0.0, 0.0, 0.0, 0.0, k, 0.0])
  a = np.asarray(head(raw, kind="affine"))[:, :2]
  angle = 2 * math.atan(k)
  expected = [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
  np.testing.assert_allclose(a, expected, atol=1e-12)


@pytest.mark.parametrize("n, kind", CASES)
def test_zero_raw_is_identity(n, kind):
  theta = head(jnp.zeros(_raw_size(n, kind), jnp.float32), kind=kind)
  identity = np.concatenate([np.eye(n), np.zeros((n, 1))], axis=1)
  np.testing.assert_array_equal(theta, identity)  # Exactly, not approximately.


def test_zero_raw_init_scale():
  theta = jg.affine_params(jnp.zeros(4), init_scale=0.25)
  np.testing.assert_array_equal(theta, [[0.25, 0.0, 0.0], [0.0, 0.25, 0.0]])


def test_zero_raw_is_whole_image_box():
  """raw = 0 reads the whole image: the glimpse equals a resize of the image."""
  theta = jg.affine_params(jnp.zeros(4))
  box = jg.affine_to_box(theta, (8, 8), (32, 48))
  np.testing.assert_allclose(box.center, [15.5, 23.5], atol=1e-6)
  np.testing.assert_allclose(box.size, [32.0, 48.0], atol=1e-5)


def test_draw_params_zero_raw_is_whole_image():
  params, gamma = jg.draw_params(jnp.zeros(5), (28, 28), (12, 12))
  box = jg.gaussian_to_box(params, (12, 12))
  np.testing.assert_allclose(box.center, [13.5, 13.5])
  np.testing.assert_allclose(box.size, [12 * 27 / 11] * 2, rtol=1e-6)  # Just over 28.
  assert float(gamma) == 1.0


@pytest.mark.parametrize("n, kind", CASES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_extreme_raw_is_bounded_with_finite_gradients(n, kind, dtype):
  size = _raw_size(n, kind)
  signs = jnp.where(jnp.arange(size) % 3 == 0, -1.0, 1.0)
  grad_fn = jax.jit(jax.grad(lambda r: jnp.sum(jg.affine_params(r, kind=kind) ** 2)))
  for raw in (1e4 * signs, -1e4 * signs, jnp.full(size, 1e4), jnp.full(size, -1e4)):
    raw = raw.astype(dtype)
    theta = head(raw, kind=kind)
    assert theta.dtype == dtype
    matrix, shift = np.asarray(theta[:, :n], np.float64), np.asarray(theta[:, n], np.float64)
    assert np.all(np.isfinite(theta))
    assert np.all(np.abs(shift) <= 1.0 + 1e-6)
    singular = np.linalg.svd(matrix, compute_uv=False)
    assert np.all(singular >= 0.05 - 1e-5) and np.all(singular <= 2.0 + 1e-5)
    grad = grad_fn(raw)
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("kind", ["scale_shift", "affine"])
def test_condition_number_bounded(kind):
  raw = jax.random.normal(jax.random.key(2), (200, _raw_size(2, kind)), jnp.float64) * 5
  theta = head(raw, kind=kind, scale_range=(0.1, 1.2), init_scale=0.5)
  singular = np.linalg.svd(np.asarray(theta[..., :2]), compute_uv=False)
  assert np.all(singular >= 0.1 - 1e-12) and np.all(singular <= 1.2 + 1e-12)
  assert np.all(np.linalg.det(np.asarray(theta[..., :2])) > 0)


@pytest.mark.parametrize("n, kind", CASES)
def test_check_grads(n, kind):
  raw = jax.random.normal(jax.random.key(3), (2, _raw_size(n, kind)), jnp.float64)
  f = jax.jit(lambda r: jg.affine_params(r, kind=kind))
  order = 2 if (n, kind) == (2, "scale_shift") else 1  # Second order compiles slowly.
  check_grads(f, (raw,), order=order, modes=("fwd", "rev"))


def test_check_grads_large_rotation():
  """The rescaled Cayley form keeps exact gradients where max |k| > 1."""
  raw = jnp.array([0.1, -0.2, 0.3, 0.0, 3.0, -0.5, 1.5, -2.0, 0.7, 0.2, 0.1, -4.0])
  check_grads(jax.jit(lambda r: jg.affine_params(r, kind="affine")), (raw,), order=1, modes=("rev",))


def test_broadcasting_equals_loop_and_jit_equals_eager():
  raw = jax.random.normal(jax.random.key(4), (3, 2, 6), jnp.float32)
  f = lambda r: jg.affine_params(r, kind="affine")
  batched = f(raw)
  np.testing.assert_allclose(jax.jit(f)(raw), batched, rtol=1e-6, atol=1e-6)
  one = jax.jit(f)
  for i in range(3):
    for j in range(2):
      np.testing.assert_allclose(batched[i, j], one(raw[i, j]), rtol=1e-6, atol=1e-6)


def test_dtypes():
  assert jg.affine_params(jnp.zeros(4, jnp.float64)).dtype == jnp.float64
  for dtype in (jnp.float16, jnp.bfloat16, jnp.float32):  # Computed in float32.
    assert jg.affine_params(jnp.zeros(4, dtype)).dtype == jnp.float32


def test_no_retrace():
  traces = []

  @jax.jit
  def f(raw):
    traces.append(None)
    return jg.affine_params(raw, kind="affine")

  f(jnp.zeros(6))
  f(jnp.ones(6))
  assert len(traces) == 1


@pytest.mark.parametrize(
    "raw, kwargs, error, match",
    [
        (jnp.zeros(5), {}, ValueError, r"raw must have shape \(\*batch, 2n\).*got shape \(5,\)"),
        (jnp.zeros(4), {"kind": "affine"}, ValueError, r"n \(n \+ 1\).*2 or 6 or 12"),
        (jnp.zeros(()), {}, ValueError, r"raw must have shape"),
        (jnp.zeros(4, jnp.int32), {}, TypeError, r"raw must be a floating-point array"),
        (jnp.zeros(4), {"kind": "rotation"}, ValueError, r"kind must be one of"),
        (jnp.zeros(4), {"scale_range": (1.0, 0.5)}, ValueError, r"0 < lo < hi"),
        (jnp.zeros(4), {"scale_range": (0.0, 2.0)}, ValueError, r"0 < lo < hi"),
        (jnp.zeros(4), {"scale_range": 2.0}, ValueError, r"two numbers"),
        (jnp.zeros(4), {"scale_range": (0.1, 1.0)}, ValueError, r"init_scale must lie"),
        (jnp.zeros(4), {"max_shift": 0.0}, ValueError, r"max_shift must be positive"),
    ],
)
def test_errors(raw, kwargs, error, match):
  with pytest.raises(error, match=match):
    jg.affine_params(raw, **kwargs)


def test_glimpse_at_start_is_whole_image():
  """A zero head and the affine glimpse read the whole image, resized."""
  image = jax.random.uniform(jax.random.key(5), (8, 8, 2), jnp.float64)
  glimpse = jg.affine_glimpse(image, jg.affine_params(jnp.zeros(4)), (8, 8))
  np.testing.assert_allclose(glimpse, image, atol=1e-12)


def test_gaussian_head_used_by_the_adapters():
  assert gaussian_head_size("f", "draw", 2) == 4
  assert gaussian_head_size("f", "scale_shift", 3) == 6
  with pytest.raises(ValueError, match="f: kind must be one of"):
    gaussian_head_size("f", "affine", 2)
  draw = gaussian_head(jnp.zeros(4), "draw", (12, 16), (6, 8))
  want, _ = jg.draw_params(jnp.zeros(5), (12, 16), (6, 8))
  for got, w in zip(draw, want):
    np.testing.assert_array_equal(got, w)
  bounded = gaussian_head(jnp.zeros(4), "scale_shift", (12, 16), (6, 8))
  want = jg.box_to_gaussian(jg.Box(jnp.array([5.5, 7.5]), jnp.array([12.0, 16.0])), (6, 8))
  for got, w in zip(bounded, want):
    np.testing.assert_allclose(got, w, rtol=1e-12)


# --- draw_params ---


def _draw_paper_filterbank(g_tilde, log_var, log_stride, size_a, size_b, n, axis_size):
  """DRAW eq. (21)-(26) exactly as printed: pixels a and filters i from 1."""
  g = (axis_size + 1) / 2 * (g_tilde + 1)
  delta = (max(size_a, size_b) - 1) / (n - 1) * np.exp(log_stride)
  sigma2 = np.exp(log_var)
  f = np.zeros((n, axis_size))
  for i in range(1, n + 1):
    mu_i = g + (i - n / 2 - 0.5) * delta
    for a in range(1, axis_size + 1):
      f[i - 1, a - 1] = np.exp(-((a - mu_i) ** 2) / (2 * sigma2))
    f[i - 1] /= f[i - 1].sum()
  return f


@pytest.mark.parametrize("image_shape", [(28, 28), (20, 28)])
@pytest.mark.parametrize(
    "raw", [[0.0, 0.0, 0.0, 0.0, 0.0], [0.3, -0.45, 0.7, -0.4, 0.2], [-0.2, 0.9, -0.5, -0.6, -1.0]]
)
def test_draw_params_match_the_paper(raw, image_shape):
  n = 12
  height, width = image_shape
  params, gamma = jg.draw_params(jnp.asarray(raw, jnp.float64), image_shape, (n, n))
  assert float(gamma) == pytest.approx(np.exp(raw[4]), rel=1e-12)
  # The paper's A is the width (x) and B the height (y).
  for axis, (g_tilde, size) in enumerate([(raw[0], height), (raw[1], width)]):
    want = _draw_paper_filterbank(g_tilde, raw[2], raw[3], width, height, n, size)
    got = jg.gaussian_filterbank(params.mu[axis], params.sigma[axis], params.delta[axis], n, size)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_draw_params_centre_the_glimpse():
  params, _ = jg.draw_params(jnp.zeros(5), (28, 28), (12, 12))
  np.testing.assert_allclose(params.mu, [13.5, 13.5])
  np.testing.assert_allclose(params.delta, [27 / 11, 27 / 11])
  box = jg.gaussian_to_box(params, (12, 12))
  np.testing.assert_allclose(box.center, [13.5, 13.5])


def test_draw_params_batch_one_sample_and_three_axes():
  raw = jnp.zeros((4, 3, 6))
  params, gamma = jg.draw_params(raw, (8, 10, 12), (1, 1, 1))
  assert params.mu.shape == params.sigma.shape == params.delta.shape == (4, 3, 3)
  assert gamma.shape == (4, 3)
  # N = 1 must not divide by zero: the divisor is taken as 1.
  np.testing.assert_allclose(params.delta, 11.0)
  check_grads(lambda r: jg.draw_params(r, (8, 10, 12), (1, 1, 1))[0], (raw,), order=1)


def test_draw_params_errors():
  with pytest.raises(ValueError, match=r"draw_params: raw must have shape \(\*batch, 5\).*\(4,\)"):
    jg.draw_params(jnp.zeros(4), (28, 28), (12, 12))
  with pytest.raises(ValueError, match=r"glimpse_shape=\(12,\) has length 1, but image_shape=\(28, 28\) has 2 spatial axes"):
    jg.draw_params(jnp.zeros(5), (28, 28), (12,))
  with pytest.raises(TypeError, match="draw_params: raw .*int"):
    jg.draw_params(jnp.zeros(5, int), (28, 28), (12, 12))
  with pytest.raises(ValueError, match="draw_params: image_shape describes 4 spatial axes"):
    jg.draw_params(jnp.zeros(7), (5, 5, 5, 5), (2, 2, 2, 2))


def test_draw_params_stay_finite_for_extreme_heads():
  raw = jnp.array([[1e4, -1e4, 500.0, 500.0, 500.0], [0.0, 0.0, -500.0, -500.0, -500.0]], jnp.float32)
  params, gamma = jg.draw_params(raw, (28, 28), (12, 12))
  for x in (*params, gamma):
    assert np.all(np.isfinite(x))
  image = jnp.ones((28, 28, 1), jnp.float32)

  def loss(r):
    p, g = jg.draw_params(r, (28, 28), (12, 12))
    return jnp.sum(g[:, None, None, None] * jg.gaussian_glimpse(image, p, (12, 12)))

  assert np.all(np.isfinite(jax.grad(loss)(raw)))


# --- projective_params and tps_params ---


def test_projective_params_zero_is_the_identity_and_stays_in_front_of_the_horizon():
  for n in (1, 2, 3):
    np.testing.assert_array_equal(jg.projective_params(np.zeros(n * (n + 2))), np.eye(n + 1))
  raw = np.random.default_rng(0).normal(scale=30, size=(64, 8))
  matrix = jg.projective_params(raw)
  corners = np.array([[a, b, 1.0] for a in (-1, 1) for b in (-1, 1)])
  w = np.einsum("bj,cj->bc", matrix[:, 2], corners)
  assert np.all(w >= 0.5 - 1e-12) and np.all(np.isfinite(matrix))
  theta = jg.affine_params(raw[:, :6], kind="affine")
  np.testing.assert_array_equal(matrix[:, :2], theta)
  with pytest.raises(ValueError, match="projective_params: raw"):
    jg.projective_params(np.zeros(7))
  with pytest.raises(ValueError, match="projective_params: max_perspective"):
    jg.projective_params(np.zeros(8), max_perspective=0.5)


def test_tps_params_zero_is_the_identity_and_steps_are_bounded():
  controls = jg.tps_controls(3)
  np.testing.assert_array_equal(jg.tps_params(np.zeros((2, 18)), controls), np.broadcast_to(controls, (2, 9, 2)))
  targets = jg.tps_params(np.full(18, 1e4), controls, max_offset=0.25)
  np.testing.assert_allclose(targets, controls + 0.25)
  with pytest.raises(ValueError, match="tps_params: raw"):
    jg.tps_params(np.zeros(17), controls)
