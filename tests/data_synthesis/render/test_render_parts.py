"""Units of the render engine that need no rendering: camera model, lighting registry, homes, paths."""

import numpy as np
import pytest

from homeloc.data_synthesis.render.assets import AssetLibrary
from homeloc.data_synthesis.render.camera_model import develop
from homeloc.data_synthesis.render.config import CameraModelConfig, RenderConfig
from homeloc.data_synthesis.render.engine import light_passes
from homeloc.data_synthesis.render.home import make_home
from homeloc.data_synthesis.render.lighting import LIGHTINGS, make_lighting
from homeloc.data_synthesis.render.trajectory import intrinsics, look_pose
from tests.conftest import ROOT
from tests.data_synthesis.render.conftest import tiny_config


def _noise(level: float) -> float:
    """Relative noise of a flat grey patch of radiance `level` after the camera model."""
    img = np.full((64, 64, 3), level, np.float32)
    out, _ = develop(img, CameraModelConfig(motion_blur=0.0), np.random.default_rng(0))
    g = out.astype(float).mean(-1)
    return g.std() / max(g.mean(), 1e-6)


def test_noise_grows_as_light_falls_and_mono_is_gray():
    assert _noise(1e-4) > 2 * _noise(1.0)
    out, exp = develop(
        np.random.default_rng(1).uniform(0, 1, (8, 8, 3)).astype(np.float32),
        CameraModelConfig(),
        np.random.default_rng(0),
        mono=True,
    )
    assert (
        (out[..., 0] == out[..., 1]).all()
        and (out[..., 1] == out[..., 2]).all()
        and exp.wb == (1.0, 1.0, 1.0)
    )
    a, _ = develop(np.ones((8, 8, 3), np.float32), CameraModelConfig(), np.random.default_rng(3))
    b, _ = develop(np.ones((8, 8, 3), np.float32), CameraModelConfig(), np.random.default_rng(3))
    assert (a == b).all()
    with pytest.raises(ValueError, match="HxWx3"):
        develop(np.ones((8, 8), np.float32), CameraModelConfig(), np.random.default_rng(0))


def test_every_lighting_draws_and_unknown_is_refused():
    home = make_home(tiny_config(), AssetLibrary("", []), 0, 0)
    for name in LIGHTINGS:
        lt = make_lighting(name, np.random.default_rng(0), home)
        assert lt.name == name and light_passes(lt)
    assert make_lighting("ir_dark", np.random.default_rng(0), home).mono
    with pytest.raises(KeyError, match="unknown lighting"):
        make_lighting("disco", np.random.default_rng(0), home)


@pytest.mark.parametrize("index", range(6))
def test_homes_are_seeded_and_the_path_stays_inside_and_clear(index):
    cfg = tiny_config(rooms=(1, 4))
    a, b = make_home(cfg, AssetLibrary("", []), 1, index), make_home(cfg, AssetLibrary("", []), 1, index)
    assert a.rooms == b.rooms and np.array_equal(a.path, b.path) and len(a.items) == len(b.items)
    assert 1 <= len(a.rooms) <= 4 and 0.3 <= a.camera_height <= 1.2
    inside = [any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in a.rooms) for x, y in a.path]
    assert all(inside)
    for it in a.items:
        if it.kind in ("rug", "photo"):
            continue
        d = np.abs(a.path - it.centre) - it.half
        assert np.linalg.norm(np.maximum(d, 0), axis=1).min() > 0.3, it.tag


def test_pose_axes_and_intrinsics():
    pose = look_pose((1.0, 2.0, 0.5), 0.0, 0.0, 0.0)
    assert np.allclose(pose[:3, 2], [1, 0, 0]) and np.allclose(pose[:3, 1], [0, 0, -1])  # z forward, y down
    K = intrinsics((240, 320), 90.0)
    assert np.isclose(K[0, 0], 160.0) and np.isclose(K[0, 2], 159.5) and np.isclose(K[1, 2], 119.5)
    with pytest.raises(ValueError, match="size"):
        RenderConfig(size=(4, 4))


@pytest.mark.parametrize("name", ["render", "render_eval", "render_tiny", "longterm"])
def test_render_configs_load(name, capsys):
    from homeloc.data_synthesis.cli import main

    with pytest.raises(SystemExit) as e:
        main(
            [
                "render",
                "--config",
                str(ROOT / "configs" / "synth" / f"{name}.yaml"),
                "--out",
                "x",
                "--print_config",
            ]
        )
    assert e.value.code == 0 and "spp:" in capsys.readouterr().out


def test_evaluation_assets_are_never_used_for_training(shared_data):
    train = AssetLibrary(str(shared_data / "home_assets"), [str(shared_data / "icl_nuim_snippet")], "train")
    evaluation = AssetLibrary(
        str(shared_data / "home_assets"), [str(shared_data / "icl_nuim_snippet")], "eval"
    )
    held = set(evaluation.textures) - set(train.textures)
    assert held and set(train.textures) < set(evaluation.textures)
    assert set(evaluation.photos) - set(train.photos)
    assert not {"sofa_03", "painted_wooden_cabinet_02"} & set(train.mesh_names)
    assert {"sofa_03", "painted_wooden_cabinet_02"} <= set(evaluation.mesh_names)
