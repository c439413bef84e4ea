import pytest

from homeloc.data_synthesis.render.config import CameraModelConfig, RenderConfig

pytest.importorskip("mitsuba", reason="mitsuba not installed (pip install -e .)")


def tiny_config(**kw) -> RenderConfig:
    """24x32, 2 spp, procedural materials only (no ../shared needed), no denoiser or motion blur."""
    base = dict(
        size=(24, 32),
        spp=2,
        denoise="none",
        rooms=(1, 2),
        frames_per_sequence=2,
        assets="",
        photos=[],
        camera=CameraModelConfig(motion_blur=0.0),
    )
    base.update(kw)
    return RenderConfig(**base)


@pytest.fixture(scope="module")
def tiny_render(tmp_path_factory):
    from homeloc.data_synthesis.render.jobs import render_homes

    out = tmp_path_factory.mktemp("render") / "r"
    render_homes(out, 1, 4, seed=3, cfg=tiny_config())
    return out
