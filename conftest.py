"""Test configuration shared by tests/ and the doctests in jaxglimpse/.

float64 is switched on so that the NumPy loop references can be matched to
1e-10. Library code never relies on it: every test of float32, float16 and
bfloat16 passes arrays of that dtype explicitly.
"""

import jax

jax.config.update("jax_enable_x64", True)

# The framework adapters are optional extras: without the framework, skip
# collecting their doctests rather than failing on the import.
import importlib.util


def _missing(name: str) -> bool:
  try:
    return importlib.util.find_spec(name) is None
  except (ImportError, ValueError):
    return True


collect_ignore = [f"jaxglimpse/{name}.py" for name in ("flax", "haiku") if _missing(name)]
