"""Tests of parameter forms and their conversions: boxes, first centres, DRAW."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxglimpse as jg
from tests import reference


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
  with pytest.raises(ValueError, match=r"glimpse_shape \(12,\) must have one entry per spatial axis: 2"):
    jg.draw_params(jnp.zeros(5), (28, 28), (12,))
  with pytest.raises(TypeError, match="draw_params: raw .*int"):
    jg.draw_params(jnp.zeros(5, int), (28, 28), (12, 12))


@pytest.mark.parametrize("shape", [(5,), (4, 7), (2, 3, 6)])
def test_box_round_trip(shape):
  rng = np.random.default_rng(0)
  n = len(shape)
  box = jg.Box(jnp.asarray(rng.uniform(-5, 30, (3, n))), jnp.asarray(rng.uniform(0.5, 20, (3, n))))
  params = jg.box_to_gaussian(box, shape)
  back = jg.gaussian_to_box(params, shape)
  np.testing.assert_allclose(back.center, box.center, rtol=1e-14)
  np.testing.assert_allclose(back.size, box.size, rtol=1e-14)


def test_box_samples_sit_at_cell_centres():
  box = jg.Box(jnp.array([10.0, 4.0]), jnp.array([8.0, 3.0]))
  params = jg.box_to_gaussian(box, (4, 3))
  centres_y = params.mu[0] + (np.arange(4) - 1.5) * params.delta[0]
  np.testing.assert_allclose(centres_y, [7.0, 9.0, 11.0, 13.0])  # Cells of [6, 14].
  centres_x = params.mu[1] + (np.arange(3) - 1) * params.delta[1]
  np.testing.assert_allclose(centres_x, [3.0, 4.0, 5.0])


def test_box_to_gaussian_sigma_default_and_override():
  box = jg.Box(jnp.zeros((2, 2)), jnp.array([[4.0, 40.0], [-40.0, 2.0]]))
  p = jg.box_to_gaussian(box, (4, 4))
  np.testing.assert_allclose(p.sigma, [[0.5, 5.0], [5.0, 0.5]])
  p = jg.box_to_gaussian(box, (4, 4), sigma=jnp.array([1.0, 2.0]))
  np.testing.assert_allclose(p.sigma, [[1.0, 2.0], [1.0, 2.0]])


def test_mirrored_glimpse_has_a_positive_box():
  p = jg.GaussianParams(jnp.array([3.0]), jnp.array([1.0]), jnp.array([-2.0]))
  np.testing.assert_allclose(jg.gaussian_to_box(p, (5,)).size, [10.0])


def test_first_centre_round_trip_and_seed_example():
  u, sigma, delta = jnp.array([2.0, 2.0]), jnp.array([0.5, 0.5]), jnp.array([1.0, 1.0])
  params = jg.first_center_to_gaussian(u, sigma, delta, (5, 5))
  np.testing.assert_allclose(params.mu, [4.0, 4.0])
  np.testing.assert_allclose(jg.gaussian_to_first_center(params, (5, 5)), u)
  # The seed's example: filter j centred at u + j * delta over a 10×10 image.
  image = np.random.default_rng(1).uniform(size=(10, 10, 1))
  image[3:6, 3:6] = 5.0
  got = jg.gaussian_glimpse(image, params, (5, 5))
  fy = reference.gaussian_filterbank(4.0, 0.5, 1.0, 5, 10)
  np.testing.assert_allclose(fy.argmax(axis=1), [2, 3, 4, 5, 6])
  np.testing.assert_allclose(got[..., 0], fy @ image[..., 0] @ fy.T, rtol=1e-12)


def test_conversions_are_differentiable_and_jittable():
  box = jg.Box(jnp.array([3.0, 4.0]), jnp.array([6.0, 2.0]))
  f = jax.jit(lambda c, s: jg.gaussian_to_box(jg.box_to_gaussian(jg.Box(c, s), (3, 2)), (3, 2)))
  check_grads(f, tuple(box), order=1)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: jg.box_to_gaussian(jg.Box(jnp.ones(2), jnp.ones(2)), (3,)), ValueError, r"box.center must have shape \(\*batch, 1\)"),
        (lambda: jg.box_to_gaussian(jg.Box(jnp.ones(2), jnp.ones(2, int)), (3, 3)), TypeError, "box.size"),
        (lambda: jg.box_to_gaussian((1.0,), (3,)), TypeError, "box must be a Box"),
        (lambda: jg.box_to_gaussian(jg.Box(jnp.ones((2, 2)), jnp.ones((3, 2))), (3, 3)), ValueError, "do not broadcast"),
        (lambda: jg.gaussian_to_box(jg.GaussianParams(*(jnp.ones(2),) * 3), (3, 0)), ValueError, "positive"),
        (lambda: jg.first_center_to_gaussian(jnp.ones(2), jnp.ones(2), jnp.ones(3), (3, 3)), ValueError, "delta"),
    ],
)
def test_conversion_errors(call, error, match):
  with pytest.raises(error, match=match):
    call()


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


def test_box_to_gaussian_sigma_literal_and_shape_errors():
  box = jg.Box(jnp.ones((3, 2)), jnp.full((3, 2), 4.0))
  p = jg.box_to_gaussian(box, (2, 2), sigma=1)
  assert p.sigma.shape == (3, 2) and np.all(p.sigma == 1.0)
  assert p.mu.shape == p.delta.shape == (3, 2)
  with pytest.raises(ValueError, match=r"box_to_gaussian: batch shapes do not broadcast: sigma \(4,\)"):
    jg.box_to_gaussian(box, (2, 2), sigma=jnp.ones(4))
  with pytest.raises(ValueError, match="box_to_gaussian: shape describes 4 spatial axes"):
    jg.box_to_gaussian(jg.Box(jnp.ones(4), jnp.ones(4)), (2, 2, 2, 2))
  with pytest.raises(ValueError, match="draw_params: image_shape describes 4 spatial axes"):
    jg.draw_params(jnp.zeros(7), (5, 5, 5, 5), (2, 2, 2, 2))


def test_numpy_shapes_are_accepted_as_static():
  box = jg.Box(jnp.ones(2), jnp.full(2, 4.0))
  p = jg.box_to_gaussian(box, np.array([2, 4]))
  np.testing.assert_allclose(p.delta, [2.0, 1.0])
