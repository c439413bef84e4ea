"""Rendering throughput: `python -m homeloc.data_synthesis.render.bench` (part of `make bench`).

For one home (seed 0) under three lightings (sun_noon: sky + sun passes, overcast, night_lamp)
it times the whole per-frame pipeline at 320x240 (light passes, depth at pixel centres, camera
model, PNG encoding; scene loading amortised over a sequence of 5 frames) for several spp, with
and without the OIDN denoiser, and measures noise as the relative RMSE of linear luminance against
a 32-spp reference (denoised reference, robust to its own noise). It also times the chosen
training setting at 640x480, and the 2-D pair synthesis (`make_pair` + encoding, one process) in
the same run as a peer: ratios to it are robust to how busy the shared machine is.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from homeloc.data_synthesis.render import engine
from homeloc.data_synthesis.render.assets import AssetLibrary, texture_file
from homeloc.data_synthesis.render.camera_model import develop
from homeloc.data_synthesis.render.changes import day_items
from homeloc.data_synthesis.render.config import RenderConfig
from homeloc.data_synthesis.render.home import home_rng, make_home
from homeloc.data_synthesis.render.lighting import make_lighting
from homeloc.data_synthesis.render.trajectory import intrinsics, sequence_poses
from homeloc.runtime.io import encode_image

LIGHTS = ("sun_noon", "overcast", "night_lamp")
LUMA = np.array([0.2126, 0.7152, 0.0722])


def _frame(
    scenes, pose, K, cfg: RenderConfig, spp: int, denoise: str, seed: int
) -> tuple[np.ndarray, float, float]:
    t, c = time.perf_counter(), time.process_time()
    depth = engine.render_depth(scenes.geom, pose, K, cfg.size, cfg.fov_deg)
    rad = engine.render_radiance(scenes, pose, cfg.size, cfg.fov_deg, spp, seed, denoise)
    rgb, _ = develop(rad, cfg.camera, np.random.default_rng(seed), scenes.lighting.mono)
    encode_image(rgb, ".png")
    encode_image(np.round(depth * 1000).astype(np.uint16), ".png")
    return rad, time.perf_counter() - t, time.process_time() - c


def _rel_rmse(a: np.ndarray, ref: np.ndarray) -> float:
    la, lr = a @ LUMA, ref @ LUMA
    return float(np.sqrt(np.mean((la - lr) ** 2)) / max(lr.mean(), 1e-12))


def pair_rate(n: int = 30) -> float:
    """2-D pairs/s (make_pair + encoding, skimage sources, one process): the peer."""
    from homeloc.data_synthesis.jobs import encode_pair
    from homeloc.data_synthesis.pairs import PairConfig, make_pair
    from homeloc.data_synthesis.sources import SourceMix

    mix, cfg = SourceMix(["skimage"]), PairConfig()
    encode_pair(make_pair(mix, cfg, 0, 0))
    t = time.perf_counter()
    for i in range(n):
        encode_pair(make_pair(mix, cfg, 0, i + 1))
    return n / (time.perf_counter() - t)


def run_bench(
    spps=(1, 2, 4, 8), frames: int = 2, big_spp: int = 4, ref_spp: int = 32, cfg: RenderConfig | None = None
) -> dict:
    cfg = cfg or RenderConfig()
    assets = AssetLibrary(cfg.assets, cfg.photos, cfg.split)
    home = make_home(cfg, assets, 0, 0)
    poses = sequence_poses(home.path, home.camera_height, frames, home_rng(0, 0, cfg.split, 10))
    K = intrinsics(cfg.size, cfg.fov_deg)
    rows, loads = [], []
    with tempfile.TemporaryDirectory() as work:
        builder = engine.SceneBuilder(Path(work), texture_file, cfg.max_depth)
        items, _ = day_items(home, 0, home_rng(0, 0, cfg.split, 100))
        for name in LIGHTS:
            t = time.perf_counter()
            scenes = engine.load_scenes(
                builder, home, items, None, make_lighting(name, home_rng(0, 0, cfg.split, 7), home)
            )
            loads.append(time.perf_counter() - t)
            refs = [
                engine.render_radiance(scenes, p, cfg.size, cfg.fov_deg, ref_spp, 99, "oidn") for p in poses
            ]
            for spp in spps:
                for denoise in ("none", "oidn"):
                    out = [_frame(scenes, p, K, cfg, spp, denoise, k) for k, p in enumerate(poses)]
                    rows.append(
                        {
                            "lighting": name,
                            "spp": spp,
                            "denoise": denoise,
                            "s_per_frame": float(np.mean([o[1] for o in out])),
                            "cpu_s_per_frame": float(np.mean([o[2] for o in out])),
                            "rel_rmse": float(
                                np.mean([_rel_rmse(o[0], r) for o, r in zip(out, refs, strict=True)])
                            ),
                        }
                    )
        big = RenderConfig(**{**cfg.to_dict(), "size": (480, 640)})
        scenes = engine.load_scenes(
            builder, home, items, None, make_lighting("sun_noon", home_rng(0, 0, cfg.split, 7), home)
        )
        big_runs = [
            _frame(scenes, p, intrinsics(big.size, big.fov_deg), big, big_spp, "oidn", k)
            for k, p in enumerate(poses)
        ]
        big_s, big_cpu = float(np.mean([b[1] for b in big_runs])), float(np.mean([b[2] for b in big_runs]))
    load = float(np.mean(loads))
    return {
        "rows": rows,
        "scene_load_s": load,
        "frames_per_sequence": cfg.frames_per_sequence,
        "s_per_frame_640x480": big_s,
        "cpu_s_per_frame_640x480": big_cpu,
        "spp_640x480": big_spp,
        "pairs_per_s": pair_rate(),
        "loadavg": os.getloadavg()[0],
        "cores": os.cpu_count(),
    }


def to_markdown(r: dict) -> str:
    amort = r["scene_load_s"] / r["frames_per_sequence"]
    lines = [
        f"2-D pair synthesis (peer, same run): {r['pairs_per_s']:.1f} pairs/s; scene load {r['scene_load_s']:.2f} s "
        f"(amortised over {r['frames_per_sequence']} frames); load average {r['loadavg']:.2f} on {r['cores']} cores",
        "",
        "frames/hour (2 cores) = 7200 / CPU-s per frame: the rate on two otherwise idle cores if the renderer",
        "scales over both (wall times below are on the shared, busy machine).",
        "",
        "| lighting | spp | denoise | wall s/frame | CPU s/frame | frames/hour (2 cores) | frame time / 2-D pair time | rel. RMSE vs reference |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        s, c = row["s_per_frame"] + amort, row["cpu_s_per_frame"] + amort
        lines.append(
            f"| {row['lighting']} | {row['spp']} | {row['denoise']} | {s:.2f} | {c:.2f} | {7200 / c:.0f} | "
            f"{s * r['pairs_per_s']:.0f} | {row['rel_rmse']:.3f} |"
        )
    s, c = r["s_per_frame_640x480"] + amort, r["cpu_s_per_frame_640x480"] + amort
    lines += [
        "",
        f"640x480, sun_noon, {r['spp_640x480']} spp + OIDN: {s:.2f} s/frame wall, {c:.2f} CPU-s/frame "
        f"({7200 / c:.0f} frames/hour on 2 cores)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spp", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--frames", type=int, default=2, help="poses timed per setting")
    p.add_argument("--out", default="reports/render/bench.json")
    args = p.parse_args(argv)
    r = run_bench(tuple(args.spp), args.frames)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(r, indent=1))
    print(to_markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
