"""Model identity: a map refuses a model whose weights changed under kept metadata (graph hash),
maps saved before still load with the metadata check, and shipped models are checked against
runtime/assets/MANIFEST.json."""

import json
import shutil

import onnx
import pytest

import homeloc.runtime.assets as assets
from homeloc.runtime.assets import graph_sha256
from homeloc.runtime.hashing import file_sha256
from homeloc.runtime.loop_closure.models import MapModels

SHIPPED = assets.ASSETS_DIR / "places.int8.onnx"


def _tampered(src, dst, note: str | None = None):
    """A copy of src with one weight changed (and its metadata kept), or with a metadata key added."""
    proto = onnx.load(str(src))
    if note is None:
        t = next(t for t in proto.graph.initializer if len(t.raw_data) > 16)
        raw = bytearray(t.raw_data)
        raw[0] ^= 1
        t.raw_data = bytes(raw)
    else:
        proto.metadata_props.add(key="homeloc.note", value=note)
    onnx.save(proto, str(dst))
    return dst


@pytest.fixture
def tampered(tmp_path):
    if not SHIPPED.is_file():
        pytest.skip("no shipped places model in this checkout")
    (tmp_path / "tampered").mkdir()
    return _tampered(SHIPPED, tmp_path / "tampered" / "places.int8.onnx")


def test_graph_hash_sees_weights_not_metadata(tmp_path, tampered):
    relabelled = _tampered(SHIPPED, tmp_path / "relabelled.onnx", note="same weights")
    assert graph_sha256(relabelled) == graph_sha256(SHIPPED)  # metadata is not the weights
    assert graph_sha256(tampered) != graph_sha256(SHIPPED)
    (tmp_path / "text.onnx").write_text("not a model")
    with pytest.raises(ValueError, match="not an ONNX model"):
        graph_sha256(tmp_path / "text.onnx")


def test_map_refuses_changed_weights_under_kept_metadata(tampered):
    built = MapModels(SHIPPED, None)
    built.check(None)
    info = built.info["places"]
    assert info["identity_version"] == 2 and info["graph_sha256"] == graph_sha256(SHIPPED)
    later = MapModels(tampered, None)
    later.info = json.loads(json.dumps(built.info))  # what a saved map holds
    with pytest.raises(ValueError, match=r"places.int8.onnx: .*differs.*weights hash.*a modified file"):
        later.check(256)
    same = MapModels(SHIPPED, None)
    same.info = json.loads(json.dumps(built.info))
    same.check(256)  # the model the map was built with passes


def test_map_saved_before_the_graph_hash_loads_with_the_metadata_check(tampered):
    built = MapModels(SHIPPED, None)
    built.check(None)
    saved = {k: v for k, v in built.info["places"].items() if k not in ("graph_sha256", "identity_version")}
    old = MapModels(tampered, None)
    old.info = {"places": saved}  # a map file written before identity_version 2
    old.check(256)  # the old (metadata) check alone: accepted, as before


def test_shipped_model_checked_against_the_manifest(tmp_path, monkeypatch, tampered):
    for name in ("places.int8.onnx", "keypoints.int8.onnx"):
        shutil.copy(assets.ASSETS_DIR / name, tmp_path / name)
    manifest = {"places": {"files": {"places.int8.onnx": file_sha256(SHIPPED)}}}
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(assets, "ASSETS_DIR", tmp_path)
    assert assets.shipped_model("places") == tmp_path / "places.int8.onnx"
    assert assets.shipped_model("keypoints")  # not listed: not checked
    shutil.copy(tampered, tmp_path / "places.int8.onnx")
    with pytest.raises(ValueError, match=r"places.int8.onnx: sha256 .* does not match .*MANIFEST.json"):
        assets.shipped_model("places")


def test_the_shipped_models_match_their_manifest():
    if not (assets.ASSETS_DIR / assets.MANIFEST).is_file():
        pytest.skip("no MANIFEST.json in this checkout")
    for kind in assets.KINDS:
        for precision in assets.PRECISIONS:
            assets.shipped_model(kind, precision)


def test_a_map_takes_the_shipped_file_that_replaced_its_model(tmp_path, monkeypatch, tampered):
    """A shipped model quantized again (export.requantize) lists the graph it replaced in the
    manifest; maps built with that graph take it, other maps still refuse a changed graph."""
    built = MapModels(SHIPPED, None)
    built.check(None)
    saved = json.loads(json.dumps(built.info))  # what a map built with the old file holds
    shutil.copy(tampered, tmp_path / "places.int8.onnx")  # the same metadata, other weights
    new = tmp_path / "places.int8.onnx"
    manifest = {"places": {"files": {"places.int8.onnx": file_sha256(new)}}}
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(assets, "ASSETS_DIR", tmp_path)
    later = MapModels(new, None)
    later.info = json.loads(json.dumps(saved))
    with pytest.raises(ValueError, match="a modified file, or one quantized again"):
        later.check(256)  # not listed as replaced: refused
    manifest["places"]["replaces"] = {"places.int8.onnx": [graph_sha256(SHIPPED)]}
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    assert assets.replaced_graphs(new) == {graph_sha256(SHIPPED)}
    later = MapModels(new, None)
    later.info = json.loads(json.dumps(saved))
    later.check(256)  # listed: the map takes it
    assert later.info["places"]["graph_sha256"] == graph_sha256(SHIPPED)  # and still records its own
    # a copy outside the shipped folder lists nothing
    shutil.copy(new, tmp_path / "elsewhere.onnx")
    assert assets.replaced_graphs(tmp_path / "elsewhere.onnx") == frozenset()
    # a listed file modified afterwards is refused, naming it
    _tampered(tampered, new, note="edited")
    with pytest.raises(ValueError, match=r"places.int8.onnx: sha256 .* does not match"):
        assets.replaced_graphs(new)
