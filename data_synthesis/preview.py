"""`homeloc-synthesize preview`: look at a dataset or a recipe before training on it.

- `--data DIR` (a pairs dataset): one row per pair: image0 | image1 | ground-truth correspondences
  (a grid of image0 points mapped by H_0to1, drawn as lines across image0|image1 where valid;
  points landing on changed pixels in red) | image1 with the masks overlaid (invalid: blue,
  changed: red). A places dataset: one row of views per place, labelled with place/group/preset.
  A shapes dataset: a grid of images with their keypoints.
- `--recipe NAME --source IMG`: a photometric preset or recipe, or a scene-change recipe, applied
  to IMG with seeds 0..num-1, the drawn parameters written under each tile. IMG may also be
  `skimage` or `skimage:NAME` (a photo bundled with scikit-image).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import cv2
import numpy as np

from homeloc.data_synthesis import shards
from homeloc.data_synthesis.captures import fit
from homeloc.data_synthesis.pairs import unpack_masks
from homeloc.data_synthesis.photometric import PRESETS, RECIPES, apply_preset, apply_recipe, to_uint8
from homeloc.data_synthesis.scene_change import SCENE_RECIPES
from homeloc.runtime.geometry import warp_points
from homeloc.runtime.io import read_image, write_image

FONT = cv2.FONT_HERSHEY_SIMPLEX
INVALID_RGB = np.array([40, 90, 255], np.float32)
CHANGE_RGB = np.array([255, 40, 40], np.float32)


# ----------------------------------------------------------------------------------- drawing


def label(img: np.ndarray, text: str, scale: float = 0.4) -> np.ndarray:
    """Write text in the top-left corner on a dark band (in place; returns img)."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
    cv2.rectangle(img, (0, 0), (min(tw + 4, img.shape[1]), th + base + 4), (0, 0, 0), -1)
    cv2.putText(img, text, (2, th + 2), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def text_panel(lines: list[str], width: int, scale: float = 0.33) -> np.ndarray:
    """A black panel with the given lines wrapped to `width` pixels."""
    char_w = max(cv2.getTextSize("M", FONT, scale, 1)[0][0] - 1, 1)
    wrapped = [w for line in lines for w in (textwrap.wrap(line, max(width // char_w, 8)) or [""])]
    line_h = cv2.getTextSize("Mg", FONT, scale, 1)[0][1] + 5
    panel = np.zeros((line_h * len(wrapped) + 6, width, 3), np.uint8)
    for i, line in enumerate(wrapped):
        cv2.putText(panel, line, (3, line_h * (i + 1)), FONT, scale, (230, 230, 230), 1, cv2.LINE_AA)
    return panel


def rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def _colour(i: int, n: int) -> tuple[int, int, int]:
    hsv = np.uint8([[[int(180 * i / max(n, 1)) % 180, 220, 255]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def draw_correspondences(image0, image1, h_0to1, valid0, valid1, change1, grid=(8, 10)) -> np.ndarray:
    """image0|image1 side by side with lines from a grid of image0 points to H(point) in image1,
    drawn only where the point is valid in image0 and lands valid inside image1; red crosses mark
    points landing on changed pixels (no correspondence there)."""
    h, w = image0.shape[:2]
    canvas = np.hstack([rgb(image0), rgb(image1)]).copy()
    ys, xs = np.meshgrid(
        np.linspace(0.06, 0.94, grid[0]) * (h - 1), np.linspace(0.05, 0.95, grid[1]) * (w - 1), indexing="ij"
    )
    p0 = np.stack([xs.ravel(), ys.ravel()], 1)
    p1 = warp_points(p0, h_0to1)
    n = len(p0)
    for i, (a, b) in enumerate(zip(p0, p1, strict=True)):
        if not valid0[int(round(a[1])), int(round(a[0]))]:
            continue
        bx, by = int(round(b[0])), int(round(b[1]))
        if not (0 <= bx < w and 0 <= by < h) or not valid1[by, bx]:
            continue
        pa = (int(round(a[0] * 16)), int(round(a[1] * 16)))
        pb = (int(round((b[0] + w) * 16)), int(round(b[1] * 16)))
        if change1[by, bx]:
            cv2.drawMarker(canvas, (bx + w, by), (255, 0, 0), cv2.MARKER_TILTED_CROSS, 8, 2)
            continue
        c = _colour(i, n)
        cv2.line(canvas, pa, pb, c, 1, cv2.LINE_AA, 4)
        cv2.circle(canvas, pa, 2 * 16, c, -1, cv2.LINE_AA, 4)
        cv2.circle(canvas, pb, 2 * 16, c, -1, cv2.LINE_AA, 4)
    return canvas


def overlay_masks(image1, valid1, change1, alpha: float = 0.45) -> np.ndarray:
    """image1 (dimmed to gray) with invalid pixels tinted blue and changed pixels tinted red."""
    g = cv2.cvtColor(rgb(image1), cv2.COLOR_RGB2GRAY).astype(np.float32)
    out = np.repeat(g[..., None], 3, axis=2)
    for mask, col in ((~valid1, INVALID_RGB), (change1, CHANGE_RGB)):
        out[mask] = (1 - alpha) * out[mask] + alpha * col
    return np.clip(out, 0, 255).astype(np.uint8)


def draw_keypoints(img: np.ndarray, kps: np.ndarray) -> np.ndarray:
    out = rgb(img).copy()
    for x, y in np.asarray(kps, np.float64).reshape(-1, 2):
        cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), 3 * 16, (255, 60, 60), 1, cv2.LINE_AA, 4)
    return out


def _stack_rows(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    pad = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    sep = np.full((4, width, 3), 255, np.uint8)
    return np.vstack([x for r in pad for x in (r, sep)][:-1])


def _grid(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    h = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    sep = np.full((h, 4, 3), 255, np.uint8)
    rows = []
    for i in range(0, len(tiles), cols):
        row = tiles[i : i + cols]
        rows.append(np.hstack([x for t in row for x in (t, sep)][:-1]))
    return _stack_rows(rows)


# ------------------------------------------------------------------------------------ datasets


def _decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise shards.DatasetError("undecodable image member")
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _samples(data: Path, num: int):
    manifest = shards.read_manifest(data)
    if manifest is None:
        raise shards.DatasetError(f"{data}: no {shards.MANIFEST} (not a homeloc dataset)")
    out = []
    for name in sorted(manifest["shards"]):
        for key, members in shards.iter_shard(data / name):
            out.append((key, members))
            if len(out) >= num:
                return manifest["kind"], out
    if not out:
        raise shards.DatasetError(f"{data}: no finished shard to preview")
    return manifest["kind"], out


def _member(members: dict, prefix: str) -> bytes:
    return next(v for k, v in members.items() if k.startswith(prefix))


def pair_row(members: dict) -> np.ndarray:
    """One preview row for a pair sample (member dict of a pairs shard)."""
    img0, img1 = _decode(_member(members, "img0.")), _decode(_member(members, "img1."))
    valid1, change1, valid0 = unpack_masks(_decode(members["masks.png"]))
    meta = json.loads(members["json"])
    h = np.asarray(meta["H_0to1"], np.float64)
    corr = draw_correspondences(img0, img1, h, valid0, valid1, change1)
    scene = "+".join(r["recipe"] for r in meta.get("scene_change", [])) or "no change"
    tiles = [
        label(rgb(img0).copy(), f"#{meta['index']} {meta['presets'][0]}"),
        label(rgb(img1).copy(), meta["presets"][1]),
        label(corr, meta["source"][:60]),
        label(overlay_masks(img1, valid1, change1), f"valid {valid1.mean():.0%} | {scene}"),
    ]
    return np.hstack(tiles)


def place_row(members: dict) -> np.ndarray:
    meta = json.loads(members["json"])
    tiles = []
    for v, rec in enumerate(meta["views"]):
        img = rgb(_decode(_member(members, f"view{v}."))).copy()
        extra = f" {rec['capture']}" if rec.get("capture") else ""
        text = (
            f"p{meta['place']} g{meta['group']} {rec['preset']}{extra}" if v == 0 else rec["preset"] + extra
        )
        tiles.append(label(img, text))
    return np.hstack(tiles)


def preview_dataset(data: str | Path, out: str | Path, num: int = 8) -> Path:
    """Preview grid of the first `num` samples of a pairs / places / shapes dataset; returns out."""
    kind, samples = _samples(Path(data), num)
    if kind == "pairs":
        grid = _stack_rows([pair_row(m) for _, m in samples])
    elif kind == "places":
        grid = _stack_rows([place_row(m) for _, m in samples])
    elif kind == "shapes":
        tiles = []
        for _, m in samples:
            meta = json.loads(m["json"])
            tiles.append(
                label(
                    draw_keypoints(_decode(m["img.png"]), np.asarray(meta["keypoints"])),
                    f"#{meta['index']} {meta['shape']} {len(meta['keypoints'])} kps",
                )
            )
        grid = _grid(tiles, 4)
    else:
        raise shards.DatasetError(f"{data}: cannot preview a {kind!r} dataset")
    return write_image(out, grid)


# ------------------------------------------------------------------------------------- recipes


def load_source_image(spec: str) -> tuple[np.ndarray, str]:
    """An image file, or `skimage` / `skimage:NAME` (a photo bundled with scikit-image)."""
    if spec == "skimage" or spec.startswith("skimage:"):
        from homeloc.data_synthesis.sources import skimage_photos

        photos = dict(skimage_photos())
        name = spec.partition(":")[2] or "astronaut"
        if name not in photos:
            raise KeyError(f"no scikit-image photo {name!r}; available: {sorted(photos)}")
        return photos[name], spec
    return read_image(spec), Path(spec).name


def _fmt_params(params: dict) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def apply_named(name: str, img: np.ndarray, seed: int, texture: np.ndarray | None = None):
    """Apply a preset, a photometric recipe or a scene-change recipe by name with one seed.

    Returns (uint8 image, text lines describing what was drawn, changed-pixel mask or None)."""
    from homeloc.data_synthesis.pairs import sample_rng

    rng = sample_rng(seed, 0, 7)
    imgf = img.astype(np.float32) * np.float32(1 / 255)
    if name in PRESETS:
        out, applied = apply_preset(name, imgf, rng)
        lines = [f"{a['recipe']}: {_fmt_params(a['params'])}" for a in applied] or ["(nothing applied)"]
        return to_uint8(out), lines, None
    if name in RECIPES:
        out, params = apply_recipe(name, imgf, rng)
        return to_uint8(out), [_fmt_params(params)], None
    if name in SCENE_RECIPES:
        kwargs = {"texture": texture} if name == "occluder" else {}
        out, mask, params = SCENE_RECIPES[name](imgf, rng, **kwargs)
        return to_uint8(np.clip(out, 0, 1)), [_fmt_params(params), f"changed {mask.mean():.1%}"], mask
    known = sorted(PRESETS) + sorted(RECIPES) + sorted(SCENE_RECIPES)
    raise KeyError(f"unknown recipe or preset {name!r}; known: {known}")


def preview_recipe(
    recipe: str, source: str, out: str | Path, num: int = 6, size=(240, 320), cols: int = 3
) -> Path:
    """The source image, then `recipe` applied with seeds 0..num-1, each tile captioned with the
    parameters drawn (scene changes: the changed-pixel mask outlined in red). Returns out."""
    img, name = load_source_image(source)
    base = fit(img, tuple(size))
    texture = np.ascontiguousarray(base[::-1, ::-1])  # occluders cut from a flipped copy
    tiles = [
        np.vstack(
            [
                label(base.copy(), f"{name} (input)"),
                text_panel([f"{recipe}: {_describe(recipe)}"], base.shape[1]),
            ]
        )
    ]
    for seed in range(num):
        res, lines, mask = apply_named(recipe, base, seed, texture)
        res = res.copy()
        if mask is not None:
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(res, contours, -1, (255, 0, 0), 1)
        tiles.append(np.vstack([label(res, f"{recipe} seed {seed}"), text_panel(lines, base.shape[1])]))
    return write_image(out, _grid(tiles, cols))


def _describe(name: str) -> str:
    if name in PRESETS:
        return "preset: " + ", ".join(f"{s.recipe}(p={s.p:g})" for s in PRESETS[name])
    if name in RECIPES:
        r = RECIPES[name]
        return "recipe: " + " ".join(f"{k}∈[{lo:g},{hi:g}]" for k, (lo, hi) in r.ranges.items())
    return "scene change"


# ------------------------------------------------------------------------------------------ CLI


def add_subcommand(sub) -> None:
    from homeloc.data_synthesis.cli_errors import OneLineParser, PositiveInt

    p = OneLineParser(
        description=__doc__.split("\n\n")[0] + " Give --data DIR, or --recipe NAME --source IMG."
    )
    p.add_argument("--data", type=str | None, default=None, help="dataset folder (pairs, places or shapes)")
    p.add_argument(
        "--recipe",
        type=str | None,
        default=None,
        help=f"preset ({', '.join(sorted(PRESETS))}), photometric recipe or scene-change recipe "
        f"({', '.join(sorted(SCENE_RECIPES))})",
    )
    p.add_argument(
        "--source", type=str | None, default=None, help="image for --recipe (a file, or skimage[:NAME])"
    )
    p.add_argument("--out", type=str, required=True, help="output PNG")
    p.add_argument(
        "--num",
        type=PositiveInt | None,
        default=None,
        help="samples (rows) to show with --data (default 8), or seeds (tiles) with --recipe (default 6)",
    )
    p.add_argument(
        "--size",
        type=tuple[PositiveInt, PositiveInt],
        default=(240, 320),
        help="tile height, width for --recipe",
    )
    sub.add_subcommand("preview", p, help="draw a preview grid of a dataset or a recipe")


def run(args) -> int:
    if (args.data is None) == (args.recipe is None):
        raise ValueError("preview: give either --data DIR or --recipe NAME --source IMG")
    if args.data is not None:
        out = preview_dataset(args.data, args.out, args.num or 8)
    else:
        if args.source is None:
            raise ValueError("preview --recipe needs --source IMG (an image file, or skimage[:NAME])")
        out = preview_recipe(args.recipe, args.source, args.out, args.num or 6, tuple(args.size))
    print(f"wrote {out}")
    return 0
