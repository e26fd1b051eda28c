"""The benchmark runner: seeded quality runs, CIs, failures, speed, writers and the contact sheet."""

from __future__ import annotations

import csv
import dataclasses
import io as stdio
import json
import math
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from inpaint_cli import bench
from inpaint_cli.bench import BenchmarkConfig, run_benchmark
from inpaint_cli.bench.cases import Case, grid_case_indices
from inpaint_cli.engine import Inpainter
from inpaint_cli.errors import InpaintError, UsageError
from inpaint_cli.grid import LABEL_HEIGHT
from inpaint_cli.io import read_image, write_image
from inpaint_cli.masks import generate_mask_set
from inpaint_cli.models.base import InpaintModel
from inpaint_cli.registry import InputContract, create_model, register

_WEIGHTLESS = InputContract(trainable=False, needs_weights=False)


@register("test_bench_broken", contract=_WEIGHTLESS, summary="test-only: raises when asked to fill")
class BrokenModel(InpaintModel):
    def inpaint(self, image, mask, *, generator=None):
        raise RuntimeError("kaboom\nsecond line")


@register(
    "test_bench_sampler",
    contract=InputContract(trainable=False, needs_weights=False, can_sample=True),
    summary="test-only: fills holes with seeded noise",
)
class NoiseSampler(InpaintModel):
    def inpaint(self, image, mask, *, generator=None):
        return torch.rand(image.shape, generator=generator, dtype=torch.float32).to(image.dtype)


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny images: extra intra-op threads only add synchronisation (and thrash on a shared CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Three small textured 8-bit images, not square (so the centre crop has work to do)."""
    folder = tmp_path_factory.mktemp("photos")
    y, x = np.mgrid[0:72, 0:88].astype(np.float32)
    for index in range(3):
        rgb = np.stack(
            [0.5 + 0.4 * np.sin(x / (4 + index)), 0.5 + 0.3 * np.cos(y / 6), ((x + 2 * y) % 23) / 23], axis=-1
        )
        write_image(folder / f"photo{index}.png", np.round(rgb * 255).astype(np.uint8))
    return folder


def _quality_config(photos: Path, models: list[str], **overrides) -> BenchmarkConfig:
    settings = dict(
        models=models,
        data=photos,
        size=64,
        buckets=[(0.15, 0.30)],
        kinds=["strokes", "box"],
        seed=3,
        speed=False,
        samples=3,
    )
    settings.update(overrides)
    return BenchmarkConfig(**settings)


@pytest.fixture(scope="module")
def report(photos) -> bench.BenchmarkReport:
    return run_benchmark(_quality_config(photos, ["telea", "ns"]))


def _row(report: bench.BenchmarkReport, model: str, kind: str, bucket: str) -> bench.QualityRow:
    return next(r for r in report.quality if (r.model, r.kind, r.bucket) == (model, kind, bucket))


def test_same_seed_same_numbers(photos, report) -> None:
    again = run_benchmark(_quality_config(photos, ["telea", "ns"]))
    assert again.case_scores == report.case_scores  # exact equality, not approx
    assert again.quality == report.quality
    other = run_benchmark(_quality_config(photos, ["telea"], seed=4))
    telea = [c for c in report.case_scores if c["model"] == "telea"]
    assert [c["hole_ratio"] for c in other.case_scores] != [c["hole_ratio"] for c in telea]


def test_quality_rows_and_confidence_intervals(report) -> None:
    assert report.quality_models == ["telea", "ns"]
    assert report.environment["images"] == 3 and report.environment["cases"] == 6
    # One bucket per kind: rows per kind × bucket and the overall row (no repeated per-kind pool).
    assert {(r.model, r.kind, r.bucket) for r in report.quality} == {
        (m, k, b) for m in ("telea", "ns") for k, b in (("strokes", "15-30"), ("box", "15-30"), ("all", "all"))
    }
    for row in report.quality:
        assert row.n == (6 if row.kind == "all" else 3)
        assert 0.15 <= row.hole_ratio < 0.30
        assert set(row.metrics) == set(bench.QUALITY_METRICS)
        for name, stat in row.metrics.items():
            assert stat.n == row.n and stat.ci95 is not None and stat.ci95 >= 0, name
            values = [c[name] for c in report.case_scores if c["model"] == row.model and row.kind in ("all", c["kind"])]
            assert stat.mean == pytest.approx(np.mean(values))
            assert stat.ci95 == pytest.approx(
                bench.t_quantile_975(row.n - 1) * np.std(values, ddof=1) / math.sqrt(row.n)
            )
        assert 0 < row.metrics["ssim_hole"].mean <= row.metrics["ssim"].mean <= 1
        assert row.metrics["psnr_hole"].mean < row.metrics["psnr"].mean  # known pixels are exact
        assert row.metrics["l1"].mean < row.metrics["l1_hole"].mean
    telea, ns = _row(report, "telea", "all", "all"), _row(report, "ns", "all", "all")
    assert telea.metrics["psnr_hole"].mean != ns.metrics["psnr_hole"].mean


def test_t_quantiles_and_summary() -> None:
    assert bench.t_quantile_975(1) == 12.706
    assert bench.t_quantile_975(30) == 2.042
    assert bench.t_quantile_975(40) == pytest.approx(2.021, abs=1e-3)
    assert bench.t_quantile_975(120) == pytest.approx(1.980, abs=1e-3)
    assert bench.t_quantile_975(10**6) == pytest.approx(1.960, abs=1e-3)
    stat = bench.summarize([1.0, 2.0, 3.0])
    assert (stat.mean, stat.n) == (2.0, 3) and stat.ci95 == pytest.approx(4.303 / math.sqrt(3))
    assert bench.summarize([5.0]).ci95 is None
    assert bench.summarize([1.0, math.inf]).ci95 is None


def test_val_txt_selects_images(photos, tmp_path) -> None:
    for name in ("photo0.png", "photo2.png"):
        (tmp_path / name).write_bytes((photos / name).read_bytes())
    (tmp_path / "photo1.png").write_bytes((photos / "photo1.png").read_bytes())
    (tmp_path / "val.txt").write_text("photo2.png\n\nphoto0.png\n")
    images = bench.benchmark_images(tmp_path, 32)
    assert [name for name, _ in images] == ["photo0.png", "photo2.png"]
    rgb = images[0][1]
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.float32
    assert np.array_equal(rgb, np.round(rgb * 255) / 255)  # on the 8-bit grid
    (tmp_path / "val.txt").write_text("photo9.png\n")
    with pytest.raises(InpaintError, match=r"photo9\.png"):
        bench.benchmark_images(tmp_path, 32)


def _held_out_folder(photos: Path, root: Path) -> Path:
    """A make_data.sh-like folder: two sets as subfolders, lists naming files relative to the folder."""
    for set_name, names in (("photos", ("a.png", "b.png", "c.png")), ("textures", ("d.png", "e.png"))):
        (root / set_name).mkdir(parents=True)
        for index, name in enumerate(names):
            (root / set_name / name).write_bytes((photos / f"photo{index % 3}.png").read_bytes())
    (root / "val.txt").write_text("photos/b.png\ntextures/e.png  # a comment\n")
    (root / "test.txt").write_text("# report split\nphotos/a.png\n\ntextures/d.png\nphotos/c.png\n")
    return root


def _scored(report: bench.BenchmarkReport) -> set[str]:
    return {case["image"] for case in report.case_scores}


def test_test_txt_is_scored_and_val_txt_only_without_it(photos, tmp_path) -> None:
    data = _held_out_folder(photos, tmp_path / "data")
    config = _quality_config(data, ["telea"], size=32, kinds=["box"])
    report = run_benchmark(config)
    assert _scored(report) == {"a.png", "c.png", "d.png"} and report.environment["images"] == 3
    assert report.config.split == "test.txt" and report.to_dict()["config"]["split"] == "test.txt"
    assert "listed in `test.txt`" in bench.markdown_report(report)
    assert config.split is None  # the caller's config is left alone

    override = run_benchmark(dataclasses.replace(config, split="val.txt"))
    assert _scored(override) == {"b.png", "e.png"} and override.config.split == "val.txt"

    (data / "test.txt").unlink()
    report = run_benchmark(config)
    assert _scored(report) == {"b.png", "e.png"} and report.config.split == "val.txt"

    (data / "val.txt").unlink()
    assert [name for name, _ in bench.benchmark_images(data / "photos", 16)] == ["a.png", "b.png", "c.png"]
    assert bench.split_file(data / "photos") is None


def test_split_errors_name_the_file(photos, tmp_path) -> None:
    data = _held_out_folder(photos, tmp_path / "data")
    (data / "test.txt").write_text("photos/a.png\nphotos/gone.png\n")
    with pytest.raises(InpaintError, match=r"test\.txt:2: lists photos/gone\.png, which is not in"):
        bench.benchmark_images(data, 16)
    with pytest.raises(UsageError, match=r"^--split nope\.txt: .*nope\.txt is not a file"):
        run_benchmark(_quality_config(data, ["telea"], split="nope.txt"))
    (data / "test.txt").write_text("# nothing\n\n")
    with pytest.raises(InpaintError, match=r"test\.txt: lists no images"):
        bench.benchmark_images(data, 16)


def _shared_tree(photos: Path, root: Path, held_out: dict[str, list[str]]) -> Path:
    """A ../shared/data-like tree: one folder per set with its images, manifest and val.txt."""
    for set_name, names in held_out.items():
        folder = root / set_name
        folder.mkdir(parents=True)
        (folder / "manifest.csv").write_text("file,licence\n")
        for name in [*names, f"{set_name}_train.png"]:
            (folder / name).write_bytes((photos / "photo0.png").read_bytes())
        (folder / "val.txt").write_text("# held out\n\n" + "\r\n".join(reversed(names)) + "\n")
    return root


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX sh")
def test_make_data_splits_held_out_files_into_val_and_test(photos, tmp_path) -> None:
    script = Path(__file__).resolve().parents[1] / "training" / "make_data.sh"
    held_out = {"photos": [f"p{i}.png" for i in range(5)], "textures": ["t0.png", "t1.png"]}
    shared = _shared_tree(photos, tmp_path / "shared", held_out)
    out = tmp_path / "out"

    def make() -> tuple[list[str], list[str], str]:
        done = subprocess.run(["sh", str(script), str(shared), str(out)], capture_output=True, text=True, check=True)
        assert done.stdout.strip() == str(out)
        return (out / "val.txt").read_text().splitlines(), (out / "test.txt").read_text().splitlines(), done.stderr

    val, test, stderr = make()
    union = {f"{set_name}/{name}" for set_name, names in held_out.items() for name in names}
    assert set(val) | set(test) == union and not set(val) & set(test)
    assert len(val) + len(test) == len(union)
    for set_name in held_out:
        assert any(name.startswith(f"{set_name}/") for name in val), set_name
        assert any(name.startswith(f"{set_name}/") for name in test), set_name
    assert test[:3] == ["photos/p0.png", "photos/p2.png", "photos/p4.png"]  # sorted, first to test
    assert val[:2] == ["photos/p1.png", "photos/p3.png"]
    assert "photos: 5 held out: 3 in test.txt, 2 in val.txt" in stderr
    assert (out / "photos").is_symlink() and (out / "photos" / "manifest.csv").is_file()
    assert sorted(path.name for path in out.iterdir()) == ["photos", "test.txt", "textures", "val.txt"]  # no tmp
    assert make()[:2] == (val, test)  # deterministic, and rerunnable over its own output
    # The benchmark's default on that folder is its held-out test images (test.txt).
    assert [name for name, _ in bench.benchmark_images(out, 16)] == sorted(name.split("/")[1] for name in test)


def test_bad_input_is_one_line_usage_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="--buckets"):
        bench.parse_buckets("5-15,oops")
    assert bench.parse_buckets("5-15, 15-30") == [(0.05, 0.15), (0.15, 0.30)]
    assert bench.parse_sizes("256,512") == [256, 512]
    with pytest.raises(UsageError, match="--speed-sizes"):
        bench.parse_sizes("256,big")
    with pytest.raises(UsageError, match="--kinds"):
        run_benchmark(BenchmarkConfig(models=["telea"], data=tmp_path, kinds=["blob"], speed=False))
    with pytest.raises(UsageError, match="--data"):
        run_benchmark(BenchmarkConfig(models=["telea"], speed=False))
    with pytest.raises(InpaintError, match="no images"):
        run_benchmark(BenchmarkConfig(models=["telea"], data=tmp_path, speed=False))


def test_failing_models_are_reported_and_the_others_run(photos, tmp_path) -> None:
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"not a checkpoint")
    models = ["test_bench_broken", "telea", str(damaged)]
    report = run_benchmark(_quality_config(photos, models, kinds=["box"]))
    failures = {f.model: f for f in report.failures}
    assert set(failures) == {"test_bench_broken", str(damaged)}
    assert failures["test_bench_broken"].error == "RuntimeError: kaboom"
    assert str(damaged) in failures[str(damaged)].error
    assert report.quality_models == ["telea"]
    assert {row.model for row in report.quality} == {"telea"}


def test_unknown_model_names_are_refused_before_any_model_runs(photos) -> None:
    with pytest.raises(UsageError, match=r"^--models no_such_model: unknown model 'no_such_model'"):
        run_benchmark(_quality_config(photos, ["telea", "no_such_model"], kinds=["box"]))
    with pytest.raises(UsageError, match=r"^--models nz: unknown model 'nz'; did you mean ns\? \("):
        BenchmarkConfig.from_flags(
            models="telea,nz", buckets="5-15", kinds="box", speed_sizes="256", data=photos, speed=False
        )


def test_sampling_models_report_diversity(photos) -> None:
    config = _quality_config(photos, ["test_bench_sampler"], kinds=["box"], n_images=2)
    first, second = run_benchmark(config), run_benchmark(config)
    row = _row(first, "test_bench_sampler", "all", "all")
    assert row.metrics["diversity"].mean > 0.1  # independent uniform noise: mean |a - b| = 1/3
    assert first.case_scores == second.case_scores
    # Diversity from noise shows as such beside it: every sample's fill is poor, in PSNR and in texture.
    assert row.metrics["samples_psnr_hole"].mean < 12.0, row.metrics["samples_psnr_hole"]
    assert row.metrics["samples_texture_distance"].mean > 500, row.metrics["samples_texture_distance"]
    telea = _row(run_benchmark(_quality_config(photos, ["telea"], kinds=["box"], n_images=2)), "telea", "all", "all")
    assert "samples_psnr_hole" not in telea.metrics
    assert telea.metrics["texture_distance"].mean < 0.7 * row.metrics["samples_texture_distance"].mean


def test_masks_dir_replaces_generated_buckets(photos, tmp_path) -> None:
    generate_mask_set(tmp_path / "masks" / "wide", "box", 0.30, 0.45, 2, 64, 64, seed=1)
    generate_mask_set(tmp_path / "masks" / "thin", "strokes", 0.05, 0.15, 2, 32, 32, seed=1)  # resized to 64
    cases = bench.benchmark_cases(_quality_config(photos, ["telea"], masks_dir=tmp_path / "masks"), 3)
    assert [(c.kind, c.bucket, c.image_index) for c in cases] == [
        ("strokes", "5-15", 0),
        ("strokes", "5-15", 1),
        ("box", "30-45", 0),
        ("box", "30-45", 1),
    ]
    assert all(c.mask.shape == (64, 64) for c in cases)


def test_speed_run_for_telea() -> None:
    config = BenchmarkConfig(models=["telea"], quality=False, speed_sizes=[32], repeats=1, warmup=0, batch=2, threads=1)
    report = run_benchmark(config)
    assert not report.failures
    (row,) = report.speed
    assert (row.model, row.size, row.precision, row.batch) == ("telea", 32, "fp32", 2)
    assert row.median_s > 0 and row.p90_s >= row.median_s and row.throughput > 0
    assert row.gflop_per_image is None and row.achieved_gflops is None and row.fraction_of_reference is None
    assert row.memory_peak_mb is not None and row.memory_peak_mb >= row.memory_loaded_mb > 0  # fresh process
    assert "n/a" in bench.markdown_report(report)


def test_fill_batch_matches_fill() -> None:
    inpainter = Inpainter(create_model("telea"), device="cpu")
    rng = np.random.default_rng(0)
    rgbs = [np.round(rng.random((24, 20, 3), dtype=np.float32) * 255) / 255 for _ in range(2)]
    masks = [np.zeros((24, 20), bool) for _ in range(2)]
    masks[0][4:10, 5:9] = True
    masks[1][12:20, 2:15] = True
    batched = inpainter.fill_batch(rgbs, masks)
    for rgb, mask, result in zip(rgbs, masks, batched, strict=True):
        assert np.array_equal(result.rgb, inpainter.fill(rgb, mask, strategy="full").rgb)
    with pytest.raises(UsageError):
        inpainter.fill_batch(rgbs, [masks[0], masks[1][:10]])


def test_writers(report, tmp_path) -> None:
    report.to_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["config"]["buckets"] == ["15-30"] and data["config"]["models"] == ["telea", "ns"]
    assert len(data["quality"]) == len(report.quality) and len(data["cases"]) == 12
    assert data["quality"][0]["metrics"]["psnr_hole"].keys() == {"mean", "ci95", "n"}

    report.to_csv(tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    psnr = next(r for r in rows if (r["model"], r["kind"], r["metric"]) == ("ns", "box", "psnr_hole"))
    assert float(psnr["value"]) == _row(report, "ns", "box", "15-30").metrics["psnr_hole"].mean
    assert float(psnr["ci95"]) > 0

    report.to_markdown(tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text()
    assert "## Quality: strokes masks, 64²" in text and "## Quality: box masks, 64²" in text
    assert "| 15-30 | telea | 3 |" in text

    console = Console(file=stdio.StringIO(), width=200)
    for table in bench.render_tables(report):
        console.print(table)
    assert "PSNR hole" in console.file.getvalue()


def test_grid_layout(report, tmp_path) -> None:
    bench.write_grid(report, tmp_path / "grid.png", cell=40)
    sheet = read_image(tmp_path / "grid.png").pixels
    # All 6 cases (under the 16-row limit), ordered by group; truth, masked input, telea, ns.
    rows, columns, gap = 6, 2 + 2, 4
    assert sheet.shape == (LABEL_HEIGHT + rows * (40 + gap) + gap, columns * 40 + (columns + 1) * gap, 3)
    assert [grid.case.kind for grid in report.grid] == ["strokes"] * 3 + ["box"] * 3
    # the groups take turns walking through the 3 images: group g, turn j shows image (g + 2j) % 3
    assert [grid.case.image_index for grid in report.grid] == [0, 2, 1, 1, 0, 2]


def test_grid_cases_are_shared_out_between_groups() -> None:
    cases = [
        Case(
            index=i,
            image=f"{image}.png",
            image_index=image,
            kind=kind,
            bucket=bucket,
            mask_index=0,
            mask=np.zeros((4, 4), bool),
            hole_ratio=0.1,
        )
        for i, (kind, bucket, image) in enumerate(
            (k, b, image) for k in ("strokes", "box") for b in ("5-15", "15-30") for image in range(5)
        )
    ]
    chosen = grid_case_indices(cases, 6, 5)
    by_group = [(cases[i].kind, cases[i].bucket) for i in chosen]
    assert by_group == [("strokes", "5-15")] * 2 + [("strokes", "15-30")] * 2 + [("box", "5-15"), ("box", "15-30")]
    assert [cases[i].image_index for i in chosen] == [0, 4, 1, 0, 2, 3]


def test_markdown_fills_the_marked_block_of_a_page(report, tmp_path) -> None:
    page = tmp_path / "README.md"
    original = (Path(__file__).resolve().parents[1] / "benchmarks" / "README.md").read_text()
    page.write_text(original)
    report.to_markdown(page)
    text = page.read_text()
    head, tail = original.split(bench.MARKDOWN_BEGIN)[0], original.split(bench.MARKDOWN_END)[1]
    assert text.startswith(head + bench.MARKDOWN_BEGIN) and text.endswith(bench.MARKDOWN_END + tail)
    assert "## Latest run" in text and "### Quality: box masks, 64²" in text
    assert "Numbers to be filled" not in text


def test_all_models_expands_to_the_catalog() -> None:
    assert {"telea", "ns"} <= set(bench.expand_models(["all"]))
    assert bench.expand_models(["ns", "telea", "ns"]) == ["ns", "telea"]


def test_gpu_check_runs_its_checks_on_a_cpu() -> None:
    # benchmarks/gpu_check.py is meant for a CUDA machine; its checks run the same on a CPU.
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    assert gpu_check.check_fallback("cpu") == {"precision": "fp32", "ok": True}
    record = gpu_check.check_model("glcic", "cpu", 64)
    assert record["ok"] and record["half"]["precision"] == "bf16" and record["fp32"]["channels_last"]
    assert record["half_vs_fp32_hole_psnr_db"] > 20
    row = gpu_check.time_model("telea", "cpu", 64, False, 1)
    assert row["median_s"] > 0 and row["peak_memory_mb"] is None
