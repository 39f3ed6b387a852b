"""Rewrites the tables of experiments/README.md from the committed results.

Each experiment script defines ``readme_tables(result) -> {name: markdown}``,
a pure function of the JSON its full run writes. The README holds each table
between the lines ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``; this
script reads ``experiments/results/*.json``, calls the script's
``readme_tables`` on each, and puts every table in its block. So a table
cannot drift from the run it reports.

  python experiments/tables.py          # rewrite the README's tables
  python experiments/tables.py --check  # exit 1 if any table differs

To add a result: write ``readme_tables`` in the script, copy its full run's
JSON into ``experiments/results/``, register the pair in `RESULTS`, and put
an empty block for each table in the README.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
RESULTS_DIR = HERE / "results"

# (script module in experiments/, JSON file in experiments/results/ written by
# its full run, with the command that made it).
RESULTS = (
    ("fit_crop", "fit_crop.json"),  # python experiments/fit_crop.py
    ("fit_crop", "fit_crop_offsets.json"),  # ... --offsets 0.3 0.3 0.3 -0.3 ... (README)
    ("trainability", "trainability.json"),  # python experiments/trainability.py
    ("trainability", "trainability_zoom1.json"),  # ... --zoom 1
    ("draw", "draw.json"),  # python experiments/draw.py --docs
    ("cluttered_mnist", "cluttered_mnist_tune.json"),  # ... cluttered_mnist.py --tune
    ("cluttered_mnist", "cluttered_mnist.json"),  # python experiments/cluttered_mnist.py --docs
    ("cluttered_mnist", "cluttered_mnist_long.json"),  # ... --tag long (README)
)

BLOCK = re.compile(r"(<!-- table:([\w.-]+) -->\n)(.*?)(<!-- /table:\2 -->)", re.S)


def tables(results_dir: Path = RESULTS_DIR) -> dict[str, str]:
  """Every registered result's tables, by name."""
  if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
  out: dict[str, str] = {}
  for module_name, json_name in RESULTS:
    module = importlib.import_module(module_name)
    result = json.loads((results_dir / json_name).read_text())
    for name, table in module.readme_tables(result).items():
      if name in out:
        raise ValueError(f"table {name!r} comes from two results ({json_name} and another)")
      out[name] = table.rstrip("\n") + "\n"  # A block's body ends its last row's line.
  return out


def render(text: str, tables: dict[str, str]) -> str:
  """`text` with each table block's body replaced by its table.

  Raises:
    KeyError: if a block names a table that no result makes.
  """
  missing = sorted({m.group(2) for m in BLOCK.finditer(text)} - set(tables))
  if missing:
    raise KeyError(f"README blocks with no table from experiments/results: {missing}")
  return BLOCK.sub(lambda m: m.group(1) + tables[m.group(2)] + m.group(4), text)


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="tables.py", description=__doc__.splitlines()[0])
  p.add_argument("--check", action="store_true",
                 help="change nothing; exit 1 if a README table differs from its result")
  args = p.parse_args(argv)
  text = README.read_text()
  new = render(text, tables())
  if args.check:
    if new != text:
      print(f"{README} is out of date with {RESULTS_DIR}: run python experiments/tables.py",
            file=sys.stderr)
      return 1
    print(f"{README}: every table matches {RESULTS_DIR}")
    return 0
  README.write_text(new)
  print(f"wrote {README}" if new != text else f"{README} was up to date")
  return 0


if __name__ == "__main__":
  sys.exit(main())
