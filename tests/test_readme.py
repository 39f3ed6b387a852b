"""The README's set-up commands are the ones CI and users actually run."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxglimpse as jg

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _setup_commands():
  text = (ROOT / "README.md").read_text()
  section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
  return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
  commands = _setup_commands()
  assert len(commands) == 2, commands
  assert all("\n" not in c for c in commands), commands
  assert commands[0].startswith("pip install -e") and "experiments/" in commands[0]
  assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
  ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
  assert _setup_commands()[1] in ci_lines


def test_demo_script_exists():
  script = _setup_commands()[0].split("python ", 1)[1].split()[0]
  assert (ROOT / script).is_file(), script


def _snippet_code(name):
  """The one Python block between the README's ``[start:name]`` and ``[end:name]`` markers."""
  text = (ROOT / "README.md").read_text()
  block = text.split(f"[start:{name}]", 1)[1].split(f"[end:{name}]", 1)[0]
  (code,) = re.findall(r"```python\n(.*?)```", block, flags=re.S)
  return code


def test_readme_example_runs():
  code = _snippet_code("example")
  namespace = {}
  exec(compile(code, "README.md", "exec"), namespace)
  assert namespace["glimpse"].shape == (8, 12, 3)
  assert namespace["canvas"].shape == (64, 64, 3)
  assert set(namespace["grads"]._fields) == {"mu", "sigma", "delta"}


def test_readme_beyond_affine_example_runs():
  code = _snippet_code("beyond-affine")
  namespace = {}
  exec(compile(code, "README.md", "exec"), namespace)
  assert namespace["sharp"].shape == namespace["smooth"].shape == (8, 8, 3)
  # The 48-pixel box read at 8 x 8 is a 6x zoom-out: 6 x 6 reads per cell
  # average each cell, so the supersampled glimpse is smoother than the bicubic one.
  assert float(namespace["smooth"].std()) < float(namespace["sharp"].std())
  assert namespace["rectified"].shape == namespace["warped"].shape == (16, 16, 3)
  matrix = namespace["matrix"]
  corners = jnp.concatenate([namespace["glimpse_corners"], jnp.ones((4, 1))], -1) @ matrix.T
  np.testing.assert_allclose(corners[:, :2] / corners[:, 2:], namespace["image_corners"], atol=1e-5)
  grads = namespace["grads"]
  assert grads.shape == (16, 2) and bool(jnp.all(jnp.isfinite(grads))) and float(abs(grads).max()) > 0


def test_readme_box_glimpses_example_runs():
  code = _snippet_code("box-glimpses")
  namespace = {}
  exec(compile(code, "README.md", "exec"), namespace)
  features, boxes, index = (namespace[k] for k in ("features", "boxes", "index"))
  assert namespace["pooled"].shape == (2, 7, 7, 8)
  assert namespace["crops"].shape == (2, 14, 14, 8)
  assert namespace["views"].shape == (3, 8, 8, 8)
  assert boxes.tolist()[0] == [6.0, 4.0, 30.0, 40.0] and index.tolist() == [0, 1]
  np.testing.assert_allclose(namespace["pooled"][1], jg.roi_align(features[1], boxes[1], (7, 7)), atol=1e-5)
  d_boxes = namespace["d_boxes"]
  assert d_boxes.shape == (2, 4) and bool(jnp.all(jnp.isfinite(d_boxes))) and float(abs(d_boxes).max()) > 0


def _section(title):
  text = (ROOT / "README.md").read_text()
  return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table_names():
  """The first-column names of the "API at a glance" table, without backticks."""
  return re.findall(r"^\| `([\w.]+)` \|", _section("API at a glance"), flags=re.M)


def test_api_table_names_every_public_name_once():
  import jaxglimpse

  names = _table_names()
  core = [n.removeprefix("jg.") for n in names if n.startswith("jg.")]
  assert sorted(core) == sorted(jaxglimpse.__all__)
  adapters = {n for n in names if not n.startswith("jg.")}
  for framework in ("flax", "haiku"):  # Every module class each adapter defines.
    module = pytest.importorskip(f"jaxglimpse.{framework}")
    defined = {
        f"{module.__name__}.{k}" for k, v in vars(module).items()
        if isinstance(v, type) and v.__module__ == module.__name__
    }
    assert {n for n in adapters if n.startswith(f"{module.__name__}.")} == defined


def test_api_table_adapters_exist():
  for name in _table_names():
    if name.startswith("jaxglimpse."):
      module, attr = name.rsplit(".", 1)
      module = pytest.importorskip(module)
      assert isinstance(getattr(module, attr), type), name


def test_readme_adapter_example_runs():
  pytest.importorskip("flax")
  (code,) = re.findall(r"```python\n(.*?)```", _section("Adapters"), flags=re.S)
  namespace = {}
  exec(compile(code, "README.md", "exec"), namespace)
  assert 0 < float(namespace["value"]) < 100
  (head,) = jax.tree.leaves(namespace["grads"]["attend"]["head"]["kernel"])
  assert head.shape == (32, 4) and float(abs(head).max()) > 0


def test_api_page_documents_every_public_name_through_the_package():
  # `::: jaxglimpse.name`, never a private module path, so that moving code
  # between the package's modules cannot break the reference.
  import jaxglimpse

  page = (ROOT / "docs" / "api.md").read_text()
  documented = re.findall(r"^::: ([\w.]+)$", page, flags=re.M)
  assert sorted(documented) == sorted(f"jaxglimpse.{n}" for n in jaxglimpse.__all__)
  adapters = re.findall(r"^::: ([\w.]+)$", (ROOT / "docs" / "adapters.md").read_text(), flags=re.M)
  assert set(adapters) == {n for n in _table_names() if not n.startswith("jg.")}


def test_ci_tests_the_jax_floor_of_pyproject_and_builds_the_docs():
  pyproject = (ROOT / "pyproject.toml").read_text()
  ci = (ROOT / ".ci" / "run").read_text()
  for package in ("jax", "jaxlib"):
    (floor,) = re.findall(rf'"{package}>=([\d.]+)"', pyproject)
    assert f'"{package}=={floor}"' in ci, (package, floor)
  assert "mkdocs build --strict" in ci
  assert "jaxglimpse[examples,flax,haiku,docs]" in pyproject  # The test install has mkdocs.


def test_the_licence_is_the_apache_2_text_that_pyproject_names():
  licence = (ROOT / "LICENSE").read_text()
  assert "Apache License" in licence and "Version 2.0, January 2004" in licence
  assert "END OF TERMS AND CONDITIONS" in licence  # The full text, not a notice.
  pyproject = (ROOT / "pyproject.toml").read_text()
  assert 'license = "Apache-2.0"' in pyproject and 'license-files = ["LICENSE"]' in pyproject
