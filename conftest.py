"""Test configuration shared by tests/ and the doctests in jaxglimpse/.

float64 is switched on so that the NumPy loop references can be matched to
1e-10. Library code never relies on it: every test of float32, float16 and
bfloat16 passes arrays of that dtype explicitly.
"""

import os

import hypothesis
import jax

jax.config.update("jax_enable_x64", True)

# The tests' shapes are tiny, so XLA's compile time is most of the suite's
# time. Without XLA's optimisation passes the compiles are about a quarter
# faster and the results are the same to every tolerance tested. What users
# run is checked fully optimised too: CI runs the property sweep with
# JAXGLIMPSE_XLA_OPTIMIZE=1, and the scripts' runs (`-m scripts`) are
# processes of their own.
if os.environ.get("JAXGLIMPSE_XLA_OPTIMIZE") != "1":
  jax.config.update("jax_disable_most_optimizations", True)

# Property tests without their own settings draw this many examples in the
# suite; `pytest --hypothesis-profile=sweep tests/test_properties.py` is the
# larger sweep that CI runs apart from it.
hypothesis.settings.register_profile("suite", max_examples=12, deadline=None)
hypothesis.settings.register_profile("sweep", max_examples=1000, deadline=None)
hypothesis.settings.load_profile("suite")

# The framework adapters are optional extras: without the framework, skip
# collecting their doctests rather than failing on the import.
import importlib.util


def _missing(name: str) -> bool:
  try:
    return importlib.util.find_spec(name) is None
  except (ImportError, ValueError):
    return True


collect_ignore = [f"jaxglimpse/{name}.py" for name in ("flax", "haiku") if _missing(name)]
