"""Months of a synthetic home through the long-term map, against a static and an append-everything
loop-closure map: the mechanism, not the features. Each place is a cloud of 3-D points; each of its
appearances (lightings) gives the points other local descriptors and moves the global descriptor;
every visit sees the place from a slightly different camera (never a degenerate two-view pair)."""

import cv2
import numpy as np
import pytest

from homeloc.runtime.features import Features
from homeloc.runtime.longterm import BudgetConfig, LongTermMap, PlaceConfig
from homeloc.runtime.loop_closure import LoopClosureDetector
from homeloc.runtime.loop_closure.config import VerifyConfig

K = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])
PLACES, APPEARANCES, POINTS, DIM = 6, 6, 120, 16
DAY_POOL, NIGHT_POOL = (0, 1, 2), (3, 4, 5)


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


class World:
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.X = [np.c_[rng.uniform(-1.5, 1.5, POINTS), rng.uniform(-1, 1, POINTS), rng.uniform(5, 8, POINTS)]
                  for _ in range(PLACES)]  # fmt: skip
        self.desc = unit(rng.standard_normal((PLACES, APPEARANCES, POINTS, DIM))).astype(np.float32)
        self.g = unit(
            rng.standard_normal((PLACES, 1, DIM)) + 0.6 * unit(rng.standard_normal((1, APPEARANCES, DIM)))
        )
        self.rng = rng

    def visit(self, place, appearance):
        """(global descriptor, features, pose) of one visit: a camera moved 0.1-0.3 m and a few degrees."""
        r = self.rng
        R = cv2.Rodrigues(r.uniform(-0.05, 0.05, 3))[0]
        t = r.uniform(-0.3, 0.3, 3)
        p = (K @ ((R @ self.X[place].T).T + t).T).T
        d = unit(self.desc[place, appearance] + 0.15 * r.standard_normal((POINTS, DIM))).astype(np.float32)
        pose = np.eye(4)
        pose[:3, 3] = [2.0 * place, 1.0, 0.8]  # places 2 m apart along a corridor, all looking +z
        g = unit(self.g[place, appearance] + 0.05 * r.standard_normal(DIM)).astype(np.float32)
        return g, Features((p[:, :2] / p[:, 2:]).astype(np.float32), np.ones(POINTS), d), pose


def replay(days=42, budget=120_000, seed=0, grace=0, half_life=500.0):
    """Per day and map: (correct, false, bytes); two rounds a day (a daylight and a night lighting)."""
    w, rng = World(seed), np.random.default_rng(seed + 1)
    b = BudgetConfig(max_bytes=budget, grace=grace, half_life=half_life)
    # int8 like the baselines' (VerifyConfig's default): the mechanism at one coding; what 4 bits
    # add is measured on rendered homes (docs/longterm_history.md, "Session 39")
    lt = LongTermMap(
        K=K, place=PlaceConfig(min_keypoints=50), budget=b, verify=VerifyConfig(descriptor_bits=8)
    )
    static = LoopClosureDetector(index="flat", train_size=None, temporal_k=1, K=K)
    append = LoopClosureDetector(index="flat", train_size=None, temporal_k=1, K=K)
    owner, out, kf = {}, [], 0
    for day in range(days):
        row = {m: [0, 0] for m in ("longterm", "static", "append")}
        for pool in (DAY_POOL, NIGHT_POOL):
            a = int(rng.choice(pool))
            for place in range(PLACES):
                g, f, pose = w.visit(place, a)
                owner[kf] = place
                loc = lt.observe(g, f, pose=pose, kf_id=kf).localization
                hits = {"longterm": None if loc is None else loc.kf_id}
                for name, det in (("static", static), ("append", append)):
                    loop = det.detect(g, features=f) if len(det) else None
                    hits[name] = None if loop is None else loop.kf_id
                if day == 0:
                    static.add_keyframe(kf, g, features=f)
                append.add_keyframe(kf, g, features=f)
                if append.stats().total_bytes > budget:  # plain pruning, only to meet the budget
                    append.prune(max_bytes=budget, duplicate_score=1.0)
                for name, k in hits.items():
                    if k is not None:
                        row[name][owner[k] != place] += 1
                kf += 1
        sizes = {"longterm": lt.stats().total_bytes, "static": static.stats().total_bytes,
                 "append": append.stats().total_bytes}  # fmt: skip
        out.append({m: (*row[m], sizes[m]) for m in row} | {"experiences": len(lt)})
    return out


@pytest.mark.slow
def test_six_weeks_memory_stays_in_budget_and_beats_both_baselines():
    """Measured (seed 0, 120 kB, 42 days): success in the last two weeks longterm 0.750, append
    0.625, static 0.423; no false localization in any map; 44 experiences from day 4 on."""
    days = replay()
    last = days[-14:]
    success = {
        m: sum(d[m][0] for d in last) / (2 * PLACES * len(last)) for m in ("longterm", "static", "append")
    }
    assert all(d[m][1] == 0 for d in days for m in success)  # no false localization, ever
    assert all(d["longterm"][2] <= 120_000 for d in days)
    assert (
        success["longterm"] > success["append"] > success["static"]
    )  # the day-0 map never saw 4 of 6 lightings
    assert len({d["longterm"][2] for d in days[-7:]}) == 1 and days[-1]["experiences"] < 2 * PLACES * 4
