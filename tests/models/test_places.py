"""Place descriptor: NetVLAD/GeM behaviour, losses, overfitting a toy set, checkpoint round trip."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from homeloc.models.places import GeM, NetVLAD, PlaceNet, kmeans_centroids
from homeloc.train.place_losses import LOSSES, multi_similarity_loss, pair_masks


def test_netvlad_shapes_norms_and_assignments():
    torch.manual_seed(0)
    vlad = NetVLAD(dim=16, clusters=4)
    x = torch.randn(3, 16, 5, 7)
    out = vlad(x)
    assert out.shape == (3, 64)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))
    a = vlad.soft_assign(F.normalize(x, dim=1))
    assert a.shape == (3, 4, 5, 7)
    torch.testing.assert_close(a.sum(1), torch.ones(3, 5, 7))


def test_netvlad_centroid_initialisation_assigns_to_nearest_centre():
    c = torch.eye(4, 8)  # 4 orthogonal unit centres
    vlad = NetVLAD(dim=8, clusters=4)
    vlad.init_from_centroids(c)
    x = c[[2, 0]].T.reshape(1, 8, 1, 2)  # features equal to centre 2 and centre 0
    a = vlad.soft_assign(x)[0, :, 0]
    assert a.argmax(0).tolist() == [2, 0]
    assert (a.max(0).values > 0.99).all()


def test_kmeans_and_cluster_init_from_images():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(m, 0.01, (50, 4)) for m in (-1, 1)]).astype(np.float32)
    cents = kmeans_centroids(x, 2)
    assert sorted(np.round(cents[:, 0]).tolist()) == [-1.0, 1.0]
    net = PlaceNet("mobilenetv3_small", "netvlad", clusters=4, reduce_dim=8, out_dim=None).eval()
    before = net.pool.centroids.clone()
    net.init_clusters(torch.rand(4, 3, 64, 64))
    assert not torch.allclose(before, net.pool.centroids)


def test_gem_and_shapes_of_each_backbone():
    assert GeM(8)(torch.rand(2, 8, 3, 3)).shape == (2, 8)
    for backbone in ("mobilenetv3_small", "resnet18", "keypoint:tiny"):
        net = PlaceNet(backbone, "gem", reduce_dim=16, out_dim=8).eval()
        out = net(torch.rand(2, 1, 64, 64))  # gray input accepted by every backbone
        assert out.shape == (2, 8)
        torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="image must be"):
        PlaceNet("mobilenetv3_small", "gem")(torch.rand(2, 2, 32, 32))


def test_pair_masks_tolerance():
    labels = torch.tensor([10, 10, 11, 20])
    pos, neg = pair_masks(labels, torch.zeros(4, dtype=torch.long), tolerance=2)
    assert pos[0, 1] and not pos[0, 0]
    assert not neg[0, 2]  # a neighbouring frame is neither positive nor negative
    assert neg[0, 3]


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_rank_a_good_embedding_lower(name):
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    pos, neg = pair_masks(labels)
    good = F.normalize(torch.eye(3).repeat_interleave(2, 0) + 0.01, dim=1)
    bad = F.normalize(torch.eye(3)[[0, 1, 1, 2, 2, 0]] + 0.01, dim=1)
    assert LOSSES[name](good, pos, neg) < LOSSES[name](bad, pos, neg)


def test_overfit_toy_set_raises_recall():
    """Four 'places', two lighting views each; recall@1 across views rises after a few steps."""
    torch.manual_seed(0)
    base = torch.rand(4, 3, 48, 48)
    day = base
    night = (base * 0.3 + 0.05 * torch.randn_like(base)).clamp(0, 1)
    # The keypoint trunk's BatchNorm (momentum 0.1) settles within the test's few steps;
    # MobileNetV3's (momentum 0.01) would need hundreds before eval-mode statistics fit.
    net = PlaceNet("keypoint:tiny", "netvlad", clusters=4, reduce_dim=16, out_dim=16)

    def recall():
        net.eval()
        with torch.no_grad():
            return float(((net(night) @ net(day).T).argmax(1) == torch.arange(4)).float().mean())

    labels = torch.arange(4).repeat(2)
    pos, neg = pair_masks(labels)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    losses = []
    before = recall()
    for _ in range(40):
        net.train()
        loss = multi_similarity_loss(net(torch.cat([day, night])), pos, neg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert recall() == 1.0 > before


def test_checkpoint_round_trip(tmp_path):
    net = PlaceNet("mobilenetv3_small", "netvlad", clusters=4, reduce_dim=8, out_dim=16).eval()
    net.save(tmp_path / "p.pt")
    back = PlaceNet.from_checkpoint(tmp_path / "p.pt")
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(net(x), back(x))
    torch.save({"foo": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="bad.pt"):
        PlaceNet.from_checkpoint(tmp_path / "bad.pt")


def test_fit_pca_whitens():
    net = PlaceNet("mobilenetv3_small", "gem", reduce_dim=16, out_dim=4)
    x = torch.randn(200, 16) * torch.linspace(0.1, 3, 16)
    net.fit_pca(x)
    y = net.proj(x)
    cov = torch.cov(y.T)
    torch.testing.assert_close(cov, torch.eye(4), atol=0.05, rtol=0)
