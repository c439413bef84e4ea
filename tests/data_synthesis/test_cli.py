"""homeloc-synthesize end to end on tiny runs, --help of every subcommand, errors."""

import json

import numpy as np
import pytest

from homeloc.data_synthesis.cli import main
from homeloc.runtime.io import read_image, write_image
from tests.conftest import ROOT

TINY = str(ROOT / "configs" / "synth" / "tiny.yaml")
SUBCOMMANDS = {
    "pairs": ["--source", "--synth.view1", "--workers", "--only_shards"],
    "shapes": ["--size", "--num"],
    "verify": ["--data"],
    "preview": ["--data", "--recipe", "--source"],
    "places": ["--views", "--places_per_source", "--synth.view_presets"],
    "places-eval": ["--query_presets", "--data"],
    "stats": ["--webcam", "--presets"],
    "render": [
        "--homes",
        "--frames-per-home",
        "--size",
        "--synth.spp",
        "--days",
        "--frames-per-day",
        "--longterm",
    ],
    "render-preview": ["--home", "--pairs", "--data", "--place"],
    "render-export": ["--product", "--min_overlap"],
    "render-path": ["--data"],
}


@pytest.mark.parametrize("cmd", sorted(SUBCOMMANDS))
def test_help_of_each_subcommand(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for opt in SUBCOMMANDS[cmd]:
        assert opt in out, f"{cmd} --help lacks {opt}"


def test_top_level_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(c in out for c in SUBCOMMANDS)


def test_configs_load(capsys):
    for name in ("default", "tiny"):
        with pytest.raises(SystemExit):
            main(
                [
                    "pairs",
                    "--config",
                    str(ROOT / "configs" / "synth" / f"{name}.yaml"),
                    "--out",
                    "x",
                    "--print_config",
                ]
            )
    assert "night_lamp" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(
            [
                "places",
                "--config",
                str(ROOT / "configs" / "synth" / "places.yaml"),
                "--out",
                "x",
                "--print_config",
            ]
        )
    assert "places_per_source: 4" in capsys.readouterr().out


def test_pairs_verify_preview_end_to_end(tmp_path, capsys):
    out = tmp_path / "pairs"
    assert main(["pairs", "--config", TINY, "--out", str(out)]) == 0
    assert (out / "config.yaml").is_file() and (out / "manifest.json").is_file()
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] and m["num"] == 8 and len(m["shards"]) == 2
    assert main(["verify", "--data", str(out)]) == 0
    assert "pairs dataset OK, 8 samples" in capsys.readouterr().out
    png = tmp_path / "grid.png"
    assert main(["preview", "--data", str(out), "--out", str(png), "--num", "3"]) == 0
    grid = read_image(png)
    assert grid.shape[0] >= 3 * 96 and grid.shape[1] >= 5 * 128  # rows of img0|img1|img0+img1|masks
    # a rerun finds everything done and leaves the shards alone
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}
    assert main(["pairs", "--config", TINY, "--out", str(out)]) == 0
    assert before == {p.name: p.stat().st_mtime_ns for p in out.glob("*.tar")}


@pytest.mark.parametrize("recipe", ["night_lamp", "lamp", "occluder"])
def test_preview_recipe(tmp_path, recipe):
    src = tmp_path / "in.png"
    write_image(src, (np.random.default_rng(0).random((80, 100, 3)) * 255).astype(np.uint8))
    png = tmp_path / "r.png"
    assert (
        main(
            [
                "preview",
                "--recipe",
                recipe,
                "--source",
                str(src),
                "--out",
                str(png),
                "--num",
                "2",
                "--size",
                "[60, 80]",
            ]
        )
        == 0
    )
    assert read_image(png).shape[1] >= 3 * 80


def test_preview_recipe_on_skimage_photo(tmp_path):
    assert (
        main(
            [
                "preview",
                "--recipe",
                "night_ir",
                "--source",
                "skimage:astronaut",
                "--out",
                str(tmp_path / "a.png"),
                "--num",
                "1",
                "--size",
                "[60, 80]",
            ]
        )
        == 0
    )


def test_shapes_and_places_end_to_end(tmp_path):
    shapes = tmp_path / "shapes"
    assert (
        main(["shapes", "--out", str(shapes), "--num", "4", "--shard_size", "2", "--size", "[48, 64]"]) == 0
    )
    assert main(["preview", "--data", str(shapes), "--out", str(tmp_path / "s.png"), "--num", "4"]) == 0
    places = tmp_path / "places"
    assert (
        main(
            [
                "places",
                "--out",
                str(places),
                "--num",
                "4",
                "--views",
                "3",
                "--places_per_source",
                "2",
                "--size",
                "[48, 64]",
                "--shard_size",
                "4",
            ]
        )
        == 0
    )
    assert (places / "config.yaml").is_file()
    assert main(["preview", "--data", str(places), "--out", str(tmp_path / "p.png"), "--num", "2"]) == 0
    assert (
        main(
            [
                "places-eval",
                "--data",
                str(places),
                "--out",
                str(tmp_path / "eval"),
                "--query_presets",
                "[night_lamp, night_ir, dusk, glare, day]",
            ]
        )
        == 0
    )
    assert (tmp_path / "eval" / "ground_truth.csv").is_file()


def test_errors_name_the_bad_source(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["pairs", "--source", f"folder:{empty}", "--out", str(tmp_path / "o"), "--num", "2"]) == 2
    err = capsys.readouterr().err
    assert "error" in err and str(empty) in err and "no image files" in err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"\xff\xd8\xff not a jpeg at all")
    assert main(["pairs", "--source", f"folder:{bad}", "--out", str(tmp_path / "o2"), "--num", "2"]) == 2
    assert "x.jpg" in capsys.readouterr().err
    assert main(["verify", "--data", str(tmp_path)]) == 2
    assert "manifest" in capsys.readouterr().err
    assert (
        main(["preview", "--recipe", "nightfall", "--source", "skimage", "--out", str(tmp_path / "p.png")])
        == 2
    )
    assert "unknown recipe" in capsys.readouterr().err
    assert main(["preview", "--out", str(tmp_path / "p.png")]) == 2


def test_every_subcommand_in_help_is_registered(capsys):
    """The subcommands --help lists are exactly the table's, each registered under its own name,
    and the table is built from plain imports (no `except ImportError` that could drop one)."""
    import inspect
    import re

    from homeloc.data_synthesis import cli

    with pytest.raises(SystemExit):
        main(["--help"])
    listed = re.search(r"\{([\w,-]+)\}", capsys.readouterr().out).group(1).split(",")
    assert listed == list(cli.SUBCOMMANDS)
    assert set(SUBCOMMANDS) | {"export-pairs"} == set(cli.SUBCOMMANDS)
    assert list(cli.parser()._subcommands_action.choices) == list(cli.SUBCOMMANDS)
    source = inspect.getsource(cli)
    assert "except ImportError" not in source and "importlib" not in source and "__import__" not in source


def test_a_broken_subcommand_fails_loudly(monkeypatch):
    from homeloc.data_synthesis import cli

    def broken(sub):
        raise ImportError("no module named 'torch'")

    monkeypatch.setitem(cli.SUBCOMMANDS, "places", cli.Subcommand(broken, cli.SUBCOMMANDS["places"].run))
    with pytest.raises(ImportError, match="torch"):
        cli.parser()
    # a builder registering another name than its table key would leave that key unreachable
    monkeypatch.setitem(cli.SUBCOMMANDS, "places", cli.SUBCOMMANDS["places-eval"])
    with pytest.raises(RuntimeError, match="places"):
        cli.parser()
