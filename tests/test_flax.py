"""Tests of the Flax NNX adapter, jaxglimpse.flax; skipped without flax."""

import numpy as np
import pytest

nnx = pytest.importorskip("flax.nnx")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import jaxglimpse as jg  # noqa: E402
from jaxglimpse import flax as jgf  # noqa: E402

def _data(batch=3, features=5):
  image = jax.random.uniform(jax.random.key(0), (batch, 12, 16, 2), jnp.float32)
  feats = jax.random.normal(jax.random.key(1), (batch, features), jnp.float32)
  return image, feats


def test_gaussian_draw_head_starts_at_whole_image():
  image, feats = _data()
  attend = jgf.GaussianGlimpse(5, (6, 8), kind="draw", rngs=nnx.Rngs(0))
  glimpse, params = attend(image, feats)
  assert glimpse.shape == (3, 6, 8, 2)
  expected, _ = jg.draw_params(jnp.zeros((3, 5)), (12, 16), (6, 8))
  for got, want in zip(params, expected):
    np.testing.assert_allclose(got, want, rtol=1e-6)
  np.testing.assert_allclose(glimpse, jg.gaussian_glimpse(image, params, (6, 8)), rtol=1e-6)


def test_gaussian_draw_head_equals_core():
  image, feats = _data()
  attend = jgf.GaussianGlimpse(5, (6, 8), kind="draw", padding="zeros", rngs=nnx.Rngs(0))
  attend.head.kernel[...] = jax.random.normal(jax.random.key(2), (5, 4), jnp.float32) * 0.1
  attend.head.bias[...] = jnp.array([0.1, -0.2, 0.3, -0.1], jnp.float32)
  glimpse, params = attend(image, feats)
  raw = feats @ attend.head.kernel[...] + attend.head.bias[...]
  expected, _ = jg.draw_params(jnp.concatenate([raw, jnp.zeros((3, 1))], -1), (12, 16), (6, 8))
  for got, want in zip(params, expected):
    np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_allclose(
      glimpse, jg.gaussian_glimpse(image, params, (6, 8), padding="zeros"), rtol=1e-5, atol=1e-6
  )


@pytest.mark.parametrize("kind", ["scale_shift", "affine"])
def test_affine_starts_at_identity(kind):
  image, feats = _data()
  attend = jgf.AffineGlimpse(5, (12, 16), kind=kind, rngs=nnx.Rngs(0))
  glimpse, theta = attend(image, feats)
  np.testing.assert_array_equal(theta, jnp.broadcast_to(jnp.eye(2, 3), (3, 2, 3)))
  np.testing.assert_allclose(glimpse, image, atol=1e-6)  # Same size: the image itself.


def test_affine_options_reach_the_core():
  image, feats = _data()
  options = dict(kind="affine", scale_range=(0.2, 1.5), init_scale=0.5, max_shift=0.5)
  attend = jgf.AffineGlimpse(5, (4, 4), align_corners=True, padding="border", rngs=nnx.Rngs(0),
                             **options)
  attend.head.kernel[...] = jax.random.normal(jax.random.key(3), (5, 6), jnp.float32)
  glimpse, theta = attend(image, feats)
  raw = feats @ attend.head.kernel[...]
  np.testing.assert_allclose(theta, jg.affine_params(raw, **options), rtol=1e-5, atol=1e-6)
  want = jg.affine_glimpse(image, theta, (4, 4), align_corners=True, padding="border")
  np.testing.assert_allclose(glimpse, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("supersample", [2, (2, 3)])
def test_affine_supersample_reaches_the_core(supersample):
  image, feats = _data()
  options = dict(kind="affine", init_scale=1.5, padding="border")
  attend = jgf.AffineGlimpse(5, (4, 4), supersample=supersample, rngs=nnx.Rngs(0), **options)
  plain = jgf.AffineGlimpse(5, (4, 4), rngs=nnx.Rngs(0), **options)
  kernel = jax.random.normal(jax.random.key(3), (5, 6), jnp.float32) * 0.1
  attend.head.kernel[...] = plain.head.kernel[...] = kernel
  glimpse, theta = attend(image, feats)
  want = jg.affine_glimpse(image, theta, (4, 4), padding="border", supersample=supersample)
  np.testing.assert_allclose(glimpse, want, rtol=1e-5, atol=1e-6)
  once, theta_once = plain(image, feats)
  np.testing.assert_array_equal(theta_once, theta)
  assert float(jnp.abs(glimpse - once).max()) > 1e-2  # Zoomed out: the average is not one read.


@pytest.mark.parametrize("supersample", [0, (2, 2, 2)])
def test_affine_bad_supersample_raises(supersample):
  image, feats = _data()
  attend = jgf.AffineGlimpse(5, (4, 4), supersample=supersample, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="supersample must be a positive int or 2 of them"):
    attend(image, feats)


def test_affine_bad_options_raise_at_construction():
  with pytest.raises(ValueError, match="init_scale must lie"):
    jgf.AffineGlimpse(5, (4, 4), scale_range=(0.1, 0.9), rngs=nnx.Rngs(0))


@pytest.mark.parametrize("which", ["gaussian", "affine"])
def test_trains_under_nnx_jit(which):
  """One optax step through the glimpse moves the head off zero."""
  image, feats = _data()
  if which == "gaussian":
    attend = jgf.GaussianGlimpse(5, (4, 4), rngs=nnx.Rngs(0))
  else:
    attend = jgf.AffineGlimpse(5, (4, 4), kind="affine", rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(attend, optax.sgd(0.1), wrt=nnx.Param)
  target = jnp.zeros((3, 4, 4, 2)).at[:, 0, 0].set(1.0)

  @nnx.jit
  def step(attend, optimizer):
    def loss(attend):
      return jnp.mean((attend(image, feats)[0] - target) ** 2)

    value, grads = nnx.value_and_grad(loss)(attend)
    optimizer.update(attend, grads)
    return value

  step(attend, optimizer)
  kernel = attend.head.kernel[...]
  assert np.all(np.isfinite(kernel)) and float(jnp.abs(kernel).sum()) > 0


def test_gaussian_scale_shift_head_starts_at_whole_image_box():
  image, feats = _data()
  attend = jgf.GaussianGlimpse(5, (6, 8), kind="scale_shift", rngs=nnx.Rngs(0))
  assert attend.head.kernel[...].shape == (5, 4)
  glimpse, params = attend(image, feats)
  box = jg.Box(jnp.array([5.5, 7.5]), jnp.array([12.0, 16.0]))
  expected = jg.box_to_gaussian(box, (6, 8))
  for got, want in zip(params, expected):
    np.testing.assert_allclose(got, jnp.broadcast_to(want, (3, 2)), rtol=1e-6)
  np.testing.assert_allclose(glimpse, jg.gaussian_glimpse(image, params, (6, 8)), rtol=1e-6)


def test_gaussian_scale_shift_head_is_bounded():
  image, feats = _data()
  attend = jgf.GaussianGlimpse(5, (6, 8), kind="scale_shift", rngs=nnx.Rngs(0))
  attend.head.bias[...] = jnp.array([1e4, -1e4, 1e4, -1e4], jnp.float32)
  _, params = attend(image, feats)
  box = jg.gaussian_to_box(params, (6, 8))
  np.testing.assert_allclose(box.size[0], [24.0, 0.8], rtol=1e-5)  # scale_range (0.05, 2).
  np.testing.assert_allclose(box.center[0], [11.5, -0.5], rtol=1e-5)  # The image's corner.


@pytest.mark.parametrize("cls", ["GaussianGlimpse", "AffineGlimpse"])
def test_bad_kind_raises(cls):
  with pytest.raises(ValueError, match="kind must be one of"):
    getattr(jgf, cls)(5, (4, 4), kind="rotation", rngs=nnx.Rngs(0))


def test_projective_and_tps_glimpses_start_at_the_identity_and_train():
  image = np.random.default_rng(0).normal(size=(2, 6, 6, 1)).astype(np.float32)
  features = np.ones((2, 3), np.float32)
  for module in (
      jgf.ProjectiveGlimpse(3, (6, 6), rngs=nnx.Rngs(0)),
      jgf.TPSGlimpse(3, (6, 6), k=3, rngs=nnx.Rngs(0)),
  ):
    glimpse, _ = module(image, features)
    np.testing.assert_allclose(glimpse, image, atol=1e-5)
    grads = nnx.grad(lambda m: jnp.sum(m(image, features)[0] * image[..., ::-1, :]))(module)
    assert np.any(np.asarray(grads.head.kernel[...]) != 0)
  assert jg.projective_params(np.zeros(8)).shape == (3, 3)
