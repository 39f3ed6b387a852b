"""The public face: exactly these names, each documented with a doctest."""

import ast
import doctest
import inspect
import re
from pathlib import Path

import jaxglimpse as jg

ADAPTERS = {"GaussianGlimpse", "AffineGlimpse", "ProjectiveGlimpse", "TPSGlimpse"}

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
    "crop_and_resize",
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
    "homography_from_points",
    "projective_glimpse",
    "projective_grid",
    "projective_params",
    "projective_write",
    "retina",
    "roi_align",
    "rois_from_torchvision",
    "sample",
    "scale_shift_theta",
    "theta_from_torch",
    "theta_to_torch",
    "tps_controls",
    "tps_glimpse",
    "tps_grid",
    "tps_params",
    "tps_write",
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


# --- The layout: what CONTRIBUTING.md promises ---

PACKAGE = Path(jg.__file__).parent


def _package_imports(path: Path) -> tuple[set[str], list[str]]:
  """The package modules a file imports at module level (a `try` guard around
  an optional dependency counts), and any import inside a function or class."""
  tree = ast.parse(path.read_text())
  top, nested = set(), []

  def visit(node, inside):
    for child in ast.iter_child_nodes(node):
      if isinstance(child, (ast.Import, ast.ImportFrom)):
        if isinstance(child, ast.ImportFrom):
          names = [child.module or ""] + [f"{child.module}.{a.name}" for a in child.names]
        else:
          names = [a.name for a in child.names]
        if inside:
          nested.append(f"{child.lineno}: {names[0]}")
        top.update(
            n.split(".")[1] for n in names
            if n.startswith("jaxglimpse.") and (PACKAGE / f"{n.split('.')[1]}.py").exists()
        )
      visit(child, inside or isinstance(child, (ast.FunctionDef, ast.ClassDef, ast.Lambda)))

  visit(tree, False)
  return top, nested


def test_package_imports_form_a_stack_without_cycles_or_nested_imports():
  graph = {}
  for path in sorted(PACKAGE.glob("*.py")):
    top, nested = _package_imports(path)
    assert not nested, f"{path.name} imports inside a function: {nested}"
    graph[path.stem] = top - {path.stem}
  done, visiting = set(), []

  def visit(module):
    assert module not in visiting, f"import cycle: {' -> '.join(visiting + [module])}"
    if module in done:
      return
    visiting.append(module)
    for dep in graph.get(module, ()):
      visit(dep)
    visiting.pop()
    done.add(module)

  for module in graph:
    visit(module)
  # Package-private modules sit under the public ones, never above them.
  for module, deps in graph.items():
    if module.startswith("_") and module != "__init__":
      assert all(d.startswith("_") for d in deps), (module, deps)


def test_no_private_name_crosses_a_module():
  # A `_name` is private to its file; what modules share lives in a
  # `_module` whose names carry no underscore.
  for path in sorted(PACKAGE.glob("*.py")):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxglimpse"):
        private = [
            a.name for a in node.names
            if a.name.startswith("_") and not (PACKAGE / f"{a.name}.py").exists()
        ]
        assert not private, f"{path.name} imports {private} from {node.module}"


def test_every_module_says_what_belongs_in_it_and_stays_small():
  for path in sorted(PACKAGE.glob("*.py")):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc) > 80, f"{path.name} needs a docstring saying what belongs in it"
    assert len(path.read_text().splitlines()) <= 560, f"{path.name} is two concepts"


def test_docstring_examples_can_be_pasted():
  # Each example must run in a fresh interpreter: it imports jaxglimpse as
  # jg and calls jg.NAME, rather than leaning on the names of the module it
  # is written in (which the doctest run would supply). Checked on the
  # source, as the examples themselves already run as doctests.
  parser = doctest.DocTestParser()
  bare = re.compile(r"(?<![\w.])(" + "|".join(sorted(PUBLIC | ADAPTERS, key=len, reverse=True)) + r")\(")
  checked = 0
  for path in sorted(PACKAGE.glob("*.py")):
    for node in ast.walk(ast.parse(path.read_text())):
      if not isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)):
        continue
      doc = ast.get_docstring(node) or ""
      source = "\n".join(e.source for e in parser.get_examples(doc))
      if not source:
        continue
      checked += 1
      where = f"{path.name}:{getattr(node, 'name', 'module')}"
      assert not bare.search(source), f"{where} calls a bare name: {bare.search(source).group(0)}"
      if "jg." in source:
        assert "import jaxglimpse as jg" in source, f"{where} uses jg without importing it"
  assert checked >= 30
