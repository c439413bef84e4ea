"""`homeloc-evaluate reliability` end to end on a tiny homography pair file with failures mixed in."""

import json

import cv2
import numpy as np

from homeloc.eval.cli import main
from homeloc.runtime.io import write_image


def test_reliability_cli_writes_scores_diagram_and_pairs(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(12):
        img = cv2.resize(
            (rng.random((40, 50)) * 255).astype(np.uint8), (320, 256), interpolation=cv2.INTER_CUBIC
        )
        dx, dy = int(rng.integers(-8, 9)), int(rng.integers(-8, 9))
        write_image(tmp_path / f"{i}a.png", img)
        write_image(tmp_path / f"{i}b.png", np.roll(img, (dy, dx), axis=(0, 1)))
        lines.append(f"{i}a.png {i}b.png 1 0 {dx} 0 1 {dy} 0 0 1")
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert (
        main(
            [
                "reliability",
                "--data",
                str(tmp_path / "pairs.txt"),
                "--out",
                str(out),
                "--failure-share",
                "0.5",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    s = summary["scores"]
    assert s["pairs"] == 12 and 0 < s["success_rate"] < 1
    assert s["frame_auroc"] is not None and s["frame_auroc"] >= 0.8  # failures are easy to see here
    assert "none" in summary["per_failure"] and len(summary["per_failure"]) >= 3
    assert summary["per_failure"]["none"]["reliability_mean"] > max(
        e["reliability_mean"]
        for k, e in summary["per_failure"].items()
        if k in ("dark", "uniform", "covered")
    )
    assert (out / "reliability.png").stat().st_size > 0 and len(
        (out / "pairs.csv").read_text().splitlines()
    ) == 13
    assert "min(reliability0, reliability1)" in (out / "table.md").read_text()
