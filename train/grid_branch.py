"""Add the layout (grid) branch to a trained global head, fitted without a gradient step.

    python -m homeloc.train.grid_branch --head runs/global_head_long/checkpoints/last.ckpt \\
        --sources synthesized:data/places_train240 render:data/render_train \\
                  nordland:../shared/data/nordland_64x32_summer_winter \\
        --out runs/global_head_grid48/head.pt [--grid 4 8 --grid_dim 256 --grid_weight 0.5] \\
        [--proj_dim 1024]

Why fitted and not trained: training the head with the grid inside NetVLAD's projection overfit
Nordland's training route (validation R@1 fell from 0.272 after 400 steps to 0.263), while the
PCA-whitened cell means of the training views, next to the trained NetVLAD output, lifted
Nordland and indoor and kept the rendered homes (docs/training.md, "Global head"). The trained
NetVLAD part is copied unchanged; the keypoint network's descriptor maps come from the same
cache as training (``train.global_data.load_source``), so this takes seconds after a fit.

``--proj_dim K`` also refits NetVLAD's projection, as the PCA-whitening to K dims of the same views'
NetVLAD vectors (the NetVLAD centres stay the trained ones). Why: on 360 rendered night queries
the trained 256-d projection kept less than the raw 4096-d NetVLAD vector (R@1 0.553 vs 0.608),
while a whitened 1024-d PCA of the training views kept more (0.678; docs/training.md, "Session 18").
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from homeloc.models.global_head import GlobalHead
from homeloc.models.keypoints import KeypointNet
from homeloc.runtime.hashing import file_sha256
from homeloc.runtime.io import atomic_write
from homeloc.train.global_data import load_source

log = logging.getLogger(__name__)


@torch.no_grad()
def add_grid_branch(head: str | Path, sources: list[str], out: str | Path, grid: tuple[int, int] = (4, 8),
                    grid_dim: int = 256, grid_weight: float = 0.5,
                    keypoints: str | Path = "runtime/assets/keypoints.pt", cache_dir: str | Path = "data/global_maps",
                    resize: int = 640, upscale: int = 256, proj_dim: int | None = None) -> Path:  # fmt: skip
    """Copy HEAD's NetVLAD part into a head with a ``grid`` branch whose projection is the
    PCA-whitening of every view of SOURCES (``GlobalHeadData`` specs); write it to OUT (atomic),
    and what was fitted on what to OUT with suffix .json (shipped as the head's provenance).
    ``proj_dim``: also replace NetVLAD's projection by the PCA-whitening to that many dims of the
    same views' NetVLAD vectors (None: keep HEAD's projection).

    The keypoint checkpoint must be the one the head was trained over (its descriptor maps).
    """
    base = GlobalHead.from_checkpoint(head)
    if base.grid is not None:
        raise ValueError(f"{head}: already has a grid branch")
    net = KeypointNet.from_checkpoint(keypoints).eval()
    if net.descriptor_dim != base.dim:
        raise ValueError(f"{head}: expects {base.dim}-d descriptors, {keypoints} gives {net.descriptor_dim}")
    new = GlobalHead(base.dim, base.clusters, proj_dim or base.out_dim_arg, base.attention is not None, grid,
                     grid_dim, grid_weight)  # fmt: skip
    state = base.state_dict()
    if proj_dim is not None:  # refitted below: the trained projection's shape may differ
        state = {k: v for k, v in state.items() if not k.startswith("proj.")}
    missing = new.load_state_dict(state, strict=False).missing_keys
    refit = ("grid", "proj.") if proj_dim is not None else ("grid",)
    assert all(k.startswith(refit) for k in missing), missing  # only the fitted parts are left
    weights = file_sha256(keypoints)
    cells, pooled = [], []
    for d, spec in enumerate(sources):
        groups = load_source(spec, net, weights, Path(cache_dir), resize, upscale, d)
        maps = groups.maps.flatten(0, 1)  # every view of every place
        for i in range(0, len(maps), 256):
            chunk = maps[i : i + 256].float()
            cells.append(new.grid_cells(chunk))
            if proj_dim is not None:
                pooled.append(new.pooled(chunk))
    rows = torch.cat(cells)
    new.fit_grid(rows)
    if proj_dim is not None:
        new.fit_pca(torch.cat(pooled), whiten=True)
    log.info("grid branch %s -> %d fitted on %d views of %d sources%s", grid, grid_dim, len(rows), len(sources),
             f"; projection refitted to {proj_dim}" if proj_dim else "")  # fmt: skip
    new.save(out)
    # provenance beside the head (export.frontend ships it): what was fitted on what
    record = {"base_head": str(head), "base_head_sha256": file_sha256(head), "sources": list(sources),
              "grid": list(grid), "grid_dim": grid_dim, "grid_weight": grid_weight, "views": len(rows),
              "keypoints": str(keypoints), "keypoints_sha256": weights, "resize": resize, "upscale": upscale,
              "projection": "trained (base head)" if proj_dim is None else f"PCA-whitening to {proj_dim} of the views"}  # fmt: skip
    atomic_write(Path(out).with_suffix(".json"), json.dumps(record, indent=1))
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    from homeloc.data_synthesis.cli_errors import OneLineParser, PositiveFloat, PositiveInt, run_guarded

    p = OneLineParser(prog="python -m homeloc.train.grid_branch", description=add_grid_branch.__doc__)
    p.add_argument("--head", required=True, help="trained GlobalHead checkpoint (Lightning or save())")
    p.add_argument("--sources", nargs="+", required=True, help="KIND:DIR training sources (as in training)")
    p.add_argument("--out", required=True, help="output head file")
    p.add_argument("--grid", nargs=2, type=PositiveInt, default=[4, 8], metavar=("ROWS", "COLS"))
    p.add_argument("--grid_dim", type=PositiveInt, default=256)
    p.add_argument("--grid_weight", type=PositiveFloat, default=0.5)
    p.add_argument(
        "--proj_dim",
        type=PositiveInt,
        default=None,
        help="also refit NetVLAD's projection: PCA-whitening to this many dims (default: keep the trained one)",
    )
    p.add_argument("--keypoints", default="runtime/assets/keypoints.pt")
    p.add_argument("--cache_dir", default="data/global_maps")
    p.add_argument("--resize", type=PositiveInt, default=640)
    p.add_argument("--upscale", type=PositiveInt, default=256)
    a = p.parse_args(argv)
    for f in (a.head, a.keypoints):
        if not Path(f).is_file():
            p.error(f"{f}: no such file")

    def run() -> int:
        out = add_grid_branch(a.head, a.sources, a.out, tuple(a.grid), a.grid_dim, a.grid_weight, a.keypoints,
                              a.cache_dir, a.resize, a.upscale, a.proj_dim)  # fmt: skip
        print(f"head with grid branch written: {out}")
        return 0

    return run_guarded("python -m homeloc.train.grid_branch", run, False, (ValueError, FileNotFoundError))


if __name__ == "__main__":
    raise SystemExit(main())
