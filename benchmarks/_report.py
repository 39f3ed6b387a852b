"""Tables, targets and the plot of a benchmark run (see run.py)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from _box_methods import BOX_METHODS
from _methods import KINDS, METHODS

REFERENCE_CASES = ("mnist", "photo", "zoom_in")

# (name, numerator (method, kind), denominator (method, kind), "<=" or ">=",
# threshold, cases: None for every case where both were measured).
TARGETS = [
    ("dense fwd / scale_and_translate fwd", ("gaussian_dense", "fwd"),
     ("scale_and_translate", "fwd"), "<=", 1.0, None),
    ("dense grad / scale_and_translate grad", ("gaussian_dense", "grad_params"),
     ("scale_and_translate", "grad_params"), "<=", 0.5, None),
    ("dense / windowed fwd, zoom-in 1024²", ("gaussian_dense", "fwd"),
     ("gaussian_window", "fwd"), ">=", 20.0, ("zoom_in",)),
    ("dense / windowed grad, zoom-in 1024²", ("gaussian_dense", "grad_params"),
     ("gaussian_window", "grad_params"), ">=", 20.0, ("zoom_in",)),
    ("windowed / affine fwd", ("gaussian_window", "fwd"), ("affine", "fwd"), "<=", 3.0, None),
    ("windowed / affine grad", ("gaussian_window", "grad_params"),
     ("affine", "grad_params"), "<=", 3.0, None),
    ("windowed with taps / affine fwd", ("gaussian_taps", "fwd"), ("affine", "fwd"), "<=", 3.0,
     None),
    ("windowed with taps / affine grad", ("gaussian_taps", "grad_params"),
     ("affine", "grad_params"), "<=", 3.0, None),
    ("affine / torch grid_sample fwd", ("affine", "fwd"), ("torch_grid_sample", "fwd"),
     "<=", 1.0, None),
    ("affine / torch grid_sample grad", ("affine", "grad_params"),
     ("torch_grid_sample", "grad_params"), "<=", 1.0, None),
    ("bicubic affine / torch bicubic grid_sample fwd", ("affine_bicubic", "fwd"),
     ("torch_grid_sample_bicubic", "fwd"), "<=", 1.0, None),
    ("bicubic affine / torch bicubic grid_sample grad", ("affine_bicubic", "grad_params"),
     ("torch_grid_sample_bicubic", "grad_params"), "<=", 1.0, None),
    ("supersampled affine / scale_and_translate fwd", ("affine_supersample", "fwd"),
     ("scale_and_translate", "fwd"), "<=", 1.0, None),
    ("supersampled affine / scale_and_translate grad", ("affine_supersample", "grad_params"),
     ("scale_and_translate", "grad_params"), "<=", 1.0, None),
    ("projective / affine fwd", ("projective", "fwd"), ("affine", "fwd"), "<=", 1.3, None),
    ("projective / affine grad", ("projective", "grad_params"), ("affine", "grad_params"),
     "<=", 1.3, None),
    ("tps grid K=16 / sample fwd", ("tps_grid_16", "fwd"), ("sample", "fwd"), "<=", 1.0, None),
    ("tps grid K=16 / sample grad", ("tps_grid_16", "grad_params"), ("sample", "grad_params"),
     "<=", 1.0, None),
    ("tps grid K=64 / sample fwd", ("tps_grid_64", "fwd"), ("sample", "fwd"), "<=", 1.0, None),
    ("tps grid K=64 / sample grad", ("tps_grid_64", "grad_params"), ("sample", "grad_params"),
     "<=", 1.0, None),
] + [
    (f"{m} grad / fwd", (m, "grad_params"), (m, "fwd"), "<=", 3.0, None)
    for m in ("gaussian_dense", "gaussian_window", "gaussian_taps", "affine")
] + [
    # The box glimpses (result["boxes"]); "grad boxes" is the kind grad_params.
    (f"{peer} / {ours} {label}", (peer, kind), (ours, kind), ">=", 3.0, None)
    for ours, peer in (("roi_align", "roi_map_coordinates"), ("crop_and_resize", "crop_map_coordinates"))
    for kind, label in (("fwd", "fwd"), ("grad_params", "grad boxes"), ("grad_image", "grad image"))
] + [
    (f"{ours} / {peer} {label}", (ours, kind), (peer, kind), "<=", 1.2, None)
    for ours, peer in (("roi_align", "roi_affine"), ("crop_and_resize", "crop_affine"))
    for kind, label in (("fwd", "fwd"), ("grad_params", "grad boxes"))
] + [
    (f"{ours} / {peer} {label}", (ours, kind), (peer, kind), "<=", 1.0, None)
    for ours, peer in (("retina_gaussian", "gaussian_x3"), ("retina_affine", "affine_x3"))
    for kind, label in (("fwd", "fwd"), ("grad_params", "grad boxes"))
]
# The image gradient is not a target: a glimpse that reads a small part of the
# image (window, affine, crop) still writes an image-sized cotangent, so its
# ratio to the forward pass grows with the image. The tables show it.


def spec(case) -> dict:
  if not hasattr(case, "glimpse"):  # A box case: its fields as they are.
    return {"describe": case.describe(), **dataclasses.asdict(case)}
  return {
      "about": case.about,
      "describe": case.describe(),
      "batch": case.batch,
      "per_image": case.per_image,
      "image": list(case.image),
      "channels": case.channels,
      "glimpse": list(case.glimpse),
      "box": case.box,
      "dtype": case.dtype,
  }


def _time(case_result, method, kind, stat=""):
  r = case_result["methods"].get(method, {})
  return r.get(f"{kind}_ms{stat}")


def targets(result) -> list[dict]:
  """Each target's ratio at every case where both sides were measured."""
  out = []
  for name, (m1, k1), (m2, k2), op, threshold, only in TARGETS:
    values, values_min = {}, {}
    for case, r in {**result["cases"], **result.get("boxes", {})}.items():
      if only is not None and case not in only:
        continue
      a, b = _time(r, m1, k1), _time(r, m2, k2)
      if a is not None and b is not None and b > 0:
        values[case] = a / b
      a, b = _time(r, m1, k1, "_min"), _time(r, m2, k2, "_min")
      if a is not None and b is not None and b > 0:
        values_min[case] = a / b
    if not values:
      out.append({"target": name, "op": op, "threshold": threshold, "values": {},
                  "worst": None, "worst_case": None, "met": None})
      continue
    pick = max if op == "<=" else min
    worst_case = pick(values, key=values.get)
    worst = values[worst_case]
    met = worst <= threshold if op == "<=" else worst >= threshold
    worst_min = pick(values_min.values()) if values_min else None
    out.append({"target": name, "op": op, "threshold": threshold, "values": values,
                "worst": worst, "worst_case": worst_case, "met": met,
                "values_min": values_min, "worst_min": worst_min,
                "failing": sorted(c for c, v in values.items()
                                  if not (v <= threshold if op == "<=" else v >= threshold))})
  return out


def _fmt(x, digits=3):
  if x is None:
    return "–"
  if x >= 100:
    return f"{x:.0f}"
  if x >= 10:
    return f"{x:.1f}"
  return f"{x:.{digits - 1}f}" if x >= 1 else f"{x:.{digits}f}"


SMOKE_NOTE = (
    "Quick run: a smoke test on toy shapes, which checks that every path runs. "
    "Its times say nothing about the targets, so no verdict is given; run "
    "`python benchmarks/run.py` for one."
)


def targets_markdown(rows, *, verdict: bool = True) -> str:
  """The targets table; ``verdict=False`` (quick runs) leaves out whether each is met."""
  met_header, met_rule = ("| met ", "|---") if verdict else ("", "")
  lines = [
      f"| target | goal | worst measured (case) {met_header}| every case | worst, from minima |",
      f"|---|---|---{met_rule}|---|---|",
  ]
  for t in rows:
    op = "≤" if t["op"] == "<=" else "≥"
    if t["worst"] is None:
      empty = "| – | | |" if verdict else "| | |"
      lines.append(f"| {t['target']} | {op} {t['threshold']:g} | not measured {empty}")
      continue
    every = ", ".join(f"{c} {v:.2f}" for c, v in t["values"].items())
    met = "yes" if t["met"] else f"**no** ({', '.join(t['failing'])})"
    met_cell = f"| {met} " if verdict else ""
    worst_min = "–" if t.get("worst_min") is None else f"{t['worst_min']:.2f}"
    lines.append(
        f"| {t['target']} | {op} {t['threshold']:g} | {t['worst']:.2f} ({t['worst_case']}) "
        f"{met_cell}| {every} | {worst_min} |"
    )
  return "\n".join(lines) + "\n"


def _case_table(case_result, methods=METHODS, params="params") -> str:
  lines = [
      f"| method | fwd ms | grad {params} ms | grad image ms | grad/fwd | image grad/fwd "
      "| compile fwd / grad s | notes |",
      "|---|---|---|---|---|---|---|---|",
  ]
  for name in methods:
    r = case_result["methods"].get(name)
    if r is None:
      continue
    if "skipped" in r:
      lines.append(f"| {name} | – | – | – | – | – | – | skipped: {r['skipped']} |")
      continue
    t = {k: r.get(f"{k}_ms") for k in KINDS}
    ratio = lambda a: _fmt(a / t["fwd"], 2) if a is not None and t["fwd"] else "–"
    comp = r.get("compile_s", {})
    compile_cell = " / ".join(
        f"{comp[k]:.2f}" if k in comp else "–" for k in ("fwd", "grad_params")
    ) if comp else "–"
    notes = "; ".join(f"{k}: {v}" for k, v in r.get("notes", {}).items())
    lines.append(
        f"| {name} | {_fmt(t['fwd'])} | {_fmt(t['grad_params'])} | {_fmt(t['grad_image'])} "
        f"| {ratio(t['grad_params'])} | {ratio(t['grad_image'])} | {compile_cell} | {notes} |"
    )
  return "\n".join(lines) + "\n"


def markdown(result) -> str:
  m = result["machine"]
  parts = [
      "# jaxglimpse benchmarks\n",
      f"Command: `{result['command']}`  \n"
      f"Machine: {m['cpu']}, {m['cpu_count']} CPUs; jax {m['jax']} (jaxlib {m['jaxlib']}) "
      f"on {', '.join(sorted(set(m['devices'])))}; torch {m.get('torch')}; "
      f"{result['date']}; {result['seconds']:.0f} s.\n",
      "Median milliseconds over interleaved rounds (results.json also has quartiles "
      "and minima); gradients are of `sum(glimpse * cotangent)` and include the "
      "forward pass.\n",
  ]
  for name, r in result["cases"].items():
    rounds = sorted({m["rounds"] for m in r["methods"].values() if "rounds" in m})
    parts.append(f"## {name}: {r['spec']['describe']}\n\n{'/'.join(map(str, rounds))} rounds.\n")
    parts.append(_case_table(r))
  for name, r in result.get("boxes", {}).items():
    rounds = sorted({m["rounds"] for m in r["methods"].values() if "rounds" in m})
    parts.append(f"## {name}: {r['spec']['describe']}\n\n{'/'.join(map(str, rounds))} rounds.\n")
    parts.append(_case_table(r, BOX_METHODS, "boxes"))
  quick = result.get("quick", False)
  parts.append("## Targets\n\nEach ratio is measured in this run.\n")
  if quick:
    parts.append(SMOKE_NOTE + "\n")
  parts.append(targets_markdown(result["targets"], verdict=not quick))
  if result["sweep"]:
    first = next(iter(result["sweep"].values()))["spec"]
    parts.append(
        "## Image-size sweep\n\n"
        f"B={first['batch']}, {first['channels']} channels, "
        f"{'×'.join(map(str, first['glimpse']))} glimpses of {first['box']:g}-pixel boxes; "
        "fwd / grad params ms.\n"
    )
    sizes = list(result["sweep"])
    lines = ["| method | " + " | ".join(s.replace("sweep_", "") + "²" for s in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for name in METHODS:
      cells = []
      for s in sizes:
        r = result["sweep"][s]["methods"].get(name)
        if r is None or "skipped" in r:
          cells.append("–")
        else:
          cells.append(f"{_fmt(r.get('fwd_ms'))} / {_fmt(r.get('grad_params_ms'))}")
      if any(c != "–" for c in cells):
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    parts.append("\n".join(lines) + "\n")
  return "\n".join(parts)


def plot(result, path: Path):
  """Log-log time against image pixels from the sweep; returns the path or None."""
  try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
  except ImportError:
    return None
  sweep = result["sweep"]
  if not sweep:
    return None
  panels = [
      (kind, title)
      for kind, title in (("fwd", "forward"), ("grad_params", "gradient wrt parameters"))
      if any(f"{kind}_ms" in m for r in sweep.values() for m in r["methods"].values())
  ]
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), sharey=True, squeeze=False)
  axes = axes[0]
  for ax, (kind, title) in zip(axes, panels):
    for name in METHODS:
      xs, ys = [], []
      for r in sweep.values():
        t = r["methods"].get(name, {}).get(f"{kind}_ms")
        if t is not None:
          xs.append(math.prod(r["spec"]["image"]))
          ys.append(t)
      if xs:
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("image pixels")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
  axes[0].set_ylabel("median ms per batch")
  first = next(iter(sweep.values()))["spec"]
  fig.suptitle(
      f"B={first['batch']}, {'×'.join(map(str, first['glimpse']))} glimpses, "
      f"{result['machine']['devices'][0]}"
  )
  axes[0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
