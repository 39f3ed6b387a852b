"""Tests of the shared argument checks, through the public functions.

Each test is a mistake a new user makes in the first hour, and the error (or
the conversion) that should meet it: the message names the function and the
argument, and says what to do.
"""

import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxglimpse as jg

IMAGE = jnp.asarray(np.random.default_rng(0).uniform(size=(12, 10, 3)), jnp.float32)
THETA = jnp.array([[0.5, 0.0, 0.1], [0.0, 0.5, -0.2]], jnp.float32)


def _params(mu, sigma, delta, dtype=jnp.float32):
  return jg.GaussianParams(*(jnp.asarray(x, dtype) for x in (mu, sigma, delta)))


# --- Integer and list coordinates are converted, as jnp.asarray(x, float) ---


def test_list_and_integer_gaussian_params_equal_float_ones():
  default_float = jnp.asarray(0.0).dtype  # float64 here: the tests enable x64.
  want = jg.gaussian_glimpse(IMAGE, _params([5, 4], [1, 1], [2, 2], default_float), (3, 4))
  for p in (
      jg.GaussianParams(mu=[5, 4], sigma=[1, 1], delta=[2, 2]),
      jg.GaussianParams(*(np.asarray(x, np.int32) for x in ([5, 4], [1, 1], [2, 2]))),
  ):
    np.testing.assert_array_equal(jg.gaussian_glimpse(IMAGE, p, (3, 4)), want)


def test_integer_boxes_theta_coords_and_first_centres_equal_float_ones():
  box_f = jg.Box(jnp.array([5.0, 4.0]), jnp.array([8.0, 6.0]))
  box_i = jg.Box([5, 4], np.array([8, 6]))
  for f in (jg.box_to_gaussian, lambda b, s: jg.box_to_affine(b, s, (12, 10))):
    np.testing.assert_array_equal(jax.tree.leaves(f(box_i, (4, 3))), jax.tree.leaves(f(box_f, (4, 3))))
  identity = [[1, 0, 0], [0, 1, 0]]
  np.testing.assert_array_equal(jg.affine_glimpse(IMAGE, identity, (12, 10)), IMAGE)
  np.testing.assert_array_equal(jg.sample(IMAGE, [[3, 4]]), IMAGE[3:4, 4])
  p = jg.first_center_to_gaussian([2, 2], [0.5, 0.5], [1, 1], (5, 5))
  np.testing.assert_array_equal(p.mu, [4.0, 4.0])
  assert p.mu.dtype == jnp.asarray(0.0).dtype  # The default float.


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
def test_half_precision_parameters_are_refused_with_the_fix(dtype):
  # Their gradient comes back in their own dtype, where float16 overflows at
  # small sigma; the image may be half precision, the parameters may not.
  with pytest.raises(TypeError, match=r"params.sigma must be float32 or wider.*astype\(jnp.float32\)"):
    jg.gaussian_glimpse(IMAGE, jg.GaussianParams(jnp.ones(2), jnp.ones(2, dtype), jnp.ones(2)), (3, 3))
  with pytest.raises(TypeError, match="theta must be float32 or wider"):
    jg.affine_glimpse(IMAGE, THETA.astype(dtype), (3, 3))
  out = jg.gaussian_glimpse(IMAGE.astype(dtype), _params([5, 4], [1, 1], [2, 2]), (3, 4))
  assert out.dtype == dtype


def test_dict_params_suggest_the_named_tuple():
  with pytest.raises(TypeError, match=r"got a dict; build one with `jg.GaussianParams\(\*\*params\)`"):
    jg.gaussian_glimpse(IMAGE, dict(mu=[5, 4], sigma=[1, 1], delta=[2, 2]), (3, 3))
  with pytest.raises(TypeError, match=r"jg.Box\(\*\*box\)"):
    jg.box_to_gaussian(dict(center=[1, 1], size=[2, 2]), (3, 3))


# --- Shape and parameters that disagree are blamed as a pair ---


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: jg.gaussian_glimpse(IMAGE, p, (8, 12, 3)), r"gaussian_glimpse: shape=\(8, 12, 3\) gives 3 spatial axes but params has 2"),
        (lambda p: jg.gaussian_glimpse(IMAGE, p, (4,)), r"shape=\(4,\) gives 1 spatial axis but params has 2"),
        (lambda p: jg.gaussian_write(IMAGE[:4, :4], p, (4, 4, 4)), r"gaussian_write: image_shape=\(4, 4, 4\) gives 3"),
        (lambda p: jg.gaussian_to_box(p, (4,)), r"gaussian_to_box: shape=\(4,\) gives 1 spatial axis but params has 2"),
        (lambda p: jg.gaussian_to_first_center(p, (4, 4, 4)), r"gaussian_to_first_center: shape=\(4, 4, 4\)"),
        (lambda p: jg.gaussian_mask(p, (4,), (9,)), r"gaussian_mask: shape=\(4,\) gives 1 spatial axis"),
        (lambda p: jg.box_to_gaussian(jg.Box(p.mu, p.delta), (4,)), r"box_to_gaussian: shape=\(4,\) gives 1 spatial axis but box has 2"),
        (lambda p: jg.first_center_to_gaussian(p.mu, p.sigma, p.delta, (4,)), r"shape=\(4,\) gives 1 spatial axis but the arguments have 2 .*first_center"),
    ],
)
def test_shape_and_params_that_disagree_name_shape(call, match):
  with pytest.raises(ValueError, match=match):
    call(_params([5, 4], [1, 1], [2, 2]))


def test_first_center_errors_name_the_argument_passed():
  with pytest.raises(ValueError, match=r"first_center_to_gaussian: first_center must have shape \(\*batch, 2\)"):
    jg.first_center_to_gaussian(jnp.ones(3), jnp.ones(2), jnp.ones(2), (4, 4))
  with pytest.raises(TypeError, match=r"first_center_to_gaussian: first_center .*bool"):
    jg.first_center_to_gaussian(jnp.ones(2, bool), jnp.ones(2), jnp.ones(2), (4, 4))


# --- Static shapes under jit ---


@pytest.mark.parametrize(
    "fn, args, static",
    [
        (jg.gaussian_glimpse, (IMAGE, _params([5, 4], [1, 1], [2, 2]), (3, 3)), "'shape'"),
        (jg.gaussian_write, (IMAGE[:3, :3], _params([5, 4], [1, 1], [2, 2]), (12, 10)), "'image_shape'"),
        (jg.affine_glimpse, (IMAGE, THETA, (3, 3)), "'shape'"),
        (jg.affine_write, (IMAGE[:3, :3], THETA, (12, 10)), "'image_shape'"),
        (jg.crop, (IMAGE, jnp.array([1, 2]), (3, 3)), "'shape'"),
        (jg.box_to_gaussian, (jg.Box(jnp.ones(2), jnp.ones(2)), (3, 3)), "'shape'"),
        (lambda r, s, g: jg.draw_params(r, s, g), (jnp.zeros(5), (28, 28), (5, 5)), "'image_shape'"),
        (jg.gaussian_filterbank, (1.0, 1.0, 1.0, 3, 5), "('n', 'size')"),
    ],
)
def test_traced_shapes_say_how_to_make_them_static(fn, args, static):
  with pytest.raises(TypeError, match=rf"must be static Python ints.*static_argnames={static}".replace("(", r"\(").replace(")", r"\)")):
    jax.jit(fn)(*args)


# --- Channel-first images ---


@pytest.mark.parametrize(
    "call",
    [
        lambda x: jg.gaussian_glimpse(x, _params([1, 30], [1, 1], [1, 1]), (2, 4)),
        lambda x: jg.affine_glimpse(x, THETA, (2, 4)),
        lambda x: jg.crop(x, jnp.array([0, 3]), (2, 4)),
        lambda x: jg.sample(x[0], jnp.zeros((3, 2))),
    ],
    ids=["gaussian", "affine", "crop", "sample"],
)
def test_channel_first_images_warn_with_the_shapes_and_the_fix(call):
  image = jnp.ones((2, 3, 64, 48))  # Two (C, H, W) images.
  with pytest.warns(UserWarning, match=r"looks channel-first.*spatial axes \(3, 64\) with 48 channels.*jnp.moveaxis"):
    call(image)
  with warnings.catch_warnings():  # The documented filter silences it.
    warnings.simplefilter("error")
    warnings.filterwarnings("ignore", message=".*looks channel-first")
    call(image)


@pytest.mark.parametrize("shape", [(64, 48, 3), (2, 64, 48, 1), (5, 8, 3), (4, 4, 4)])
def test_channel_last_images_do_not_warn(shape):
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    jg.gaussian_glimpse(jnp.ones(shape), _params([1, 1], [1, 1], [1, 1]), (2, 2))
    jg.affine_glimpse(jnp.ones(shape), THETA, (2, 2))


def test_crop_errors_say_channel_last():
  with pytest.raises(ValueError, match=r"crop: image must have shape \(\*batch, \*spatial, C\), channel-last"):
    jg.crop(jnp.ones((4, 5)), jnp.array([0, 0]), (2, 2))


# --- Empty images ---


@pytest.mark.parametrize(
    "call",
    [
        lambda x: jg.gaussian_glimpse(x, _params([1, 1], [1, 1], [1, 1]), (4, 4)),
        lambda x: jg.affine_glimpse(x, THETA, (4, 4)),
        lambda x: jg.sample(x, jnp.zeros((3, 2))),
        lambda x: jg.gaussian_write(x, _params([1, 1], [1, 1], [1, 1]), (4, 4)),
        lambda x: jg.affine_write(x, THETA, (4, 4)),
    ],
    ids=["gaussian", "affine", "sample", "gaussian_write", "affine_write"],
)
def test_empty_spatial_axes_are_a_clear_error(call):
  with pytest.raises(ValueError, match=r"of shape \(0, 16, 1\) has an empty spatial axis"):
    call(jnp.ones((0, 16, 1)))


# --- Optional dependencies ---


@pytest.mark.parametrize("module, extra", [("flax", "flax"), ("haiku", "haiku")])
def test_adapters_without_their_framework_name_the_extra(module, extra):
  code = (
      f"import sys; sys.modules[{module!r}] = None\n"  # As if it were not installed.
      f"import jaxglimpse.{module}"
  )
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert result.returncode != 0
  assert f'pip install "jaxglimpse[{extra}]"' in result.stderr, result.stderr[-2000:]
