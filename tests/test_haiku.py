"""Tests of the Haiku adapter, jaxglimpse.haiku; skipped without dm-haiku."""

import numpy as np
import pytest

hk = pytest.importorskip("haiku")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import jaxglimpse as jg  # noqa: E402
from jaxglimpse import haiku as jgh  # noqa: E402

def _data(batch=3, features=5):
  image = jax.random.uniform(jax.random.key(0), (batch, 12, 16, 2), jnp.float32)
  feats = jax.random.normal(jax.random.key(1), (batch, features), jnp.float32)
  return image, feats


def _transform(make):
  return hk.without_apply_rng(hk.transform(lambda x, h: make()(x, h)))


def test_gaussian_draw_head_starts_at_whole_image():
  image, feats = _data()
  f = _transform(lambda: jgh.GaussianGlimpse((6, 8), kind="draw"))
  variables = f.init(jax.random.key(0), image, feats)
  assert jax.tree.map(jnp.shape, variables) == {
      "gaussian_glimpse/~glimpse_params/head": {"b": (4,), "w": (5, 4)}
  }
  glimpse, params = f.apply(variables, image, feats)
  assert glimpse.shape == (3, 6, 8, 2)
  expected, _ = jg.draw_params(jnp.zeros((3, 5)), (12, 16), (6, 8))
  for got, want in zip(params, expected):
    np.testing.assert_allclose(got, want, rtol=1e-6)
  np.testing.assert_allclose(glimpse, jg.gaussian_glimpse(image, params, (6, 8)), rtol=1e-6)


def test_gaussian_draw_head_equals_core():
  image, feats = _data()
  f = _transform(lambda: jgh.GaussianGlimpse((6, 8), kind="draw", padding="zeros"))
  variables = f.init(jax.random.key(0), image, feats)
  w = jax.random.normal(jax.random.key(2), (5, 4), jnp.float32) * 0.1
  b = jnp.array([0.1, -0.2, 0.3, -0.1], jnp.float32)
  variables = {"gaussian_glimpse/~glimpse_params/head": {"w": w, "b": b}}
  glimpse, params = f.apply(variables, image, feats)
  raw = jnp.concatenate([feats @ w + b, jnp.zeros((3, 1))], -1)
  expected, _ = jg.draw_params(raw, (12, 16), (6, 8))
  for got, want in zip(params, expected):
    np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_allclose(
      glimpse, jg.gaussian_glimpse(image, params, (6, 8), padding="zeros"), rtol=1e-5, atol=1e-6
  )


@pytest.mark.parametrize("kind, size", [("scale_shift", 4), ("affine", 6)])
def test_affine_starts_at_identity(kind, size):
  image, feats = _data()
  f = _transform(lambda: jgh.AffineGlimpse((12, 16), kind=kind))
  variables = f.init(jax.random.key(0), image, feats)
  assert jax.tree.map(jnp.shape, variables) == {
      "affine_glimpse/~glimpse_params/head": {"b": (size,), "w": (5, size)}
  }
  glimpse, theta = f.apply(variables, image, feats)
  np.testing.assert_array_equal(theta, jnp.broadcast_to(jnp.eye(2, 3), (3, 2, 3)))
  np.testing.assert_allclose(glimpse, image, atol=1e-6)


def test_affine_options_reach_the_core_and_grads_flow():
  image, feats = _data()
  options = dict(kind="affine", scale_range=(0.2, 1.5), init_scale=0.5, max_shift=0.5)
  f = _transform(lambda: jgh.AffineGlimpse((4, 4), align_corners=True, padding="border", **options))
  w = jax.random.normal(jax.random.key(3), (5, 6), jnp.float32)
  variables = {"affine_glimpse/~glimpse_params/head": {"w": w, "b": jnp.zeros(6)}}
  glimpse, theta = jax.jit(f.apply)(variables, image, feats)
  np.testing.assert_allclose(theta, jg.affine_params(feats @ w, **options), rtol=1e-5, atol=1e-6)
  want = jg.affine_glimpse(image, theta, (4, 4), align_corners=True, padding="border")
  np.testing.assert_allclose(glimpse, want, rtol=1e-5, atol=1e-6)
  grads = jax.jit(jax.grad(lambda v: jnp.sum(f.apply(v, image, feats)[0] ** 2)))(variables)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  assert float(jnp.abs(grads["affine_glimpse/~glimpse_params/head"]["w"]).sum()) > 0


@pytest.mark.parametrize("supersample", [2, (2, 3)])
def test_affine_supersample_reaches_the_core(supersample):
  image, feats = _data()
  options = dict(kind="affine", init_scale=1.5, padding="border")
  f = _transform(lambda: jgh.AffineGlimpse((4, 4), supersample=supersample, **options))
  plain = _transform(lambda: jgh.AffineGlimpse((4, 4), **options))
  w = jax.random.normal(jax.random.key(3), (5, 6), jnp.float32) * 0.1
  variables = {"affine_glimpse/~glimpse_params/head": {"w": w, "b": jnp.zeros(6)}}
  glimpse, theta = jax.jit(f.apply)(variables, image, feats)
  want = jg.affine_glimpse(image, theta, (4, 4), padding="border", supersample=supersample)
  np.testing.assert_allclose(glimpse, want, rtol=1e-5, atol=1e-6)
  once, theta_once = jax.jit(plain.apply)(variables, image, feats)
  np.testing.assert_array_equal(theta_once, theta)
  assert float(jnp.abs(glimpse - once).max()) > 1e-2  # Zoomed out: the average is not one read.


@pytest.mark.parametrize("supersample", [0, (2, 2, 2)])
def test_affine_bad_supersample_raises(supersample):
  f = _transform(lambda: jgh.AffineGlimpse((4, 4), supersample=supersample))
  with pytest.raises(ValueError, match="supersample must be a positive int or 2 of them"):
    f.init(jax.random.key(0), *_data())


def test_gaussian_scale_shift_head_starts_at_whole_image_box():
  image, feats = _data()
  f = _transform(lambda: jgh.GaussianGlimpse((6, 8), kind="scale_shift"))
  variables = f.init(jax.random.key(0), image, feats)
  assert jax.tree.map(jnp.shape, variables) == {
      "gaussian_glimpse/~glimpse_params/head": {"b": (4,), "w": (5, 4)}
  }
  glimpse, params = f.apply(variables, image, feats)
  expected = jg.box_to_gaussian(jg.Box(jnp.array([5.5, 7.5]), jnp.array([12.0, 16.0])), (6, 8))
  for got, want in zip(params, expected):
    np.testing.assert_allclose(got, jnp.broadcast_to(want, (3, 2)), rtol=1e-6)
  np.testing.assert_allclose(glimpse, jg.gaussian_glimpse(image, params, (6, 8)), rtol=1e-6)


@pytest.mark.parametrize("cls", ["GaussianGlimpse", "AffineGlimpse"])
def test_bad_options_raise(cls):
  f = _transform(lambda: getattr(jgh, cls)((4, 4), scale_range=(0.1, 0.9), kind="scale_shift"))
  with pytest.raises(ValueError, match="init_scale must lie"):
    f.init(jax.random.key(0), *_data())


def test_projective_starts_at_identity_and_options_reach_the_core():
  image, feats = _data()
  f = _transform(lambda: jgh.ProjectiveGlimpse((12, 16)))
  variables = f.init(jax.random.key(0), image, feats)
  assert jax.tree.map(jnp.shape, variables) == {
      "projective_glimpse/~glimpse_params/head": {"b": (8,), "w": (5, 8)}
  }
  glimpse, matrix = f.apply(variables, image, feats)
  np.testing.assert_array_equal(matrix, jnp.broadcast_to(jnp.eye(3), (3, 3, 3)))
  np.testing.assert_allclose(glimpse, image, atol=1e-5)
  options = dict(scale_range=(0.2, 1.5), init_scale=0.5, max_shift=0.5, max_perspective=0.3)
  f = _transform(lambda: jgh.ProjectiveGlimpse((4, 4), padding="border", supersample=2,
                                               **options))
  w = jax.random.normal(jax.random.key(3), (5, 8), jnp.float32)
  variables = {"projective_glimpse/~glimpse_params/head": {"w": w, "b": jnp.zeros(8)}}
  glimpse, matrix = jax.jit(f.apply)(variables, image, feats)
  np.testing.assert_allclose(matrix, jg.projective_params(feats @ w, **options), rtol=1e-5, atol=1e-6)
  want = jg.projective_glimpse(image, matrix, (4, 4), padding="border", supersample=2)
  np.testing.assert_allclose(glimpse, want, rtol=1e-5, atol=1e-6)


def test_tps_starts_at_identity_and_options_reach_the_core():
  image, feats = _data()
  f = _transform(lambda: jgh.TPSGlimpse((12, 16), k=3))
  variables = f.init(jax.random.key(0), image, feats)
  assert jax.tree.map(jnp.shape, variables) == {
      "tps_glimpse/~glimpse_params/head": {"b": (18,), "w": (5, 18)}
  }
  glimpse, targets = f.apply(variables, image, feats)
  np.testing.assert_array_equal(targets, jnp.broadcast_to(jg.tps_controls(3), (3, 9, 2)))
  np.testing.assert_allclose(glimpse, image, atol=1e-5)
  f = _transform(lambda: jgh.TPSGlimpse((4, 4), k=2, max_offset=0.2, padding="reflection",
                                        regularization=0.1))
  w = jax.random.normal(jax.random.key(3), (5, 8), jnp.float32)
  variables = {"tps_glimpse/~glimpse_params/head": {"w": w, "b": jnp.zeros(8)}}
  glimpse, targets = jax.jit(f.apply)(variables, image, feats)
  controls = jg.tps_controls(2)
  np.testing.assert_allclose(targets, jg.tps_params(feats @ w, controls, max_offset=0.2), atol=1e-6)
  want = jg.tps_glimpse(image, controls, targets, (4, 4), padding="reflection", regularization=0.1)
  np.testing.assert_allclose(glimpse, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", ["ProjectiveGlimpse", "TPSGlimpse"])
def test_projective_and_tps_heads_get_a_gradient_at_init(cls):
  image, feats = _data()
  f = _transform(lambda: getattr(jgh, cls)((6, 6)))
  variables = f.init(jax.random.key(0), image, feats)
  loss = lambda v: jnp.sum(f.apply(v, image, feats)[0] * image[:, ::2, ::-3][:, :6, :6])
  grads = jax.jit(jax.grad(loss))(variables)
  (w,) = [g["w"] for g in grads.values()]
  assert np.all(np.isfinite(w)) and float(jnp.abs(w).sum()) > 0
