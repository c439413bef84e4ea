"""Loop-closure demo over an image sequence: ``python -m homeloc.runtime.example --images DIR --out DIR``.

Runs :class:`runtime.frontend.Frontend` + :class:`runtime.loop_closure.LoopClosureDetector` the way
a SLAM system would: every frame is first checked for a loop against the keyframes so far
(ignoring the most recent ones), then added as a keyframe. Prints the detected loops and writes
``OUT/similarity.png`` (global-descriptor cosine similarity of every frame pair, detections
marked) and ``OUT/loops.json``.

``run(..., extra_frames=...)`` appends frames after the folder's: ``make demo``
(``homeloc.eval.demo``) appends relit copies of the sequence made by ``homeloc.data_synthesis``,
the robot revisiting the same places at night. This module itself stays torch-free, like the rest
of the runtime.

Example::

    python -m homeloc.runtime.example --images ../shared/data/slambook_loop_closure_10frames \\
        --keypoints-model keypoints.int8.onnx --places-model places.int8.onnx --out /tmp/loops
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homeloc.runtime.io import atomic_write, list_images, read_image

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    name: str
    image: np.ndarray  # H x W x 3 uint8 RGB


def load_sequence(images: str | os.PathLike, max_images: int | None = None) -> list[Frame]:
    """Frames of a folder in natural name order (2.png before 10.png)."""
    files = sorted(list_images(images, recursive=False), key=_natural_key)[:max_images]
    return [Frame(p.name, read_image(p)) for p in files]


def _natural_key(path: Path) -> list:
    """2.png before 10.png."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def run(
    images: str | os.PathLike,
    out: str | os.PathLike,
    extra_frames: Sequence[Frame] = (),
    keypoints_model=None,
    places_model: str | os.PathLike | None = None,
    exclude_recent: int = 3,
    min_inliers: int | None = None,
    temporal_k: int | None = None,
    max_images: int | None = None,
    threads: int = 1,
    K: np.ndarray | None = None,
    verify_top: int | None = None,
    min_confidence: float | None = None,
    descriptor_bits: int | None = None,
) -> dict:
    """Run the demo; returns the summary written to ``out/loops.json``.

    keypoints_model: a keypoint ONNX path, a ``Frontend``, or None (the shipped model). Settings
    left None are the ``LoopClosureDetector`` defaults (the product's)."""
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.loop_closure import LoopClosureDetector
    from homeloc.runtime.places import GlobalDescriptor

    frames = load_sequence(images, max_images) + list(extra_frames)
    frontend = keypoints_model
    if not isinstance(frontend, Frontend):
        frontend = Frontend(keypoints_model, threads=threads)
    places = GlobalDescriptor(places_model, threads=threads)
    given = {"min_inliers": min_inliers, "temporal_k": temporal_k, "verify_top": verify_top,
             "min_confidence": min_confidence, "descriptor_bits": descriptor_bits}  # fmt: skip
    options = {k: v for k, v in given.items() if v is not None}
    if verify_top is not None:
        options["top_k"] = max(5, verify_top)
    det = LoopClosureDetector(places, frontend, index="flat", exclude_recent=exclude_recent, K=K, **options)
    descriptors = places.describe([f.image for f in frames])
    loops = []
    for t, frame in enumerate(frames):
        features = frontend.extract(frame.image)
        if len(det):
            loop = det.detect(descriptors[t], features=features)
            if loop is not None:
                loops.append({"frame": t, "name": frame.name, "keyframe": loop.kf_id,
                              "keyframe_name": frames[loop.kf_id].name, "score": round(loop.score, 4),
                              "inliers": loop.inliers, "confidence": round(loop.confidence, 4)})  # fmt: skip
                print(f"loop: frame {t} ({frame.name}) -> keyframe {loop.kf_id} ({frames[loop.kf_id].name}), "
                      f"score {loop.score:.3f}, {loop.inliers} inliers")  # fmt: skip
        det.add_keyframe(t, descriptors[t], features=features)
    out = Path(out)
    similarity = descriptors @ descriptors.T
    write_similarity_png(out / "similarity.png", similarity, loops, [f.name for f in frames])
    summary = {
        "images": str(images), "frames": len(frames), "extra_frames": len(extra_frames), "loops": loops,
        "keypoints_model": str(frontend.model_path), "places_model": str(places.model_path),
        "map": {k: v for k, v in vars(det.stats()).items()},
    }  # fmt: skip
    atomic_write(out / "loops.json", json.dumps(summary, indent=2))
    print(
        f"{len(loops)} loop(s) in {len(frames)} frames; wrote {out / 'similarity.png'} and {out / 'loops.json'}"
    )
    return summary


def write_similarity_png(path: Path, similarity: np.ndarray, loops: list[dict], names: list[str]) -> Path:
    """Heat map of the similarity matrix with detected loops as red crosses (atomic write)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(similarity)
    fig, ax = plt.subplots(figsize=(6 + n / 20, 5 + n / 20))
    im = ax.imshow(similarity, cmap="viridis", vmin=float(np.min(similarity)), vmax=1.0)
    for loop in loops:
        ax.plot(loop["keyframe"], loop["frame"], "rx", markersize=8, markeredgewidth=2)
    ax.set_xlabel("keyframe")
    ax.set_ylabel("query frame")
    ax.set_title(f"global descriptor cosine similarity, {len(loops)} verified loop(s) (x)")
    if n <= 40:
        ax.set_xticks(range(n), names, rotation=90, fontsize=6)
        ax.set_yticks(range(n), names, fontsize=6)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def _parse_K(text: str | None) -> np.ndarray | None:
    if text is None:
        return None
    fx, fy, cx, cy = (float(v) for v in text.split(","))
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m homeloc.runtime.example", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--images", required=True, help="folder of sequence frames (sorted by name)")
    parser.add_argument("--out", required=True, help="output folder (similarity.png, loops.json)")
    parser.add_argument("--keypoints-model", help="keypoint ONNX (default: the shipped one)")
    parser.add_argument("--places-model", help="place ONNX (default: the shipped one)")
    parser.add_argument(
        "--exclude-recent", type=int, default=3, help="ignore this many most recent keyframes"
    )
    parser.add_argument("--min-inliers", type=int, default=None, help="default: the detector's")
    parser.add_argument("--temporal-k", type=int, default=None, help="default: the detector's")
    parser.add_argument("--min-confidence", type=float, default=None, help="default: the detector's")
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--verify-top", type=int, default=None, help="candidates verified geometrically per frame"
    )
    parser.add_argument(
        "--descriptor-bits",
        type=int,
        choices=(4, 8),
        default=None,
        help="how keyframes' local descriptors are kept: 4 or 8 (int8) bits (default: the detector's, 4)",
    )
    parser.add_argument(
        "--K", help="fx,fy,cx,cy: verify with the essential matrix instead of the fundamental"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(args.images, args.out, (), args.keypoints_model, args.places_model, args.exclude_recent,
        args.min_inliers, args.temporal_k, args.max_images, args.threads, _parse_K(args.K), args.verify_top,
        args.min_confidence, args.descriptor_bits)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
