"""Acceptance on agreement (runtime.longterm.agree): a weak verification localizes only when several
experiences of one place agree and no other place has evidence."""

import numpy as np
import pytest

from homeloc.runtime.longterm import LongTermMap, PlaceConfig, SearchConfig
from homeloc.runtime.longterm.agree import (
    accepts,
    agreeing_place,
    consistent,
    disagree,
    frame_rotation,
    rotation_deg,
)
from homeloc.runtime.loop_closure import VerifyConfig
from homeloc.runtime.loop_closure.results import Verification
from tests.runtime.test_longterm import ROOMS, Place, pose_at


def verified(kf_id, confidence, passed=True):
    return Verification(kf_id, 0.5, 100, 40, 0.3, 0.5, confidence, passed, False)


PLACE_OF = {1: 10, 2: 10, 3: 10, 4: 20}


def test_two_experiences_of_one_place_agree():
    assert agreeing_place([verified(1, 0.3), verified(2, 0.25)], PLACE_OF, 0.2, 2) == 10
    assert agreeing_place([verified(1, 0.3), verified(2, 0.25)], PLACE_OF, 0.2, 3) is None  # too few
    assert agreeing_place([verified(1, 0.3), verified(2, 0.15)], PLACE_OF, 0.2, 2) is None  # one too weak
    assert agreeing_place([verified(1, 0.3), verified(2, 0.3, passed=False)], PLACE_OF, 0.2, 2) is None
    assert (
        agreeing_place([verified(1, 0.3), verified(1, 0.3)], PLACE_OF, 0.2, 2) is None
    )  # one experience twice


def test_evidence_for_another_place_vetoes_agreement():
    log = [verified(1, 0.3), verified(2, 0.3), verified(4, 0.21)]
    assert agreeing_place(log, PLACE_OF, 0.2, 2) is None
    assert agreeing_place(log, PLACE_OF, 0.25, 2) == 10  # the other place's 0.21 is no evidence at 0.25


def test_accepts_a_strong_verification_alone_and_a_weak_one_on_agreement():
    log = [verified(1, 0.3), verified(2, 0.25)]
    assert accepts([verified(4, 0.6)], 0.6, 20, PLACE_OF, 0.5, None, 2)
    assert not accepts(log, 0.3, 10, PLACE_OF, 0.5, None, 2)  # off: the old rule
    assert accepts(log, 0.3, 10, PLACE_OF, 0.5, 0.2, 2)
    assert not accepts(log, 0.3, 20, PLACE_OF, 0.5, 0.2, 2)  # the best is not of the agreeing place


def test_the_map_localizes_on_agreement_and_rejects_a_single_weak_match():
    a = Place(0)
    strict = VerifyConfig(min_confidence=0.999)  # no single verification is strong enough
    kw = dict(K=a.K, place=PlaceConfig(min_keypoints=10), verify=strict)
    single = LongTermMap(**kw, search=SearchConfig(agree_confidence=0.1))
    single.add_experience(0, *a.view(0), pose=pose_at(1, 1))
    assert single.localize(*a.view(1)) is None
    off = LongTermMap(**kw)
    on = LongTermMap(**kw, search=SearchConfig(agree_confidence=0.1))
    for m in (off, on):
        m.add_experience(0, *a.view(0), pose=pose_at(1, 1))
        m.add_experience(1, *a.view(0), pose=pose_at(1.1, 1))  # a second experience of the place
    assert off.localize(*a.view(1)) is None
    loc = on.localize(*a.view(1))
    assert loc is not None and loc.place == 0 and loc.confidence < strict.min_confidence


def test_agreement_settings_are_checked():
    with pytest.raises(ValueError, match="agree_count must be >= 2"):
        SearchConfig(agree_confidence=0.2, agree_count=1)
    with pytest.raises(ValueError, match="agree_confidence must be in"):
        SearchConfig(agree_confidence=1.5)


def test_agreement_counts_only_in_the_rooms_around_the_last_localization():
    a = Place(0)
    m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.999),
                    search=SearchConfig(agree_confidence=0.1, restrict_rooms=False, agree_in_rooms=True))  # fmt: skip
    m.add_experience(0, *a.view(0), pose=pose_at(21, 1))  # two experiences of a place in room 2
    m.add_experience(1, *a.view(0), pose=pose_at(21.1, 1))
    assert m.localize(*a.view(1)) is None  # no localization yet: no room prior
    assert m.localize(*a.view(1), room=0) is None  # room 2 is not reachable from room 0
    assert m.localize(*a.view(1), room=2).place == 0
    m.search_config = SearchConfig(agree_confidence=0.1)  # off by default
    assert m.localize(*a.view(1), room=0).place == 0


def test_agreeing_experiences_must_imply_the_same_frame_orientation():
    base, turn = pose_at(0, 0, 0)[:3, :3], pose_at(0, 0, 30)[:3, :3]
    assert rotation_deg(base, turn) == pytest.approx(30.0)
    pose = pose_at(1, 1, 90)[:3]
    assert np.allclose(frame_rotation(pose, np.eye(3)), pose[:, :3])
    assert frame_rotation(np.full((3, 4), np.nan), np.eye(3)) is None and frame_rotation(pose, None) is None
    rot = {1: base, 2: turn, 3: pose_at(0, 0, 5)[:3, :3]}
    assert consistent([1, 2, 3], rot, 1, 10.0) == [1, 3] and consistent([1, 2], {2: turn}, 1, 10.0) == []
    log = [verified(1, 0.3), verified(2, 0.25)]
    assert agreeing_place(log, PLACE_OF, 0.2, 2, rot, None) == 10  # no check asked
    assert agreeing_place(log, PLACE_OF, 0.2, 2, rot, 10.0) is None  # 30 deg apart: not one frame pose
    assert agreeing_place(log, PLACE_OF, 0.2, 2, rot, 45.0) == 10


def test_the_map_checks_the_orientation_the_agreeing_experiences_imply():
    a = Place(0)
    kw = dict(K=a.K, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.999))
    same = LongTermMap(**kw, search=SearchConfig(agree_confidence=0.1, agree_deg=10.0))
    turned = LongTermMap(**kw, search=SearchConfig(agree_confidence=0.1, agree_deg=10.0))
    for m, yaw in ((same, 0.0), (turned, 40.0)):
        m.add_experience(0, *a.view(0), pose=pose_at(1, 1))
        m.add_experience(1, *a.view(0), pose=pose_at(1.1, 1, yaw), place=0)  # one view, stored 40 deg off
    assert same.localize(*a.view(1)).place == 0
    assert turned.localize(*a.view(1)) is None


def test_strict_matches_disagree_when_they_imply_other_frame_orientations():
    rot = {1: pose_at(0, 0, 0)[:3, :3], 2: pose_at(0, 0, 5)[:3, :3], 3: pose_at(0, 0, 90)[:3, :3], 4: None}
    assert not disagree([1, 2, 4], rot, 30.0)  # 5 deg apart; an unknown rotation says nothing
    assert disagree([1, 2, 3], rot, 30.0) and not disagree([1, 2, 3], rot, 95.0)
    assert not disagree([3], rot, 30.0) and not disagree([], rot, 30.0)


def test_a_search_whose_strict_matches_imply_other_orientations_localizes_nothing():
    """SearchConfig.strict_deg: one view filed twice, the second 90 deg off (a lookalike matched
    under another rotation): each verifies strictly, and the map cannot tell which is right."""
    a = Place(0)
    kw = dict(K=a.K, place=PlaceConfig(min_keypoints=10))
    maps = {deg: LongTermMap(**kw, search=SearchConfig(strict_deg=deg)) for deg in (None, 30.0)}
    turned = LongTermMap(**kw, search=SearchConfig(strict_deg=30.0))
    for m, yaw in ((maps[None], 90.0), (maps[30.0], 90.0), (turned, 10.0)):
        m.add_experience(0, *a.view(0), pose=pose_at(1, 1))
        m.add_experience(1, *a.view(0), pose=pose_at(3, 1, yaw))
    assert maps[None].localize(*a.view(1)) is not None  # off: the most confident is reported
    assert maps[30.0].localize(*a.view(1)) is None
    assert turned.localize(*a.view(1)) is not None  # 10 deg apart: views of one spot may differ so
    with pytest.raises(ValueError, match="strict_deg"):
        SearchConfig(strict_deg=0.0)
