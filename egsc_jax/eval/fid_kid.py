"""KID and FID on any features (`eval.features`: InceptionV3 pool3 or VGG-16 relu5_1).

Report VGG-16 features under `KID_VGG16_NAME`, never as "KID" or "FID": the
names say which network the numbers come from.
"""

from __future__ import annotations

import numpy as np

KID_VGG16_NAME = "KID (VGG-16 relu5_1)"
KID_INCEPTION_NAME = "KID (InceptionV3 pool3)"
FID_INCEPTION_NAME = "FID (InceptionV3 pool3)"


def _check_features(real: np.ndarray, fake: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  real = np.asarray(real, np.float64)
  fake = np.asarray(fake, np.float64)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(
      f"features must be [N, D] with the same D, got real {real.shape}, fake {fake.shape}."
    )
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


def kid(
  features_real: np.ndarray,
  features_fake: np.ndarray,
  *,
  subset_size: int = 1000,
  num_subsets: int = 100,
  seed: int = 0,
) -> tuple[float, float]:
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
      f"[2, {min(len(real), len(fake))}]."
    )
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


def frechet_distance(
  mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
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
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid(features_real: np.ndarray, features_fake: np.ndarray) -> float:
  """Frechet distance between Gaussians fitted to two feature sets. [N, D] each.

  Covariances use N - 1 (np.cov). "FID" proper only on InceptionV3 pool3 features.
  """
  real, fake = _check_features(features_real, features_fake)
  if len(real) < 2 or len(fake) < 2:
    raise ValueError(f"FID needs at least 2 samples per set, got {len(real)}, {len(fake)}.")
  return frechet_distance(
    real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
  )
