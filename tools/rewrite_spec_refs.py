"""Points the internal "SPEC x.y" references at docs/method.md, which keeps SPEC's
section numbers as its headings.

  python tools/rewrite_spec_refs.py          # rewrite every tracked text file
  python tools/rewrite_spec_refs.py --check  # list what is left; exit 1 if any

Rewrites
  "SPEC 1.6"            -> "docs/method.md §1.6"
  "SPEC 9 A1"           -> "docs/method.md §9 A1"
  "SPEC 1.3, 1.5, 2"    -> "docs/method.md §1.3, 1.5, 2"
  "SPEC n_encoder"      -> "the authors' n_encoder"
and prints the rewritten lines that are now longer than --max_line (the style's
100 columns), to be re-wrapped by hand. docs/method.md itself is never touched.
"""
import argparse
import pathlib
import re
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
SUFFIXES = {".py", ".md", ".sh", ".txt", ".toml", ".cff", ".cfg", ".ipynb", ""}
SKIP = {"docs/method.md", "tools/rewrite_spec_refs.py"}
SECTION = re.compile(r"\bSPEC (?=\d)")
AUTHORS_FLAG = re.compile(r"\bSPEC (?=n_[a-z_]+)")
ANY = re.compile(r"\bSPEC\b")


def tracked_files():
  out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                       check=True).stdout.split()
  for name in out:
    path = REPO / name
    if name in SKIP or path.suffix not in SUFFIXES or not path.is_file():
      continue
    try:
      yield name, path.read_text()
    except UnicodeDecodeError:
      continue


def rewrite(text):
  text = SECTION.sub("docs/method.md §", text)
  return AUTHORS_FLAG.sub("the authors' ", text)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--check", action="store_true",
                      help="only list the remaining references; exit 1 if any")
  parser.add_argument("--max_line", type=int, default=100)
  args = parser.parse_args()
  left, changed = 0, 0
  for name, text in tracked_files():
    if args.check:
      for i, line in enumerate(text.splitlines(), 1):
        if ANY.search(line):
          print(f"{name}:{i}: {line.strip()}")
          left += 1
      continue
    new = rewrite(text)
    if new == text:
      continue
    changed += 1
    (REPO / name).write_text(new)
    old_lines = text.splitlines()
    for i, line in enumerate(new.splitlines(), 1):
      if len(line) > args.max_line and (i > len(old_lines) or old_lines[i - 1] != line):
        print(f"{name}:{i}: now {len(line)} columns")
    for i, line in enumerate(new.splitlines(), 1):
      if ANY.search(line):
        print(f"{name}:{i}: left as is: {line.strip()}")
  if args.check:
    print(f"{left} SPEC reference(s) left")
    return 1 if left else 0
  print(f"rewrote {changed} file(s)")
  return 0


if __name__ == "__main__":
  sys.exit(main())
