"""Times every glimpse path of jaxglimpse and its peers on one case table.

For each case of `_cases.CASES` (MNIST-sized digits, photos, large images
with a zoomed-in glimpse, 1-D signals, 3-D volumes, 16 glimpses per image and
bfloat16 photos) and each method of `_methods.METHODS` (the dense and the
windowed Gaussian glimpse, the affine glimpse and the crop, and
``jax.image.scale_and_translate``, ``jax.scipy.ndimage.map_coordinates`` and
PyTorch's ``grid_sample`` when torch is installed), it measures separately:

* the forward pass,
* the gradient with respect to the glimpse parameters,
* the gradient with respect to the image,
* the time to trace and compile each of them (JAX only).

Calls are compiled ahead of time and warmed up, every result is waited for
(``jax.block_until_ready``), and the methods of a case are timed in
interleaved rounds, so that a change in the machine's load hits all of them
alike; the tables give the median over the rounds. An image-size sweep (batch
8, 32×32 glimpses of 64×64-pixel boxes, images from 64² to 1024²) gives the
plot. The issue's targets are computed from the same run.

Writes, in ``--out`` (default ``./out/benchmarks``):

* ``results.json``: the device, jax, jaxlib and torch versions, CPU count, the
  command, and per case and method the medians and quartiles in ms and the
  compile times in s;
* ``results.md``: the same as markdown tables, with the targets;
* ``time_vs_size.png``: log-log time against image size, a line per method
  (needs matplotlib).

It runs unchanged on GPU and TPU (PyTorch then runs on CUDA when it can).

Examples:
  python benchmarks/run.py
  python benchmarks/run.py --quick --out /tmp/bench
  python benchmarks/run.py --cases photo,zoom_in --methods gaussian_dense,gaussian_window
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # For _cases, _methods and _report ...
sys.path.insert(1, str(HERE.parent))  # ... and for jaxglimpse in a source checkout.

import jax  # noqa: E402
import numpy as np  # noqa: E402

import _box_methods  # noqa: E402
import _cases  # noqa: E402
import _methods  # noqa: E402
import _report  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
      "--out", type=Path, default=Path("./out/benchmarks"),
      help="directory for the outputs (default: ./out/benchmarks)",
  )
  parser.add_argument(
      "--quick", action="store_true",
      help="every case and method on small shapes, 3 rounds: a smoke test, not a timing",
  )
  parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
  parser.add_argument(
      "--methods", default="", help="comma-separated method names (default: all)"
  )
  parser.add_argument(
      "--min-time", type=float, default=None,
      help="seconds of timed rounds per case, at least (default: 10; quick: 0)",
  )
  parser.add_argument("--no-sweep", action="store_true", help="skip the image-size sweep")
  parser.add_argument(
      "--torch-threads", type=int, default=None,
      help="PyTorch's intra-op threads (default: PyTorch's own default). On a small "
      "shared machine, 1 avoids its threads waiting on each other when another "
      "process takes a core",
  )
  parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
  return parser.parse_args(argv)


def _select(items, names: str, what: str):
  if not names:
    return tuple(items)
  wanted = names.split(",")
  known = {getattr(i, "name", i) for i in items}
  unknown = [w for w in wanted if w not in known]
  if unknown:
    raise SystemExit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
  return tuple(i for i in items if getattr(i, "name", i) in wanted)


def _block(out):
  """Waits for a JAX result; PyTorch's callables wait themselves."""
  if isinstance(out, jax.Array) or isinstance(out, (tuple, list, dict)):
    jax.block_until_ready(out)
  return out


def time_case(case, methods, kinds, *, seed, min_rounds, max_rounds, min_time, log,
              builders=_methods.BUILDERS):
  """Builds the case's methods and times them in interleaved rounds.

  JAX and PyTorch methods are timed in separate rounds: each framework's
  thread pool spins for a while after a call, and alternating them would
  make each pay for the other's spinning.
  """
  data = case.data(seed)
  results, groups = {}, {}
  for name in methods:
    try:
      method = builders[name](case, data, kinds)
    except _methods.Skip as e:
      results[name] = {"skipped": str(e)}
      continue
    results[name] = {"compile_s": method.compile_s, "notes": method.notes}
    group = groups.setdefault(name.startswith("torch"), [])
    for kind, call in method.calls.items():
      group.append((name, kind, call))
  times = {}
  for calls in groups.values():
    for _, _, call in calls:
      for _ in range(2):  # Warm-up: first-touch allocations, caches.
        _block(call())
    start, rounds = time.perf_counter(), 0
    while rounds < min_rounds or (
        rounds < max_rounds and time.perf_counter() - start < min_time
    ):
      for name, kind, call in calls:
        t = time.perf_counter()
        _block(call())
        times.setdefault((name, kind), []).append(time.perf_counter() - t)
      rounds += 1
    for name, _, _ in calls:
      results[name]["rounds"] = rounds
  for (name, kind), ts in times.items():
    q1, med, q3 = np.percentile(np.asarray(ts) * 1e3, [25, 50, 75])
    results[name][f"{kind}_ms"] = float(med)
    results[name][f"{kind}_ms_quartiles"] = [float(q1), float(q3)]
    results[name][f"{kind}_ms_min"] = float(np.min(ts) * 1e3)
  for name, r in results.items():
    if "skipped" in r:
      log(f"  {name:20s} skipped: {r['skipped']}")
    else:
      cells = [f"{k} {r[k + '_ms']:8.3f} ms" for k in kinds if k + "_ms" in r]
      log(f"  {name:20s} " + "  ".join(cells))
  return {"spec": _report.spec(case), "methods": results}


def time_box_case(case, methods, **options):
  """`time_case` for a `_cases.BoxCase`: ``grad_params`` is the gradient
  with respect to the boxes. Methods that do not apply to it are left out."""
  methods = [m for m in methods if (m.startswith(("retina", "gaussian_x3", "affine_x3"))) == bool(case.scales)]
  return time_case(case, methods, _methods.KINDS, builders=_box_methods.BOX_BUILDERS, **options)


def machine() -> dict:
  info = {
      "platform": platform.platform(),
      "python": platform.python_version(),
      "jax": jax.__version__,
      "jaxlib": _version("jaxlib"),
      "backend": jax.default_backend(),
      "devices": [f"{d.platform}: {d.device_kind}" for d in jax.devices()],
      "cpu_count": os.cpu_count(),
      "cpu": _cpu_model(),
      "numpy": np.__version__,
  }
  try:
    import torch

    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
  except ImportError:
    info["torch"] = None
  return info


def _version(package: str):
  try:
    from importlib.metadata import version

    return version(package)
  except Exception:  # noqa: BLE001 - only informative.
    return None


def _cpu_model() -> str:
  try:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def main(argv=None) -> dict:
  args = parse_args(argv)
  if args.torch_threads is not None:
    try:
      import torch

      torch.set_num_threads(args.torch_threads)
    except ImportError:
      pass
  table = _cases.QUICK_CASES if args.quick else _cases.CASES
  box_table = _cases.QUICK_BOX_CASES if args.quick else _cases.BOX_CASES
  chosen = _select(table + box_table, args.cases, "case")
  cases = [c for c in chosen if c in table]
  box_cases = [c for c in chosen if c in box_table]
  chosen = _select(_methods.METHODS + _box_methods.BOX_METHODS, args.methods, "method")
  methods = [m for m in chosen if m in _methods.METHODS]
  box_methods = [m for m in chosen if m in _box_methods.BOX_METHODS]
  min_time = args.min_time if args.min_time is not None else (0.0 if args.quick else 10.0)
  rounds = dict(min_rounds=3, max_rounds=3) if args.quick else dict(min_rounds=10, max_rounds=100)
  log = lambda line: print(line, flush=True)
  command = "python benchmarks/run.py" + ("".join(f" {a}" for a in (argv or sys.argv[1:])))
  result = {
      "command": command,
      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "quick": args.quick,
      "machine": machine(),
      "cases": {},
      "boxes": {},
      "sweep": {},
  }
  log(f"{command}\n{result['machine']['cpu']}, {result['machine']['cpu_count']} CPUs, "
      f"jax {jax.__version__} on {result['machine']['devices'][0]}")
  if args.quick:
    log("quick: a smoke run on toy shapes, not a benchmark")
  start = time.perf_counter()
  for case in cases:
    log(f"{case.name}: {case.describe()}")
    result["cases"][case.name] = time_case(
        case, methods, _methods.KINDS, seed=args.seed, min_time=min_time, log=log, **rounds
    )
  for case in box_cases if box_methods else ():
    log(f"{case.name}: {case.describe()}")
    result["boxes"][case.name] = time_box_case(
        case, box_methods, seed=args.seed, min_time=min_time, log=log, **rounds
    )
  if not args.no_sweep and methods:
    sweep_methods = [m for m in methods if m != "crop" and m in _methods.SWEPT]
    for case in _cases.QUICK_SWEEP if args.quick else _cases.SWEEP:
      log(f"{case.name}: {case.describe()}")
      result["sweep"][case.name] = time_case(
          case, sweep_methods, ("fwd",) if args.quick else ("fwd", "grad_params"), seed=args.seed,
          min_time=min_time / 4, log=log, **rounds,
      )
  result["seconds"] = time.perf_counter() - start
  result["targets"] = _report.targets(result)
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
  (args.out / "results.md").write_text(_report.markdown(result))
  plotted = _report.plot(result, args.out / "time_vs_size.png")
  if args.quick:
    log(_report.SMOKE_NOTE)
  log(_report.targets_markdown(result["targets"], verdict=not args.quick))
  log(f"wrote {args.out / 'results.json'}, {args.out / 'results.md'}"
      + (f", {plotted}" if plotted else " (no plot: matplotlib is not installed)")
      + f" in {result['seconds']:.0f} s")
  return result


if __name__ == "__main__":
  main()
