"""The engine: padding to the contract, strategies, compositing, precision and its fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaint_cli.engine import Inpainter, hole_windows, pad_bottom_right
from inpaint_cli.errors import InpaintError, UsageError
from inpaint_cli.models.base import InpaintModel
from inpaint_cli.registry import InputContract, create_model, register


@register(
    "test_nan_in_half",
    contract=InputContract(pad_multiple=1, trainable=False, needs_weights=False),
    summary="test-only: NaN in low precision, 0.5 in fp32",
)
class NanInHalf(InpaintModel):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))

    def inpaint(self, image, mask, *, generator=None):
        value = 0.5 if image.dtype == torch.float32 else float("nan")
        return torch.full_like(image, value) * self.weight


def test_full_pads_to_multiple_and_keeps_known_pixels(smooth_rgb):
    rgb = smooth_rgb[:61, :90].copy()
    mask = np.zeros((61, 90), bool)
    mask[20:30, 40:55] = True
    model = create_model("test_probe")
    result = Inpainter(model, device="cpu", blend="none").fill(rgb, mask, strategy="full")
    ((image, hole),) = model.calls
    assert tuple(image.shape) == (1, 3, 64, 96)  # padded up to multiples of 8
    assert hole.sum().item() == mask.sum()
    assert result.strategy == "full" and result.windows == 1
    assert np.array_equal(result.rgb[~mask], rgb[~mask])  # bit-exact, not just close
    assert np.all(result.rgb[mask] == np.float32(0.25))


def test_reflect_padding_mirrors_holes_at_the_border():
    rgb = np.zeros((6, 6, 3), np.float32)
    mask = np.zeros((6, 6), bool)
    mask[5, 0] = True  # touches the bottom edge
    padded_rgb, padded_mask = pad_bottom_right(rgb[None], mask[None], 2, 2)
    padded_rgb, padded_mask = padded_rgb[0], padded_mask[0]
    assert padded_rgb.shape == (8, 8, 3)
    assert padded_mask[5, 0] and padded_mask.sum() == 1  # rows/cols 6, 7 mirror 4, 3: row 5, col 0 stay single
    # REFLECT_101: row 6 mirrors row 4, row 7 mirrors row 3 -> the hole at row 5 is not duplicated,
    # but a hole at row 4 would be; check that case explicitly.
    mask[:] = False
    mask[4, 2] = True
    _, padded = pad_bottom_right(rgb[None], mask[None], 2, 2)
    padded_mask = padded[0]
    assert padded_mask[6, 2] and padded_mask.sum() == 2


def test_auto_crops_around_each_hole_on_large_images(rng):
    rgb = rng.random((300, 400, 3), dtype=np.float32)
    mask = np.zeros((300, 400), bool)
    mask[10:20, 10:20] = True
    mask[250:270, 350:380] = True
    model = create_model("test_probe")  # comfortable_size 64
    result = Inpainter(model, device="cpu", blend="none").fill(rgb, mask)
    assert result.strategy == "crop"
    assert result.windows == 2 and len(model.calls) == 2
    for image, hole in model.calls:
        assert max(image.shape[-2:]) <= 64  # each window was resized down to the comfortable size
        assert hole.sum() > 0
    assert np.array_equal(result.rgb[~mask], rgb[~mask])
    # Away from the hole's border the fill is the model's; along it, it blends into the known pixels.
    assert np.allclose(result.rgb[14:16, 14:16], 0.25, atol=1e-6)
    assert np.allclose(result.rgb[258:262, 362:368], 0.25, atol=1e-6)


def test_hole_windows_group_close_holes_and_cover_every_hole():
    mask = np.zeros((500, 500), bool)
    mask[100:110, 100:110] = True
    mask[100:110, 130:140] = True  # within the margin: same window
    mask[400:420, 400:420] = True
    windows = hole_windows(mask, 256)
    assert len(windows) == 2
    covered = np.zeros_like(mask)
    for top, left, bottom, right, region in windows:
        covered[top:bottom, left:right] |= region
        rows, cols = np.nonzero(region)
        # at least the context margin (64 px) around the holes, unless the image border cuts it
        assert rows.min() >= 64 and cols.min() >= 64
        assert bottom - top - rows.max() > 64 or bottom == 500
    assert np.array_equal(covered, mask)


def test_resize_strategy_runs_at_working_size(rng):
    rgb = rng.random((128, 256, 3), dtype=np.float32)
    mask = np.zeros((128, 256), bool)
    mask[40:90, 100:180] = True
    model = create_model("test_probe")
    result = Inpainter(model, device="cpu").fill(rgb, mask, strategy="resize")
    ((image, _),) = model.calls
    assert tuple(image.shape[-2:]) == (32, 64)
    assert result.strategy == "resize"
    assert np.array_equal(result.rgb[~mask], rgb[~mask])


def test_empty_mask_copies_and_full_mask_is_an_error(smooth_rgb):
    inpainter = Inpainter(create_model("test_probe"), device="cpu")
    empty = np.zeros(smooth_rgb.shape[:2], bool)
    result = inpainter.fill(smooth_rgb, empty)
    assert result.windows == 0 and np.array_equal(result.rgb, smooth_rgb)
    with pytest.raises(InpaintError, match="covers the whole image"):
        inpainter.fill(smooth_rgb, ~empty, source="photo.png")
    with pytest.raises(UsageError):
        inpainter.fill(smooth_rgb, empty, strategy="tiles")  # type: ignore[arg-type]


def test_half_is_bf16_on_cpu_and_falls_back_to_fp32_on_nan(smooth_rgb, caplog):
    mask = np.zeros(smooth_rgb.shape[:2], bool)
    mask[10:20, 10:20] = True
    probe = create_model("test_probe")
    inpainter = Inpainter(probe, device="cpu", blend="none", half=True)
    assert inpainter.precision == "bf16"
    inpainter.fill(smooth_rgb, mask, strategy="full")
    assert inpainter.model.calls[-1][0].dtype == torch.bfloat16

    result = Inpainter(create_model("test_nan_in_half"), device="cpu", blend="none", half=True).fill(smooth_rgb, mask)
    assert result.precision == "fp32"
    assert np.all(result.rgb[mask] == np.float32(0.5))
    assert "recomputed in fp32" in caplog.text


@register(
    "test_fixed",
    contract=InputContract(fixed_size=32, hole_fraction=0.5, trainable=False, needs_weights=False),
    summary="test-only: a fixed 32×32 model",
)
class FixedProbe(InpaintModel):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[torch.Tensor] = []

    def inpaint(self, image, mask, *, generator=None):
        self.calls.append(mask.clone())
        return torch.full_like(image, 0.75)


@pytest.mark.parametrize(
    ("hole", "window_side"),
    [((slice(50, 60), slice(70, 80)), 32), ((slice(20, 60), slice(30, 70)), 80), ((slice(0, 6), slice(0, 6)), 32)],
)
def test_fixed_size_models_get_a_window_centred_on_each_hole(rng, hole, window_side):
    rgb = rng.random((100, 120, 3), dtype=np.float32)
    mask = np.zeros((100, 120), bool)
    mask[hole] = True
    model = create_model("test_fixed")
    result = Inpainter(model, device="cpu", blend="none").fill(rgb, mask, strategy="full")  # fixed size: always windows
    (seen,) = model.calls
    assert tuple(seen.shape[-2:]) == (32, 32)
    rows, cols = np.nonzero(seen[0, 0].numpy())
    scale = 32 / window_side
    if hole[0].start == 0:  # at the corner the window is reflect-padded, and the hole with it
        assert seen.sum() > mask.sum()
    else:  # the hole sits in the middle of the window, spanning at most half of it
        assert abs((rows.min() + rows.max()) / 2 - 15.5) <= 2 and abs((cols.min() + cols.max()) / 2 - 15.5) <= 2
        assert rows.max() - rows.min() + 1 <= 16 + 2 * scale
    assert np.array_equal(result.rgb[~mask], rgb[~mask])
    if window_side == 32:  # run at native size: the whole hole is the model's
        assert np.allclose(result.rgb[mask], 0.75, atol=1e-6)
    else:  # scaled: the hole's border blends into the known pixels, its inside is the model's
        assert np.allclose(result.rgb[30:50, 40:60], 0.75, atol=1e-6)


def test_same_seed_same_fill_and_windows_draw_from_one_stream():
    # The generator handed to the model is seeded once per fill.
    seen = []

    class Recorder(FixedProbe):
        def inpaint(self, image, mask, *, generator=None):
            seen.append(torch.rand(3, generator=generator))
            return torch.full_like(image, 0.75)

    mask = np.zeros((100, 120), bool)
    mask[5:10, 5:10] = mask[80:90, 100:110] = True
    rgb = np.zeros((100, 120, 3), np.float32)
    inpainter = Inpainter(Recorder(), device="cpu")
    inpainter.fill(rgb, mask, seed=7)
    inpainter.fill(rgb, mask, seed=7)
    inpainter.fill(rgb, mask, seed=8)
    first, second, again_first, again_second, other, _ = seen
    assert torch.equal(first, again_first) and torch.equal(second, again_second)
    assert not torch.equal(first, second) and not torch.equal(first, other)


# -- holes survive scaling, seams, aspect, latents per window, re-entrancy -----------------------------


class HoleAware(InpaintModel):
    """A well-behaved model: it ignores what lies under the hole, returns `known` at known pixels (the
    network's unconstrained output there) and `hole` in the holes, and records the masks it saw."""

    def __init__(self, known: float = 0.0, hole: float = 0.5) -> None:
        super().__init__()
        self.known, self.hole = known, hole
        self.masks: list[torch.Tensor] = []

    def inpaint(self, image, mask, *, generator=None):
        self.masks.append(mask.clone())
        return torch.full_like(image, self.known) * (1 - mask) + self.hole * mask


class FixedHoleAware(HoleAware):
    contract = InputContract(fixed_size=32, hole_fraction=0.5, trainable=False, needs_weights=False)


class ComfortableHoleAware(HoleAware):
    contract = InputContract(pad_multiple=8, comfortable_size=64, trainable=False, needs_weights=False)


def test_resize_hole_mask_keeps_every_hole_pixel(rng):
    from inpaint_cli.engine import resize_hole_mask

    for _ in range(20):
        src_h, src_w = (int(v) for v in rng.integers(5, 300, 2))
        height, width = (int(v) for v in rng.integers(1, 200, 2))
        mask = rng.random((src_h, src_w)) < 0.01
        small = resize_hole_mask(mask, height, width)
        rows, cols = np.nonzero(mask)
        # the target pixel each source hole pixel lands in is a hole
        assert small[rows * height // src_h, cols * width // src_w].all()
    assert not resize_hole_mask(np.zeros((50, 70), bool), 20, 30).any()


def test_a_thin_hole_survives_the_fixed_size_window(rng):
    rgb = rng.random((300, 300, 3), dtype=np.float32)
    mask = np.zeros((300, 300), bool)
    mask[100:200, 150] = mask[100:200, 154] = True  # 1-px lines: their window is 210 px, shrunk to 32
    model = FixedHoleAware()
    result = Inpainter(model, device="cpu").fill(rgb, mask)
    (seen,) = model.masks
    assert seen[0, 0].numpy().any(axis=0).sum() >= 2  # both lines are still holes at 32²
    assert seen[0, 0].numpy().any(axis=1).sum() >= 100 * 32 // 210
    # What lies under the hole never reaches the output: nothing of it entered as known.
    garbage = rgb.copy()
    garbage[mask] = rng.random((int(mask.sum()), 3), dtype=np.float32)
    again = Inpainter(FixedHoleAware(), device="cpu").fill(garbage, mask)
    assert np.array_equal(result.rgb, again.rgb)


@pytest.mark.parametrize("strategy", ["crop", "resize"])
@pytest.mark.parametrize("hole", [(slice(100, 140), slice(90, 150)), (slice(101, 141), slice(93, 151))])
def test_scaled_windows_composite_before_upscaling_so_no_seam(strategy, hole):
    # Known pixels are 1.0 and the model fills its holes with 1.0 too, but answers 0 at known pixels (its
    # unconstrained output there). Compositing at the working size first leaves nothing but 1.0 to
    # upscale; pasting the raw upscaled output would pull the hole's border towards 0 (a dark seam).
    rgb = np.ones((256, 256, 3), np.float32)
    mask = np.zeros((256, 256), bool)
    mask[hole] = True
    result = Inpainter(ComfortableHoleAware(known=0.0, hole=1.0), device="cpu").fill(rgb, mask, strategy=strategy)
    assert np.allclose(result.rgb, 1.0, atol=1e-6)


def test_resize_keeps_the_aspect_for_fixed_size_models():
    rgb = np.full((100, 200, 3), 0.3, np.float32)
    mask = np.zeros((100, 200), bool)
    mask[30:70, 80:120] = True  # a square hole
    model = FixedHoleAware()
    result = Inpainter(model, device="cpu").fill(rgb, mask, strategy="resize")
    (seen,) = model.masks
    assert seen.shape[-2:] == (32, 32)
    rows, cols = np.nonzero(seen[0, 0, :16].numpy())  # 100x200 -> 16x32, reflect-padded to 32x32
    assert (rows.min(), rows.max()) == (4, 11) and (cols.min(), cols.max()) == (12, 19)  # square, not 2:1
    assert np.array_equal(result.rgb[~mask], rgb[~mask])


class SeededNanInHalf(InpaintModel):
    """Draws a value per window from the generator; NaN in low precision (after drawing)."""

    contract = InputContract(pad_multiple=1, comfortable_size=64, trainable=False, needs_weights=False)

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))

    def inpaint(self, image, mask, *, generator=None):
        value = torch.rand((), generator=generator).item()
        if image.dtype != torch.float32:
            value = float("nan")
        return torch.full_like(image, value) * self.weight


def test_the_fp32_retry_draws_the_same_latent_in_every_window(rng):
    rgb = rng.random((300, 300, 3), dtype=np.float32)
    mask = np.zeros((300, 300), bool)
    mask[10:20, 10:20] = mask[250:270, 250:270] = True  # two windows
    fp32 = Inpainter(SeededNanInHalf(), device="cpu").fill(rgb, mask, seed=3)
    half = Inpainter(SeededNanInHalf(), device="cpu", half=True).fill(rgb, mask, seed=3)
    assert half.precision == "fp32" and half.windows == 2
    assert np.array_equal(half.rgb, fp32.rgb)


def test_fill_samples_equal_single_seeded_fills_of_piigan(rng):
    inpainter = Inpainter(create_model("piigan"), device="cpu", batch_pixels=2 * 64 * 64)  # chunks of 2
    rgb = rng.random((64, 64, 3), dtype=np.float32)
    mask = np.zeros((64, 64), bool)
    mask[20:40, 16:48] = True
    samples = inpainter.fill_samples(rgb, mask, [5, 6, 7])
    for seed, sample in zip([5, 6, 7], samples, strict=True):
        assert np.allclose(sample.rgb, inpainter.fill(rgb, mask, seed=seed).rgb, atol=1e-5)
    assert not np.allclose(samples[0].rgb, samples[1].rgb)


def test_one_inpainter_fills_from_two_threads_at_once(rng):
    import threading

    barrier = threading.Barrier(2, timeout=10)

    class Interleaving(FixedProbe):
        def inpaint(self, image, mask, *, generator=None):
            if threading.current_thread().name.startswith("fill-") and not getattr(self._local, "waited", False):
                self._local.waited = True
                barrier.wait()  # both threads are inside their first window here
            return torch.full_like(image, torch.rand((), generator=generator).item())

    model = Interleaving()
    model._local = threading.local()
    inpainter = Inpainter(model, device="cpu")
    rgb = rng.random((100, 120, 3), dtype=np.float32)
    mask = np.zeros((100, 120), bool)
    mask[5:10, 5:10] = mask[80:90, 100:110] = True
    expected = {seed: inpainter.fill(rgb, mask, seed=seed) for seed in (1, 2)}
    results: dict[int, object] = {}

    def work(seed: int) -> None:
        results[seed] = inpainter.fill(rgb, mask, seed=seed)

    threads = [threading.Thread(target=work, args=(seed,), name=f"fill-{seed}") for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed in (1, 2):
        assert np.array_equal(results[seed].rgb, expected[seed].rgb)
        assert results[seed].windows == expected[seed].windows == 2


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_images_are_filled_in_their_own_dtype(rng, dtype):
    from inpaint_cli.engine import from_float, to_float

    full = np.iinfo(dtype).max
    pixels = rng.integers(0, full, (300, 400, 3), dtype=dtype, endpoint=True)
    mask = np.zeros((300, 400), bool)
    mask[10:40, 10:50] = mask[200:260, 300:380] = True
    inpainter = Inpainter(create_model("test_probe"), device="cpu")
    result = inpainter.fill(pixels, mask)  # crop windows, scaled: converted to float32 one by one
    assert result.rgb.dtype == dtype
    assert np.array_equal(result.rgb[~mask], pixels[~mask])
    as_float = inpainter.fill(to_float(pixels), mask)
    assert np.array_equal(result.rgb, from_float(as_float.rgb, np.dtype(dtype)))


# -- an overflow saturated before the output ------------------------------------------------------


class _Amplify(torch.nn.Module):
    """x * 1000: in fp16 (max 65504) 0.5 * 1000 * 1000 overflows to inf; in fp32 it is 5e5."""

    def forward(self, x):
        return x * 1000.0


@register(
    "test_inf_before_clamp",
    contract=InputContract(pad_multiple=1, trainable=False, needs_weights=False),
    summary="test-only: overflows to inf in fp16 inside the network, saturated by a clamp",
)
class InfBeforeClamp(InpaintModel):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.first, self.second = _Amplify(), _Amplify()

    def inpaint(self, image, mask, *, generator=None):
        hidden = self.second(self.first(torch.full_like(image, 0.5) * self.weight))  # 5e5, or inf in fp16
        return (hidden / 1000.0 / 1000.0).clamp(0.0, 1.0)  # 0.5 in fp32; inf / 1e6 -> clamp -> 1.0 in fp16


def test_half_falls_back_on_inf_saturated_by_a_clamp(smooth_rgb, caplog, monkeypatch):
    import inpaint_cli.engine as engine

    monkeypatch.setattr(engine, "half_dtype", lambda device: torch.float16)  # fp16 on the CPU: it overflows
    mask = np.zeros(smooth_rgb.shape[:2], bool)
    mask[10:20, 10:20] = True
    inpainter = Inpainter(create_model("test_inf_before_clamp"), device="cpu", blend="none", half=True)
    assert inpainter.precision == "fp16"
    result = inpainter.fill(smooth_rgb, mask, strategy="full")
    assert np.all(result.rgb[mask] == np.float32(0.5))  # the fp32 answer, not the saturated 1.0
    assert result.precision == "fp32" and "recomputed in fp32" in caplog.text
    # fp32 alone is fine, and hooks stay off outside half precision: no false alarm
    caplog.clear()
    plain = Inpainter(create_model("test_inf_before_clamp"), device="cpu", blend="none")
    plain = plain.fill(smooth_rgb, mask, strategy="full")
    assert np.all(plain.rgb[mask] == np.float32(0.5)) and "recomputed" not in caplog.text


# -- the memory of --strategy full ----------------------------------------------------------------


def test_full_memory_estimate_counts_the_attention_score_maps():
    torch.manual_seed(0)
    inpainter = Inpainter(create_model("deepfill_v2", cnum=8), device="cpu")
    attention_side, layer_bytes = inpainter._probe_memory()
    assert attention_side == 1 / 8  # features at 1/4 of the image, matched at rate 2
    assert layer_bytes == 8 * 4  # the largest layer output: cnum float32 channels at full size
    # 3000x2000: a 375x250 grid, two float32 score maps of 93,750² each = 70.3 GB, plus 7 x 32 B x 6 MP
    grid = 375 * 250
    expected = 2 * grid * grid * 4 + 7 * 32 * 3000 * 2000
    assert inpainter.full_memory_bytes(1, 2000, 3000) == expected
    assert inpainter.full_memory_bytes(1, 2000, 3000) > 70e9
    # a batch of 2 doubles everything; half the side: a quarter of the grid, a sixteenth of the score maps
    assert inpainter.full_memory_bytes(2, 2000, 3000) == 2 * expected
    half_side = inpainter.full_memory_bytes(1, 1000, 1504)  # a 125x188 grid
    assert half_side == 2 * (125 * 188) ** 2 * 4 + 7 * 32 * 1000 * 1504
    # odd sizes are padded to the model's multiple of 8 first
    assert inpainter.full_memory_bytes(1, 1001, 1501) == inpainter.full_memory_bytes(1, 1008, 1504)


def test_full_memory_estimate_without_attention_is_linear():
    inpainter = Inpainter(create_model("glcic"), device="cpu")
    attention_side, layer_bytes = inpainter._probe_memory()
    assert attention_side == 0 and layer_bytes > 0
    assert inpainter.full_memory_bytes(1, 2000, 3000) == 4 * inpainter.full_memory_bytes(1, 1000, 1500)


def test_full_strategy_is_refused_when_it_cannot_fit(monkeypatch):
    import inpaint_cli.fill_memory as fill_memory

    torch.manual_seed(0)
    model = create_model("deepfill_v2", cnum=8)
    inpainter = Inpainter(model, device="cpu")
    rgb = np.full((600, 800, 3), 0.5, np.float32)  # over the comfortable 512: auto would crop
    mask = np.zeros((600, 800), bool)
    mask[200:260, 300:380] = True
    needed = inpainter.full_memory_bytes(1, 600, 800)  # probed once, on a copy of the model
    assert needed == 2 * 7500**2 * 4 + 7 * 32 * 600 * 800  # a 75x100 grid: 450 MB of score maps, + 108 MB
    calls = []
    original = inpainter.model.inpaint
    monkeypatch.setattr(inpainter.model, "inpaint", lambda *a, **k: calls.append(a[0].shape) or original(*a, **k))
    monkeypatch.setattr(fill_memory, "available_memory_bytes", lambda device: needed - 1)
    with pytest.raises(
        UsageError, match=r"photo\.png: --strategy full on 800x600 needs about 0\.\d GB.*--strategy auto"
    ):
        inpainter.fill(rgb, mask, strategy="full", source="photo.png")
    assert calls == []  # refused before any model call
    # auto crops: no estimate, no refusal
    assert inpainter.fill(rgb, mask, strategy="auto").strategy == "crop"
    # enough memory, or none that can be told: it runs
    monkeypatch.setattr(fill_memory, "available_memory_bytes", lambda device: needed)
    assert inpainter.fill(rgb, mask, strategy="full").strategy == "full"
    monkeypatch.setattr(fill_memory, "available_memory_bytes", lambda device: None)
    assert inpainter.fill(rgb, mask, strategy="full").strategy == "full"


def test_available_memory_on_the_cpu_is_memavailable():
    from inpaint_cli.fill_memory import available_memory_bytes

    available = available_memory_bytes("cpu")
    assert available is not None and available > 0
    assert available_memory_bytes("mps") is None


# -- OpenCV's fills without torch tensors ------------------------------------------------------------


@pytest.mark.parametrize("arch", ["telea", "ns"])
def test_classical_fill_through_numpy_equals_the_registry_model(arch, smooth_rgb):
    from inpaint_cli.classical_fill import ClassicalFill

    mask = np.zeros(smooth_rgb.shape[:2], bool)
    mask[10:30, 20:50] = True
    mask[50:54, 60:90] = True
    through_numpy = Inpainter(ClassicalFill(arch, radius=3)).fill(smooth_rgb, mask)
    through_torch = Inpainter(create_model(arch, radius=3), device="cpu").fill(smooth_rgb, mask)
    assert np.array_equal(through_numpy.rgb, through_torch.rgb)
    assert through_numpy.precision == "fp32" and through_numpy.window_sizes == ((64, 96),)
    assert not np.array_equal(through_numpy.rgb[mask], smooth_rgb[mask])
