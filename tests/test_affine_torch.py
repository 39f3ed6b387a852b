"""affine_glimpse against PyTorch's affine_grid + grid_sample, in float64.

PyTorch is an optional reference: the module skips when it is not installed.
Both libraries see the same numbers after `theta_to_torch` and moving the
channel axis first; values and gradients (in theta and in the image) must
agree for every padding and both align_corners.
"""

import itertools

import jax
import numpy as np
import pytest

import jaxglimpse.affine as affine

torch = pytest.importorskip("torch")
F = torch.nn.functional

PADDINGS = ("zeros", "border", "reflection")
CASES = list(itertools.product((2, 3), PADDINGS, (False, True)))


def _problem(n, seed):
  """A random image and theta whose glimpse reaches partly outside the image."""
  rng = np.random.default_rng(seed)
  image_shape = (5, 6) if n == 2 else (3, 4, 5)
  shape = (4, 3) if n == 2 else (2, 3, 3)
  image = rng.normal(size=(2, *image_shape, 3))
  linear = rng.normal(scale=0.8, size=(2, n, n))
  shift = rng.uniform(-0.9, 0.9, size=(2, n, 1))
  theta = np.concatenate([linear, shift], axis=-1)
  return image, theta, shape


def _torch_glimpse(image, torch_theta, shape, mode, padding, align_corners):
  """The PyTorch glimpse, channel-last, from a channel-last float64 image."""
  x = torch.movedim(image, -1, 1)
  size = (x.shape[0], x.shape[1], *shape)
  grid = F.affine_grid(torch_theta, size, align_corners=align_corners)
  out = F.grid_sample(
      x, grid, mode=mode, padding_mode=padding, align_corners=align_corners
  )
  return torch.movedim(out, 1, -1)


@pytest.mark.parametrize("n,padding,align_corners", CASES)
def test_bilinear_values_and_gradients_match_pytorch(n, padding, align_corners):
  image, theta, shape = _problem(n, seed=10 * n + PADDINGS.index(padding))
  cotangent = np.random.default_rng(1).normal(size=(2, *shape, 3))

  @jax.jit
  def ours(x, th, ct):
    f = lambda x, th: affine.affine_glimpse(
        x, th, shape, padding=padding, align_corners=align_corners
    )
    out, vjp = jax.vjp(f, x, th)
    return out, *vjp(ct)

  out, grad_image, grad_theta = ours(image, theta, cotangent)

  image_t = torch.tensor(image, requires_grad=True)
  theta_t = torch.tensor(np.asarray(affine.theta_to_torch(theta)), requires_grad=True)
  out_t = _torch_glimpse(image_t, theta_t, shape, "bilinear", padding, align_corners)
  out_t.backward(torch.tensor(cotangent))

  np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=0, atol=1e-10)
  np.testing.assert_allclose(grad_image, image_t.grad.numpy(), rtol=0, atol=1e-10)
  # The conversion permutes entries, so it carries gradients the same way.
  torch_grad_theta = affine.theta_from_torch(theta_t.grad.numpy())
  np.testing.assert_allclose(grad_theta, torch_grad_theta, rtol=0, atol=1e-9)
  # The problem is a real test: part of the glimpse is off the image.
  grid = affine.affine_grid(theta, shape, image.shape[1:-1], align_corners=align_corners)
  assert np.any((grid < 0) | (grid > np.array(image.shape[1:-1]) - 1))


@pytest.mark.parametrize("padding,align_corners", list(itertools.product(PADDINGS, (False, True))))
def test_bicubic_values_and_gradients_match_pytorch(padding, align_corners):
  # PyTorch has bicubic grid_sample in 2-D only; it pads each tap's index.
  image, theta, shape = _problem(2, seed=200 + PADDINGS.index(padding))
  theta[1] *= 2.5  # Far enough out that border and reflection pad whole stencils.
  cotangent = np.random.default_rng(2).normal(size=(2, *shape, 3))

  @jax.jit
  def ours(x, th, ct):
    f = lambda x, th: affine.affine_glimpse(
        x, th, shape, padding=padding, align_corners=align_corners, order=3
    )
    out, vjp = jax.vjp(f, x, th)
    return out, *vjp(ct)

  out, grad_image, grad_theta = ours(image, theta, cotangent)

  image_t = torch.tensor(image, requires_grad=True)
  theta_t = torch.tensor(np.asarray(affine.theta_to_torch(theta)), requires_grad=True)
  out_t = _torch_glimpse(image_t, theta_t, shape, "bicubic", padding, align_corners)
  out_t.backward(torch.tensor(cotangent))

  np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=0, atol=1e-10)
  np.testing.assert_allclose(grad_image, image_t.grad.numpy(), rtol=0, atol=1e-10)
  torch_grad_theta = affine.theta_from_torch(theta_t.grad.numpy())
  np.testing.assert_allclose(grad_theta, torch_grad_theta, rtol=0, atol=1e-9)
  grid = affine.affine_grid(theta, shape, image.shape[1:-1], align_corners=align_corners)
  assert np.any((grid < -2) | (grid > np.array(image.shape[1:-1]) + 1))


@pytest.mark.parametrize("n,padding,align_corners", CASES)
def test_nearest_values_match_pytorch(n, padding, align_corners):
  image, theta, shape = _problem(n, seed=100 + 10 * n + PADDINGS.index(padding))
  out = jax.jit(
      lambda x, th: affine.affine_glimpse(
          x, th, shape, padding=padding, align_corners=align_corners, order=0
      )
  )(image, theta)
  torch_theta = torch.tensor(np.asarray(affine.theta_to_torch(theta)))
  expected = _torch_glimpse(
      torch.tensor(image), torch_theta, shape, "nearest", padding, align_corners
  )
  np.testing.assert_allclose(out, expected.numpy(), rtol=0, atol=1e-12)


def test_gradient_at_integer_positions_matches_pytorch():
  # With align_corners=True and as many samples as pixels, an identity theta
  # puts every sample exactly on a pixel centre in both libraries' grids, so
  # this pins the floor / floor + 1 convention of the coordinate gradient.
  image = np.random.default_rng(5).normal(size=(1, 5, 5, 2))
  theta = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
  cotangent = np.random.default_rng(6).normal(size=(1, 5, 5, 2))
  f = lambda th: affine.affine_glimpse(image, th, (5, 5), align_corners=True)
  out, vjp = jax.vjp(f, theta)
  (grad_theta,) = vjp(cotangent)

  theta_t = torch.tensor(np.asarray(affine.theta_to_torch(theta)), requires_grad=True)
  out_t = _torch_glimpse(torch.tensor(image), theta_t, (5, 5), "bilinear", "zeros", True)
  out_t.backward(torch.tensor(cotangent))
  np.testing.assert_allclose(out, image, atol=1e-15)
  np.testing.assert_allclose(out, out_t.detach().numpy(), atol=1e-15)
  np.testing.assert_allclose(grad_theta, affine.theta_from_torch(theta_t.grad.numpy()), atol=1e-12)
  assert np.all(np.abs(grad_theta[..., 2]) > 1e-3)  # Translation gradients are not 0.
