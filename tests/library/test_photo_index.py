"""The photo index (``facecli.library``): one suite on every backend — an SQLite file, memory, a real PostgreSQL.

Real photos (the sample portraits, a group photo made of two of them, LFW people), the real FaceNet engine.
What must hold: a second run embeds nothing; a moved file is known by its content; a changed file is done
again; ``find`` names exactly the faces ``identify`` names, and follows enrollments at once; unnamed clusters
keep their numbers as photos are added; naming a cluster makes ``find`` work.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from facecli.errors import BadValue
from facecli.gallery import open_gallery
from facecli.gallery.facematrix import face_matrix
from facecli.gallery.photos import PhotoIndex
from facecli.library import IndexSummary, choose_templates, cluster_unnamed, find, index, name_cluster, people
from facecli.values import Template
from tests.library.test_gallery_contract import BACKENDS

LFW = Path(__file__).resolve().parents[3] / "shared" / "lfw" / "images"


@pytest.fixture
def location(request, tmp_path):
    if request.param == "file":
        return str(tmp_path / "gallery.db")
    if request.param == "memory":
        return ":memory:"
    pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
    return request.getfixturevalue("db")


def backends(test):
    return pytest.mark.parametrize("location", BACKENDS, indirect=True)(test)


@pytest.fixture(scope="module")
def engine():
    import facecli

    return facecli.load(model="facenet", device="cpu")


def run_index(engine, gallery, folder: Path, prune: bool = False) -> dict[str, list[str]]:
    """status -> the file names it was given (an index run over ``folder``)."""
    summary = IndexSummary()
    out: dict[str, list[str]] = {}
    for e in index(engine, gallery, [str(p) for p in sorted(folder.iterdir()) if p.suffix == ".jpg"], prune,
                   [str(folder)], summary):
        out.setdefault(e.status, []).append(Path(e.path).name)
    assert summary.counts["seen"] == sum(len(v) for v in out.values())
    return out


def files_of(gallery, faces: list[int]) -> list[str]:
    """The file name of each face's photo."""
    photos = PhotoIndex(gallery)
    info = photos.faces(faces)
    paths = photos.paths({f["photo_id"] for f in info.values()})
    return [Path(paths[info[f]["photo_id"]][0]).name for f in faces]


def indexed(gallery) -> dict[tuple[str, int], tuple]:
    """(sha256, face number) -> (box, path set) of every indexed face."""
    photos = PhotoIndex(gallery)
    fm = face_matrix(gallery)
    info = photos.faces(fm.ids.tolist())
    paths = photos.paths({f["photo_id"] for f in info.values()})
    return {(f["sha256"], f["face"]): (tuple(f["box"]), tuple(paths[f["photo_id"]])) for f in info.values()}


@backends
def test_a_second_run_embeds_nothing_and_moves_copies_and_changes_are_known(location, engine, library):
    with open_gallery(location, create=True) as g:
        first = run_index(engine, g, library)
        assert sorted(first) == ["new"] and len(first["new"]) == 5
        assert PhotoIndex(g).counts() == {"files": 5, "photos": 5, "faces": 6}  # the group photo has two
        assert run_index(engine, g, library) == {"unchanged": sorted(first["new"])}
        before = indexed(g)

        (library / "obama3.jpg").rename(library / "renamed.jpg")
        shutil.copyfile(library / "biden.jpg", library / "biden-copy.jpg")
        image = cv2.imread(str(library / "obama2.jpg"))
        cv2.imwrite(str(library / "obama2.jpg"), image[:, 20:])  # other content at the same path
        got = run_index(engine, g, library)
        assert got["moved"] == ["renamed.jpg"] and got["copy"] == ["biden-copy.jpg"]
        assert got["changed"] == ["obama2.jpg"]
        assert sorted(got["unchanged"]) == ["biden.jpg", "group.jpg", "obama.jpg"]
        after = indexed(g)
        assert PhotoIndex(g).counts() == {"files": 6, "photos": 5, "faces": 6}
        # the moved photo kept its faces (not embedded again): the same boxes under its new path
        moved = [k for k, (_, paths) in after.items() if paths[0].endswith("renamed.jpg")]
        assert len(moved) == 1 and before[moved[0]][0] == after[moved[0]][0]

        (library / "biden-copy.jpg").unlink()
        (library / "renamed.jpg").unlink()
        assert run_index(engine, g, library, prune=True) == {"unchanged": ["biden.jpg", "group.jpg", "obama.jpg",
                                                                           "obama2.jpg"]}
        assert PhotoIndex(g).counts() == {"files": 4, "photos": 4, "faces": 5}
        assert len(face_matrix(g).ids) == 5  # the cached faces follow the removal


@backends
def test_find_names_exactly_the_faces_identify_names_and_follows_the_gallery(location, engine, library, images):
    with open_gallery(location, create=True) as g:
        run_index(engine, g, library)
        assert find(g, []) == [] and g.person_count() == 0
        g.bind(engine.model)
        g.enroll([("obama", Template(engine.faces(images / "obama.jpg")[0].embedding, "o", "sha-o",
                                     (0, 0, 100, 100))),
                  ("biden", Template(engine.faces(images / "biden.jpg")[0].embedding, "b", "sha-b",
                                     (0, 0, 100, 100)))])
        identified = {(Path(r.path).name, f.index): d.name
                      for r, ds in engine.identify(g, sorted(str(p) for p in library.iterdir()))
                      for f, d in zip(r.faces, ds)}
        found = {(Path(f.paths[0]).name, f.face["face"]): f.name for f in find(g, ["obama", "biden"])}
        assert found == {k: v for k, v in identified.items() if v is not None}
        assert set(found.values()) == {"obama", "biden"}
        assert found[("group.jpg", 0)] != found[("group.jpg", 1)]  # both people of the group photo

        g.remove("biden")  # at once, without re-indexing
        assert {f.name for f in find(g, ["obama"])} == {"obama"}
        with pytest.raises(BadValue, match="no such person"):
            find(g, ["biden"])
        assert people(g)["obama"][0] == sum(v == "obama" for v in identified.values())


@backends
def test_unnamed_clusters_keep_their_numbers_and_a_named_one_is_found(location, engine, library, tmp_path):
    if not LFW.is_dir():
        pytest.skip(f"{LFW}: LFW is not there")
    people_dirs = [LFW / p for p in ("George_W_Bush", "Colin_Powell", "Tony_Blair")]
    with open_gallery(location, create=True) as g:
        run_index(engine, g, library)
        first = cluster_unnamed(g)
        numbers = {f: c.cluster for c in first for f in c.faces}
        obama = max(first, key=lambda c: len(c.faces))
        assert len(obama.faces) >= 3  # three portraits and the group photo's left face

        more = tmp_path / "more"
        more.mkdir()
        for d in people_dirs:
            for p in sorted(d.glob("*.jpg"))[:6]:
                shutil.copyfile(p, more / p.name)
        run_index(engine, g, more)
        second = cluster_unnamed(g)
        again = {f: c.cluster for c in second for f in c.faces}
        assert all(again[f] == n for f, n in numbers.items())  # old faces kept their numbers
        bush = max(second, key=lambda c: sum(n.startswith("George_W_Bush") for n in files_of(g, c.faces)))
        assert bush.cluster not in set(numbers.values()) and len(bush.faces) >= 4

        stored = name_cluster(g, bush.cluster, "George Bush")
        assert stored and all(r.status == "added" and r.error is None for r in stored) and len(stored) <= 5
        found = [(Path(f.paths[0]).name, f.face["face"]) for f in find(g, ["George Bush"])]
        bush_files = {p.name for p in more.glob("George_W_Bush_*")}
        assert len({name for name, _ in found} & bush_files) >= 5
        # elsewhere only a face beside the photo's own person (LFW's photos of Powell show Bush too)
        assert all(face > 0 for name, face in found if name not in bush_files)
        assert bush.cluster not in {c.cluster for c in cluster_unnamed(g) if len(c.faces) > 1}
        with pytest.raises(BadValue, match="no such unnamed cluster"):
            name_cluster(g, 10_000, "nobody")


def test_templates_come_from_the_core_of_a_cluster_and_spread_over_it():
    rng = np.random.default_rng(1)
    centre = np.zeros(16)
    centre[0] = 1
    faces = centre + rng.normal(0, 0.1, (20, 16))
    faces[0] = -centre  # an outlier: never chosen
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    chosen = choose_templates(faces.astype(np.float32), 5)
    assert len(chosen) == len(set(chosen)) == 5 and 0 not in chosen
    mean = faces[1:].mean(axis=0)
    assert chosen[0] == int(np.argmax(faces @ (mean / np.linalg.norm(mean))))


def test_the_face_cache_beside_a_file_gallery_is_private_and_never_trusted_when_changed(engine, library, tmp_path):
    gallery = tmp_path / "gallery.db"
    with open_gallery(str(gallery), create=True) as g:
        run_index(engine, g, library)
        expected = face_matrix(g)
    cache = gallery.with_name("gallery.db.faces.npy")
    assert cache.exists() and (cache.stat().st_mode & 0o777) == 0o600
    np.save(cache, np.zeros_like(np.load(cache)))  # tampered with: its stamp no longer matches
    with open_gallery(str(gallery)) as g:
        assert np.array_equal(face_matrix(g).matrix, expected.matrix)
    os.chmod(cache, 0o644)  # readable by others: not trusted, rebuilt private
    with open_gallery(str(gallery)) as g:
        assert np.array_equal(face_matrix(g).matrix, expected.matrix)
    assert (cache.stat().st_mode & 0o777) == 0o600

    gallery.unlink()  # another gallery at the same path, with more faces: the old cache is not its
    for p in (library / "obama.jpg", library / "biden.jpg", library / "obama2.jpg"):
        cv2.imwrite(str(library / f"mirror-{p.name}"), cv2.imread(str(p))[:, ::-1])
    with open_gallery(str(gallery), create=True) as g:
        run_index(engine, g, library)
        cached = face_matrix(g)
    with open_gallery(str(gallery)) as g:
        fresh = PhotoIndex(g)
        rows, matrix = zip(*fresh.iter_faces())
        assert np.array_equal(cached.matrix, np.concatenate(matrix))
