"""The experiment scripts run end to end, in their --quick mode.

Each script runs in a subprocess, as a user would run it, with the repository
root on PYTHONPATH so that an uninstalled checkout works too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optax")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
  env["MPLBACKEND"] = "Agg"
  env.pop("JAX_ENABLE_X64", None)  # The scripts run in float32, as users run them.
  return subprocess.run(
      [sys.executable, str(EXPERIMENTS / script), *args],
      capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
  )


def _check_ok(proc: subprocess.CompletedProcess) -> None:
  assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"


@pytest.fixture(scope="module")
def common():
  spec = importlib.util.spec_from_file_location("_common", EXPERIMENTS / "_common.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_fit_crop_quick_reaches_the_target(tmp_path):
  proc = _run("fit_crop.py", "--quick", "--out", str(tmp_path), cwd=tmp_path)
  _check_ok(proc)
  report = json.loads((tmp_path / "fit_crop.json").read_text())
  assert set(report["methods"]) == {"gaussian", "affine"}
  for name, result in report["methods"].items():
    assert result["iou"] >= 0.9, (name, result["iou"])
    assert np.isfinite(result["final_loss"]) and result["steps"] > 0
    assert len(result["history"]["loss"]) == result["steps"] + 1
  assert report["start_iou"] < 0.5  # The start is a real displacement.
  assert (tmp_path / "fit_crop.png").stat().st_size > 0
  assert "IoU" in proc.stdout


def test_trainability_quick_covers_every_method_and_displacement(tmp_path):
  proc = _run("trainability.py", "--quick", "--out", str(tmp_path), cwd=tmp_path)
  _check_ok(proc)
  report = json.loads((tmp_path / "trainability.json").read_text())
  methods = {"gaussian", "gaussian_c2f", "affine", "reinforce"}
  assert set(report["methods"]) == methods == set(report["results"])
  displacements = report["displacements"]
  assert min(displacements) == 0.1 and max(displacements) == 2.0
  for m in methods:
    assert set(report["results"][m]) == {str(d) for d in displacements}
    for cell in report["results"][m].values():
      assert 0.0 <= cell["success_rate"] <= 1.0
      assert cell["trials"] >= 1
      assert cell["median_steps"] is None or 0 <= cell["median_steps"] <= report["steps"]
  assert (tmp_path / "trainability.png").stat().st_size > 0


def test_cluttered_digits_quick_writes_json_and_figure(tmp_path):
  pytest.importorskip("flax")
  pytest.importorskip("sklearn")
  proc = _run("cluttered_digits.py", "--quick", "--out", str(tmp_path), "--seed", "1",
              cwd=tmp_path)
  _check_ok(proc)
  report = json.loads((tmp_path / "cluttered_digits.json").read_text())
  assert (tmp_path / "cluttered_digits.png").stat().st_size > 10_000
  assert report["args"]["quick"] is True and report["args"]["seed"] == 1
  assert report["data"]["train_digits"] + report["data"]["test_digits"] == 1797
  models = report["models"]
  assert set(models) == {"canvas_cnn", "gaussian", "affine"}
  counts = [m["params"] for m in models.values()]
  assert max(counts) < 1.25 * min(counts)  # Comparable sizes.
  for name, m in models.items():
    assert 0.0 <= m["accuracy"] <= 1.0
    assert m["train_seconds"] > 0 and all(l == l for l in m["losses"])  # No NaN.
    assert m["curve"][-1]["step"] == m["steps"] == 30
    if name != "canvas_cnn":
      assert 0.0 <= m["mean_iou"] <= 1.0
  assert report["machine"]["jax"]


def test_figures_quick_writes_the_pngs(tmp_path):
  docs = tmp_path / "docs"
  proc = _run("figures.py", "--quick", "--out", str(tmp_path), "--docs", str(docs),
              cwd=tmp_path)
  _check_ok(proc)
  for name in ("mwe.png", "sweeps.png", "write.png", "attention_1d.png"):
    assert (tmp_path / name).stat().st_size > 0, name
    assert (docs / name).stat().st_size > 0, name
  for name in ("delta", "sigma", "shift"):
    assert (tmp_path / f"sweep_{name}.gif").stat().st_size > 0, name


@pytest.mark.parametrize("kind", ["missing", "not_an_image"])
def test_fit_crop_bad_image_is_a_one_line_error(tmp_path, kind):
  path = tmp_path / "photo.png"
  if kind == "not_an_image":
    path.write_text("these are notes, not pixels\n")
  proc = _run("fit_crop.py", "--quick", "--image", str(path), "--out", str(tmp_path),
              cwd=tmp_path)
  assert proc.returncode == 2, proc.stderr
  assert "Traceback" not in proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert "error" in lines[0] and "photo.png" in lines[0]
  assert not (tmp_path / "fit_crop.json").exists()


def test_resample_box_lands_on_the_box_sample_positions(common):
  # On a linear ramp, the resample of a box is the ramp at its sample
  # positions center + (j - (N - 1)/2) * size / N, to the kernel's sampling
  # error (a few hundredths of a pixel).
  ramp = np.stack(np.meshgrid(np.arange(60.0), np.arange(50.0), indexing="ij"), -1)
  center, size, shape = np.array([30.3, 24.6]), np.array([37.0, 21.0]), (8, 6)
  out = np.asarray(common.resample_box(ramp.astype(np.float32), center, size, shape))
  for a in range(2):
    j = np.arange(shape[a]) - (shape[a] - 1) / 2
    expected = center[a] + j * size[a] / shape[a]
    got = out[:, :, a].mean(axis=1 - a)
    np.testing.assert_allclose(got, expected, atol=0.05)


def test_box_iou(common):
  c, s = np.array([10.0, 10.0]), np.array([4.0, 4.0])
  assert common.box_iou(c, s, c, s) == pytest.approx(1.0)
  assert common.box_iou(c, s, c + 2.0 * np.array([1.0, 0.0]), s) == pytest.approx(8 / 24)
  assert common.box_iou(c, s, c + 10.0, s) == 0.0
  batch = common.box_iou(np.zeros((3, 2)), np.ones((3, 2)), np.zeros(2), np.ones(2))
  np.testing.assert_allclose(batch, 1.0)


def test_missing_extra_is_a_one_line_error_naming_it(tmp_path):
  # flax hidden, as after the README's `[examples]` install: the script says
  # which extras to install instead of raising ModuleNotFoundError.
  script = EXPERIMENTS / "cluttered_digits.py"
  code = (
      f"import runpy, sys; sys.modules['flax'] = None; sys.path.insert(0, {str(EXPERIMENTS)!r}); "
      f"sys.argv = [{str(script)!r}, '--help']; runpy.run_path(sys.argv[0], run_name='__main__')"
  )
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                        cwd=tmp_path, timeout=120)
  assert proc.returncode == 1, proc.stderr
  assert proc.stderr.strip().splitlines() == [
      "cluttered_digits.py: the package 'flax' is not installed; "
      'install the extras it needs with: pip install -e ".[examples,flax]"'
  ]


@pytest.fixture(scope="module")
def tables():
  spec = importlib.util.spec_from_file_location("tables", EXPERIMENTS / "tables.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_readme_tables_match_the_committed_results(tables, capsys):
  # experiments/README.md's tables are generated from experiments/results/*.json
  # by each script's readme_tables; a hand edit of either shows up here.
  assert tables.main(["--check"]) == 0, capsys.readouterr().err
  text = (EXPERIMENTS / "README.md").read_text()
  for name in ("fit_crop", "fit_crop_offsets", "trainability_zoom4", "trainability_zoom1"):
    block = text.split(f"<!-- table:{name} -->\n", 1)[1].split(f"<!-- /table:{name} -->", 1)[0]
    assert block.startswith("| ") and block.count("\n") >= 3, name


def test_tables_follow_the_json_and_reject_unknown_blocks(tables, tmp_path):
  text = "a\n<!-- table:t -->\n| old |\n<!-- /table:t -->\nb\n"
  assert tables.render(text, {"t": "| new |\n"}) == text.replace("old", "new")
  with pytest.raises(KeyError, match="'t'"):
    tables.render(text, {})
  # A changed result changes the README: one success rate of trainability.json.
  for path in tables.RESULTS_DIR.glob("*.json"):
    (tmp_path / path.name).write_text(path.read_text())
  result = json.loads((tmp_path / "trainability.json").read_text())
  cell = result["results"]["affine"]["0.1"]
  cell["success_rate"] = 0.5 if cell["success_rate"] != 0.5 else 0.4
  (tmp_path / "trainability.json").write_text(json.dumps(result))
  readme = (EXPERIMENTS / "README.md").read_text()
  assert tables.render(readme, tables.tables(tmp_path)) != readme


def test_fit_crop_rejects_a_supersample_below_one(tmp_path):
  proc = _run("fit_crop.py", "--quick", "--supersample", "0", "--out", str(tmp_path), cwd=tmp_path)
  assert proc.returncode == 2 and "--supersample must be a positive int" in proc.stderr
  assert not (tmp_path / "fit_crop.json").exists()
