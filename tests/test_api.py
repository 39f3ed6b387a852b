"""The public face: exactly these names, each documented with a doctest."""

import doctest
import inspect

import jaxglimpse as jg

PUBLIC = {
    "Box",
    "GaussianParams",
    "affine_glimpse",
    "affine_grid",
    "affine_params",
    "affine_to_box",
    "affine_write",
    "box_to_affine",
    "box_to_gaussian",
    "crop",
    "draw_params",
    "first_center_to_gaussian",
    "gaussian_filterbank",
    "gaussian_glimpse",
    "gaussian_mask",
    "gaussian_taps",
    "gaussian_to_box",
    "gaussian_to_first_center",
    "gaussian_window",
    "gaussian_write",
    "sample",
    "scale_shift_theta",
    "theta_from_torch",
    "theta_to_torch",
}


def test_public_names_are_pinned():
  assert set(jg.__all__) == PUBLIC
  assert list(jg.__all__) == sorted(jg.__all__, key=lambda n: (n[0].islower(), n))
  exported = {
      name for name, value in vars(jg).items()
      if not name.startswith("_") and not inspect.ismodule(value)
  }
  assert exported == PUBLIC


def test_every_public_function_has_a_docstring_with_an_example():
  finder = doctest.DocTestFinder()
  for name in PUBLIC:
    obj = getattr(jg, name)
    if inspect.isfunction(obj):
      doc = inspect.getdoc(obj)
      assert doc and "Args:" in doc and "Returns:" in doc, name
      assert any(t.examples for t in finder.find(obj, name)), f"{name} has no doctest"


def test_core_imports_no_framework_or_optional_package():
  import subprocess
  import sys

  code = (
      "import sys, jaxglimpse; "
      "bad = {'flax', 'haiku', 'optax', 'torch', 'matplotlib', 'chex'} & set(sys.modules); "
      "print(sorted(bad)); sys.exit(bool(bad))"
  )
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
  assert result.returncode == 0, result.stdout + result.stderr
