"""Robot paths and camera poses.

A home's path runs through every room (centre, then 0.6 m before and after the doorway to the
next room; one room: a loop around its centre), smoothed by a Catmull-Rom spline and resampled
every 5 cm. A sequence drives that path once; revisits (other days and lightings) drive the same
path with their own small offsets along it, look-around and pitch/roll, and, with ``lateral_m``,
their own sideways wander (a long-term patrol's ``--longterm.lateral_m``).

Poses are camera-to-world 4x4 in OpenCV camera axes (x right, y down, z forward), world +Z up.
K uses the repository's pixel convention: the centre of the top-left pixel is (0, 0).
"""

from __future__ import annotations

import numpy as np

LATERAL_WAVE_M = 3.0  # wavelength (metres along the route) of a round's sideways wander
DOOR_TAPER_M = 0.8  # the wander fades to 0 this close to a doorway's centre: doorways are 0.9-1.1 m wide


def intrinsics(size: tuple[int, int], fov_deg: float) -> np.ndarray:
    """3x3 K for an (H, W) image with horizontal field of view fov_deg, square pixels."""
    h, w = size
    f = (w / 2) / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])


def _on_both(p, a, b) -> bool:
    def near(r):
        x0, y0, x1, y1 = r
        return x0 - 1e-6 <= p[0] <= x1 + 1e-6 and y0 - 1e-6 <= p[1] <= y1 + 1e-6

    return near(a) and near(b)


def _catmull_rom(points: np.ndarray, step: float = 0.05) -> np.ndarray:
    p = np.concatenate([points[:1], points, points[-1:]])
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        n = max(2, int(np.linalg.norm(p2 - p1) / step * 4))
        t = np.linspace(0, 1, n, endpoint=False)[:, None]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(points[-1:])
    dense = np.concatenate(out)
    seg = np.r_[0, np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))]
    s = np.arange(0, seg[-1], step)
    return np.stack([np.interp(s, seg, dense[:, 0]), np.interp(s, seg, dense[:, 1])], 1)


def home_path(home, rng: np.random.Generator) -> np.ndarray:
    """(N, 2) world xy points every 5 cm along the robot's path through the home."""
    rooms = home.rooms
    centres = [
        np.array([(x0 + x1) / 2, (y0 + y1) / 2]) + rng.uniform(-0.3, 0.3, 2) for x0, y0, x1, y1 in rooms
    ]
    if len(rooms) == 1:
        x0, y0, x1, y1 = rooms[0]
        rx, ry = max(0.4, (x1 - x0) / 2 - 1.1), max(0.4, (y1 - y0) / 2 - 1.1)
        a = np.linspace(0, 2 * np.pi, 9) + rng.uniform(0, 2 * np.pi)
        pts = centres[0] + np.stack([rx * np.cos(a), ry * np.sin(a)], 1)
        return _catmull_rom(pts)
    pts = []
    for i in range(len(rooms)):
        pts.append(centres[i])
        if i + 1 < len(rooms):
            door = next(d for d in home.doors if _on_both(d[:2], rooms[i], rooms[i + 1]))
            p, n = np.array(door[:2]), np.array(door[2:])
            if np.dot(centres[i] - p, n) < 0:
                n = -n
            pts += [p + 0.6 * n, p - 0.6 * n]
    return _catmull_rom(np.array(pts))


def look_pose(position, yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Camera-to-world (OpenCV axes) at `position` heading `yaw` (rad, from +X), pitch up, roll."""
    f = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    r = np.array([np.sin(yaw), -np.cos(yaw), 0.0])
    d = np.cross(f, r)
    c, s = np.cos(roll), np.sin(roll)
    r, d = c * r + s * d, -s * r + c * d
    pose = np.eye(4)
    pose[:3, :3] = np.stack([r, d, f], 1)
    pose[:3, 3] = position
    return pose


def path_heading(path: np.ndarray, i: int) -> float:
    """Heading (rad, from +X) of the path at vertex ``i``: the chord over 6 samples each way (30 cm),
    which smooths the spline's 5 cm steps."""
    j0, j1 = max(i - 6, 0), min(i + 6, len(path) - 1)
    tangent = path[j1] - path[j0]
    return np.arctan2(tangent[1], tangent[0])


def lateral_offset(s: float, p: np.ndarray, draws: tuple[float, float, float], lateral_m: float,
                   doors: np.ndarray) -> float:  # fmt: skip
    """Sideways offset (metres, + to the left of the route) at position ``s`` along it, point ``p``:
    ``lateral_m`` times a constant part plus half a wave, each drawn in [-1, 1] (``draws``: constant,
    wave amplitude, wave phase), clipped to [-1, 1], so a round keeps to one side for a while (about
    half ``lateral_m`` off the line on average); tapered to 0 within ``DOOR_TAPER_M`` of a doorway
    (``doors``: their (x, y) centres)."""
    base, wave, phase = draws
    off = lateral_m * float(
        np.clip(base + 0.5 * wave * np.sin(phase + 2 * np.pi * s / LATERAL_WAVE_M), -1, 1)
    )
    if len(doors):
        off *= min(1.0, float(np.min(np.linalg.norm(doors - p, axis=1))) / DOOR_TAPER_M)
    return float(off)


def sequence_poses(path: np.ndarray, height: float, count: int, rng: np.random.Generator,
                   lateral_m: float = 0.0, doors=()) -> list[np.ndarray]:  # fmt: skip
    """`count` poses spread along the path (one traversal), with this sequence's small offsets; with
    ``lateral_m`` > 0 also its sideways wander (:func:`lateral_offset`; ``doors``: the home's doorway
    centres, (x, y) each)."""
    seg = np.r_[0, np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]
    length = seg[-1]
    look = np.radians(rng.uniform(0, 30))
    phase = rng.uniform(0, 2 * np.pi)
    # drawn only with a wander, so the poses of renders without one stay what they were
    draws = (rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0, 2 * np.pi)) if lateral_m > 0 else None
    doors = np.asarray(doors, np.float64).reshape(-1, 2)
    poses = []
    for k in range(count):
        s = np.clip((k + 0.5) / count * length + rng.uniform(-0.15, 0.15), 0, length)
        i = int(np.clip(np.searchsorted(seg, s), 1, len(path) - 1))
        t = (s - seg[i - 1]) / max(seg[i] - seg[i - 1], 1e-9)
        p, h = path[i - 1] + t * (path[i] - path[i - 1]), path_heading(path, i)
        if draws is not None:
            p = p + lateral_offset(s, p, draws, lateral_m, doors) * np.array([-np.sin(h), np.cos(h)])
        yaw = h + look * np.sin(phase + 1.3 * s)
        pitch, roll = np.radians(rng.uniform(-4, 8)), np.radians(rng.uniform(-2, 2))
        poses.append(look_pose((p[0], p[1], height + rng.uniform(-0.01, 0.01)), yaw, pitch, roll))
    return poses
