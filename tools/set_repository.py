"""Points the project at another GitHub repository (a fork):

  python tools/set_repository.py https://github.com/you/egsc-jax

The address is `egsc_jax.REPOSITORY`; the Colab badge (README, notebook), the
notebook's REPO_URL, the README's install from a tag and pyproject.toml's
[project.urls] spell it too, since
Markdown, JSON and TOML cannot import it. This rewrites every one of them;
tests/test_packaging.py checks that they agree.
"""

import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
FILES = ("egsc_jax/__init__.py", "pyproject.toml", "README.md", "notebooks/egsc_jax_demo.ipynb")


def current() -> str:
  text = (REPO / "egsc_jax" / "__init__.py").read_text()
  return re.search(r'^REPOSITORY = "([^"]+)"$', text, re.M).group(1)


def main(argv):
  if len(argv) != 2 or not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", argv[1]):
    sys.exit("usage: python tools/set_repository.py https://github.com/OWNER/NAME")
  old, new = current(), argv[1]
  old_name, new_name = (
    old.removeprefix("https://github.com/"),
    new.removeprefix("https://github.com/"),
  )
  for name in FILES:
    path = REPO / name
    text = path.read_text()
    # The full address first, then the owner/name of the Colab badge's link
    # and of the README's raw lock-file address.
    updated = text.replace(old, new)
    for host in ("colab.research.google.com/github", "raw.githubusercontent.com"):
      updated = updated.replace(f"{host}/{old_name}/", f"{host}/{new_name}/")
    if updated != text:
      path.write_text(updated)
      print(f"{name}: {old} -> {new}")


if __name__ == "__main__":
  main(sys.argv)
