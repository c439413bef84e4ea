"""Training throughput benchmark (`python -m homeloc.train.bench`, part of `make bench`).

Images per second of one optimiser step (forward + backward + update) on a fixed synthesized
batch, so the number is the model's cost, not the data pipeline's (data_synthesis.bench measures
that). Keypoints: pairs at 240x320 (2 images per pair); places: 128x160. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time

import torch

from homeloc.data_synthesis.datasets import OnTheFlyPairs
from homeloc.train.keypoints import KeypointSystem
from homeloc.train.place_losses import multi_similarity_loss, pair_masks


def _pairs_batch(batch: int, size=(240, 320), cached_teacher: bool = False) -> dict:
    ds = OnTheFlyPairs(["skimage"], batch, 0, {"size": size})
    items = [ds[i] for i in range(batch)]
    out = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    if cached_teacher:  # what train.data.TrainingPairs adds in the DataLoader workers
        from homeloc.train.losses import warp_from_homography

        g = torch.Generator().manual_seed(0)
        out["warp_0to1"] = warp_from_homography(out["H_0to1"], out["valid0"])
        out["warp_1to0"] = warp_from_homography(torch.linalg.inv(out["H_0to1"]), out["valid1"])
        for v in ("0", "1"):
            out["teacher_heat" + v] = torch.rand(batch, 1, *size, generator=g) * 0.03
    return out


def _time(step, steps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps


def keypoint_throughput(preset: str, teacher: str, batch: int, steps: int) -> float:
    system = KeypointSystem(preset, stage="pairs", teacher=teacher)
    system.log = lambda *a, **k: None
    opt = torch.optim.AdamW(system.model.parameters(), 1e-3)
    data = _pairs_batch(batch, cached_teacher=teacher == "cached")

    def step():
        loss = system.training_step(data, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return 2 * batch / _time(step, steps)


def place_throughput(
    backbone: str, batch: int, steps: int, size: tuple[int, int] = (128, 160), **kw
) -> float:
    from homeloc.models.places import PlaceNet

    net = PlaceNet(backbone, "netvlad", input_size=size, **kw)
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    x = torch.rand(batch, 3, *size)
    pos, neg = pair_masks(torch.arange(batch // 2).repeat_interleave(2))

    def step():
        loss = multi_similarity_loss(net(x), pos, neg)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return batch / _time(step, steps)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m homeloc.train.bench", description=__doc__)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=8, help="pairs per keypoint step (images = 2x)")
    a = p.parse_args(argv)
    rows = [
        ("keypoints edge, no teacher", keypoint_throughput("edge", "none", a.batch, a.steps)),
        (
            "keypoints edge, cached teacher (targets in the batch)",
            keypoint_throughput("edge", "cached", a.batch, a.steps),
        ),
        ("keypoints superpoint, no teacher", keypoint_throughput("superpoint", "none", a.batch, a.steps)),
    ]
    try:
        rows.append(
            ("keypoints edge + XFeat teacher", keypoint_throughput("edge", "xfeat", a.batch, a.steps))
        )
    except Exception as e:  # noqa: BLE001 - the teacher is an optional extra
        print(f"(XFeat teacher not measured: {e})")
    for size in ((128, 160), (240, 320)):
        hw = f"{size[0]}x{size[1]}"
        rows.append(
            (
                f"places mobilenetv3_small + NetVLAD(32) ({hw})",
                place_throughput("mobilenetv3_small", 4 * a.batch, a.steps, size),
            )
        )
        rows.append(
            (
                f"places keypoint:edge + NetVLAD(64), shipped recipe ({hw})",
                place_throughput("keypoint:edge", 4 * a.batch, a.steps, size, clusters=64, reduce_dim=None),
            )
        )
    print(
        f"\nTraining throughput, {torch.get_num_threads()} torch threads (target >= 50 img/s for edge at 240x320)\n"
    )
    print("| model | img/s |\n|---|---:|")
    for name, v in rows:
        print(f"| {name} | {v:.1f} |")
    print(
        "\nPlace descriptor size: 256-d float32 = 1024 B/image (the shipped projection); "
        "the loop-closure index's PQ codes = pq_bytes B/image, e.g. 64 (runtime.loop_closure, index='ivfpq')."
    )


if __name__ == "__main__":
    main()
