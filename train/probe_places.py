"""Untrained probe of a place trunk: k-means NetVLAD centres (and optional PCA) only, no training.

`python -m homeloc.train.probe_places --trunk-checkpoint runtime/assets/keypoints.pt` prints recall@1/5 on
the validation sets of configs/train/places_cpu.yaml for NetVLAD over the trunk's local features,
with and without the projection: what training has to beat (docs/training.md).
"""

from __future__ import annotations

import argparse

import numpy as np

from homeloc.train.metrics import recall_at_k
from homeloc.train.place_data import PlacesData
from homeloc.train.places import PlaceSystem


def probe(system: PlaceSystem, dm: PlacesData, views=None) -> dict[str, tuple[float, float]]:
    """Initialise `system` from `dm`'s training places as fit would (`views`: a cached
    `dm.mining_views()`), then {val set: (R@1, R@5)}."""
    refs, others, _ = views or dm.mining_views()
    system.init_from_data(refs, others)
    out = {}
    for rs in dm.val_sets:
        db, q = system.describe(rs.database), system.describe(rs.queries)
        r = recall_at_k(np.argsort(-(q @ db.t()).numpy(), axis=1)[:, :10], rs.positives, (1, 5))
        out[rs.name] = (float(r[1]), float(r[5]))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m homeloc.train.probe_places",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backbone", default="keypoint:edge")
    p.add_argument("--trunk-checkpoint", default="runtime/assets/keypoints.pt")
    p.add_argument("--clusters", type=int, nargs="+", default=[64])
    p.add_argument("--nordland", default="../shared/data/nordland_64x32_summer_winter")
    p.add_argument("--synthesized", default="data/places_train")
    p.add_argument("--indoor", default="data/places_val_indoor_eval")
    p.add_argument("--size", type=int, nargs=2, default=[128, 160])
    a = p.parse_args(argv)
    val = {"nordland_last3rd": f"nordland:{a.nordland}", "indoor_night": f"places:{a.indoor}"}
    dm = PlacesData(nordland=a.nordland, synthesized=a.synthesized, size=tuple(a.size), val_sets=val)
    dm.setup("fit")
    views = dm.mining_views()
    trunk = a.trunk_checkpoint if a.backbone.startswith("keypoint:") else None
    print(
        "| trunk | clusters | projection | " + " | ".join(f"{rs.name} R@1 / R@5" for rs in dm.val_sets) + " |"
    )
    print("|---|---:|---|" + "---:|" * len(dm.val_sets))
    for k in a.clusters:
        for proj in (None, "pca", "whiten"):
            system = PlaceSystem(
                backbone=a.backbone,
                clusters=k,
                reduce_dim=None if trunk else 64,
                out_dim=256 if proj else None,
                trunk_checkpoint=trunk,
                input_size=tuple(a.size),
                pca_init=proj,
            )
            res = probe(system, dm, views)
            cells = " | ".join(f"{r1:.3f} / {r5:.3f}" for r1, r5 in res.values())
            print(
                f"| {a.backbone} | {k} | {proj or f'none ({system.model.out_dim}-d)'} | {cells} |", flush=True
            )


if __name__ == "__main__":
    main()
