"""Glimpses of batches sharded over a device mesh.

Dense and windowed Gaussian reads and writes, the affine glimpse and the crop
are checked, with their gradients. The check runs in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
(four CPU devices; the flag must be set before jax starts). With the batch axis
split over a 1-D mesh, every glimpse function must give the unsharded result,
keep the output split the same way, and compile with no collective at all: each
device reads only its own images.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Explicit sharding (AxisType.Explicit) is checked from the jax version on
# whose sharding rules cover every operation here; older jax has no rule for
# some (a select of a sharded and a replicated operand, a scatter) and raises
# ShardingTypeError. Auto sharding is checked on every version.
EXPLICIT_FROM = (0, 7, 1)
EXPLICIT = tuple(int(v) for v in re.findall(r"\d+", jax.__version__)[:3]) >= EXPLICIT_FROM

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    import jaxglimpse as jg

    COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute",
                   "reduce-scatter")
    B, K = 8, 3
    keys = jax.random.split(jax.random.key(0), 6)
    image = jax.random.uniform(keys[0], (B, 24, 20, 3), jnp.float32)
    params = jg.GaussianParams(
        mu=jax.random.uniform(keys[1], (B, 2), jnp.float32) * 20,
        sigma=jax.random.uniform(keys[2], (B, 2), jnp.float32) + 0.5,
        delta=jax.random.uniform(keys[3], (B, 2), jnp.float32) * 2 + 0.5,
    )
    params_k = jax.tree.map(lambda a: a[:, None] * jnp.linspace(0.8, 1.2, K)[:, None], params)
    theta = jg.scale_shift_theta(
        jnp.full((B, 2), 0.4, jnp.float32),
        jax.random.uniform(keys[4], (B, 2), jnp.float32) - 0.5,
    )
    start = jax.random.randint(keys[5], (B, 2), 0, 12)

    def sq(f):
      return lambda *a: jnp.sum(f(*a) ** 2)

    glimpse = lambda x, p: jg.gaussian_glimpse(x, p, (6, 5))
    affine = lambda x, t: jg.affine_glimpse(x, t, (6, 5))
    windowed = lambda x, p: jg.gaussian_glimpse(x, p, (6, 5), window=(12, 12))
    cases = {
        "gaussian_glimpse": (glimpse, (image, params)),
        "gaussian_glimpse K per image": (
            lambda x, p: jg.gaussian_glimpse(x[:, None], p, (6, 5)), (image, params_k)),
        "gaussian_write": (
            lambda g, p: jg.gaussian_write(g, p, (24, 20)), (image[:, :6, :5], params)),
        "gaussian_glimpse window": (windowed, (image, params)),
        "gaussian_write window": (
            lambda g, p: jg.gaussian_write(g, p, (24, 20), window=(12, 12)),
            (image[:, :6, :5], params)),
        "affine_glimpse": (affine, (image, theta)),
        "affine_glimpse K per image": (
            lambda x, t: jg.affine_glimpse(x[:, None], t[:, None], (6, 5)), (image, theta)),
        "crop": (lambda x, s: jg.crop(x, s, (6, 5)), (image, start)),
        "grad gaussian_glimpse": (jax.grad(sq(glimpse), argnums=(0, 1)), (image, params)),
        "grad gaussian_glimpse window": (jax.grad(sq(windowed), argnums=(0, 1)), (image, params)),
        "grad affine_glimpse": (jax.grad(sq(affine), argnums=(0, 1)), (image, theta)),
    }
    results = []
    axis_types = (AxisType.Auto, AxisType.Explicit) if sys.argv[1] == "explicit" else (AxisType.Auto,)
    for axis_type in axis_types:
      mesh = jax.make_mesh((4,), ("batch",), axis_types=(axis_type,))
      batch = NamedSharding(mesh, P("batch"))
      for name, (f, args) in cases.items():
        f = jax.jit(f)
        expected = f(*args)
        sharded_args = jax.device_put(args, batch)
        got = f(*sharded_args)
        hlo = f.lower(*sharded_args).compile().as_text()
        leaves, want = jax.tree.leaves(got), jax.tree.leaves(expected)
        results.append({
            "axis_type": str(axis_type),
            "case": name,
            "max_rel_error": max(
                float(np.max(np.abs(np.asarray(g) - np.asarray(w)))
                      / (1e-30 + np.max(np.abs(np.asarray(w)))))
                for g, w in zip(leaves, want)),
            "batch_sharded": all(g.sharding.is_equivalent_to(batch, g.ndim) for g in leaves),
            "specs": [str(g.sharding.spec) for g in leaves],
            "collectives": [c for c in COLLECTIVES if c in hlo],
        })
    json.dump({"devices": len(jax.devices()), "results": results}, sys.stdout)
    """
)


@pytest.fixture(scope="module")
def report():
  env = dict(os.environ)
  env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
  run = subprocess.run(
      [sys.executable, "-c", SCRIPT, "explicit" if EXPLICIT else "auto"], env=env, cwd=ROOT,
      capture_output=True, text=True,
      timeout=600,
  )
  assert run.returncode == 0, run.stderr[-4000:]
  return json.loads(run.stdout)


def _cases(report):
  assert report["devices"] == 4
  assert len(report["results"]) == (2 if EXPLICIT else 1) * 11
  return report["results"]


def test_sharded_equals_unsharded(report):
  for r in _cases(report):
    assert r["max_rel_error"] < 1e-5, r


def test_output_keeps_batch_sharding(report):
  for r in _cases(report):
    assert r["batch_sharded"], r


def test_no_collectives_in_compiled_hlo(report):
  """No all-gather of images, and no other communication either."""
  for r in _cases(report):
    assert r["collectives"] == [], r


@pytest.mark.scripts
def test_benchmark_quick(tmp_path):
  """benchmarks/sharded.py --quick runs every device count and writes its table."""
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
  run = subprocess.run(
      [sys.executable, str(ROOT / "benchmarks" / "sharded.py"), "--quick", "--out", str(tmp_path)],
      env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
  )
  assert run.returncode == 0, run.stderr[-4000:]
  report = json.loads((tmp_path / "sharded.json").read_text())
  rows = report["rows"]
  assert {(r["case"], r["devices"]) for r in rows} == {
      (case, d)
      for case in ("gaussian_glimpse", "gaussian_write", "affine_glimpse", "crop")
      for d in (1, 2, 4)
  }
  assert all(r["batch_sharded"] and r["median_ms"] > 0 for r in rows)
  assert report["machine"]["jax"] and report["machine"]["cpu_count"]
  assert "| crop | 64 | 4 |" in (tmp_path / "sharded.md").read_text()
  assert f"wrote {tmp_path / 'sharded.json'}" in run.stdout
