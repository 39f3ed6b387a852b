"""Throughput of glimpses on a batch sharded over 1, 2 and 4 devices.

Each device count runs in its own subprocess on the host platform with
``XLA_FLAGS=--xla_force_host_platform_device_count=D`` (the flag must be set
before jax starts). The batch axis of the images and the parameters is split
over a 1-D mesh of D devices, the jitted glimpse runs with the output sharded
the same way, and the median time of a call gives the throughput. Rounds
alternate the device counts (1, 2, 4, 1, 2, 4, ...) and the table gives the
median over rounds, so that a change in the machine's load hits every count.

Caveat: forced host devices are threads of one process. On a machine with few
cores they share the same physical cores, so the numbers show the overhead of
sharding and whether it scales where there are cores to spare, not what D
accelerators would give. The case table, device count, CPU count and jax
version are recorded with every number.

Writes ``DIR/sharded.json`` and ``DIR/sharded.md`` (a markdown table).

Examples:
  python benchmarks/sharded.py
  python benchmarks/sharded.py --quick --out /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

DEVICE_COUNTS = (1, 2, 4)

# (name, batch, image (H, W, C), glimpse (h, w)); the quick run divides the batch by 16.
CASES = (
    ("gaussian_glimpse", 1024, (64, 64, 3), (16, 16)),
    ("gaussian_write", 1024, (64, 64, 3), (16, 16)),
    ("affine_glimpse", 1024, (64, 64, 3), (16, 16)),
    ("crop", 1024, (64, 64, 3), (16, 16)),
)

WORKER = r"""
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
import jaxglimpse as jg

cases, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
devices = len(jax.devices())
mesh = jax.make_mesh((devices,), ("batch",))
batch_sharding = NamedSharding(mesh, P("batch"))
rows = []
for name, b, (h, w, c), shape in cases:
  keys = jax.random.split(jax.random.key(0), 4)
  image = jax.random.uniform(keys[0], (b, h, w, c), jnp.float32)
  center = jax.random.uniform(keys[1], (b, 2), jnp.float32) * jnp.array([h, w], jnp.float32)
  size = jnp.full((b, 2), 24.0, jnp.float32)
  box = jg.Box(center, size)
  if name == "gaussian_glimpse":
    f, args = (lambda x, p: jg.gaussian_glimpse(x, p, tuple(shape))), (image, jg.box_to_gaussian(box, tuple(shape)))
  elif name == "gaussian_write":
    f = lambda g, p: jg.gaussian_write(g, p, (h, w))
    args = (image[:, : shape[0], : shape[1]], jg.box_to_gaussian(box, tuple(shape)))
  elif name == "affine_glimpse":
    f, args = (lambda x, t: jg.affine_glimpse(x, t, tuple(shape))), (image, jg.box_to_affine(box, tuple(shape), (h, w)))
  elif name == "crop":
    start = (center - size / 2).astype(jnp.int32)
    f, args = (lambda x, s: jg.crop(x, s, tuple(shape))), (image, start)
  args = jax.device_put(args, batch_sharding)
  f = jax.jit(f)
  out = f(*args)
  out.block_until_ready()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    f(*args).block_until_ready()
    times.append(time.perf_counter() - t)
  rows.append({
      "case": name, "devices": devices, "batch": b, "image": [h, w, c], "glimpse": shape,
      "median_ms": 1e3 * float(np.median(times)),
      "glimpses_per_s": b / float(np.median(times)),
      "output_spec": str(out.sharding.spec),
      "batch_sharded": bool(out.sharding.is_equivalent_to(batch_sharding, out.ndim)),
  })
json.dump({"rows": rows, "jax": jax.__version__, "device_kind": jax.devices()[0].device_kind}, sys.stdout)
"""


def parse_args(argv=None):
  p = argparse.ArgumentParser(
      prog="sharded.py", description="Glimpse throughput versus the number of (forced CPU) devices."
  )
  p.add_argument("--out", type=Path, default=Path("./out/"), help="output directory (default: ./out/)")
  p.add_argument("--quick", action="store_true", help="small batches and few repeats")
  p.add_argument("--repeats", type=int, help="timed calls per case (default: 30, quick 3)")
  p.add_argument(
      "--rounds", type=int,
      help="rounds over the device counts, 1, 2, 4, 1, 2, 4, ... (default: 3, quick 1)",
  )
  args = p.parse_args(argv)
  if args.repeats is None:
    args.repeats = 3 if args.quick else 30
  if args.rounds is None:
    args.rounds = 1 if args.quick else 3
  return args


def run_worker(devices: int, cases, repeats: int) -> dict:
  root = Path(__file__).resolve().parents[1]
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
  run = subprocess.run(
      [sys.executable, "-c", WORKER, json.dumps(cases), str(repeats)],
      env=env, capture_output=True, text=True, check=False,
  )
  if run.returncode:
    raise RuntimeError(f"the {devices}-device run failed:\n{run.stderr[-3000:]}")
  return json.loads(run.stdout)


def markdown(rows, meta) -> str:
  base = {r["case"]: r["glimpses_per_s"] for r in rows if r["devices"] == 1}
  lines = [
      f"Forced host (CPU) devices on {meta['cpu_count']} CPU cores, jax {meta['jax']}; "
      f"median over {meta['rounds']} round(s) of the median of {meta['repeats']} calls. "
      "All devices share those cores: this measures the cost of sharding, not the "
      "speed of D accelerators. Ratios above the core count come from smaller "
      "per-device working sets (and a busy machine), not from parallelism.",
      "",
      "| case | batch | devices | ms / batch | glimpses / s | vs 1 device |",
      "|---|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    lines.append(
        f"| {r['case']} | {r['batch']} | {r['devices']} | {r['median_ms']:.2f} | "
        f"{r['glimpses_per_s']:.0f} | {r['glimpses_per_s'] / base[r['case']]:.2f}× |"
    )
  return "\n".join(lines) + "\n"


def main(argv=None):
  args = parse_args(argv)
  cases = [
      (name, batch // 16 if args.quick else batch, image, glimpse)
      for name, batch, image, glimpse in CASES
  ]
  # Rounds alternate the device counts, so that a change in the machine's load
  # hits all of them alike; the table gives the median over the rounds.
  runs, meta = {}, {}
  for r in range(args.rounds):
    for devices in DEVICE_COUNTS:
      result = run_worker(devices, cases, args.repeats)
      for row in result["rows"]:
        runs.setdefault((row["case"], devices), []).append(row)
      meta = {"jax": result["jax"], "device_kind": result["device_kind"]}
      print(f"round {r + 1}/{args.rounds}, {devices} device(s): done", file=sys.stderr)
  rows = []
  for (name, _), found in runs.items():
    ms = [row["median_ms"] for row in found]
    rows.append({
        **found[0],
        "median_ms": statistics.median(ms),
        "glimpses_per_s": found[0]["batch"] / (statistics.median(ms) / 1e3),
        "round_ms": ms,
        "batch_sharded": all(row["batch_sharded"] for row in found),
    })
  rows.sort(key=lambda r: ([c[0] for c in cases].index(r["case"]), r["devices"]))
  meta.update(
      cpu_count=os.cpu_count(), platform=platform.platform(), python=sys.version.split()[0],
      quick=args.quick, repeats=args.repeats, rounds=args.rounds,
      command=" ".join(["python", "benchmarks/sharded.py"] + (argv or sys.argv[1:])),
  )
  args.out.mkdir(parents=True, exist_ok=True)
  paths = args.out / "sharded.json", args.out / "sharded.md"
  paths[0].write_text(json.dumps({"machine": meta, "rows": rows}, indent=2) + "\n")
  table = markdown(rows, meta)
  paths[1].write_text(table)
  print(table)
  print(f"wrote {paths[0]} and {paths[1]}")


if __name__ == "__main__":
  main()
