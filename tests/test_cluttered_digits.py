"""Smoke test of experiments/cluttered_digits.py: the quick run and its JSON."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("flax")
pytest.importorskip("optax")
pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_writes_json_and_figure(tmp_path):
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
  env["JAX_PLATFORMS"] = "cpu"
  run = subprocess.run(
      [sys.executable, str(ROOT / "experiments" / "cluttered_digits.py"), "--quick",
       "--out", str(tmp_path), "--seed", "1"],
      env=env, capture_output=True, text=True, timeout=300,
  )
  assert run.returncode == 0, run.stderr[-4000:]
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
