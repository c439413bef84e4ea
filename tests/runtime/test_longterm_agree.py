"""Acceptance on agreement (runtime.longterm.agree): a weak verification localizes only when several
experiences of one place agree and no other place has evidence."""

import pytest

from homeloc.runtime.longterm import LongTermMap, PlaceConfig, SearchConfig
from homeloc.runtime.longterm.agree import accepts, agreeing_place
from homeloc.runtime.loop_closure import VerifyConfig
from homeloc.runtime.loop_closure.results import Verification
from tests.runtime.test_longterm import Place, pose_at


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
