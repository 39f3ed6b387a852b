"""The README's set-up commands are the ones CI and users actually run."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _setup_commands():
  text = (ROOT / "README.md").read_text()
  section = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
  return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
  commands = _setup_commands()
  assert len(commands) == 2, commands
  assert all("\n" not in c for c in commands), commands
  assert commands[0].startswith("pip install -e") and "experiments/" in commands[0]
  assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
  ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
  assert _setup_commands()[1] in ci_lines


def test_demo_script_exists():
  script = _setup_commands()[0].split("python ", 1)[1].split()[0]
  assert (ROOT / script).is_file(), script


def test_readme_example_runs():
  text = (ROOT / "README.md").read_text()
  example = text.split("## Example", 1)[1].split("\n## ", 1)[0]
  (code,) = re.findall(r"```python\n(.*?)```", example, flags=re.S)
  namespace = {}
  exec(compile(code, "README.md", "exec"), namespace)
  assert namespace["glimpse"].shape == (8, 12, 3)
  assert namespace["canvas"].shape == (64, 64, 3)
  assert set(namespace["grads"]._fields) == {"mu", "sigma", "delta"}
