"""Who holds which face, and merge and split, on every backend (the contract suite's file, memory, PostgreSQL).

A real two-person photo (obama.jpg and biden.jpg side by side, ``side_by_side``) embedded by the real engine:
its two faces share one content hash and differ by their boxes.
"""

from __future__ import annotations

import pytest

from facecli.errors import GalleryError, InputError
from facecli.gallery import open_gallery
from facecli.gallery.people import merge, split
from facecli.values import Template

# the contract suite's backends and real faces
from tests.library.test_gallery_contract import backends, engine, faces, location, template  # noqa: F401


@pytest.fixture(scope="module")
def group(engine, side_by_side):  # noqa: F811
    """The two faces of one real photo as templates (left: Obama, right: Biden), sharing its sha256."""
    result = engine.analyse(side_by_side)
    left, right = sorted(result.faces, key=lambda f: f.box[0])
    return [Template(f.embedding, str(side_by_side), result.sha256, f.detection.box) for f in (left, right)]


def _sources(g, name: str) -> list[tuple[str, list[float]]]:
    return [(t["source"], t["box"]) for t in g.templates_of(name)]


@backends
def test_one_face_one_person_and_one_face_per_photo_per_person(location, group):  # noqa: F811
    left, right = group
    with open_gallery(location, "facenet", create=True) as g:
        got = g.enroll([("obama", left), ("obama", right), ("biden", right), ("biden", left), ("obama", left)])
        assert [(s.status, s.holder) for s in got] == [("added", None), ("duplicate", "obama"), ("added", None),
                                                       ("taken", "obama"), ("present", None)]
        assert [(s.status, s.holder) for s in g.enroll([("carol", right), ("obama", right)])] == \
            [("taken", "biden"), ("taken", "biden")]
        ((obama, box),), ((biden, other),) = _sources(g, "obama"), _sources(g, "biden")
        assert obama == biden == left.source and box == pytest.approx(left.box, abs=0.051)
        assert other == pytest.approx(right.box, abs=0.051)
        assert not g.has_person("carol") and g.check() == []


@backends
def test_merge_moves_every_template_and_drops_a_photo_both_have(location, faces, group):  # noqa: F811
    left, right = group
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg")), ("obama", left),
                  ("unknown-1", template(faces["obama2"], "obama2.jpg")), ("unknown-1", right),
                  ("biden", template(faces["biden"], "biden.jpg"))])
        before = g._state().removals
        moved = merge(g, "obama", "unknown-1")
        assert (moved.source, moved.target, moved.moved, moved.dropped, moved.source_removed) == \
            ("unknown-1", "obama", 1, 1, True)
        assert [s for s, _ in _sources(g, "obama")] == ["obama.jpg", left.source, "obama2.jpg"]
        assert [p.name for p in g.persons()] == ["biden", "obama"] and g._state().removals == before + 1
        assert g.enroll([("biden", right)])[0].status == "added"  # the photo's other face: no one has it now
        for a, b, word in [("obama", "obama", "themselves"), ("obama", "nobody", "no such person"),
                           ("nobody", "obama", "no such person")]:
            with pytest.raises(GalleryError, match=word):
                merge(g, a, b)
        assert [(p.name, p.templates) for p in g.persons()] == [("biden", 2), ("obama", 3)] and g.check() == []


@backends
def test_split_moves_or_removes_templates_and_refuses_what_is_not_the_persons(location, faces, group):  # noqa: F811
    left, right = group
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg")), ("obama", template(faces["obama2"], "o2.jpg")),
                  ("obama", template(faces["biden"], "biden.jpg")), ("obama", right), ("biden", left),
                  ("alice", template(faces["obama3"], "o3.jpg"))])
        ids = {t["source"]: t["id"] for t in g.templates_of("obama")}
        alice = g.templates_of("alice")[0]["id"]
        for bad, word in [([ids["o2.jpg"], alice], f"template {alice}"), ([12345], "template 12345")]:
            with pytest.raises(GalleryError, match=word):
                split(g, "obama", bad, "bob")
        with pytest.raises(GalleryError, match="looks like 'alice'"):
            split(g, "obama", [ids["biden.jpg"]], "aIice")
        with pytest.raises(InputError, match="invisible"):
            split(g, "obama", [ids["biden.jpg"]], "bob\u202e")
        with pytest.raises(GalleryError, match="this person's already"):
            split(g, "obama", [ids["biden.jpg"]], "obama")
        with pytest.raises(GalleryError, match="no such person"):
            split(g, "nobody", [ids["biden.jpg"]])
        assert len(g.templates_of("obama")) == 4 and not g.has_person("bob")  # nothing changed
        before = g._state().removals

        # biden.jpg joins biden; the group photo's right face too, but biden has its left face: dropped
        moved = split(g, "obama", [ids["biden.jpg"], ids[right.source]], "biden")
        assert (moved.target, moved.moved, moved.dropped, moved.source_removed) == ("biden", 1, 1, False)
        assert [s for s, _ in _sources(g, "biden")] == ["biden.jpg", left.source]  # in id order
        moved = split(g, "obama", [ids["o2.jpg"]], "carol")  # a new person
        assert (moved.target, moved.moved, g.templates_of("carol")[0]["id"]) == ("carol", 1, ids["o2.jpg"])
        moved = split(g, "obama", [ids["obama.jpg"]])  # taken out: obama has no template left
        assert (moved.target, moved.moved, moved.dropped, moved.source_removed) == (None, 0, 1, True)
        assert [(p.name, p.templates) for p in g.persons()] == [("alice", 1), ("biden", 2), ("carol", 1)]
        assert g._state().removals == before + 3 and g.check() == []
