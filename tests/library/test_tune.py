"""facecli tune and --head: mining rules on built distances; training, export and loading on real LFW
embeddings; the command end to end; a head used by the matching commands and recorded by the gallery."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import heads
import numpy as np
import pytest
from conftest import json_rows, one_line_error
from heads import FAST

import facecli
from facecli.calibration import tau_for
from facecli.errors import FaceCliError, HeadMismatch, ModelError
from facecli.gallery import open_gallery
from facecli.models import pipeline_spec
from facecli.modes import HEADS, LOSSES, MININGS
from facecli.tune import (
    Labelled,
    TuneConfig,
    export_head,
    load_head,
    mean_triplet_loss,
    mine_triplets,
    sidecar,
    split_people,
    train_head,
)
from facecli.tune.losses import sq_distance_matrix, triplet_loss

ALPHA = 0.2


# -- mining on distances built for the test ------------------------------------------------------
def _built_batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """12 random unit vectors of 4 people in 3-d: distances spread over 0-4, many in every band."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(12, 3))
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return sq_distance_matrix(y), np.repeat(np.arange(4), 3)


def test_semi_hard_mining_on_a_hand_built_line():
    # anchor 0 at 0, positive 1 at 0.5 (d 0.25); negatives 2, 3, 4 at d 0.09, 0.36, 0.42 from the anchor
    pos = np.array([0.0, 0.5, 0.3, 0.6, np.sqrt(0.42)])
    dist = (pos[:, None] - pos[None, :]) ** 2
    labels = np.array([0, 0, 1, 2, 3])
    a, p, n, candidates = mine_triplets(dist, labels, ALPHA, "semi-hard")
    got = {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n)}
    # (0, 1): 0.25 < d < 0.45 holds for 3 (0.36) and 4 (0.42); the nearest is 3. 2 (0.09) is hard: not taken
    assert got[(0, 1)] == 3
    # (1, 0): negatives of 1 at 0.04, 0.01, 0.022 are all nearer than the positive (0.25): no triplet
    assert (1, 0) not in got and candidates == 2
    # hard mining takes the nearest negative whatever its distance
    a, p, n, _ = mine_triplets(dist, labels, ALPHA, "hard")
    assert {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n)} == {(0, 1): 2, (1, 0): 3}


@pytest.mark.parametrize("seed", range(5))
def test_semi_hard_mining_picks_exactly_the_nearest_negative_inside_the_band(seed):
    dist, labels = _built_batch(seed)
    a, p, n, candidates = mine_triplets(dist, labels, ALPHA, "semi-hard")
    mined = {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n)}
    expected = {}
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i == j or labels[i] != labels[j]:
                continue
            band = [k for k in range(len(labels))
                    if labels[k] != labels[i] and dist[i, j] < dist[i, k] < dist[i, j] + ALPHA]
            if band:
                expected[(i, j)] = min(band, key=lambda k: dist[i, k])
    assert candidates == 4 * 3 * 2
    assert mined == expected and expected  # some pairs have a band negative, the others none
    assert len(expected) < candidates
    res = triplet_loss(dist, labels, ALPHA, "semi-hard")
    losses = [dist[i, j] - dist[i, k] + ALPHA for (i, j), k in expected.items()]
    assert all(0 < v < ALPHA for v in losses)
    assert res.loss == pytest.approx(np.mean(losses)) and res.active == pytest.approx(len(expected) / candidates)


@pytest.mark.parametrize("seed", range(3))
def test_hard_and_all_mining(seed):
    dist, labels = _built_batch(seed)
    a, p, n, candidates = mine_triplets(dist, labels, ALPHA, "hard")
    assert candidates == len(a) == 24  # every anchor-positive pair, with its anchor's nearest negative
    for i, j, k in zip(a, p, n):
        assert labels[i] == labels[j] and labels[k] != labels[i]
        assert dist[i, k] == min(dist[i, m] for m in range(12) if labels[m] != labels[i])
    a, p, n, candidates = mine_triplets(dist, labels, ALPHA, "all")
    brute = {(i, j, k) for i in range(12) for j in range(12) for k in range(12)
             if i != j and labels[i] == labels[j] and labels[k] != labels[i] and dist[i, j] - dist[i, k] + ALPHA > 0}
    assert {(int(i), int(j), int(k)) for i, j, k in zip(a, p, n)} == brute
    assert candidates == 24 * 9


def test_the_gradient_matches_finite_differences():
    """The numpy backward pass of both heads, checked against the loss it differentiates."""
    from facecli.tune.head import init_head
    from facecli.tune.losses import distance_grad

    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 6)).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.repeat(np.arange(4), 3)
    for kind in HEADS:
        head = init_head(kind, 6)
        head.params = [p.astype(np.float64) + 0.3 * rng.normal(size=p.shape) for p in head.params]

        def loss_of(h):
            y, _ = h.forward_train(x)
            # "all" mining with a wide margin: the selected set is stable under tiny steps
            return triplet_loss(sq_distance_matrix(y), labels, 3.0, "all")

        y, cache = head.forward_train(x)
        grads = head.backward(cache, distance_grad(loss_of(head).grad, y))
        for k, p in enumerate(head.params):
            idx = tuple(rng.integers(0, s) for s in p.shape)
            old = p[idx]
            p[idx] = old + 1e-6
            up = loss_of(head).loss
            p[idx] = old - 1e-6
            down = loss_of(head).loss
            p[idx] = old
            assert grads[k][idx] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-7)


# -- real embeddings: a slice of LFW ---------------------------------------------------------------
@pytest.fixture(scope="module")
def lfw_slice() -> Labelled:
    """SFace embeddings (the evaluation's, cached) of 24 LFW people with 4+ photos and 16 with one."""
    return heads.lfw_slice("sface")


@pytest.fixture(scope="module")
def trained(lfw_slice):
    return {kind: train_head(lfw_slice, TuneConfig(**{**FAST.__dict__, "head": kind})) for kind in HEADS}


def test_the_people_are_split_disjointly(lfw_slice):
    train, val = split_people(lfw_slice.people, 0.25, seed=0)
    assert not set(train) & set(val) and set(train) | set(val) == set(lfw_slice.people)
    counts = {n: list(lfw_slice.people).count(n) for n in set(lfw_slice.people)}
    assert sum(counts[n] >= 2 for n in val) == 6 and sum(counts[n] == 1 for n in val) == 4  # a quarter of each
    assert split_people(lfw_slice.people, 0.25, seed=1) != (train, val)


def test_training_lowers_the_triplet_loss_of_the_training_people(lfw_slice, trained):
    people = np.asarray(lfw_slice.people)
    for kind, res in trained.items():
        rows = np.isin(people, res.train_people)
        before = mean_triplet_loss(lfw_slice.embeddings[rows], people[rows], ALPHA)
        after = mean_triplet_loss(res.final_head.forward(lfw_slice.embeddings[rows]), people[rows], ALPHA)
        assert after < 0.8 * before, kind
        assert not set(res.train_people) & set(res.val_people)
        assert [h.epoch for h in res.history] == list(range(13))
        assert all(0 <= h.active <= 1 for h in res.history[1:])
        assert res.history[res.best_epoch].val_fnir == min(h.val_fnir for h in res.history)


def test_training_is_deterministic_for_a_seed(lfw_slice, trained, tmp_path):
    again = train_head(lfw_slice, TuneConfig(**{**FAST.__dict__, "head": "linear"}))
    assert all(np.array_equal(p, q) for p, q in zip(again.final_head.params, trained["linear"].final_head.params))
    assert export_head(again.head, again.metadata(), tmp_path / "a.onnx") == \
        export_head(trained["linear"].head, trained["linear"].metadata(), tmp_path / "b.onnx")
    other = train_head(lfw_slice, TuneConfig(**{**FAST.__dict__, "seed": 1, "epochs": 2}))
    assert other.val_people != again.val_people


@pytest.mark.parametrize("kind", HEADS)
def test_the_exported_graph_reproduces_the_numpy_head(lfw_slice, trained, tmp_path, kind):
    res = trained[kind]
    path = tmp_path / "head.onnx"
    digest = export_head(res.final_head, res.metadata(), path)
    head = load_head(path)
    assert head.sha256 == digest and sidecar(path).read_text().split()[0] == digest
    x = lfw_slice.embeddings
    assert np.abs(head.apply(x) - res.final_head.forward(x)).max() <= 1e-5
    assert np.abs(res.final_head.forward(x) - x).max() > 1e-3  # training moved it away from the identity
    meta = head.metadata
    assert (meta["base_model"], meta["input_dim"], meta["output_dim"], meta["loss"], meta["margin"], meta["mining"]) \
        == ("sface", 128, 128, "triplet", 0.2, "semi-hard")
    assert meta["dataset_sha256"] == lfw_slice.sha256() and meta["validation"]["head"]["at_fpir"]["0.01"]
    head.check_model("sface", 128)
    with pytest.raises(ModelError, match="trained on sface"):
        head.check_model("fusion", 640)


def test_a_head_is_refused_unless_its_sha256_checks(lfw_slice, trained, tmp_path):
    res = trained["linear"]
    path = tmp_path / "head.onnx"
    digest = export_head(res.head, res.metadata(), path)
    sidecar(path).unlink()
    with pytest.raises(ModelError, match="missing"):
        load_head(path)
    assert load_head(path, expected_sha256=digest).sha256 == digest  # a gallery's recorded sha256 suffices
    sidecar(path).write_text(f"{'0' * 64}  head.onnx\n")
    with pytest.raises(ModelError, match="sha256"):
        load_head(path)


def test_the_heads_impostor_quantiles_calibrate_tau_for(lfw_slice, trained, tmp_path):
    res = trained["linear"]
    path = tmp_path / "head.onnx"
    export_head(res.head, res.metadata(), path)
    spec = load_head(path).calibration(pipeline_spec("sface"))
    imp = res.impostor
    assert imp["pairs"] > 0 and imp["p"] == sorted(imp["p"]) and imp["d"] == sorted(imp["d"])
    assert min(imp["p"]) * imp["pairs"] >= 1  # no quantile rarer than one pair
    tau = tau_for(spec, 1, 0.5)
    assert imp["d"][0] <= tau <= imp["d"][-1]
    with pytest.raises(FaceCliError, match="rarer"):
        tau_for(spec, 1000, 0.001)  # far beyond what a few hundred validation pairs can tell


def test_the_curves_plot(trained, tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (the [plot] extra)")
    from facecli.tune import plot_curves

    plot_curves(trained["two-layer"], tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_without_one_photo_people_half_of_the_validation_people_are_strangers(lfw_slice):
    many = np.array([list(lfw_slice.people).count(p) >= 2 for p in lfw_slice.people])
    data = Labelled(lfw_slice.embeddings[many], np.asarray(lfw_slice.people)[many], "sface")
    res = train_head(data, TuneConfig(**{**FAST.__dict__, "epochs": 1}))
    val = res.validation["head"]
    assert len(res.val_people) == 6 and (val["enrolled"], val["strangers"]) == (3, 3)


def test_library_settings_are_refused_by_value_and_the_command_names_the_option(lfw_slice, run, tmp_path):
    with pytest.raises(FaceCliError) as err:
        train_head(lfw_slice, TuneConfig(loss="hinge"))
    assert (err.value.setting, err.value.value) == ("loss", "hinge")  # a value, never a flag
    folder = tmp_path / "people"
    folder.mkdir()
    proc = run("tune", str(folder), "--out", str(tmp_path / "h.onnx"), "--val-fraction", "1.5")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --val-fraction 1.5: must be between 0 and 1"
    text = " ".join(run("tune", "--help", env={"COLUMNS": "400"}).stdout.split())  # the library's choices
    for values in (HEADS, LOSSES, MININGS):
        assert "<" + "|".join(values) + ">" in text
    assert f"[default: {TuneConfig.epochs}]" in text and f"[default: {TuneConfig.people_per_batch}]" in text


# -- the command, end to end on real photos ------------------------------------------------------------
@pytest.fixture(scope="module")
def people_dir(tmp_path_factory) -> Path:
    """`enroll --dir`'s layout: 12 LFW people (4 photos each) not in ``lfw_slice``, and 4 with one photo."""
    root = tmp_path_factory.mktemp("people")
    for photo in heads.lfw_people(12, 4, per_person=4, skip=24):
        (root / photo.parent.name).mkdir(exist_ok=True)
        (root / photo.parent.name / photo.name).symlink_to(photo)
    return root


def _tune(run, people: Path, out: Path, *extra: str):
    return run("tune", str(people), "--out", str(out), "--model", "sface", "--largest", "--epochs", "4",
               "--people-per-batch", "8", "--learning-rate", "2e-3", "--json", *extra)


def test_tune_writes_a_head_deterministically(run, people_dir, tmp_path):
    a = _tune(run, people_dir, tmp_path / "a.onnx")
    assert a.returncode == 0, a.stderr
    (row,) = json_rows(a.stdout)
    data = (tmp_path / "a.onnx").read_bytes()
    assert row["sha256"] == hashlib.sha256(data).hexdigest() == sidecar(tmp_path / "a.onnx").read_text().split()[0]
    assert (row["base_model"], row["head"], row["input_dim"], row["output_dim"]) == ("sface", "linear", 128, 128)
    assert (row["loss"], row["margin"], row["mining"], row["skipped"]) == ("triplet", 0.2, "semi-hard", 0)
    assert (row["train_people"], row["val_people"]) == (12, 4)  # a quarter of each kind of person
    assert row["train_images"] + row["val_images"] == 52
    assert [h["epoch"] for h in row["history"]] == list(range(row["epochs_run"] + 1))
    assert set(row["validation"]["head"]["at_fpir"]) == {"0.01", "0.001"}
    head = load_head(tmp_path / "a.onnx")
    assert head.metadata["dataset_sha256"] == row["dataset_sha256"] and head.base_model == "sface"

    again = _tune(run, people_dir, tmp_path / "b.onnx")  # same folder, same seed: the same file
    assert json_rows(again.stdout)[0]["sha256"] == row["sha256"]
    assert (tmp_path / "b.onnx").read_bytes() == data
    other = _tune(run, people_dir, tmp_path / "c.onnx", "--seed", "1")
    assert json_rows(other.stdout)[0]["sha256"] != row["sha256"]


# -- a head in use: galleries record it, matching goes through it ---------------------------------------
@pytest.fixture(scope="module")
def head_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("heads")
    found = heads.write_head(folder, "head.onnx", seed=0), heads.write_head(folder, "other.onnx", seed=3)
    assert all(load_head(h).metadata["epochs"] > 0 for h in found)  # trained: not their starting point
    return found


def test_a_head_does_not_change_a_gallery_not_told_to_use_it(run, images, head_files):
    head, _ = head_files
    photos = [str(images / n) for n in ("obama2.jpg", "biden.jpg", "obama3.jpg")]
    assert run("enroll", "obama", str(images / "obama.jpg"), "--model", "sface").returncode == 0
    before = run("identify", *photos, "--json")
    heads.write_head(head.parent, "late.onnx", seed=2)  # another head trained meanwhile, on other people
    after = run("identify", *photos, "--json")
    assert after.returncode == before.returncode == 0 and after.stdout == before.stdout
    one_line_error(run("identify", *photos, "--head", str(head)), "used without a head", "gallery set --head")

    tuned = facecli.load(device="cpu", head=head)  # the model comes from the head
    assert (tuned.model, tuned.head.sha256) == ("sface", load_head(head).sha256)
    faces = tuned.faces(images / "obama2.jpg")
    with open_gallery(run.gallery) as g, pytest.raises(HeadMismatch):
        g.identify(faces)


def test_a_gallery_set_to_use_a_head(run, images, head_files):
    head, other = head_files
    loaded = load_head(head)
    img = {n: str(images / n) for n in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")}
    assert run("enroll", "obama", img["obama.jpg"], "--model", "sface").returncode == 0
    assert run("enroll", "biden", img["biden.jpg"]).returncode == 0
    base = run("identify", img["obama2.jpg"], img["obama3.jpg"], img["biden.jpg"], "--json")

    done = run("gallery", "set", "--head", str(head))
    assert done.returncode == 0 and done.stdout == "" and "no one needs enrolling again" in done.stderr
    (stats,) = json_rows(run("gallery", "stats", "--json").stdout)
    spec = loaded.calibration(pipeline_spec("sface"))
    assert (stats["head"], stats["head_sha256"]) == (str(head), loaded.sha256)
    assert stats["identify_tau"] == round(tau_for(spec, 2, 0.01), 4) and stats["verify_tau"] == loaded.default_tau

    # without the head, or with another, every matching command is refused in one line naming the head to pass
    for args in (["identify", img["obama2.jpg"]], ["verify", img["obama2.jpg"], "--claim", "obama"],
                 ["search", img["obama2.jpg"]], ["enroll", "obama", img["obama3.jpg"]],
                 ["identify", img["obama2.jpg"], "--head", str(other)]):
        one_line_error(run(*args), f"--head {head}")

    found = run("identify", img["obama2.jpg"], img["biden.jpg"], "--head", str(head), "--json")
    rows = json_rows(found.stdout)
    assert found.returncode == 0 and [r["name"] for r in rows] == ["obama", "biden"]
    assert {r["tau"] for r in rows} == {stats["identify_tau"]} and {r["gallery_size"] for r in rows} == {2}
    tuned = facecli.load(device="cpu", head=head)
    probe = tuned.faces(images / "obama2.jpg")[0]
    with open_gallery(run.gallery) as g:
        stored = g.embeddings_of("obama")
    expected = float(np.sum((loaded.apply(probe.embedding) - loaded.apply(stored)) ** 2))
    assert rows[0]["distance"] == pytest.approx(expected, abs=2e-4)
    assert abs(expected - float(np.sum((probe.embedding - stored) ** 2))) > 1e-3  # the head changed it

    claim = json_rows(run("verify", img["obama3.jpg"], "--claim", "obama", "--head", str(head), "--json").stdout)
    pair = json_rows(run("verify", img["obama.jpg"], img["obama2.jpg"], "--head", str(head), "--json").stdout)
    assert claim[0]["tau"] == pair[0]["tau"] == loaded.default_tau and claim[0]["same"] and pair[0]["same"]
    assert json_rows(run("search", img["obama3.jpg"], "--head", str(head), "--json").stdout)[0]["name"] == "obama"
    one_line_error(run("identify", img["obama2.jpg"], "--head", str(head), "--search", "index"), "searched exactly")
    (row,) = json_rows(run("embed", img["obama2.jpg"], "--head", str(head), "--json").stdout)
    assert row["head"] == loaded.sha256 and len(row["embedding"]) == loaded.out_dim
    assert np.allclose(row["embedding"], loaded.apply(probe.embedding)[0], atol=1e-5)

    # removing the head needs no re-enrollment: the base embeddings were kept, and the base decisions return
    assert run("gallery", "set", "--no-head").returncode == 0
    again = run("identify", img["obama2.jpg"], img["obama3.jpg"], img["biden.jpg"], "--json")
    assert (again.returncode, again.stdout) == (base.returncode, base.stdout)
    assert json_rows(run("gallery", "stats", "--json").stdout)[0]["head"] is None


def test_a_changed_head_file_is_refused(run, images, head_files, tmp_path):
    head, other = head_files
    mine = tmp_path / "mine.onnx"
    shutil.copy(head, mine)
    shutil.copy(sidecar(head), sidecar(mine))
    assert run("enroll", "obama", str(images / "obama.jpg"), "--head", str(mine)).returncode == 0  # records it
    assert json_rows(run("gallery", "stats", "--json").stdout)[0]["head"] == str(mine)

    data = bytearray(mine.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of a weight
    mine.write_bytes(bytes(data))
    one_line_error(run("identify", str(images / "obama2.jpg"), "--head", str(mine)), "has sha256", "expected")
    # another head, with its own sha256 beside it: sound as a file, but not the head the gallery records
    shutil.copy(other, mine)
    shutil.copy(sidecar(other), sidecar(mine))
    one_line_error(run("identify", str(images / "obama2.jpg"), "--head", str(mine)), "used with the head")
    # a damaged record is reported by gallery check, and matching refuses it
    with sqlite3.connect(run.gallery) as conn:
        conn.execute("UPDATE meta SET value = 'not a sha256' WHERE key = 'head_sha256'")
    check = run("gallery", "check", "--json")
    assert check.returncode == 1 and "head_sha256" in json_rows(check.stdout)[0]["problems"][0]
    one_line_error(run("identify", str(images / "obama2.jpg")), "head record", "gallery check")


@pytest.mark.parametrize("people", [9, 16, 17])
def test_every_person_is_in_one_batch_of_an_epoch(people):
    from facecli.tune.train import batches

    rows_of = [np.arange(3 * i, 3 * i + 3) for i in range(people)]
    found = batches(rows_of, 8, 2, np.random.default_rng(0))
    persons = [sorted({int(r) // 3 for r in b}) for b in found]
    assert sorted(p for b in persons for p in b) == list(range(people))  # each once, none lost
    assert all(len(b) >= 2 for b in persons) and all(len(b) == 2 * len(p) for b, p in zip(found, persons))
