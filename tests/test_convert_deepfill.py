"""DeepFill v2 (and v1) from the official TensorFlow 1 checkpoints: `inpaint models convert`.

Synthetic checkpoints with the official variable names and shapes are written with TF1's Saver; the
official generator is built independently in TensorFlow from the published structure (inpaint_model.py /
inpaint_ops.py of JiahuiYu/generative_inpainting: gated `gen_conv`, nearest ×2 `gen_deconv`, contextual
attention) with the same random weights, and the converted model must match its output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint_cli.convert import convert_checkpoint
from inpaint_cli.convert.deepfill import LAYERS, SCOPE
from inpaint_cli.errors import InpaintError
from inpaint_cli.weights import load_model, read_checkpoint

tf = pytest.importorskip("tensorflow")


# (layer, kernel, stride, dilation, raw output width as a multiple of cnum, or 3 for RGB) of the v2 graph.
def _v2_layers(cnum: int) -> dict[str, tuple[int, int, int, int]]:
    c = cnum
    table = {
        "conv1": (5, 1, 1, c), "conv2_downsample": (3, 2, 1, 2 * c), "conv3": (3, 1, 1, 2 * c),
        "conv4_downsample": (3, 2, 1, 4 * c), "conv5": (3, 1, 1, 4 * c), "conv6": (3, 1, 1, 4 * c),
        "conv7_atrous": (3, 1, 2, 4 * c), "conv8_atrous": (3, 1, 4, 4 * c), "conv9_atrous": (3, 1, 8, 4 * c),
        "conv10_atrous": (3, 1, 16, 4 * c), "conv11": (3, 1, 1, 4 * c), "conv12": (3, 1, 1, 4 * c),
        "conv13_upsample/conv13_upsample_conv": (3, 1, 1, 2 * c), "conv14": (3, 1, 1, 2 * c),
        "conv15_upsample/conv15_upsample_conv": (3, 1, 1, c), "conv16": (3, 1, 1, c // 2), "conv17": (3, 1, 1, 3),
        "xconv1": (5, 1, 1, c), "xconv2_downsample": (3, 2, 1, c), "xconv3": (3, 1, 1, 2 * c),
        "xconv4_downsample": (3, 2, 1, 2 * c), "xconv5": (3, 1, 1, 4 * c), "xconv6": (3, 1, 1, 4 * c),
        "xconv7_atrous": (3, 1, 2, 4 * c), "xconv8_atrous": (3, 1, 4, 4 * c), "xconv9_atrous": (3, 1, 8, 4 * c),
        "xconv10_atrous": (3, 1, 16, 4 * c),
        "pmconv1": (5, 1, 1, c), "pmconv2_downsample": (3, 2, 1, c), "pmconv3": (3, 1, 1, 2 * c),
        "pmconv4_downsample": (3, 2, 1, 4 * c), "pmconv5": (3, 1, 1, 4 * c), "pmconv6": (3, 1, 1, 4 * c),
        "pmconv9": (3, 1, 1, 4 * c), "pmconv10": (3, 1, 1, 4 * c),
        "allconv11": (3, 1, 1, 4 * c), "allconv12": (3, 1, 1, 4 * c),
        "allconv13_upsample/allconv13_upsample_conv": (3, 1, 1, 2 * c), "allconv14": (3, 1, 1, 2 * c),
        "allconv15_upsample/allconv15_upsample_conv": (3, 1, 1, c), "allconv16": (3, 1, 1, c // 2),
        "allconv17": (3, 1, 1, 3),
    }  # fmt: skip
    return table


def _v2_input_widths(cnum: int) -> dict[str, int]:
    """Input channels of each layer in the v2 graph (gated outputs are half the raw width)."""
    table = _v2_layers(cnum)
    widths, previous = {}, 5
    for layer in LAYERS:
        if layer in ("xconv1", "pmconv1"):
            previous = 3
        if layer == "allconv11":
            previous = 2 * cnum * 2  # concat of two gated 4·cnum layers: 2 × 2·cnum
        widths[layer] = previous
        raw = table[layer][3]
        previous = raw if raw == 3 else raw // 2
    return widths


def random_v2_variables(cnum: int = 48, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    table, inputs = _v2_layers(cnum), _v2_input_widths(cnum)
    variables = {}
    for layer in LAYERS:
        k, _, _, out = table[layer]
        fan_in = k * k * inputs[layer]
        variables[f"{SCOPE}{layer}/kernel"] = (
            rng.standard_normal((k, k, inputs[layer], out)) * 2.0 / np.sqrt(fan_in)
        ).astype(np.float32)
        variables[f"{SCOPE}{layer}/bias"] = (rng.standard_normal(out) * 0.1).astype(np.float32)
    return variables


def write_tf1_checkpoint(directory: Path, variables: dict[str, np.ndarray]) -> Path:
    """A name-based TF1 checkpoint (tf.compat.v1 Saver), as the released snapshots: dir/checkpoint, snap-0.*"""
    graph = tf.Graph()
    with graph.as_default():
        made = [tf.compat.v1.get_variable(name, initializer=value) for name, value in variables.items()]
        saver = tf.compat.v1.train.Saver(made)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(directory / "snap"), global_step=0)
    return directory


# ---- the official generator, built independently in TF (NHWC) ------------------------------------


def _nearest_align_corners(x, size):
    return tf.compat.v1.image.resize_nearest_neighbor(x, size, align_corners=True)


class OfficialGraph:
    def __init__(self, variables: dict[str, np.ndarray], cnum: int, gated: bool) -> None:
        self.v, self.table, self.gated = variables, _v2_layers(cnum), gated

    def conv(self, x, layer, activation=tf.nn.elu):
        _, stride, rate, out = self.table[layer]
        y = tf.nn.conv2d(x, self.v[f"{SCOPE}{layer}/kernel"], strides=stride, padding="SAME", dilations=rate)
        y = y + self.v[f"{SCOPE}{layer}/bias"]
        if out == 3 or activation is None:
            return y
        if not self.gated:
            return activation(y)
        features, gates = tf.split(y, 2, axis=3)
        return activation(features) * tf.sigmoid(gates)

    def deconv(self, x, layer):
        h, w = x.shape[1], x.shape[2]
        return self.conv(_nearest_align_corners(x, (2 * h, 2 * w)), f"{layer}/{layer}_conv")

    def __call__(self, x_in, mask):
        ones = tf.ones_like(mask)
        x = tf.concat([x_in, ones, ones * mask], axis=3)
        for layer in COARSE_ORDER:
            x = (
                self.deconv(x, layer.split("/")[0])
                if "/" in layer
                else self.conv(x, layer, None if layer == "conv17" else tf.nn.elu)
            )
            if layer == "conv6":
                mask_s = _nearest_align_corners(mask, (x.shape[1], x.shape[2]))
        x1 = tf.tanh(x)
        xnow = x1 * mask + x_in * (1.0 - mask)
        x = xnow
        for layer in [n for n in LAYERS if n.startswith("xconv")]:
            x = self.conv(x, layer)
        hallucinated = x
        x = xnow
        for layer in ["pmconv1", "pmconv2_downsample", "pmconv3", "pmconv4_downsample", "pmconv5"]:
            x = self.conv(x, layer)
        x = self.conv(x, "pmconv6", tf.nn.relu)
        x = contextual_attention(x, x, mask_s)
        x = self.conv(self.conv(x, "pmconv9"), "pmconv10")
        x = tf.concat([hallucinated, x], axis=3)
        for layer in [n for n in LAYERS if n.startswith("allconv")]:
            x = (
                self.deconv(x, layer.split("/")[0])
                if "/" in layer
                else self.conv(x, layer, None if layer == "allconv17" else tf.nn.elu)
            )
        return x1, tf.tanh(x)


COARSE_ORDER = [n for n in LAYERS if n.startswith("conv")]


def contextual_attention(f, b, mask, ksize=3, rate=2, fuse_k=3, scale=10.0):
    """The published contextual attention (batch 1): raw 2r patches of b every r pixels, matching on the
    align_corners-downscaled maps with L2-normalised 3×3 patches, diagonal fusion twice, masked softmax,
    transposed-conv paste / 4."""
    _, height, width, channels = f.shape
    raw_k = 2 * rate
    raw = tf.image.extract_patches(b, [1, raw_k, raw_k, 1], [1, rate, rate, 1], [1, 1, 1, 1], "SAME")
    raw = tf.transpose(tf.reshape(raw, [-1, raw_k, raw_k, channels]), [1, 2, 3, 0])  # k, k, C, L
    h, w = height // rate, width // rate
    f_small, b_small, m_small = (_nearest_align_corners(t, (h, w)) for t in (f, b, mask))
    patches = tf.image.extract_patches(b_small, [1, ksize, ksize, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME")
    patches = tf.transpose(tf.reshape(patches, [-1, ksize, ksize, channels]), [1, 2, 3, 0])
    norms = tf.maximum(tf.sqrt(tf.reduce_sum(tf.square(patches), axis=[0, 1, 2], keepdims=True)), 1e-4)
    y = tf.nn.conv2d(f_small, patches / norms, strides=1, padding="SAME")  # 1, h, w, L
    eye = tf.reshape(tf.eye(fuse_k), [fuse_k, fuse_k, 1, 1])
    y = tf.nn.conv2d(tf.reshape(y, [1, h * w, h * w, 1]), eye, strides=1, padding="SAME")
    y = tf.transpose(tf.reshape(y, [1, h, w, h, w]), [0, 2, 1, 4, 3])
    y = tf.nn.conv2d(tf.reshape(y, [1, h * w, h * w, 1]), eye, strides=1, padding="SAME")
    y = tf.transpose(tf.reshape(y, [1, w, h, w, h]), [0, 2, 1, 4, 3])
    y = tf.reshape(y, [1, h, w, h * w])
    m = tf.image.extract_patches(m_small, [1, ksize, ksize, 1], [1, 1, 1, 1], [1, 1, 1, 1], "SAME")
    mm = tf.cast(tf.equal(tf.reduce_mean(m, axis=3), 0.0), tf.float32)
    mm = tf.reshape(mm, [1, 1, 1, h * w])
    y = tf.nn.softmax(y * mm * scale, axis=3) * mm
    return tf.nn.conv2d_transpose(y, raw, [1, height, width, channels], strides=rate, padding="SAME") / 4.0


# ---- tests ---------------------------------------------------------------------------------------------


def _mask(height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), np.float32)
    mask[20:44, 30:70] = 1.0
    mask[5:9, 8:60] = 1.0  # a thin stroke, away from the box
    return mask


@pytest.fixture(scope="module")
def v2_checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("deepfill_v2_tf")
    variables = random_v2_variables()
    extras = {
        "discriminator/sn_patch_gan/conv1/kernel": np.zeros((5, 5, 4, 64), np.float32),
        f"{SCOPE}conv1/kernel/Adam": np.zeros((5, 5, 5, 48), np.float32),
    }
    write_tf1_checkpoint(directory, {**variables, **extras})
    return directory, variables


def test_deepfill_v2_matches_the_official_tf_graph(v2_checkpoint, tmp_path):
    directory, variables = v2_checkpoint
    out = tmp_path / "deepfill_v2_places2.safetensors"
    entry = convert_checkpoint(directory, arch="deepfill_v2", out=out)
    assert entry["name"] == "deepfill_v2.deepfill_v2_places2" and entry["licence"] == "CC BY-NC 4.0"
    ckpt = read_checkpoint(out)
    assert ckpt.config == {"cnum": 48, "tf_padding": True, "tf_resize": True, "channel_order": "bgr"}
    assert ckpt.provenance["licence"] == "CC BY-NC 4.0"
    assert set(ckpt.provenance["converted_from"]["files"]) == {"snap-0.index", "snap-0.data-00000-of-00001"}

    model = load_model(out)  # the strict load `fill --model` does
    height, width = 64, 96
    rng = np.random.default_rng(1)
    image = rng.random((height, width, 3), dtype=np.float32)  # RGB in [0, 1]
    mask = _mask(height, width)

    # The official pipeline on BGR: x = bgr/127.5 - 1 (here bgr in [0, 1]: x = 2·bgr - 1), holes zeroed.
    bgr = image[..., ::-1]
    x_in = (2.0 * bgr - 1.0) * (1.0 - mask[..., None])
    x1_tf, x2_tf = OfficialGraph(variables, 48, gated=True)(tf.constant(x_in[None]), tf.constant(mask[None, ..., None]))
    with torch.no_grad():
        x1, x2 = model(
            torch.from_numpy(np.ascontiguousarray(x_in.transpose(2, 0, 1)))[None], torch.from_numpy(mask)[None, None]
        )
        prediction = model.inpaint(
            torch.from_numpy(image.transpose(2, 0, 1).copy())[None], torch.from_numpy(mask)[None, None]
        )
    x1_tf, x2_tf = x1_tf.numpy()[0].transpose(2, 0, 1), x2_tf.numpy()[0].transpose(2, 0, 1)
    assert np.abs(x1.numpy()[0] - x1_tf).max() <= 1e-4
    assert np.abs(x2.numpy()[0] - x2_tf).max() <= 1e-4
    assert x2_tf.std() > 0.05, x2_tf.std()  # the comparison is not between two flat images
    # inpaint() takes and returns RGB: the official BGR output, flipped back.
    expected = np.clip((x2_tf[::-1] + 1.0) / 2.0, 0.0, 1.0)
    assert np.abs(prediction.numpy()[0] - expected).max() <= 1e-4


def test_our_default_padding_and_resize_do_not_match_the_tf_graph(v2_checkpoint, tmp_path):
    """Why the config keys exist: without them the same weights compute something else."""
    directory, variables = v2_checkpoint
    out = tmp_path / "v2.safetensors"
    convert_checkpoint(directory, arch="deepfill_v2", out=out)
    model = load_model(out, overrides={"tf_padding": False, "tf_resize": False})
    mask = _mask(64, 96)
    x_in = np.random.default_rng(2).uniform(-1, 1, (64, 96, 3)).astype(np.float32) * (1 - mask[..., None])
    _, x2_tf = OfficialGraph(variables, 48, gated=True)(tf.constant(x_in[None]), tf.constant(mask[None, ..., None]))
    with torch.no_grad():
        _, x2 = model(
            torch.from_numpy(np.ascontiguousarray(x_in.transpose(2, 0, 1)))[None], torch.from_numpy(mask)[None, None]
        )
    assert np.abs(x2.numpy()[0] - x2_tf.numpy()[0].transpose(2, 0, 1)).max() > 1e-2


def test_unknown_variables_under_inpaint_net_are_refused(tmp_path):
    variables = random_v2_variables(cnum=8)
    variables[f"{SCOPE}conv99/kernel"] = np.zeros((3, 3, 4, 4), np.float32)
    write_tf1_checkpoint(tmp_path, variables)
    with pytest.raises(InpaintError, match="unknown inpaint_net/conv99/kernel"):
        convert_checkpoint(tmp_path, arch="deepfill_v2", out=tmp_path / "x.safetensors")


def test_a_v1_checkpoint_is_not_taken_for_v2(tmp_path):
    variables = random_v2_variables(cnum=8)
    variables[f"{SCOPE}xconv1/kernel"] = np.zeros((5, 5, 5, 8), np.float32)  # v1's refine input: 5 channels
    write_tf1_checkpoint(tmp_path, variables)
    with pytest.raises(InpaintError, match="xconv1: kernel"):
        convert_checkpoint(tmp_path, arch="deepfill_v2", out=tmp_path / "x.safetensors")
