"""RenderConfig: everything that determines a rendered home's bytes (hashed into the manifest)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

DEFAULT_LIGHTINGS = {
    "sun_morning": 1.0,
    "sun_noon": 1.0,
    "sun_evening": 1.0,
    "overcast": 1.0,
    "dusk": 1.0,
    "ceiling": 1.0,
    "lamps": 1.0,
    "night_lamp": 1.0,
    "ir_dark": 1.0,
    "mixed": 1.0,
}


@dataclass
class CameraModelConfig:
    """The camera after the renderer (camera_model.py).

    target: mean sRGB-linear level auto-exposure aims for; full_well (electrons at saturation),
    photons (electrons per unit radiance per second), read_noise (electrons), t_max (s), gain_max:
    sensor; noise grows once exposure time is capped and gain rises. wb_strength: (min, max) share of
    grey-world white balance; motion_blur: probability of a small linear blur (px range below).
    """

    target: float = 0.18
    full_well: float = 6000.0
    photons: float = 6.0e5
    read_noise: float = 3.0
    t_max: float = 1.0 / 15.0
    gain_max: float = 32.0
    wb_strength: tuple[float, float] = (0.5, 1.0)
    motion_blur: float = 0.1
    motion_blur_px: tuple[float, float] = (2.0, 6.0)


@dataclass
class RenderConfig:
    """size: (H, W); spp: path-tracing samples per pixel (split evenly over the light passes);
    max_depth: path length; denoise: "oidn" (mitsuba-oidn, with albedo + normal), "none";
    rooms: (min, max) rooms per home; days: days per home (day 0 is the reference, no changes);
    frames_per_sequence: frames of one path traversal; lightings: scenario name -> weight (the first
    sequence of a home is always `map_lighting` on day 0); split: "train" uses only the training
    asset partition, "eval" homes draw every asset and hold-out assets first; fov_deg: horizontal
    field of view; assets: folder with robosuite_textures/ and polyhaven/ ("" = procedural only);
    photos: folders of images for framed photos and rugs.
    """

    size: tuple[int, int] = (240, 320)
    spp: int = 4
    max_depth: int = 4
    denoise: str = "oidn"
    rooms: tuple[int, int] = (1, 4)
    days: int = 4
    frames_per_sequence: int = 5
    lightings: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_LIGHTINGS))
    map_lighting: str = "sun_noon"
    split: str = "train"
    fov_deg: float = 75.0
    camera_height: tuple[float, float] = (0.3, 1.2)
    assets: str = "../shared/data/home_assets"
    photos: list[str] = field(
        default_factory=lambda: ["../shared/data/icl_nuim_snippet", "../shared/data/webcam"]
    )
    camera: CameraModelConfig = field(default_factory=CameraModelConfig)

    def __post_init__(self) -> None:
        if isinstance(self.camera, dict):
            self.camera = CameraModelConfig(**self.camera)
        self.size = tuple(int(v) for v in self.size)
        if len(self.size) != 2 or min(self.size) < 8:
            raise ValueError(f"size must be (H, W) with both >= 8, got {self.size}")
        if self.spp < 1 or self.max_depth < 1 or self.frames_per_sequence < 1 or self.days < 1:
            raise ValueError("spp, max_depth, frames_per_sequence and days must be >= 1")
        if self.denoise not in ("oidn", "none"):
            raise ValueError(f"denoise must be 'oidn' or 'none', got {self.denoise!r}")
        if self.split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval', got {self.split!r}")
        lo, hi = self.rooms
        if not 1 <= lo <= hi <= 4:
            raise ValueError(f"rooms must satisfy 1 <= min <= max <= 4, got {self.rooms}")
        if not self.lightings or min(self.lightings.values()) < 0:
            raise ValueError("lightings needs at least one scenario with a weight >= 0")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size)
        return d


DAY_ROUND = {"sun_morning": 1.0, "sun_noon": 1.0, "sun_evening": 1.0, "overcast": 1.0}
NIGHT_ROUND = {"dusk": 1.0, "mixed": 0.5, "ceiling": 1.0, "lamps": 1.0, "night_lamp": 1.0}
MAX_LATERAL_M = 0.3  # furniture and clutter keep furnish.PATH_CLEARANCE (0.35 m) clear of the route


@dataclass
class LongTermConfig:
    """Months-long sequences (`render --days D --frames-per-day F`): the daily cycle and the schedule
    of large changes (render/schedule.py). Not a field of RenderConfig, so the hash of renders made
    without it stays what it was.

    rounds: one patrol round per entry, each a lighting pool (scenario -> weight) drawn once per day;
    every round drives the whole route with frames_per_day / len(rounds) frames, so each place is
    seen once per round per day (default: a daylight round and an evening/night round; day 0's first
    round is RenderConfig.map_lighting). Large changes start on days in
    [first_change_day, days - after_last_change), at least min_gap days apart; about one per
    `*_every` days of that span and at least one of each kind where the span has room:
    rearrange (a room's furniture moved to other walls, persists), decorations (a decorated tree
    in a room, up for decorations_up days (min, max)), repaint (a room's walls get a new plain
    paint colour, persists).

    lateral_m: each round drives its route offset sideways by up to this many metres, a smooth
    offset of its own (a constant part and a wave of ~3 m along the route, about half of it on
    average; tapered to 0 within 0.8 m of a doorway, which the robot crosses through its middle): a
    robot that goes round a moved chair or cuts a corner, not one that retraces its line to the
    centimetre. At most 0.3 (furniture and clutter keep 0.35 m clear of the route). 0: every round
    on the route itself, as before session 33 (and then not written, so earlier renders keep their
    configuration hash).
    """

    rounds: list[dict[str, float]] = field(default_factory=lambda: [dict(DAY_ROUND), dict(NIGHT_ROUND)])
    first_change_day: int = 7
    after_last_change: int = 3
    min_gap: int = 3
    rearrange_every: float = 21.0
    decorations_every: float = 42.0
    decorations_up: tuple[int, int] = (7, 21)
    repaint_every: float = 60.0
    lateral_m: float = 0.0

    def __post_init__(self) -> None:
        self.decorations_up = tuple(int(v) for v in self.decorations_up)
        if not self.rounds or any(not r or min(r.values()) < 0 or sum(r.values()) <= 0 for r in self.rounds):
            raise ValueError(
                "--longterm.rounds needs at least one round, each a scenario -> weight map with a weight > 0"
            )
        if self.first_change_day < 1 or self.min_gap < 1 or self.after_last_change < 0:
            raise ValueError(
                "--longterm.first_change_day and --longterm.min_gap must be >= 1 and "
                f"--longterm.after_last_change >= 0, got {self.first_change_day}, {self.min_gap}, {self.after_last_change}"
            )
        if min(self.rearrange_every, self.decorations_every, self.repaint_every) <= 0:
            raise ValueError("--longterm.*_every must be > 0 days")
        if not 0.0 <= self.lateral_m <= MAX_LATERAL_M:
            raise ValueError(
                f"--longterm.lateral_m must be in [0, {MAX_LATERAL_M}] metres, got {self.lateral_m}"
            )
        lo, hi = self.decorations_up
        if not 1 <= lo <= hi:
            raise ValueError(
                f"--longterm.decorations_up must be (min, max) with 1 <= min <= max, got {self.decorations_up}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decorations_up"] = list(self.decorations_up)
        if not self.lateral_m:  # renders made before the field existed keep their hash
            del d["lateral_m"]
        return d


@dataclass
class Patrol:
    """A months-long sequence per home (`render --days D --frames-per-day F`): D simulated days, each
    with len(longterm.rounds) patrol rounds of frames_per_day / len(rounds) frames."""

    days: int
    frames_per_day: int
    longterm: LongTermConfig = field(default_factory=LongTermConfig)

    def __post_init__(self) -> None:
        if isinstance(self.longterm, dict):
            self.longterm = LongTermConfig(**self.longterm)
        if self.days < 1 or self.frames_per_day < 1:
            raise ValueError(
                f"--days and --frames-per-day must be >= 1, got {self.days} and {self.frames_per_day}"
            )
        rounds = len(self.longterm.rounds)
        if self.frames_per_day % rounds:
            raise ValueError(
                f"--frames-per-day {self.frames_per_day} must be a multiple of the {rounds} patrol rounds "
                "per day (--longterm.rounds), so every round drives the whole route with as many frames"
            )

    @property
    def frames_per_round(self) -> int:
        return self.frames_per_day // len(self.longterm.rounds)

    def to_dict(self) -> dict:
        return {"days": self.days, "frames_per_day": self.frames_per_day, "longterm": self.longterm.to_dict()}
