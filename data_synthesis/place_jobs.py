"""Place synthesis step: write a verified, resumable sharded place dataset (the places twin of jobs)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from homeloc.data_synthesis import shards
from homeloc.data_synthesis.places import KIND, PlaceConfig, encode_place, make_place
from homeloc.data_synthesis.sources import SourceMix


@dataclass
class PlaceMaker:
    """Picklable per-shard sample factory (sources are opened lazily in each worker)."""

    sources: list[str]
    config: dict
    seed: int
    views: int = 4
    places_per_source: int = 4
    size: tuple[int, int] = (240, 320)
    image_format: str = ".jpg"
    strict: bool = False
    _mix: SourceMix | None = field(default=None, init=False, repr=False, compare=False)

    def skipped(self) -> dict[str, str]:
        """Unreadable source images this maker skipped (path -> reason; see sources.Source)."""
        return self._mix.skipped() if self._mix is not None else {}

    def __call__(self, indices: Iterable[int]) -> Iterator[dict[str, bytes | str]]:
        self._mix = mix = self._mix or SourceMix(self.sources, self.strict)
        cfg = PlaceConfig(**self.config)
        for i in indices:
            s = make_place(mix, cfg, self.seed, i, self.views, self.places_per_source, self.size)
            yield {"__key__": f"{i:09d}", **encode_place(s, self.image_format)}


def synthesize_places(
    sources: list[str],
    out: str | Path,
    num_places: int,
    seed: int = 0,
    views: int = 4,
    places_per_source: int = 4,
    size: tuple[int, int] = (240, 320),
    config: PlaceConfig | None = None,
    workers: int = 1,
    shard_size: int = 200,
    overwrite: bool = False,
    only_shards: list[int] | None = None,
    image_format: str = ".jpg",
    strict: bool = False,
) -> Path:
    """Place dataset of `num_places` places x `views` views. Returns the manifest path.
    strict: an unreadable source image stops the run (default: skipped and listed in the manifest)."""
    config = config or PlaceConfig()
    if views < 2:
        raise ValueError(f"a place needs at least 2 views, got {views}")
    if places_per_source < 1:
        raise ValueError(f"places_per_source must be >= 1, got {places_per_source}")
    SourceMix(sources)  # fail early, in the parent, on a bad source
    size = tuple(int(v) for v in size)
    # Everything a place depends on: the manifest hashes it, so a rerun with other settings is refused.
    resolved = {
        "config": config.to_dict(),
        "sources": list(sources),
        "seed": seed,
        "views": views,
        "places_per_source": places_per_source,
        "size": list(size),
        "image_format": image_format,
    }
    maker = PlaceMaker(
        list(sources), config.to_dict(), seed, views, places_per_source, size, image_format, strict
    )
    return shards.build(
        Path(out), KIND, resolved, num_places, shard_size, maker, workers, overwrite, only_shards
    )
