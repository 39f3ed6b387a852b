"""Tests of the separable contraction engine under the Gaussian glimpse.

The glimpse tests check its results end to end; these check the choices that
only show in speed (the plan) and the bfloat16 product's precision.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxglimpse import _separable


def test_plan_contracts_the_larger_image_axis_first_unless_it_costs_a_transpose():
  # Shrinking the 600-pixel axis first leaves the second product a sixth of
  # the work. With one channel the last axis is a plain GEMM too.
  order, banded = _separable.plan((600, 100), (16, 16), (None, None), 3, (16, 16))
  assert order == (0, 1) and banded == (False, False)
  assert _separable.plan((100, 600), (16, 16), (None, None), 1, (16, 16))[0] == (1, 0)
  # With 3 channels the wide last axis would be contracted between two
  # transposes of the whole image, which the cost model rates dearer.
  assert _separable.plan((100, 600), (16, 16), (None, None), 3, (16, 16))[0] == (0, 1)


def test_plan_bands_a_long_signal_only_with_few_taps():
  # 1-D, 4096 samples to 128: each of 128 filters reading 12 pixels beats
  # a 128 x 4096 matrix; with taps as wide as the signal there is no band.
  assert _separable.plan((4096,), (128,), (12,), 1, (128,))[1] == (True,)
  assert _separable.plan((4096,), (128,), (None,), 1, (128,))[1] == (False,)
  # The write, its transpose, is planned from the other side.
  assert _separable.plan((128,), (4096,), (12,), 1, (128,))[1] == (True,)


def test_banded_step_equals_the_dense_product():
  rng = np.random.default_rng(4)
  x = jnp.asarray(rng.normal(size=(3, 20, 2)))
  weights = jnp.asarray(rng.normal(size=(5, 4)))
  starts = jnp.asarray([0, 3, 7, 12, 16], jnp.int32)
  dense = np.zeros((5, 20))
  for j in range(5):
    dense[j, int(starts[j]) : int(starts[j]) + 4] = weights[j]
  band = _separable.Band(weights, starts)
  got = _separable.step(x, band, 1)
  np.testing.assert_allclose(got, np.einsum("oi,bic->boc", dense, x), rtol=1e-12)
  written = _separable.step(got, _separable.transpose(band, 20), 1)
  np.testing.assert_allclose(written, np.einsum("oi,boc->bic", dense, got), rtol=1e-12)


def test_bfloat16_products_keep_the_filters_to_16_bits():
  # A bf16 filterbank would round the weights to 3 significant digits before
  # the output's rounding hides it; the split product keeps about 5.
  rng = np.random.default_rng(30)
  f = jnp.asarray(rng.uniform(size=(5, 40)), jnp.float32)
  x = jnp.asarray(rng.uniform(size=(40, 3)), jnp.bfloat16)
  want = np.asarray(f, np.float64) @ np.asarray(x, np.float64)
  dims = (((1,), (0,)), ((), ()))
  got = _separable.dot(f, x, dims)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_allclose(_separable.dot(x.T, f.T, dims), want.T, rtol=1e-5)
  rounded = jax.lax.dot_general(f.astype(jnp.bfloat16), x, dims, preferred_element_type=jnp.float32)
  assert np.max(np.abs(rounded - want) / want) > 1e-4  # What the test guards against.


