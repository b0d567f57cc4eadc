"""The decision rules and the maths under them, called directly on hand-made values (no models, no subprocess)."""

from __future__ import annotations

import numpy as np
import pytest

from facecli import decisions
from facecli.calibration import impostor_probability, tau_for
from facecli.clustering import cluster
from facecli.errors import BadValue
from facecli.matching import TemplateMatrix, identify, person_distances, sq_distances
from facecli.models import pipeline_spec
from facecli.values import Decision, Detection, Threshold


def _unit(*rows: list[float]) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _gallery(names_of_rows: list[str], rows: np.ndarray) -> TemplateMatrix:
    names = list(dict.fromkeys(names_of_rows))
    return TemplateMatrix(names, np.array([names.index(n) for n in names_of_rows]), rows, np.arange(len(rows)))


def test_squared_distance_of_unit_vectors():
    a = _unit([1, 0, 0], [0, 1, 0])
    d = sq_distances(a, _unit([1, 0, 0], [-1, 0, 0]))
    assert np.allclose(d, [[0, 4], [2, 2]], atol=1e-6)


def test_mean_and_best_templates():
    # alice: two templates 90 degrees apart; the probe lies on one of them
    gallery = _gallery(["alice", "alice", "bob"], _unit([1, 0, 0], [0, 1, 0], [0, 0, 1]))
    probe = _unit([1, 0, 0])
    best = person_distances(probe, gallery, "best")[0]
    mean = person_distances(probe, gallery, "mean")[0]
    assert best[0] == pytest.approx(0, abs=1e-6) and best[1] == pytest.approx(2)
    assert mean[0] == pytest.approx(2 - 2 / np.sqrt(2), abs=1e-5)  # to the unit mean of the two
    with pytest.raises(BadValue):
        person_distances(probe, gallery, "median")


def test_identify_names_the_nearest_within_tau_and_lists_candidates():
    gallery = _gallery(["alice", "bob", "carol"], _unit([1, 0, 0], [0, 1, 0], [0, 0, 1]))
    probes = _unit([1, 0.2, 0], [1, 1, 1])
    threshold = Threshold(0.5, 3, 0.01)
    near, far = identify(probes, gallery, threshold, top_k=2)
    assert near.name == "alice" and near.candidate == "alice" and [c.name for c in near.candidates] == ["alice", "bob"]
    assert far.name is None and far.candidate is not None and far.distance > 0.5 and far.tau == 0.5
    assert near.label == "recognized" and far.label == "not recognized"


def test_the_1n_threshold_follows_the_gallery_size_and_its_settings():
    spec = pipeline_spec("fusion")
    taus = [tau_for(spec, k, 0.01) for k in (1, 10, 100, 1000)]
    assert taus == sorted(taus, reverse=True)  # more people, stricter
    assert impostor_probability(0.01, 1) == pytest.approx(0.01)
    assert 1 - (1 - impostor_probability(0.01, 100)) ** 100 == pytest.approx(0.01)
    t = decisions.identification_threshold("fusion", 100)
    assert t.fpir == 0.01 and t.tau == round(tau_for(spec, 100, 0.01), 4) and t.source == "fpir"
    assert decisions.identification_threshold("fusion", 100, stored_fpir=0.001).fpir == 0.001
    assert decisions.identification_threshold("fusion", 100, fpir=0.05, stored_fpir=0.001).fpir == 0.05
    fixed = decisions.identification_threshold("fusion", 100, tau=0.9)
    assert (fixed.tau, fixed.fpir, fixed.source) == (0.9, None, "tau")
    assert decisions.verification_threshold("fusion").tau == spec.default_tau
    for bad in (-0.1, 4.5):
        with pytest.raises(BadValue) as err:
            decisions.check_tau(bad)
        assert err.value.setting == "tau"


def test_too_small_faces_keep_their_candidate_but_no_name():
    from facecli.values import Face

    faces = [Face(0, Detection((0, 0, 100, 100), 0.9), ()), Face(1, Detection((0, 0, 12, 30), 0.9), ())]
    found = [Decision("alice", 0.3, [], Threshold(1.0)), Decision("bob", 0.4, [], Threshold(1.0))]
    big, small = decisions.too_small(faces, found, 20)
    assert big.name == "alice" and small.name is None and small.too_small and small.distance == 0.4
    assert small.label == "too small to identify"


def test_average_linkage_does_not_chain_where_single_linkage_does():
    # a chain a - b - c whose ends are far apart, and a separate point d
    x = _unit([1, 0, 0], [1, 0.9, 0], [0.2, 1, 0], [0, 0, 1])
    d = sq_distances(x, x)
    tau = float(max(d[0, 1], d[1, 2])) + 1e-3
    assert d[0, 2] > tau
    assert list(cluster(x, tau, "single")) == [0, 0, 0, 1]
    assert len(set(cluster(x, tau, "average")[:3])) == 2
    with pytest.raises(BadValue):
        cluster(x, tau, "ward")




def test_a_face_whose_runner_up_is_within_the_gap_is_ambiguous_and_not_named():
    gallery = _gallery(["alice", "bob", "carol"], _unit([1, 0, 0], [0.8, 0.6, 0], [0, 0, 1]))
    between, clear, far = _unit([1, 0.3, 0], [1, -0.3, 0], [0, 0, -1])
    d = person_distances(np.stack([between, clear]), gallery)
    gap = float(np.mean([np.sort(d[0])[1] - np.sort(d[0])[0], np.sort(d[1])[1] - np.sort(d[1])[0]]))
    assert np.sort(d[0])[1] - np.sort(d[0])[0] < gap < np.sort(d[1])[1] - np.sort(d[1])[0]
    threshold = Threshold(1.0, 3, 0.01, gap)
    a, b, c = identify(np.stack([between, clear, far]), gallery, threshold)
    assert a.name is None and a.ambiguous and a.label == "ambiguous" and a.candidate == "alice"
    assert len(a.candidates) == 1  # the runner-up decides, but only top-k are listed
    assert b.name == "alice" and not b.ambiguous
    assert c.name is None and not c.ambiguous and c.label == "not recognized"  # a tie beyond tau: not a toss-up
    (again,) = identify(between[None], gallery, Threshold(1.0, 3, 0.01, 0.0))
    assert again.name == "alice"
    (alone,) = identify(between[None], _gallery(["alice"], _unit([1, 0, 0])), threshold)
    assert alone.name == "alice"  # nobody else: never ambiguous


def test_the_gap_comes_from_the_manifest_unless_given():
    spec = pipeline_spec("fusion")
    assert decisions.identification_threshold("fusion", 100).min_gap == spec.ambiguity["min_gap"] > 0
    assert decisions.identification_threshold("fusion", 100, tau=0.9).min_gap == spec.ambiguity["min_gap"]
    assert decisions.identification_threshold("fusion", 100, gap=0.0).min_gap == 0.0
    assert decisions.identification_threshold("facenet", 100).min_gap == 0.0
    for bad in (-0.1, 4.5):
        with pytest.raises(BadValue) as err:
            decisions.min_gap("fusion", bad)
        assert err.value.setting == "min_gap"


def test_the_models_default_gap_withholds_a_near_tie_and_lists_top_k_ties_in_person_order():
    threshold = decisions.identification_threshold("fusion", 3)  # the manifest's gap
    gallery = _gallery(["alice", "bob", "carol"], _unit([1, 0, 0], [0, 1, 0], [0, 0, 1]))

    def probe(lead: float) -> np.ndarray:
        """A unit vector nearer alice than bob by ``lead`` (squared L2), far from carol."""
        # d = 2 - 2 cos: alice at 0.6, bob at 0.6 + lead
        a, b = 1 - 0.3, 1 - (0.6 + lead) / 2
        return np.array([[a, b, -np.sqrt(max(0.0, 1 - a * a - b * b))]], dtype=np.float32)

    (torn,) = identify(probe(threshold.min_gap / 2), gallery, threshold, top_k=3)
    (clear,) = identify(probe(threshold.min_gap * 2), gallery, threshold, top_k=3)
    assert torn.ambiguous and torn.name is None and [c.name for c in torn.candidates] == ["alice", "bob", "carol"]
    assert clear.name == "alice" and not clear.ambiguous
    # an exact tie, with no gap rule: the first person enrolled, whichever the order of the partition
    (tie,) = identify(_unit([1, 1, 0]), _gallery(["bob", "alice"], _unit([0, 1, 0], [1, 0, 0])),
                      Threshold(1.0, 2, 0.01), top_k=2)
    assert tie.name == "bob" and [c.name for c in tie.candidates] == ["bob", "alice"]


def test_a_face_too_small_or_too_poor_is_not_also_ambiguous():
    from facecli.values import Face

    torn = Decision(None, 0.3, [], Threshold(1.0, 2, 0.01, 0.1), ambiguous=True)
    small, poor = Face(0, Detection((0, 0, 12, 12), 0.9), ()), Face(1, Detection((0, 0, 90, 90), 0.9), (), quality=0.1)
    (a,) = decisions.too_small([small], [torn], 20)
    (b,) = decisions.too_poor([poor], [torn], 0.5)
    assert (a.too_small, a.ambiguous, a.label) == (True, False, "too small to identify")
    assert (b.too_poor, b.ambiguous, b.label) == (True, False, "too poor to identify")
