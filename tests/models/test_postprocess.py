"""Sparse post-processing: torch functions (models.postprocess) and their numpy twin (runtime)."""

import numpy as np
import pytest
import torch

from homeloc.models import postprocess as tp
from homeloc.models.keypoints import KeypointNet
from homeloc.runtime import postprocess as rp

BOTH = pytest.mark.parametrize("impl", ["torch", "numpy"])


def _run(impl, name, *args, **kw):
    """Call ``name`` of the torch or numpy implementation with numpy inputs; numpy outputs."""
    if impl == "numpy":
        return getattr(rp, name)(*args, **kw)
    conv = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
    out = getattr(tp, name)(*conv, **kw)
    if isinstance(out, list):
        return [tuple(t.numpy() for t in item) for item in out]
    return out.numpy()


def _logits_with_peaks(peaks, h=4, w=6, low=-10.0, high=10.0):
    """Logits whose heatmap has probability ~1 at each (x, y) in peaks, ~0 elsewhere."""
    logits = np.full((65, h, w), low, np.float32)
    logits[64] = high  # dustbin wins everywhere else
    for x, y in peaks:
        logits[(y % 8) * 8 + x % 8, y // 8, x // 8] = high + 5
    return logits


# ---------------------------------------------------------------- heatmap
@BOTH
def test_heatmap_layout(impl):
    peaks = [(0, 0), (13, 5), (47, 31), (20, 17)]
    heat = _run(impl, "heatmap_from_logits", _logits_with_peaks(peaks))
    assert heat.shape == (32, 48) and heat.dtype == np.float32
    ys, xs = np.nonzero(heat > 0.5)
    assert sorted(zip(xs.tolist(), ys.tolist(), strict=True)) == sorted(peaks)
    batch = _run(impl, "heatmap_from_logits", np.stack([_logits_with_peaks(peaks)] * 2))
    assert batch.shape == (2, 32, 48)
    np.testing.assert_allclose(batch[1], heat)


def test_heatmap_cells_sum_below_one_and_bad_input():
    rng = np.random.default_rng(0)
    heat = rp.heatmap_from_logits(rng.normal(size=(65, 3, 5)).astype(np.float32))
    cell_sums = heat.reshape(3, 8, 5, 8).sum(axis=(1, 3))
    assert (cell_sums < 1).all() and (cell_sums > 0).all()
    with pytest.raises(ValueError, match="65"):
        rp.heatmap_from_logits(np.zeros((1, 64, 3, 3), np.float32))
    with pytest.raises(ValueError, match="65"):
        tp.heatmap_from_logits(torch.zeros(1, 64, 3, 3))


# ---------------------------------------------------------------- NMS / borders / top-k
def _hand_heatmap():
    heat = np.zeros((24, 32), np.float32)
    heat[10, 10] = 0.9  # peak
    heat[10, 13] = 0.8  # within radius 4 of the peak: suppressed
    heat[10, 18] = 0.7  # 8 px from the peak, 5 px from (13,10): survives
    heat[20, 28] = 0.5  # survives
    heat[1, 1] = 0.95  # near the border
    heat[5, 5] = 0.3  # within radius of (1,1) (Chebyshev 4): suppressed
    return heat


@BOTH
def test_nms_known_peaks(impl):
    out = _run(impl, "nms", _hand_heatmap(), 4)
    ys, xs = np.nonzero(out)
    assert sorted(zip(xs.tolist(), ys.tolist(), strict=True)) == [(1, 1), (10, 10), (18, 10), (28, 20)]
    assert out[10, 10] == np.float32(0.9)
    # radius 0 keeps everything; radius 2 keeps (13,10) (3 px from the peak), radius 3 does not
    assert np.count_nonzero(_run(impl, "nms", _hand_heatmap(), 0)) == 6
    assert np.count_nonzero(_run(impl, "nms", _hand_heatmap(), 2)) == 6
    assert np.count_nonzero(_run(impl, "nms", _hand_heatmap(), 3)) == 5
    plateau = np.zeros((8, 8), np.float32)
    plateau[3, 3] = plateau[3, 4] = 0.5
    assert np.count_nonzero(_run(impl, "nms", plateau, 2)) == 2  # equal maxima all survive
    batched = _run(impl, "nms", np.stack([_hand_heatmap(), plateau.repeat(3, 0).repeat(4, 1)]), 4)
    assert batched.shape == (2, 24, 32)


@BOTH
def test_remove_borders(impl):
    heat = np.ones((24, 32), np.float32)
    out = _run(impl, "remove_borders", heat, 4)
    assert out[4:20, 4:28].all() and out.sum() == 16 * 24
    # valid region of an unpadded 18x27 image inside a 24x32 padded heatmap
    out = _run(impl, "remove_borders", heat, 2, image_size=(18, 27))
    assert out[2:16, 2:25].all() and out.sum() == 14 * 23
    assert _run(impl, "remove_borders", heat, 0).sum() == heat.sum()


@BOTH
def test_topk_order_limit_threshold(impl):
    heat = _run(impl, "nms", _hand_heatmap(), 4)
    ((kp, scores),) = _run(impl, "topk_keypoints", heat, 10, 0.0)
    assert kp.dtype == np.float32 and kp.shape == (4, 2)
    np.testing.assert_array_equal(kp, [[1, 1], [10, 10], [18, 10], [28, 20]])
    np.testing.assert_allclose(scores, [0.95, 0.9, 0.7, 0.5])
    ((kp, scores),) = _run(impl, "topk_keypoints", heat, 2, 0.0)
    np.testing.assert_array_equal(kp, [[1, 1], [10, 10]])
    ((kp, scores),) = _run(impl, "topk_keypoints", heat, None, 0.6)
    np.testing.assert_allclose(scores, [0.95, 0.9, 0.7])
    ((kp, scores),) = _run(impl, "topk_keypoints", np.zeros((8, 8), np.float32), 5, 0.0)
    assert kp.shape == (0, 2) and scores.shape == (0,)
    ties = np.zeros((8, 8), np.float32)
    ties[5, 1] = ties[2, 6] = ties[2, 3] = 0.5  # equal scores come out in raster order
    ((kp, _),) = _run(impl, "topk_keypoints", ties, 5, 0.0)
    np.testing.assert_array_equal(kp, [[3, 2], [6, 2], [1, 5]])
    out = _run(impl, "topk_keypoints", np.stack([ties, np.zeros_like(ties)]), 5, 0.0)
    assert [len(k) for k, _ in out] == [3, 0]


# ---------------------------------------------------------------- refinement / sampling
@BOTH
@pytest.mark.parametrize("center", [(20.3, 14.8), (9.0, 9.0), (31.45, 7.6)])
def test_subpixel_refine_recovers_gaussian_peak(impl, center):
    yy, xx = np.mgrid[0:24, 0:40].astype(np.float32)
    heat = np.exp(-((xx - center[0]) ** 2 + (yy - center[1]) ** 2) / (2 * 0.8**2)).astype(np.float32)
    start = np.array([[round(center[0]), round(center[1])]], np.float32)
    refined = _run(impl, "subpixel_refine", heat, start, radius=2)
    np.testing.assert_allclose(refined[0], center, atol=0.03)
    np.testing.assert_array_equal(_run(impl, "subpixel_refine", heat, start, radius=0), start)
    # a keypoint on the image corner: window partly outside, still finite and close
    corner = _run(impl, "subpixel_refine", heat, np.zeros((1, 2), np.float32), radius=2)
    assert np.isfinite(corner).all()


@BOTH
def test_sample_descriptors_at_cell_centres_and_between(impl):
    rng = np.random.default_rng(1)
    desc = rng.normal(size=(8, 3, 5)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=0, keepdims=True)
    centres = np.array([[3.5, 3.5], [8 * 4 + 3.5, 8 * 2 + 3.5], [8 + 3.5, 3.5]], np.float32)
    out = _run(impl, "sample_descriptors", desc, centres)
    np.testing.assert_allclose(out, desc[:, [0, 2, 0], [0, 4, 1]].T, atol=1e-6)
    mid = _run(impl, "sample_descriptors", desc, np.array([[7.5, 3.5]], np.float32))[0]
    want = desc[:, 0, 0] + desc[:, 0, 1]
    np.testing.assert_allclose(mid, want / np.linalg.norm(want), atol=1e-6)
    corner = _run(impl, "sample_descriptors", desc, np.array([[0.0, 0.0], [39.0, 23.0]], np.float32))
    np.testing.assert_allclose(corner, desc[:, [0, 2], [0, 4]].T, atol=1e-6)  # clamped to the edge
    assert _run(impl, "sample_descriptors", desc, np.zeros((0, 2), np.float32)).shape == (0, 8)


# ---------------------------------------------------------------- torch vs numpy
def _assert_same_features(a, b, tie=1e-6):
    """Same keypoints (within 1e-3 px) in the same order, except that keypoints whose scores are
    tied within ``tie`` may swap places or fall on either side of the k-th cut; descriptors
    of the same keypoint agree (cosine > 0.999)."""
    ka, sa, da = a
    kb, sb, db = b.keypoints, b.scores, b.descriptors
    assert abs(len(ka) - len(kb)) <= 1
    n = min(len(ka), len(kb))
    np.testing.assert_allclose(sa[:n], sb[:n], atol=tie)
    dist = np.abs(ka[:n, None, :] - kb[None, :, :]).max(axis=-1)
    same_place = 0
    for i in range(n):
        j = np.flatnonzero(dist[i] < 1e-3)
        if len(j) == 0:  # cut by top-k on the other side: must be tied with the last one kept
            assert abs(float(sa[i]) - float(sb[-1])) < tie, (i, sa[i], sb[-1])
            continue
        assert len(j) == 1 and (j[0] == i or abs(float(sb[j[0]]) - float(sa[i])) < tie), (i, j)
        assert float(da[i] @ db[j[0]]) > 0.999
        same_place += j[0] == i
    assert same_place >= 0.99 * n


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_and_numpy_postprocess_agree(seed):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(1, 65, 30, 40)) * 3).astype(np.float32)
    desc = rng.normal(size=(1, 32, 30, 40)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    size = (235, 317)
    a = tp.postprocess(torch.from_numpy(logits), torch.from_numpy(desc), size, max_keypoints=500)
    b = rp.postprocess(logits, desc, size, max_keypoints=500)
    assert len(b.keypoints) == 500 and b.keypoints.dtype == np.float32
    assert (b.keypoints[:, 0] < size[1]).all() and (b.keypoints[:, 1] < size[0]).all()
    assert np.all(np.diff(b.scores) <= 0)
    _assert_same_features([t.numpy() for t in a], b)


def test_extract_matches_onnx_runtime_path(tmp_path):
    """torch extract == ONNX Runtime dense core + numpy post-processing, on an odd-sized RGB image."""
    ort = pytest.importorskip("onnxruntime")
    from homeloc.export.calibration import synthetic_images
    from homeloc.export.onnx_export import export_onnx

    torch.manual_seed(0)
    model = KeypointNet("tiny").eval()
    gray = (synthetic_images(1, 48, 72, seed=4)[0][0, 0] * 255).astype(np.uint8)[:45, :70]
    rgb = np.stack([gray] * 3, axis=-1)
    feats = tp.extract(model, rgb, max_keypoints=64, threshold=0.0)  # random weights: scores ~1/65
    assert feats.keypoints.shape[1] == 2 and len(feats.keypoints) == len(feats.descriptors) > 0
    assert feats.descriptors.shape[1] == 16
    kp = feats.keypoints.numpy()
    assert (kp >= 2).all() and (kp[:, 0] < 70 - 2).all() and (kp[:, 1] < 45 - 2).all()
    same = tp.extract(model, torch.from_numpy(gray), max_keypoints=64, threshold=0.0)  # tensor gray input
    torch.testing.assert_close(same.keypoints, feats.keypoints)

    path = export_onnx(model, tmp_path / "tiny.onnx", height=48, width=72)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, size = rp.prepare_image(rgb)
    assert x.shape == (1, 1, 48, 72) and size == (45, 70)
    logits, desc = sess.run(None, {"image": x})
    b = rp.postprocess(logits, desc, size, max_keypoints=64, threshold=0.0, image=x)
    _assert_same_features([t.numpy() for t in feats], b)


@pytest.mark.parametrize("seed", [0, 1])
def test_contrast_mask_drops_the_same_peaks_in_both_twins(seed):
    """Half the image flat: no keypoint there in either twin, the same keypoints elsewhere."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (1, 65, 6, 8)).astype(np.float32)
    desc = rng.normal(0, 1, (1, 16, 6, 8)).astype(np.float32)
    img = np.zeros((1, 1, 48, 64), np.float32)
    img[..., 32:] = rng.uniform(0, 1, (48, 32))
    t_logits, t_desc, t_img = torch.from_numpy(logits), torch.from_numpy(desc), torch.from_numpy(img)
    a = tp.postprocess(t_logits, t_desc, max_keypoints=500, image=t_img)
    b = rp.postprocess(logits, desc, max_keypoints=500, image=img)
    _assert_same_features([t.numpy() for t in a], b)
    assert len(b.keypoints) > 0 and (b.keypoints[:, 0] >= 32 - rp.CONTRAST_RADIUS - 1).all()
    assert len(rp.postprocess(logits, desc, image=np.full_like(img, 0.5)).keypoints) == 0
    assert not rp.contrast_mask(np.zeros((16, 16), np.float32)).any()


def test_flat_cell_scores_below_threshold():
    """Uniform logits (a cell the network has no opinion about) give 1/65 per pixel: no keypoint."""
    logits = np.zeros((1, 65, 4, 4), np.float32)
    desc = np.ones((1, 8, 4, 4), np.float32)
    assert rp.THRESHOLD > 1 / 65
    assert len(rp.postprocess(logits, desc).keypoints) == 0


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((10, 10), np.uint16), "dtype"),
        (np.zeros((10, 10, 4), np.uint8), "shape"),
        (np.zeros((0, 10), np.uint8), "empty"),
        (np.full((10, 10), 2.0, np.float32), "\\[0, 1\\]"),
        ([[0, 1]], "numpy array"),
    ],
)
def test_prepare_image_errors(image, match):
    with pytest.raises(ValueError, match=match):
        tp.prepare_image(image)


def test_prepare_image_pads_by_replication():
    img = np.arange(10 * 13, dtype=np.uint8).reshape(10, 13)
    x, size = rp.prepare_image(img)
    assert x.shape == (1, 1, 16, 16) and x.dtype == np.float32 and size == (10, 13)
    np.testing.assert_allclose(x[0, 0, :10, :13], img / 255.0, atol=1e-7)
    np.testing.assert_array_equal(x[0, 0, 15, :13], x[0, 0, 9, :13])
    np.testing.assert_array_equal(x[0, 0, :, 15], x[0, 0, :, 12])


def test_runtime_postprocess_is_torch_free():
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = "import homeloc.runtime.postprocess, sys; assert 'torch' not in sys.modules, 'homeloc.runtime.postprocess imported torch'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
