"""The long-term map's tables: experiences (keyframes) with their usage statistics, and places.

Everything the map holds is in these numpy arrays plus the compressed local features of each
experience (:class:`~homeloc.runtime.loop_closure.StoredFeatures`, the loop-closure map's): its
memory (``nbytes``) is exactly the arrays the map file stores, so the budget is what the robot keeps.
The places' colour memory (``colours``) counts with the places table as fixed bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from homeloc.runtime.longterm.colour import BINS, colour_distance
from homeloc.runtime.loop_closure.stored_features import StoredFeatures

NO_POSE = np.full((3, 4), np.nan, np.float32)

# per-experience columns: name -> (dtype, trailing shape); "descriptors" gets the map's D
EXPERIENCE_COLUMNS = {
    "ids": (np.int64, ()),  # keyframe id (the caller's)
    "place": (np.int64, ()),  # place id
    "pose": (np.float32, (3, 4)),  # camera-to-map pose when added (NaN: unknown)
    "created": (np.int64, ()),  # map clock when added
    "last_used": (np.int64, ()),  # map clock of the last match (created until then)
    "matches": (np.int64, ()),  # times it was the verified localization
    "stale": (np.uint8, ()),  # 1: its room changed in a major way since it last matched
}
PLACE_COLUMNS = {
    "place_ids": (np.int64, ()),
    "place_anchor": (np.float32, (3, 4)),  # pose of the place's first experience (NaN: unknown)
    "place_room": (np.int64, ()),
}
# the places' colour memory (the change layer's, :mod:`.colour`): signatures of frames seen at each
# place, kept apart from the experiences so that forgetting an experience keeps what its light
# looked like; a place keeps up to ChangeConfig.colour_per_place of them
COLOUR_COLUMNS = {
    "colour_place": (np.int64, ()),  # place id
    "colour_clock": (np.int64, ()),  # map clock of the frame
    "colour_signature": (np.uint16, (BINS * BINS,)),
}


def _appended(table: dict[str, np.ndarray], columns: dict, row: dict) -> dict[str, np.ndarray]:
    """``table`` with one more row (``row``: column name -> value, cast to the column's type)."""
    return {name: np.concatenate([table[name], np.asarray(row[name], dtype).reshape(1, *shape)])
            for name, (dtype, shape) in columns.items()}  # fmt: skip


def _empty(columns: dict, extra: dict | None = None) -> dict[str, np.ndarray]:
    out = {name: np.zeros((0, *shape), dtype) for name, (dtype, shape) in columns.items()}
    return out | (extra or {})


@dataclass
class Tables:
    """Columns of experiences (``cols``, N rows in insertion order) and places (``places``, P rows)."""

    cols: dict[str, np.ndarray] = field(default_factory=lambda: _empty(EXPERIENCE_COLUMNS))
    places: dict[str, np.ndarray] = field(default_factory=lambda: _empty(PLACE_COLUMNS))
    colours: dict[str, np.ndarray] = field(default_factory=lambda: _empty(COLOUR_COLUMNS))
    features: dict[int, StoredFeatures] = field(default_factory=dict)
    descriptors: np.ndarray | None = None  # N x D float32, unit norm (None before the first)

    def __len__(self) -> int:
        return len(self.cols["ids"])

    def position(self, kf_id: int) -> int:
        hit = np.flatnonzero(self.cols["ids"] == kf_id)
        if not len(hit):
            raise KeyError(f"keyframe {kf_id} is not in the map")
        return int(hit[0])

    def append(self, row: dict, descriptor: np.ndarray, features: StoredFeatures | None) -> None:
        self.cols = _appended(self.cols, EXPERIENCE_COLUMNS, row)
        d = descriptor.astype(np.float32)[None]
        self.descriptors = d if self.descriptors is None else np.concatenate([self.descriptors, d])
        if features is not None:
            self.features[int(row["ids"])] = features

    def add_place(self, place_id: int, anchor: np.ndarray | None, room: int) -> None:
        row = {
            "place_ids": place_id,
            "place_anchor": NO_POSE if anchor is None else anchor[:3],
            "place_room": room,
        }
        self.places = _appended(self.places, PLACE_COLUMNS, row)

    def add_colour(self, place_id: int, clock: int, signature: np.ndarray, keep: int) -> None:
        """Remember ``signature`` at ``place_id``; past ``keep`` of the place's, the older of its two
        most alike goes (the memory keeps the range of looks, not the most recent ones)."""
        row = {"colour_place": place_id, "colour_clock": clock, "colour_signature": signature}
        self.colours = _appended(self.colours, COLOUR_COLUMNS, row)
        mine = np.flatnonzero(self.colours["colour_place"] == place_id)
        if len(mine) <= keep:
            return
        sig = self.colours["colour_signature"][mine]
        d = np.stack([colour_distance(x, sig) for x in sig])
        d[np.diag_indices(len(mine))] = np.inf
        a, b = np.unravel_index(np.argmin(d), d.shape)  # the first most alike pair
        clocks = self.colours["colour_clock"][mine]
        kept = np.ones(len(self.colours["colour_place"]), bool)
        kept[mine[a] if clocks[a] <= clocks[b] else mine[b]] = False
        self.colours = {name: x[kept] for name, x in self.colours.items()}

    def drop(self, positions: np.ndarray) -> list[int]:
        """Remove experiences at ``positions``; returns their keyframe ids."""
        keep = np.ones(len(self), bool)
        keep[positions] = False
        gone = [int(i) for i in self.cols["ids"][~keep]]
        self.cols = {name: a[keep] for name, a in self.cols.items()}
        self.descriptors = self.descriptors[keep]
        for k in gone:
            self.features.pop(k, None)
        return gone

    def place_room_of(self, place_ids: np.ndarray) -> np.ndarray:
        """Room of each of ``place_ids``."""
        order = np.argsort(self.places["place_ids"])
        pos = order[np.searchsorted(self.places["place_ids"], place_ids, sorter=order)]
        return self.places["place_room"][pos]

    def sizes(self) -> np.ndarray:
        """Bytes of each experience: its row of every column, its descriptor, its local features."""
        row = sum(
            np.dtype(dt).itemsize * int(np.prod(sh, dtype=np.int64)) for dt, sh in EXPERIENCE_COLUMNS.values()
        )
        d = 0 if self.descriptors is None else self.descriptors.shape[1] * 4
        feats = np.array([self._feature_bytes(int(k)) for k in self.cols["ids"]], np.int64)
        return row + d + feats

    def _feature_bytes(self, kf_id: int) -> int:
        s = self.features.get(kf_id)
        # stored as keypoints + descriptors + scores, plus its count (int64) in the file
        return 0 if s is None else s.nbytes + 8

    @property
    def fixed_bytes(self) -> int:
        """Bytes that do not belong to one experience: the places table and their colour memory."""
        return int(sum(a.nbytes for a in self.places.values()) + sum(a.nbytes for a in self.colours.values()))
