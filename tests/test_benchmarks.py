"""The benchmark suite runs end to end; its targets are computed as documented.

No timing is asserted here: the numbers belong in benchmarks/README.md, with
the command and the machine that produced them.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

# Each test runs benchmarks/run.py --quick end to end: CI runs them with the
# other script runs (`pytest -m scripts`), apart from the suite.
pytestmark = pytest.mark.scripts

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def _import(name):
  sys.path.insert(0, str(BENCHMARKS))
  try:
    return __import__(name)
  finally:
    sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
  out = tmp_path_factory.mktemp("bench")
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
  proc = subprocess.run(
      [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--out", str(out)],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
  )
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
  return out, json.loads((out / "results.json").read_text()), proc.stdout


def test_quick_run_times_every_case_and_method(quick_run):
  _, result, _ = quick_run
  cases, methods = _import("_cases"), _import("_methods")
  assert result["quick"] is True
  assert set(result["cases"]) == {c.name for c in cases.QUICK_CASES}
  no_torch = importlib.util.find_spec("torch") is None
  for name, case in result["cases"].items():
    assert set(case["methods"]) == set(methods.METHODS), name
    spec = case["spec"]
    n, zoom_out = len(spec["image"]), spec["box"] > min(spec["glimpse"])
    # Only a peer that is not installed, or a method that does not apply, may be missing.
    expected_skips = {
        "torch_grid_sample": no_torch,
        "torch_grid_sample_bicubic": no_torch or n != 2,
        "affine_supersample": not zoom_out,
        "tps_grid_16": round(16 ** (1 / n)) ** n != 16,
        "tps_grid_64": round(64 ** (1 / n)) ** n != 64,
    }
    for method, r in case["methods"].items():
      assert ("skipped" in r) == expected_skips.get(method, False), (name, method)
      if "skipped" in r:
        continue
      kinds = {"crop": ("fwd", "grad_image"), "tps_grid_16": ("fwd", "grad_params"),
               "tps_grid_64": ("fwd", "grad_params")}.get(method, methods.KINDS)
      for kind in kinds:
        assert r[f"{kind}_ms"] > 0, (name, method, kind)
        q1, q3 = r[f"{kind}_ms_quartiles"]
        assert 0 < q1 <= r[f"{kind}_ms"] <= q3
      if not method.startswith("torch"):
        assert set(r["compile_s"]) == set(kinds), (name, method)
  assert set(result["sweep"]) == {c.name for c in cases.QUICK_SWEEP}


def test_quick_run_times_every_box_case_and_method(quick_run):
  out, result, _ = quick_run
  cases, box_methods = _import("_cases"), _import("_box_methods")
  assert set(result["boxes"]) == {c.name for c in cases.QUICK_BOX_CASES}
  for name, case in result["boxes"].items():
    retina = bool(case["spec"]["scales"])
    expected = {m for m in box_methods.BOX_METHODS if m.startswith(("retina", "gaussian_x3", "affine_x3")) == retina}
    assert set(case["methods"]) == expected, name
    for method, r in case["methods"].items():
      for kind in ("fwd", "grad_params", "grad_image"):
        assert r[f"{kind}_ms"] > 0, (name, method, kind)
  # Every box target is computed from this run and shown in the report.
  rows = {t["target"]: t for t in result["targets"]}
  for target in ("roi_map_coordinates / roi_align fwd", "roi_align / roi_affine grad boxes",
                 "crop_map_coordinates / crop_and_resize grad image",
                 "retina_gaussian / gaussian_x3 fwd", "retina_affine / affine_x3 grad boxes"):
    assert rows[target]["worst"] is not None, target
  report = (out / "results.md").read_text()
  assert "## detector: N=2" in report and "grad boxes ms" in report


def test_box_peers_compute_the_same_glimpses():
  # The peers time the same reads: equal to ours where their semantics agree.
  import jax.numpy as jnp
  import numpy as np

  cases, box_methods = _import("_cases"), _import("_box_methods")
  case = cases.QUICK_BOX_CASES[0]
  data = case.data(0)
  outs = {}
  for name in ("roi_align", "roi_map_coordinates", "roi_affine", "crop_and_resize",
               "crop_map_coordinates", "crop_affine"):
    outs[name] = np.asarray(box_methods.BOX_BUILDERS[name](case, data, ("fwd",)).calls["fwd"]())
  np.testing.assert_allclose(outs["roi_map_coordinates"], outs["roi_align"], atol=1e-5)
  np.testing.assert_allclose(outs["roi_affine"], outs["roi_align"], atol=1e-5)
  np.testing.assert_allclose(outs["crop_map_coordinates"], outs["crop_and_resize"], atol=1e-5)
  # TF extrapolates a sample outside [0, S - 1] where the affine read blends
  # with its zero padding: they agree on the boxes between pixel centres.
  boxes, top = data[1], np.asarray(case.image) - 1
  inside = np.all(boxes[:, :2] >= 0, 1) & np.all(boxes[:, 2:] <= top, 1)
  assert inside.any()
  np.testing.assert_allclose(outs["crop_affine"][inside], outs["crop_and_resize"][inside], atol=1e-5)
  retina = cases.QUICK_BOX_CASES[1]
  data = retina.data(0)
  for ours, peer in (("retina_gaussian", "gaussian_x3"), ("retina_affine", "affine_x3")):
    a = box_methods.BOX_BUILDERS[ours](retina, data, ("fwd",)).calls["fwd"]()
    b = box_methods.BOX_BUILDERS[peer](retina, data, ("fwd",)).calls["fwd"]()
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    assert jnp.asarray(a).shape == (retina.boxes, retina.scales, *retina.shape, retina.channels)


def test_quick_run_records_the_machine_and_writes_its_outputs(quick_run):
  out, result, stdout = quick_run
  machine = result["machine"]
  assert machine["jax"] and machine["cpu_count"] >= 1 and machine["devices"]
  assert result["command"].startswith("python benchmarks/run.py --quick")
  text = (out / "results.md").read_text()
  assert "## Targets" in text and result["command"] in text
  for name in result["cases"]:
    assert f"## {name}:" in text
  assert {t["target"] for t in result["targets"]} == {t[0] for t in _import("_report").TARGETS}
  if importlib.util.find_spec("matplotlib") is not None:
    assert (out / "time_vs_size.png").stat().st_size > 1000
  assert "wrote" in stdout


def test_windowed_cases_use_a_window_smaller_than_the_image():
  # The full table's zoom-in case is where the window pays off.
  cases = _import("_cases")
  import jaxglimpse as jg

  case = next(c for c in cases.CASES if c.name == "zoom_in")
  delta = case.box / case.glimpse[0]
  window = jg.gaussian_window(case.glimpse, delta, max(delta / 2, 0.5), image_shape=case.image)
  assert window == (70, 70) and delta == 1.0


def test_targets_flag_the_worst_case():
  report = _import("_report")

  def case(**times):
    return {"methods": {m: {f"{k}_ms": v for k, v in kinds.items()} for m, kinds in times.items()}}

  result = {
      "cases": {
          "a": case(gaussian_dense={"fwd": 1.0, "grad_params": 2.0},
                    scale_and_translate={"fwd": 2.0, "grad_params": 8.0}),
          "b": case(gaussian_dense={"fwd": 3.0, "grad_params": 9.5},
                    scale_and_translate={"fwd": 2.0, "grad_params": 10.0}),
      }
  }
  targets = {t["target"]: t for t in report.targets(result)}
  fwd = targets["dense fwd / scale_and_translate fwd"]
  assert fwd["worst"] == 1.5 and fwd["worst_case"] == "b" and fwd["met"] is False
  assert fwd["failing"] == ["b"] and fwd["values"] == {"a": 0.5, "b": 1.5}
  ratio = targets["gaussian_dense grad / fwd"]
  assert ratio["worst"] == pytest.approx(3.1667, abs=1e-4) and ratio["met"] is False
  assert targets["affine / torch grid_sample fwd"]["met"] is None  # Not measured.
  assert "| dense fwd / scale_and_translate fwd | ≤ 1 | 1.50 (b) | **no** (b) |" in (
      report.targets_markdown(report.targets(result))
  )


def test_quick_run_is_labelled_a_smoke_run_without_verdicts(quick_run):
  out, result, stdout = quick_run
  assert "smoke" in stdout and "smoke" in (out / "results.md").read_text()
  assert "**no**" not in stdout and "| met |" not in stdout
  assert "**no**" not in (out / "results.md").read_text()
  rows = [{"target": "t", "op": "<=", "threshold": 1.0, "worst": 2.0, "worst_case": "c",
           "met": False, "failing": ["c"], "values": {"c": 2.0}, "worst_min": 1.5}]
  report = _import("_report")
  assert "**no** (c)" in report.targets_markdown(rows)
  quick = report.targets_markdown(rows, verdict=False)
  assert "**no**" not in quick and quick.splitlines()[0].count("|") == 6
