"""Markdown table of a benchmarks/compare_mnist_single.sh run.

  python benchmarks/comparison_table.py workdirs/compare_mnist_single_cpu [EXTRA_DIR=NAME ...]

Reads ROOT/<variant>/eval/results.json and ROOT/<variant>/wall_seconds; variants
that have not finished are listed as such.
"""
import json
import os
import sys

ROWS = (("cyclegan", "CycleGAN"), ("unit", "UNIT"), ("no_mask", "EGSC-IT w/o feature mask"),
        ("no_adain", "EGSC-IT w/o AdaIN"), ("no_perceptual", "EGSC-IT w/o L_P"),
        ("egsc", "EGSC-IT"))
COLUMNS = (("ssim_a2b", "SSIM A->B"), ("ssim_b2a", "SSIM B->A"),
           ("pixel_accuracy_mean_a2b", "pix. acc. A->B"),
           ("pixel_accuracy_mean_b2a", "pix. acc. B->A"),
           ("digit_accuracy_a2b", "digit acc. A->B"), ("digit_accuracy_b2a", "digit acc. B->A"),
           ("colour_match_a2b", "colour match A->B"),
           ("kid_vgg16_a2b", "KID VGG-16 A->B"), ("kid_vgg16_b2a", "KID VGG-16 B->A"))


def main(root, extra):
  dirs = {v: os.path.join(root, v) for v, _ in ROWS}
  dirs.update(extra)
  print("| method | " + " | ".join(c for _, c in COLUMNS) + " | training wall time |")
  print("|---" * (len(COLUMNS) + 2) + "|")
  for key, name in ROWS:
    path = os.path.join(dirs[key], "eval", "results.json")
    if not os.path.exists(path):
      print(f"| {name} | " + " | ".join("not run" for _ in COLUMNS) + " | - |")
      continue
    with open(path) as f:
      m = json.load(f)["metrics"]
    wall = os.path.join(dirs[key], "wall_seconds")
    wall = f"{int(open(wall).read()) / 60:.1f} min" if os.path.exists(wall) else "-"
    cells = [f"{m[k]:.3f}" if isinstance(m.get(k), (int, float)) else "-" for k, _ in COLUMNS]
    print(f"| {name} | " + " | ".join(cells) + f" | {wall} |")


if __name__ == "__main__":
  main(sys.argv[1], dict(a.split("=", 1)[::-1] for a in sys.argv[2:]))
