"""Tests of parameter forms and their conversions: boxes and first centres."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxglimpse as jg
from tests import reference


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
        (lambda: jg.box_to_gaussian(jg.Box(jnp.ones(2), jnp.ones(2)), (3,)), ValueError, r"shape=\(3,\) gives 1 spatial axis but box has 2"),
        (lambda: jg.box_to_gaussian(jg.Box(jnp.ones(2), jnp.ones(1)), (3, 3)), ValueError, r"box.size must have shape \(\*batch, 2\)"),
        (lambda: jg.box_to_gaussian(jg.Box(jnp.ones(2), jnp.ones(2, bool)), (3, 3)), TypeError, "box.size"),
        (lambda: jg.box_to_gaussian((1.0,), (3,)), TypeError, "box must be a Box"),
        (lambda: jg.box_to_gaussian(jg.Box(jnp.ones((2, 2)), jnp.ones((3, 2))), (3, 3)), ValueError, "do not broadcast"),
        (lambda: jg.gaussian_to_box(jg.GaussianParams(*(jnp.ones(2),) * 3), (3, 0)), ValueError, "positive"),
        (lambda: jg.first_center_to_gaussian(jnp.ones(2), jnp.ones(2), jnp.ones(3), (3, 3)), ValueError, "delta"),
    ],
)
def test_conversion_errors(call, error, match):
  with pytest.raises(error, match=match):
    call()


def test_box_to_gaussian_sigma_literal_and_shape_errors():
  box = jg.Box(jnp.ones((3, 2)), jnp.full((3, 2), 4.0))
  p = jg.box_to_gaussian(box, (2, 2), sigma=1)
  assert p.sigma.shape == (3, 2) and np.all(p.sigma == 1.0)
  assert p.mu.shape == p.delta.shape == (3, 2)
  with pytest.raises(ValueError, match=r"box_to_gaussian: batch shapes do not broadcast: sigma \(4,\)"):
    jg.box_to_gaussian(box, (2, 2), sigma=jnp.ones(4))
  with pytest.raises(ValueError, match="box_to_gaussian: shape describes 4 spatial axes"):
    jg.box_to_gaussian(jg.Box(jnp.ones(4), jnp.ones(4)), (2, 2, 2, 2))


def test_numpy_shapes_are_accepted_as_static():
  box = jg.Box(jnp.ones(2), jnp.full(2, 4.0))
  p = jg.box_to_gaussian(box, np.array([2, 4]))
  np.testing.assert_allclose(p.delta, [2.0, 1.0])
