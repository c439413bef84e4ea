"""The frontend and loop-closure rows of the runtime benchmark (``python -m homeloc.runtime.bench``):
keypoint extraction, matching, homography, frame reliability and one loop-closure step, each timed
with a peer in the same run (round-robin, so background load hits both alike)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def time_round_robin(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median ms of each function, timed in turn (run r of each, then run r + 1) so background
    load hits all of them alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(warmup + repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            if r >= warmup:
                times[name].append((time.perf_counter() - t) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def frontend_rows(model: Path | None, repeats: int) -> list[tuple[str, str]]:
    if model is None:
        return [("extract 640x480", "n/a (no keypoint model: --keypoints-model)")]
    from homeloc.runtime.frontend import Frontend

    rng = np.random.default_rng(0)
    img = (rng.random((480, 640)) * 255).astype(np.uint8)
    img = np.ascontiguousarray(
        np.kron(img[::8, ::8], np.ones((8, 8), np.uint8))
    )  # blocky texture: many corners
    rows = []
    for threads in (1, 2):
        fe = Frontend(model, threads=threads)
        rows.append(
            (
                f"extract 640x480, {threads} thread(s) [{model.name}]",
                f"{median_ms(lambda fe=fe: fe.extract(img), repeats):.1f} ms",
            )
        )
    f0 = fe.extract(img)
    f1 = fe.extract(np.ascontiguousarray(np.roll(img, 3, axis=1)))
    rows.append(
        (
            f"match {len(f0)}x{len(f1)} (mutual NN, D={f0.descriptor_dim})",
            f"{median_ms(lambda: fe.match(f0, f1), repeats):.2f} ms",
        )
    )
    m = fe.match(f0, f1)
    rows.append(
        ("homography MAGSAC++", f"{median_ms(lambda: fe.estimate_homography(f0, f1, m), repeats):.2f} ms")
    )
    return rows + reliability_rows(model, img, repeats) + colour_rows(model, img, repeats)


def colour_rows(model: Path, img: np.ndarray, repeats: int) -> list[tuple[str, str]]:
    """Cost of a frame's colour signature (the long-term map's change layer, runtime.longterm.colour)
    at 640x480, timed round-robin with keypoint extraction (1 thread)."""
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.longterm.colour import colour_signature

    rgb = np.ascontiguousarray(np.stack([img, img[::-1], np.roll(img, 40, axis=1)], axis=2))  # many colours
    fe = Frontend(model, threads=1)
    t = time_round_robin(
        {"colour": lambda: colour_signature(rgb), "extract": lambda: fe.extract(img)}, repeats
    )
    ratio = t["colour"] / t["extract"]
    return [
        (f"colour signature 640x480, long-term change layer ({ratio:.2f}x extract)", f"{t['colour']:.1f} ms")
    ]


def reliability_rows(model: Path, img: np.ndarray, repeats: int) -> list[tuple[str, str]]:
    """Cost of the frame reliability (runtime.reliability) at 640x480, 1 thread: extract with and
    without it, timed round-robin, and the difference (target <= 1 ms)."""
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.reliability import DEFAULT_MODEL

    if not DEFAULT_MODEL.is_file():
        return [("frame reliability", "n/a (no runtime/assets/reliability.json)")]
    from homeloc.runtime import postprocess as pp
    from homeloc.runtime import reliability as rel

    with_rel, without = Frontend(model, threads=1), Frontend(model, threads=1, reliability=False)
    t = time_round_robin({"on": lambda: with_rel.extract(img), "off": lambda: without.extract(img)}, repeats)
    f, (x, _) = without.extract(img), pp.prepare_image(img)
    alone = median_ms(lambda: with_rel.reliability_model.frame(rel.frame_stats(x, f, 1024)), repeats * 5)
    return [
        ("extract + frame reliability 640x480, 1 thread", f"{t['on']:.1f} ms"),
        (
            f"frame reliability: extract difference ({t['on'] / t['off']:.3f}x extract)",
            f"{t['on'] - t['off']:.2f} ms",
        ),
        (f"frame reliability: statistics + model alone ({alone / t['off']:.3f}x extract)", f"{alone:.2f} ms"),
    ]


def loop_closure_rows(kp_model: Path | None, places_model: Path | None, repeats: int,
                      keyframes: int = 1000) -> list[tuple[str, str]]:  # fmt: skip
    """One SLAM step of loop closure at 640x480, 1 thread, against a map of ``keyframes`` keyframes
    (default settings: trained IVF-PQ map, local features stored for every keyframe,
    exclude_recent=10): keypoints + global descriptor + retrieval + temporal check + geometric
    verification + add_keyframe; timed round-robin with its peer, keypoint extraction alone."""
    if kp_model is None or places_model is None:
        return [("loop closure step 640x480", "n/a (needs a keypoint and a place model)")]
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.loop_closure import LoopClosureDetector
    from homeloc.runtime.places import GlobalDescriptor

    fe, places = Frontend(kp_model, threads=1), GlobalDescriptor(places_model, threads=1)
    rng = np.random.default_rng(0)
    scenes = [np.kron((rng.random((61, 81)) * 255).astype(np.uint8), np.ones((8, 8), np.uint8))[:480, :640]
              for _ in range(20)]  # fmt: skip
    scenes = [np.repeat(np.ascontiguousarray(s)[..., None], 3, axis=2) for s in scenes]
    feats, descs = [fe.extract(s) for s in scenes], places.describe(scenes)
    det = LoopClosureDetector(places, fe, exclude_recent=10)
    per = keyframes // len(scenes)  # consecutive keyframes of one scene, as a trajectory makes them
    for i in range(keyframes):
        s = min(i // per, len(scenes) - 1)
        d = descs[s] + 0.02 * rng.standard_normal(descs.shape[1]).astype(np.float32)
        det.add_keyframe(i, d, features=feats[s])
    step = {"n": keyframes, "verified": []}

    def slam_step() -> None:  # a revisit of scene 5, slightly moved
        img = np.ascontiguousarray(np.roll(scenes[5], 2 + step["n"] % 5, axis=1))
        f, d = fe.extract(img), places.describe(img)[0]
        det.detect(d, features=f)
        step["verified"].append(len(det.last_verifications))
        det.add_keyframe(step["n"], d, features=f)
        step["n"] += 1

    ms = time_round_robin({"step": slam_step, "extract": lambda: fe.extract(scenes[3])}, repeats)
    return [
        (f"loop closure step 640x480, 1 thread, {keyframes} keyframes ({det.stats().index}, trained "
         f"{det.trained}; {np.mean(step['verified']):.1f} candidates verified per frame)",
         f"{ms['step']:.1f} ms = {ms['step'] / ms['extract']:.2f}x keypoint extraction alone ({ms['extract']:.1f} ms)"),
    ]  # fmt: skip


def global_rows(kp_model: Path | None, frontend_model: Path | None, places_model: Path | None,
                repeats: int) -> list[tuple[str, str]]:  # fmt: skip
    """Cost of the one-pass global descriptor at 640x480, 1 thread: extract with the frontend model
    (keypoints + global) vs the keypoint model alone, timed round-robin with the old way (keypoint
    model + the separate 128x160 place model) in the same run (target: <= 2 ms extra)."""
    if kp_model is None or frontend_model is None:
        return [("one-pass global descriptor 640x480", "n/a (needs the keypoint and the frontend model)")]
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.places import GlobalDescriptor

    rng = np.random.default_rng(0)
    img = np.ascontiguousarray(
        np.kron((rng.random((60, 80)) * 255).astype(np.uint8), np.ones((8, 8), np.uint8))
    )
    kp = Frontend(kp_model, threads=1, reliability=False)
    one = Frontend(frontend_model, threads=1, reliability=False, global_descriptor=True)
    fns = {"kp": lambda: kp.extract(img), "one": lambda: one.extract(img)}
    if places_model is not None:
        places = GlobalDescriptor(places_model, threads=1)
        fns["two"] = lambda: (kp.extract(img), places.describe(img))
    t = time_round_robin(fns, repeats)
    rows = [
        (f"extract 640x480, 1 thread, keypoints only [{kp_model.name}]", f"{t['kp']:.1f} ms"),
        (f"extract + global (one pass) [{frontend_model.name}]", f"{t['one']:.1f} ms"),
        (
            f"one-pass global: extra over keypoints ({t['one'] / t['kp']:.3f}x)",
            f"{t['one'] - t['kp']:.2f} ms",
        ),
    ]
    if "two" in t:
        rows.append((f"keypoints + separate place model [{places_model.name}] ({t['two'] / t['kp']:.3f}x)",
                     f"{t['two']:.1f} ms"))  # fmt: skip
    return rows
