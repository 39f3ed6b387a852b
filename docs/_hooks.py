"""mkdocs hook: experiments/README.md, included whole as the Experiments page.

The README links its pictures from its own folder (``../docs/NAME.png``),
right on GitHub; on the page they are ``NAME.png``. The snippet is expanded
here rather than by pymdownx.snippets, which runs after this hook, so that
the links can be rewritten before mkdocs checks them.
"""

from pathlib import Path

_INCLUDE = '--8<-- "experiments/README.md"'


def on_page_markdown(markdown, page, config, files):
  if _INCLUDE not in markdown:
    return markdown
  readme = (Path(config["config_file_path"]).parent / "experiments" / "README.md").read_text()
  return markdown.replace(_INCLUDE, readme.replace("](../docs/", "]("))
