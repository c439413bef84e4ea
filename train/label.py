"""`homeloc-train label`: pseudo ground-truth keypoints for real images by homographic adaptation."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from homeloc.models import postprocess as pp
from homeloc.models.keypoints import KeypointNet
from homeloc.runtime.io import atomic_write, list_images, read_image
from homeloc.train.teachers import homographic_adaptation


def label_images(
    checkpoint: str | Path,
    images: str | Path,
    out: str | Path,
    num_homographies: int = 32,
    max_keypoints: int = 1024,
    nms_radius: int = 4,
    threshold: float = 0.015,
    max_side: int = 640,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Aggregate detections of `checkpoint` over random homographies for every image under `images`.

    Writes OUT/<relative path>.npz (keypoints float32 N×2 in the image's own pixels, scores N),
    skipping finished files unless overwrite (so a killed run resumes); returns OUT/labels.json.
    """
    net = KeypointNet.from_checkpoint(checkpoint).eval()
    files = list_images(images)
    out, images = Path(out), Path(images)
    rng = np.random.default_rng(seed)
    counts = {}
    for f in tqdm(files, desc="homographic adaptation", unit="img"):
        rel = f.relative_to(images)
        target = out / rel.with_suffix(rel.suffix + ".npz")
        if target.exists() and not overwrite:
            counts[str(rel)] = int(np.load(target)["keypoints"].shape[0])
            continue
        img = read_image(f, gray=True)
        s = min(1.0, max_side / max(img.shape))
        x = torch.from_numpy(img).float()[None, None] / 255
        if s < 1:
            x = F.interpolate(x, scale_factor=s, mode="area")
        h, w = x.shape[-2:]
        x = F.pad(x, (0, (-w) % 8, 0, (-h) % 8), mode="replicate")
        with torch.no_grad():
            heat = homographic_adaptation(net, x, num_homographies, rng)[:, 0, :h, :w]
        heat = pp.remove_borders(pp.nms(heat, nms_radius), 4)
        kpts, scores = pp.topk_keypoints(heat, max_keypoints, threshold)[0]
        kpts = kpts.numpy() / s
        buf = io.BytesIO()
        np.savez(buf, keypoints=kpts.astype(np.float32), scores=scores.numpy().astype(np.float32))
        atomic_write(target, buf.getvalue())
        counts[str(rel)] = len(kpts)
    summary = {
        "checkpoint": str(checkpoint),
        "images": str(images),
        "num_homographies": num_homographies,
        "max_keypoints": max_keypoints,
        "threshold": threshold,
        "keypoints_per_image": counts,
    }
    return atomic_write(out / "labels.json", json.dumps(summary, indent=1))
