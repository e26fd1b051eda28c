"""DeepFill v1 and v2 from the official TensorFlow 1 checkpoints: `inpaint models convert`.

Synthetic checkpoints with the official variable names and shapes are written with TF1's Saver; the
official generator is built independently in TensorFlow from the published structure (inpaint_model.py /
inpaint_ops.py of JiahuiYu/generative_inpainting: v2's gated `gen_conv` or v1's plain conv + ELU, nearest
×2 `gen_deconv`, contextual attention) with the same random weights, and the converted model must match
its output. v1's graph is built in TF1 graph mode the way its `build_inpaint_net` builds it, so its
checkpoint's variable names and shapes come from the graph's scopes and data flow, not from our tables.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inpaint_cli.convert import convert_checkpoint
from inpaint_cli.convert.deepfill import LAYERS, SCOPE, tf_layer_names
from inpaint_cli.errors import InpaintError
from inpaint_cli.registry import create_model
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


def test_converted_v2_through_the_engine_matches_the_official_tf_graph(v2_checkpoint, tmp_path):
    """What `fill` runs (Inpainter: channels-last, GatedConv2d's inference fast path) on the converted file
    fills the hole with the official graph's output."""
    from inpaint_cli.engine import Inpainter

    directory, variables = v2_checkpoint
    out = tmp_path / "v2.safetensors"
    convert_checkpoint(directory, arch="deepfill_v2", out=out)
    height, width = 64, 96
    image = np.random.default_rng(5).random((height, width, 3), dtype=np.float32)
    mask = _mask(height, width)
    x_in = (2.0 * image[..., ::-1] - 1.0) * (1.0 - mask[..., None])
    _, x2_tf = OfficialGraph(variables, 48, gated=True)(tf.constant(x_in[None]), tf.constant(mask[None, ..., None]))
    expected = np.clip((x2_tf.numpy()[0][..., ::-1] + 1.0) / 2.0, 0.0, 1.0)  # RGB, as `fill` returns it
    hole = mask > 0
    result = Inpainter(load_model(out), device="cpu", blend="none").fill(image, hole, strategy="full")
    assert np.array_equal(result.rgb[~hole], image[~hole])
    assert np.abs(result.rgb[hole] - expected[hole]).max() <= 1e-4
    assert expected[hole].std() > 0.02  # not a flat fill (measured 0.04)


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


def test_a_conv1_width_no_model_has_is_refused_naming_the_file(tmp_path):
    variables = random_v2_variables(cnum=8)
    variables[f"{SCOPE}conv1/kernel"] = np.zeros((5, 5, 5, 7), np.float32)  # v1's c16 needs an even cnum
    write_tf1_checkpoint(tmp_path, variables)
    with pytest.raises(InpaintError, match=r"^/.*: conv1 has 7 outputs, not a deepfill_v1 layout"):
        convert_checkpoint(tmp_path, arch="deepfill_v1", out=tmp_path / "x.safetensors")


def test_a_v1_checkpoint_is_not_taken_for_v2(tmp_path):
    variables = random_v2_variables(cnum=8)
    variables[f"{SCOPE}xconv1/kernel"] = np.zeros((5, 5, 5, 8), np.float32)  # v1's refine input: 5 channels
    write_tf1_checkpoint(tmp_path, variables)
    with pytest.raises(InpaintError, match="xconv1: kernel"):
        convert_checkpoint(tmp_path, arch="deepfill_v2", out=tmp_path / "x.safetensors")


# ---- DeepFill v1 (tag v1.0.0): the released graph in TF1 graph mode --------------------------------------

V1_CNUM = 32
V1_GAIN = 1.1  # kernel std gain/sqrt(fan_in): the 30-conv ELU stack's output varies (std 0.2–0.5) and is never clipped


class OfficialV1Graph:
    """v1's `build_inpaint_net` (cnum 32): conv + ELU layers (`gen_conv` is tf.layers.conv2d, so the
    variables are `<name>/kernel` and `<name>/bias`), `gen_deconv` = align_corners ×2 nearest resize then a
    conv in the nested scope `<name>/<name>_conv`, both stages on [x, ones, ones·M], outputs clipped to
    [-1, 1], contextual attention on pmconv6 with the mask resized like conv6's output, rate 2."""

    def __init__(self, rng: np.random.Generator, gain: float = V1_GAIN) -> None:
        self.rng, self.gain = rng, gain

    def conv(self, x, width, ksize=3, stride=1, rate=1, name="conv", activation=tf.nn.elu):
        channels = int(x.shape[-1])
        with tf.compat.v1.variable_scope(name):
            std = self.gain / np.sqrt(ksize * ksize * channels)
            kernel = tf.compat.v1.get_variable(
                "kernel",
                initializer=(self.rng.standard_normal((ksize, ksize, channels, width)) * std).astype(np.float32),
            )
            bias = tf.compat.v1.get_variable(
                "bias", initializer=(self.rng.standard_normal(width) * 0.1).astype(np.float32)
            )
        y = tf.nn.conv2d(x, kernel, strides=stride, padding="SAME", dilations=rate) + bias
        return y if activation is None else activation(y)

    def deconv(self, x, width, name):
        with tf.compat.v1.variable_scope(name):
            up = _nearest_align_corners(x, (2 * int(x.shape[1]), 2 * int(x.shape[2])))
            return self.conv(up, width, name=f"{name}_conv")

    def decoder(self, x, c, prefix):
        x = self.deconv(x, 2 * c, f"{prefix}13_upsample")
        x = self.conv(x, 2 * c, name=f"{prefix}14")
        x = self.deconv(x, c, f"{prefix}15_upsample")
        x = self.conv(x, c // 2, name=f"{prefix}16")
        return tf.clip_by_value(self.conv(x, 3, name=f"{prefix}17", activation=None), -1.0, 1.0)

    def __call__(self, x_in, mask):
        c = V1_CNUM
        ones = tf.ones_like(x_in)[:, :, :, 0:1]
        with tf.compat.v1.variable_scope("inpaint_net"):
            x = self.conv(tf.concat([x_in, ones, ones * mask], axis=3), c, 5, name="conv1")
            x = self.conv(x, 2 * c, 3, 2, name="conv2_downsample")
            x = self.conv(x, 2 * c, name="conv3")
            x = self.conv(x, 4 * c, 3, 2, name="conv4_downsample")
            x = self.conv(x, 4 * c, name="conv5")
            x = self.conv(x, 4 * c, name="conv6")
            mask_s = _nearest_align_corners(mask, (int(x.shape[1]), int(x.shape[2])))
            for number, rate in ((7, 2), (8, 4), (9, 8), (10, 16)):
                x = self.conv(x, 4 * c, rate=rate, name=f"conv{number}_atrous")
            x = self.conv(self.conv(x, 4 * c, name="conv11"), 4 * c, name="conv12")
            x1 = self.decoder(x, c, "conv")

            xnow = tf.concat([x1 * mask + x_in * (1.0 - mask), ones, ones * mask], axis=3)
            x = self.conv(xnow, c, 5, name="xconv1")
            x = self.conv(x, c, 3, 2, name="xconv2_downsample")
            x = self.conv(x, 2 * c, name="xconv3")
            x = self.conv(x, 2 * c, 3, 2, name="xconv4_downsample")
            x = self.conv(self.conv(x, 4 * c, name="xconv5"), 4 * c, name="xconv6")
            for number, rate in ((7, 2), (8, 4), (9, 8), (10, 16)):
                x = self.conv(x, 4 * c, rate=rate, name=f"xconv{number}_atrous")
            hallucinated = x
            x = self.conv(xnow, c, 5, name="pmconv1")
            x = self.conv(x, c, 3, 2, name="pmconv2_downsample")
            x = self.conv(x, 2 * c, name="pmconv3")
            x = self.conv(x, 4 * c, 3, 2, name="pmconv4_downsample")
            x = self.conv(x, 4 * c, name="pmconv5")
            x = self.conv(x, 4 * c, name="pmconv6", activation=tf.nn.relu)
            x = contextual_attention(x, x, mask_s)
            x = self.conv(self.conv(x, 4 * c, name="pmconv9"), 4 * c, name="pmconv10")
            x = tf.concat([hallucinated, x], axis=3)
            x = self.conv(self.conv(x, 4 * c, name="allconv11"), 4 * c, name="allconv12")
            x2 = self.decoder(x, c, "allconv")
        return x1, x2


@pytest.fixture(scope="module")
def v1_release(tmp_path_factory):
    """A v1 snapshot as the release has it (checkpoint, snap-0.*: generator, critics, an Adam slot), and the
    official graph's outputs on a BGR input: (directory, RGB image, mask, x_in, x1, x2), NHWC numpy."""
    directory = tmp_path_factory.mktemp("deepfill_v1_tf")
    height, width = 64, 96
    image = np.random.default_rng(3).random((height, width, 3), dtype=np.float32)  # RGB in [0, 1]
    mask = _mask(height, width)
    # The released test graph: x = bgr/127.5 - 1 (here bgr in [0, 1]: 2·bgr - 1), holes zeroed.
    x_in = (2.0 * image[..., ::-1] - 1.0) * (1.0 - mask[..., None])
    graph = tf.Graph()
    with graph.as_default():
        x1, x2 = OfficialV1Graph(np.random.default_rng(4))(
            tf.constant(x_in[None].copy()), tf.constant(mask[None, ..., None])
        )
        tf.compat.v1.get_variable(
            "discriminator/discriminator_local/conv1/kernel", initializer=np.zeros((5, 5, 3, 64), np.float32)
        )
        tf.compat.v1.get_variable("discriminator/dout_global_fc/bias", initializer=np.zeros(1, np.float32))
        tf.compat.v1.get_variable(f"{SCOPE}conv1/kernel/Adam", initializer=np.zeros((5, 5, 5, 32), np.float32))
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            x1_tf, x2_tf = session.run([x1, x2])
            saver.save(session, str(directory / "snap"), global_step=0)
    return directory, image, mask, x_in, x1_tf[0], x2_tf[0]


def _nchw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]


def test_the_v1_graph_has_the_variables_the_converter_reads(v1_release):
    directory = v1_release[0]
    reader = tf.train.load_checkpoint(str(directory / "snap-0"))
    shapes = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items() if k.startswith(SCOPE)}
    shapes.pop(f"{SCOPE}conv1/kernel/Adam")
    assert sorted(shapes) == sorted(tf_layer_names())  # 42 layers, kernel and bias, names as built
    # The paper's widths (cnum 32) and v1's 5-channel refine input, from the graph's own data flow.
    assert shapes[f"{SCOPE}conv1/kernel"] == shapes[f"{SCOPE}xconv1/kernel"] == (5, 5, 5, 32)
    assert shapes[f"{SCOPE}allconv11/kernel"] == (3, 3, 256, 128)
    assert shapes[f"{SCOPE}conv15_upsample/conv15_upsample_conv/kernel"] == (3, 3, 64, 32)
    assert shapes[f"{SCOPE}conv17/kernel"] == (3, 3, 16, 3)
    total = sum(int(np.prod(shape)) for shape in shapes.values())
    assert total == sum(p.numel() for p in create_model("deepfill_v1").parameters()) == pytest.approx(3.60e6, rel=0.01)


def test_deepfill_v1_matches_the_official_tf_graph(v1_release, tmp_path):
    directory, image, mask, x_in, x1_tf, x2_tf = v1_release
    out = tmp_path / "deepfill_v1_places2.safetensors"
    entry = convert_checkpoint(directory, arch="deepfill_v1", out=out, name="deepfill_v1.places2")
    assert entry["name"] == "deepfill_v1.places2" and entry["licence"] == "CC BY-NC 4.0"
    assert "v1.0.0" in entry["notes"]
    ckpt = read_checkpoint(out)
    assert ckpt.arch == "deepfill_v1"
    assert ckpt.config == {"cnum": 32, "tf_padding": True, "tf_resize": True, "channel_order": "bgr"}
    assert set(ckpt.provenance["converted_from"]["files"]) == {"snap-0.index", "snap-0.data-00000-of-00001"}

    model = load_model(out)  # the strict load `fill --model` does
    with torch.no_grad():
        x1, x2 = model(_nchw(x_in), torch.from_numpy(mask)[None, None])
        prediction = model.inpaint(_nchw(image), torch.from_numpy(mask)[None, None])
    x1_tf, x2_tf = x1_tf.transpose(2, 0, 1), x2_tf.transpose(2, 0, 1)
    assert np.abs(x1.numpy()[0] - x1_tf).max() <= 1e-4
    assert np.abs(x2.numpy()[0] - x2_tf).max() <= 1e-4
    # Not a comparison of two flat or clipped images: the outputs vary and most pixels are inside (-1, 1).
    assert x1_tf.std() > 0.05 and x2_tf.std() > 0.05, (x1_tf.std(), x2_tf.std())
    assert (np.abs(x2_tf) < 1.0).mean() > 0.5 and (np.abs(x1_tf) < 1.0).mean() > 0.5
    # inpaint() takes and returns RGB: the official BGR output, flipped back.
    expected = np.clip((x2_tf[::-1] + 1.0) / 2.0, 0.0, 1.0)
    assert np.abs(prediction.numpy()[0] - expected).max() <= 1e-4


@pytest.mark.parametrize(
    ("overrides", "coarse_differs"),
    [
        ({"tf_padding": False, "tf_resize": False}, True),  # our defaults
        ({"tf_padding": False}, True),
        ({"tf_resize": False}, False),  # the coarse stage has no resize; attention moves x2 only
    ],
)
def test_v1_without_the_tf_keys_does_not_match(v1_release, tmp_path, overrides, coarse_differs):
    """Why the config keys exist for v1 too: without them the same weights compute something else."""
    directory, _, mask, x_in, x1_tf, x2_tf = v1_release
    out = tmp_path / "v1.safetensors"
    convert_checkpoint(directory, arch="deepfill_v1", out=out)
    model = load_model(out, overrides=overrides)
    with torch.no_grad():
        x1, x2 = model(_nchw(x_in), torch.from_numpy(mask)[None, None])
    coarse_error = np.abs(x1.numpy()[0] - x1_tf.transpose(2, 0, 1)).max()
    assert (coarse_error > 1e-2) if coarse_differs else (coarse_error <= 1e-4)
    assert np.abs(x2.numpy()[0] - x2_tf.transpose(2, 0, 1)).max() > 1e-2


def test_v1_and_v2_checkpoints_are_not_taken_for_each_other(v1_release, v2_checkpoint, tmp_path):
    with pytest.raises(
        InpaintError, match=r"deepfill_v1_tf\d*: conv2_downsample: kernel \(3, 3, 32, 64\) does not fit deepfill_v2"
    ):
        convert_checkpoint(v1_release[0], arch="deepfill_v2", out=tmp_path / "a.safetensors")
    with pytest.raises(InpaintError, match=r"conv2_downsample: kernel \(3, 3, 24, 96\) does not fit deepfill_v1"):
        convert_checkpoint(v2_checkpoint[0], arch="deepfill_v1", out=tmp_path / "b.safetensors")
    assert not list(tmp_path.glob("*.safetensors"))


def test_cli_converts_v1_and_fill_uses_it(v1_release, tmp_path, run_cli, capsys, monkeypatch):
    directory, image, mask = v1_release[:3]
    monkeypatch.chdir(tmp_path)
    argv = ["models", "convert", str(directory), "--arch", "deepfill_v1", "--out", "v1.safetensors"]
    assert run_cli([*argv, "--name", "deepfill_v1.places2"]) == 0
    printed = capsys.readouterr().out
    assert '[models."deepfill_v1.places2"]' in printed and 'licence = "CC BY-NC 4.0"' in printed
    pixels = (image * 255).astype(np.uint8)
    cv2.imwrite("in.png", pixels)
    cv2.imwrite("mask.png", (mask * 255).astype(np.uint8))
    assert run_cli(["fill", "in.png", "--mask", "mask.png", "--model", "v1.safetensors", "--out", "o.png"]) == 0
    assert "non-commercial" in capsys.readouterr().err
    filled = cv2.imread("o.png")
    known = mask == 0
    assert np.array_equal(filled[known], pixels[known]) and not np.array_equal(filled[~known], pixels[~known])


# ---- the releases' exact variable layouts (tests/data/checkpoint_layouts/) -----------------------------------


def write_layout_checkpoint(directory: Path, variables: dict[str, np.ndarray]) -> Path:
    """A TF1 Saver snapshot holding exactly `variables` (dtypes and shapes as given, scalars included)."""
    graph = tf.Graph()
    with graph.as_default():
        made = {
            name: tf.compat.v1.get_variable(
                name, value.shape, tf.as_dtype(value.dtype), tf.compat.v1.zeros_initializer(), trainable=False
            )
            for name, value in variables.items()
        }
        saver = tf.compat.v1.train.Saver(list(made.values()))
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for name, value in variables.items():
                if value.any():  # fed, not baked into the graph as constants (120 MB for v2)
                    made[name].load(value, session)
            saver.save(session, str(directory / "snap"), global_step=0)
    return directory


# One release per distinct layout: v2 (both releases are the same 298 tensors), v1 generator only (Places2,
# ImageNet, CelebA), v1 CelebA-HQ (critics, slots and scalars too). Data file sizes from the releases.
LAYOUT_CASES = {"deepfill_v2.places2": 119_996_408, "deepfill_v1.places2": 14_406_168, "deepfill_v1.celebahq": None}


@pytest.mark.parametrize("release", list(LAYOUT_CASES))
def test_a_checkpoint_of_a_release_layout_converts(release, tmp_path, caplog):
    from release_layouts import is_generator_weight, layout_variables, read_layout

    variables = layout_variables(release, seed=3)
    directory = write_layout_checkpoint(tmp_path / "snapshot", variables)
    reader = tf.train.load_checkpoint(str(directory / "snap-0"))
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
    assert {n: (dtypes[n].as_numpy_dtype, tuple(shapes[n])) for n in shapes} == {
        n: (d.type, s) for n, d, s in read_layout(release)
    }  # exactly the release's names, dtypes and shapes
    data = directory / "snap-0.data-00000-of-00001"
    if LAYOUT_CASES[release] is not None:
        assert data.stat().st_size == LAYOUT_CASES[release]

    arch = release.split(".")[0]
    with caplog.at_level("INFO", logger="inpaint_cli"):
        entry = convert_checkpoint(directory, arch=arch, out=tmp_path / "x.safetensors")
    # Random values: not the release's bytes, and said so.
    assert entry["name"] == f"{arch}.x" and entry["release"] is None
    said = [r for r in caplog.records if r.name == "inpaint_cli"]
    assert [r.levelname for r in said] == ["WARNING"]
    assert f"not one of the authors' released {arch} checkpoints" in said[0].getMessage()
    state = read_checkpoint(tmp_path / "x.safetensors").state_dict
    from_file = {
        np.ascontiguousarray(v.transpose(3, 2, 0, 1) if v.ndim == 4 else v).tobytes()
        for n, v in variables.items()
        if is_generator_weight(n)
    }
    assert len(state) == 84 and {t.numpy().tobytes() for t in state.values()} == from_file
