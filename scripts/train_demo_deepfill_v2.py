"""Train the small demo DeepFill v2 checkpoint that ships in the package (until `inpaint train` exists).

    python scripts/train_demo_deepfill_v2.py --minutes 12 --out inpaint_cli/weights/deepfill_v2_demo.safetensors

A few minutes of the paper's recipe (MODELS.md §4.4-4.5: L1 on both stages + SN-PatchGAN hinge, Adam
1e-4 (0.5, 0.999), one D step per G step, brush ∪ box masks; GAN weight 0.1, the spec's fallback, so
that L1 leads in so short a run) on 128² crops of the training split of
../shared/data (photos and textures; files listed in each val.txt are never read). It proves the whole
path — training, safetensors with arch metadata, weights.toml, `inpaint fill` — and is labelled a demo:
it is far from converged. It prints the hole PSNR of the result and of Telea on the photo validation
images with seeded masks, so the label can say how it compares.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from inpaint_cli.engine import Inpainter
from inpaint_cli.io import read_image
from inpaint_cli.masks import mixed_mask
from inpaint_cli.models.deepfill_v2 import DeepFillV2Recipe
from inpaint_cli.registry import create_model
from inpaint_cli.weights import save_checkpoint

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def split(folder: Path) -> tuple[list[Path], list[Path]]:
    val_names = set((folder / "val.txt").read_text().split())
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [p for p in files if p.name not in val_names], [p for p in files if p.name in val_names]


def load_scaled(path: Path, short_side: int) -> np.ndarray:
    rgb = read_image(path).rgb()
    scale = short_side / min(rgb.shape[:2])
    if scale < 1:
        rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return rgb


def batch(
    images: list[np.ndarray], size: int, count: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    crops, masks = [], []
    for _ in range(count):
        image = images[int(rng.integers(len(images)))]
        top = int(rng.integers(0, image.shape[0] - size + 1))
        left = int(rng.integers(0, image.shape[1] - size + 1))
        crop = image[top : top + size, left : left + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crops.append(np.ascontiguousarray(crop))
        masks.append(mixed_mask(size, size, rng))
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)
    m = torch.from_numpy(np.stack(masks)).float()[:, None]
    return x.contiguous(memory_format=torch.channels_last), m


def hole_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    mse = float(np.mean((a[mask] - b[mask]) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=12)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--short-side", type=int, default=256, help="images are downscaled to this first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--gan-weight",
        type=float,
        default=0.1,
        help="the paper uses 1.0; 0.1 (mmagic, MODELS.md §4.4 fallback) lets L1 lead in a short run",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    sets = {name: split(DATA / name) for name in ("photos", "textures") if (DATA / name).is_dir()}
    train_files = [p for train, _ in sets.values() for p in train]
    print(f"loading {len(train_files)} training images", file=sys.stderr)
    images = [load_scaled(p, args.short_side) for p in train_files]
    images = [im for im in images if min(im.shape[:2]) >= args.size]

    generator = create_model("deepfill_v2").train().to(memory_format=torch.channels_last)
    trainer = DeepFillV2Recipe(generator, gan_weight=args.gan_weight)
    trainer.networks["discriminator"].train().to(memory_format=torch.channels_last)
    start, step, log_every = time.time(), 0, 20
    while time.time() - start < args.minutes * 60:
        images01, mask = batch(images, args.size, args.batch, rng)
        losses = trainer.train_step(images01, mask, step)
        step += 1
        if step % log_every == 0:
            rate = step / (time.time() - start)
            terms = "  ".join(f"{name} {value:.4f}" for name, value in losses.items())
            print(f"step {step}  {rate:.2f} it/s  {terms}", file=sys.stderr)
    wall = time.time() - start
    generator.eval()

    # Validation: the photo val split, 256 px short side, one seeded mixed mask each.
    val_rng = np.random.default_rng(1000)
    ours, telea = [], []
    fill_ours = Inpainter(generator, device="cpu")
    fill_telea = Inpainter(create_model("telea"), device="cpu")
    for path in sets["photos"][1]:
        rgb = load_scaled(path, 256)
        mask = mixed_mask(*rgb.shape[:2], val_rng)
        ours.append(hole_psnr(fill_ours.fill(rgb, mask).rgb, rgb, mask))
        telea.append(hole_psnr(fill_telea.fill(rgb, mask).rgb, rgb, mask))
    val = {
        "val_hole_psnr": round(float(np.mean(ours)), 2),
        "telea_val_hole_psnr": round(float(np.mean(telea)), 2),
    }

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    provenance = {
        "recipe": "deepfill_v2 (MODELS.md §4.4-4.5), demo length",
        "steps": step,
        "batch": args.batch,
        "crop": args.size,
        "wall_time_s": round(wall),
        "device": "cpu",
        "seed": args.seed,
        "data": {
            name: {"train_images": len(train), "licences": f"see ../shared/data/{name}/manifest.csv"}
            for name, (train, _) in sets.items()
        },
        "commit": commit,
        **val,
    }
    save_checkpoint(args.out, generator, provenance=provenance, dtype=torch.float16)
    print(json.dumps({"out": str(args.out), **provenance}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
