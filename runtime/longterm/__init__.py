"""Long-term map for months of life in one home: experience-based mapping over places and rooms,
usage statistics, a byte budget enforced by forgetting, persisted in the checksummed map format.
numpy / OpenCV / onnxruntime only (docs/runtime.md, "Long-term map").

    from homeloc.runtime.longterm import LongTermMap, BudgetConfig

    m = LongTermMap(places_model, frontend, K=K, rooms=floor_plan_rects, budget=BudgetConfig(max_bytes=2_000_000))
    update = m.observe(image, pose=odometry_pose)   # localize; a failure becomes a new experience
    update.localization                             # Localization(kf_id, place, room, ...) | None
    m.save("home.hlmap"); m = LongTermMap.load("home.hlmap", places_model, frontend)

Modules: :mod:`.map` (LongTermMap), :mod:`.config` (PlaceConfig, SearchConfig, BudgetConfig,
ChangeConfig, OdometryConfig), :mod:`.odometry` (the pose prior from odometry), :mod:`.store` (experience and place tables, byte accounting), :mod:`.forget`
(usefulness and the forgetting plan, pure functions), :mod:`.rooms` (rooms, places, major-change
detection), :mod:`.persist` (the map file).
"""

from __future__ import annotations

from homeloc.runtime.longterm.config import (
    BudgetConfig,
    ChangeConfig,
    OdometryConfig,
    PlaceConfig,
    SearchConfig,
)
from homeloc.runtime.longterm.forget import ForgetPlan, plan_forget, usefulness
from homeloc.runtime.longterm.map import Localization, LongTermMap, LongTermStats, Update
from homeloc.runtime.longterm.odometry import PosePrior
from homeloc.runtime.longterm.persist import FORMAT, FORMAT_VERSION
from homeloc.runtime.longterm.rooms import NO_ROOM, ChangeMonitor, Rooms

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "NO_ROOM",
    "BudgetConfig",
    "ChangeConfig",
    "ChangeMonitor",
    "ForgetPlan",
    "Localization",
    "LongTermMap",
    "LongTermStats",
    "OdometryConfig",
    "PlaceConfig",
    "PosePrior",
    "Rooms",
    "SearchConfig",
    "Update",
    "plan_forget",
    "usefulness",
]
