"""One render path per result type: a row (the JSON Lines object) and a view that shows rows to people.

Every command builds its rows here and nowhere else, so a field added to a
row appears in ``--json`` and ``--csv`` and, where its view shows it, in the
table. The JSON fields are documented in the README ("JSON Lines schema");
``csvcells.flat`` turns a row into its CSV cells and ``csv_columns`` names them, by one
rule (README, "CSV").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from facecli.door import DoorEvent
    from facecli.gallery.copy import Copied
    from facecli.gallery.people import Moved
    from facecli.library import Found, IndexEvent, UnnamedCluster
    from facecli.phototags import Tagged
    from facecli.tracking import Event
    from facecli.tune import TuneResult
    from facecli.values import (
        ClusteredFace,
        Decision,
        Detection,
        EnrollResult,
        Face,
        ImageResult,
        Match,
        Threshold,
        Verification,
    )

Row = dict[str, Any]


@dataclass(frozen=True)
class View:
    """How rows of one type are shown without ``--json``: a table (headers + cells) or one line per row.

    ``fields`` are the row's JSON fields in the README's order: the CSV columns
    (fields that only some options add are passed by the command).
    """

    headers: tuple[str, ...] = ()
    cells: Callable[[Row], tuple] | None = None  # one table row per kept row
    keep: Callable[[Row], bool] = lambda _row: True
    line: Callable[[Row], str | list[str]] | None = None  # instead of a table: one line (or several) per row
    group: Callable[[list[Row]], list[tuple]] | None = None  # table rows made from all rows at once
    fields: tuple[str, ...] = ()

    def table(self, rows: list[Row]) -> list[tuple]:
        if self.group is not None:
            return self.group(rows) if rows else []
        return [self.cells(r) for r in rows if self.keep(r)] if self.cells else []


def rounded(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _box(row: Row, key: str = "box") -> Any:
    return "-" if row.get(key) is None else [round(v) for v in row[key]]


def _dist(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


# -- faces: detect, embed ------------------------------------------------------------------
def face_fields(det: Detection) -> Row:
    """The fields every face row carries: box, score, landmarks."""
    return {
        "box": [round(v, 1) for v in det.box],
        "score": rounded(det.score),
        "landmarks": None if det.landmarks is None else [[round(float(x), 1), round(float(y), 1)]
                                                         for x, y in det.landmarks],
    }


def threshold_fields(t: Threshold) -> Row:
    """How a 1:N decision was made: its tau, the gallery size it was chosen for, the FPIR target, and the lead
    the nearest person needs over the runner-up."""
    return {"tau": t.tau, "gallery_size": t.gallery_size, "fpir": t.fpir, "min_gap": t.min_gap}


def no_face_row(result: ImageResult) -> Row:
    """An input that gave no face: every input is accounted for."""
    return {"file": result.path, "face": None, "error": result.error.reason if result.error else "no face found"}


def face_row(result: ImageResult, face: Face, model: str | None = None, provider: str | None = None,
             crop: str | None = None, annotated: str | None = None, vector: np.ndarray | None = None,
             head: str | None = None) -> Row:
    """A detected face (``detect``); with ``model``, also its embedding (``embed``): ``vector`` when given (the
    face through a projection head, whose sha256 ``head`` then is), else the face's own."""
    row = {"file": result.path, "face": face.index, **face_fields(face.detection)}
    if model is not None:
        vector = face.embedding if vector is None else vector
        row |= {"model": model, "provider": provider, "embedding": [rounded(v, 6) for v in vector]}
    if head is not None:
        row["head"] = head
    if crop is not None:
        row["crop"] = crop
    if annotated is not None:
        row["annotated"] = annotated
    return row


def _face_extra(row: Row) -> str:
    if "embedding" in row:
        return f"{[round(v, 3) for v in row['embedding'][:3]]}…"
    return "-" if row["landmarks"] is None else f"{len(row['landmarks'])} points"


FACE_FIELDS = ("file", "face", "box", "score", "landmarks")
DETECTIONS = View(("file", "face", "box", "score", "landmarks"),
                  lambda r: (r["file"], r["face"], _box(r), f"{r['score']:.3f}", _face_extra(r)),
                  keep=lambda r: r["face"] is not None, fields=(*FACE_FIELDS, "error"))
EMBEDDINGS = View(("file", "face", "box", "score", "embedding"), DETECTIONS.cells, keep=DETECTIONS.keep,
                  fields=(*FACE_FIELDS, "model", "provider", "error", "embedding"))


# -- enroll ----------------------------------------------------------------------------------
def enroll_row(r: EnrollResult) -> Row:
    c = r.chosen
    return {"name": r.name, "file": r.path, "status": r.status, "error": r.error.reason if r.error else None,
            "box": None if r.template is None else [round(v, 1) for v in r.template.box],
            "face": None if c is None else c.face.index, "faces": None if c is None else c.faces,
            "chosen": None if c is None else c.how, "agreement": None if c is None else rounded(c.distance),
            "next": None if c is None else rounded(c.runner_up), "quality": rounded(r.quality, 3)}


def _enroll_status(r: Row) -> str:
    if r["chosen"] != "agreement":
        return r["status"]
    after = f", the next {r['next']:.3f}" if r["next"] is not None else ""
    return (f"{r['status']} (face {r['face'] + 1} of {r['faces']}: distance {r['agreement']:.3f} to their other "
            f"photos{after})")


ENROLLMENTS = View(("name", "photo", "status"), lambda r: (r["name"], r["file"], _enroll_status(r)),
                   keep=lambda r: r["error"] is None,
                   fields=("name", "file", "status", "error", "box", "quality", "face", "faces", "chosen", "agreement",
                           "next"))


# -- verify ----------------------------------------------------------------------------------
def verification_row(v: Verification) -> Row:
    face = v.probe_face
    if v.claim is not None:
        against: Row = {"faces": v.faces, "claim": v.claim}
    else:
        against = {"other": v.reference.path, "other_face": v.reference_face.index,
                   "other_box": face_fields(v.reference_face.detection)["box"]}
    row = {"file": v.probe.path, "face": None if face is None else face.index,
           "box": None if face is None else face_fields(face.detection)["box"], **against,
           "distance": rounded(v.distance), "tau": v.tau, "same": v.same, "decision": v.decision}
    if v.claim is not None:
        row["reason"] = v.unjudged
        row["quality"] = None if face is None else rounded(face.quality, 3)
    return row


def _verification_line(r: Row) -> str:
    against = ("claimed " + r["claim"]) if "claim" in r else r["other"]
    if r["face"] is None:
        return f"{r['decision']}: {r['file']} vs {against}"
    why = f" ({r['reason']})" if r.get("reason") else ""
    several = f"  face {r['face'] + 1} of {r['faces']}" if r.get("faces", 1) > 1 else ""
    return f"{r['decision']}{why}: {r['file']} vs {against}  distance {r['distance']:.3f}  tau {r['tau']:.3f}{several}"


VERIFICATIONS = View(line=_verification_line,
                     fields=("file", "face", "box", "other", "other_face", "other_box", "distance", "tau", "same",
                             "decision"))
CLAIM_FIELDS = ("file", "face", "box", "faces", "claim", "distance", "tau", "same", "decision", "reason",
                "quality")  # --claim


def door_row(e: DoorEvent, source: str) -> Row:
    """One decision of ``verify --camera/--video``: the verification row of the door face, with the event, the
    time and the evidence (the streak of "same" frames, liveness)."""
    return {"event": e.event, "time": round(e.time, 3), "frame": e.frame,
            **verification_row(e.verification), "file": source, "streak": e.streak,
            "live": e.live, "liveness": None if e.liveness is None else e.liveness.as_dict()}


def _door_line(r: Row) -> str:
    live = "" if r["live"] is None and r["liveness"] is None else f"  live {str(r['live']).lower()}"
    return f"{r['time']:7.2f} s  {r['event']:9} {_verification_line(r)}{live}"


DOORS = View(line=_door_line, fields=("event", "time", "frame", *CLAIM_FIELDS, "streak", "live", "liveness"))


# -- identify --------------------------------------------------------------------------------
def identity_row(result: ImageResult, face: Face, d: Decision, top_k: int, annotated: str | None = None) -> Row:
    row = {"file": result.path, "face": face.index, **face_fields(face.detection), "quality": rounded(face.quality, 3),
           "name": d.name, "distance": rounded(d.distance), **threshold_fields(d.threshold), "decision": d.label,
           "candidate": d.candidate,
           "candidates": [{"name": c.name, "distance": rounded(c.distance)} for c in d.candidates[:top_k]]}
    if annotated is not None:
        row["annotated"] = annotated
    return row


def unidentified_row(result: ImageResult, threshold: Threshold) -> Row:
    """An image that could not be identified at all: no face in it, or an error."""
    reason = result.error.reason if result.error else "no face found"
    return {"file": result.path, "face": None, "name": None, "distance": None, **threshold_fields(threshold),
            "decision": "error" if result.error else "no face", "error": reason}


def _identity_cells(r: Row) -> tuple:
    if r["face"] is None:
        return r["file"], "-", "-", r["error"], "-"
    others = ", ".join(f"{c['name']} {c['distance']:.3f}" for c in r["candidates"][1:])
    return (r["file"], r["face"], _box(r), r["name"] or r["decision"],
            _dist(r["distance"]) + (f" (then {others})" if others else ""))


IDENTITIES = View(("file", "face", "box", "identity", "distance"), _identity_cells,
                  fields=(*FACE_FIELDS, "quality", "name", "distance", "tau", "gallery_size", "fpir", "min_gap",
                          "decision", "candidate", "candidates", "error"))


def threshold_title(t: Threshold) -> str:
    target = f"FPIR {t.fpir:g} with {counted(t.gallery_size, 'person')}" if t.fpir is not None else "--tau"
    return f"tau {t.tau:.3f} ({target})"


# -- cluster ---------------------------------------------------------------------------------
def cluster_row(c: ClusteredFace, size: int, link: str | None = None, enrolled: EnrollResult | None = None) -> Row:
    """A clustered face; with ``enrolled`` (``--enroll-as-unknown``), the person its cluster became (null: none of
    its faces could be enrolled) and whether this face is in the gallery under that name (``status`` added or
    present), or the ``error`` that kept it out."""
    row = {"cluster": c.cluster, "size": size, "file": c.result.path, "face": c.face.index,
           "box": face_fields(c.face.detection)["box"]}
    if link is not None:
        row["link"] = link
    if enrolled is not None:
        row |= {"person": enrolled.name, "status": enrolled.status,
                "error": enrolled.error.reason if enrolled.error else None}
    return row


def _cluster_person(rows: list[Row]) -> str:
    """A cluster's person in the table, and how many of its faces were not enrolled."""
    if "person" not in rows[0]:
        return "-"
    left_out = sum(r["error"] is not None for r in rows)
    return (rows[0]["person"] or "-") + (f" ({left_out} not enrolled)" if left_out else "")


def _cluster_table(rows: list[Row]) -> list[tuple]:
    members: dict[int, list[Row]] = {}
    for r in rows:
        members.setdefault(r["cluster"], []).append(r)
    return [(k, len(v), _cluster_person(v), " ".join(f"{r['file']}#{r['face']}" for r in v))
            for k, v in sorted(members.items())]


CLUSTERS = View(("cluster", "faces", "person", "members"), group=_cluster_table,
                fields=("cluster", "size", "file", "face", "box"))


# -- search ----------------------------------------------------------------------------------
def match_row(path: str, face: Face, m: Match) -> Row:
    return {"file": path, "face": face.index, "rank": m.rank, "name": m.name, "distance": rounded(m.distance),
            "template": m.template, "source": m.source}


MATCHES = View(("file", "rank", "name", "distance", "template", "source"),
               lambda r: (r["file"], r["rank"], r["name"], _dist(r["distance"]), r["template"], r["source"]),
               fields=("file", "face", "rank", "name", "distance", "template", "source"))


# -- the photo library (index, find, people) -------------------------------------------------------
def index_row(e: IndexEvent) -> Row:
    return {"file": e.path, "status": e.status, "faces": e.faces if e.status != "error" else None,
            "error": e.error.reason if e.error else None}


def _index_summary(rows: list[Row]) -> list[tuple]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    faces = sum(r["faces"] or 0 for r in rows if r["status"] in ("new", "changed", "redone"))
    return [("files", len(rows)), *sorted(counts.items()), ("faces recorded", faces)]


INDEXED = View(("", "count"), group=_index_summary, fields=("file", "status", "faces", "error"))


def found_row(f: Found, path: str, link: str | None = None) -> Row:
    row = {"name": f.name, "file": path, "face": f.face["face"], "box": [round(v, 1) for v in f.face["box"]],
           "size": round(f.face["size"], 1), "distance": rounded(f.distance), "sha256": f.face["sha256"]}
    if link is not None:
        row["link"] = link
    return row


FOUND = View(("name", "file", "face", "box", "distance"),
             lambda r: (r["name"], r["file"], r["face"], _box(r), _dist(r["distance"])),
             fields=("name", "file", "face", "box", "size", "distance", "sha256"))


def unnamed_row(c: UnnamedCluster, sample: dict[str, Any], paths: list[str], photos: int,
                crop: str | None = None) -> Row:
    row = {"cluster": c.cluster, "faces": len(c.faces), "photos": photos, "file": paths[0] if paths else None,
           "face": sample["face"], "box": [round(v, 1) for v in sample["box"]]}
    if crop is not None:
        row["crop"] = crop
    return row


UNNAMED = View(("cluster", "faces", "photos", "sample"),
               lambda r: (r["cluster"], r["faces"], r["photos"], f"{r['file']}#{r['face']}"),
               fields=("cluster", "faces", "photos", "file", "face", "box"))
PEOPLE = View(("name", "faces", "photos"), lambda r: (r["name"], r["faces"], r["photos"]),
              fields=("name", "faces", "photos"))


def tagged_row(t: Tagged) -> Row:
    report = t.report
    return {"file": t.path, "names": t.names, "sidecar": str(report.sidecar) if report and report.written else None,
            "added": report.added if report else None, "updated": report.replaced if report else None,
            "conflicts": [f"{n} (tagged {o})" for n, o in report.conflicts] if report else [],
            "missed": t.missed, "error": t.error.reason if t.error else None}


TAGS = View(("file", "names", "sidecar"),
            lambda r: (r["file"], ", ".join(r["names"]) or "-", r["sidecar"] or "-"),
            keep=lambda r: r["error"] is None,
            fields=("file", "names", "sidecar", "added", "updated", "conflicts", "missed", "error"))


# -- watch -----------------------------------------------------------------------------------
def event_row(e: Event, frame: int, threshold: Threshold) -> Row:
    """One watch event; ``time`` never decreases from one row to the next (a leave is timed last seen + gap)."""
    t = e.track
    name = t.name if e.kind != "leave" else t.reported
    return {"event": e.kind, "time": round(e.time, 3), "frame": frame, "track": t.id, "name": name,
            "decision": t.label, "distance": rounded(t.best.get(name)), **threshold_fields(threshold),
            "box": [round(v, 1) for v in t.box], "quality": rounded(t.quality, 3), "first_seen": round(t.start, 3),
            "last_seen": round(t.last_seen, 3), "live": t.live,
            "liveness": None if t.liveness is None else t.liveness.as_dict()}


def _event_line(r: Row) -> str:
    live = "" if r["liveness"] is None else f"  live {str(r['live']).lower()}"
    return f"{r['time']:8.2f} s  {r['event']:6}  track {r['track']}: {r['name'] or r['decision']}{live}"


EVENTS = View(line=_event_line, fields=("event", "time", "frame", "track", "name", "decision", "distance", "tau",
                                        "gallery_size", "fpir", "min_gap", "box", "quality", "live", "liveness"))


# -- management ------------------------------------------------------------------------------
MODELS = View(("model", "kind", "state", "source", "path"),
              lambda r: (r["model"], r["kind"], r["state"], r["source"], r["path"]),
              fields=("model", "kind", "state", "path", "source"))
PERSONS = View(("name", "templates"), lambda r: (r["name"], r["templates"]), fields=("name", "templates", "created"))
TEMPLATES = View(("template", "source", "sha256", "box"),
                 lambda r: (r["id"], r["source"], r["sha256"][:12], r["box"]),
                 fields=("name", "id", "source", "sha256", "box", "created"))
KEY_VALUES = View(("key", "value"), group=lambda rows: [kv for r in rows for kv in r.items()])  # CSV: the row's keys
CHECKS = View(line=lambda r: f"{r['gallery']}: ok" if r["ok"] else [f"{r['gallery']}: {p}" for p in r["problems"]])
def _copy_line(r: Row) -> str:
    verified = f"(verified: counts and checksum {r['checksum'][:16]})"
    if not r["merged"]:
        return (f"copied {counted(r['persons'], 'person')}, {counted(r['templates'], 'template')} from "
                f"{r['source']} to {r['destination']} {verified}")
    return (f"merged {r['source']} into {r['destination']}: {counted(r['added'], 'template')} added, "
            f"{r['present']} already there, {counted(len(r['conflicts']), 'conflict')}; it holds "
            f"{counted(r['persons'], 'person')}, {counted(r['templates'], 'template')} {verified}")


COPIES = View(line=_copy_line, fields=("source", "destination", "persons", "templates", "checksum", "verified",
                                       "merged", "added", "present", "conflicts"))


def copy_row(c: Copied) -> Row:
    """``gallery copy``: where from and to (passwords masked), what was copied, and its checksum."""
    return {"source": c.source, "destination": c.destination, "persons": c.content.persons,
            "templates": c.content.templates, "checksum": c.content.checksum, "verified": True, "merged": c.merged,
            "added": c.added, "present": c.present,
            "conflicts": [{"name": x.name, "source": x.source, "status": x.status, "holder": x.holder,
                           "reason": x.reason} for x in c.conflicts]}


def moved_row(m: Moved) -> Row:
    """``gallery merge`` and ``gallery split``: whose templates went where, how many were dropped, and whether the
    person they were taken from is gone."""
    return {"source": m.source, "target": m.target, "moved": m.moved, "dropped": m.dropped,
            "source_removed": m.source_removed}


#: Nouns whose plural is not the singular with an s.
_PLURALS = {"person": "people", "copy": "copies"}


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, singular for one: "1 template", "2 templates", "1 person", "3 people"."""
    return f"{n} {noun if n == 1 else _PLURALS.get(noun, noun + 's')}"


def _moved_line(r: Row) -> str:
    if r["target"] is None:
        text = f"took {counted(r['dropped'], 'template')} out of {r['source']}"
    else:
        text = f"moved {counted(r['moved'], 'template')} of {r['source']} to {r['target']}"
        if r["dropped"]:
            text += f", dropped {r['dropped']} ({r['target']} has a face of their photo already)"
    return text + (f"; {r['source']} removed (no template left)" if r["source_removed"] else "")


MOVES = View(line=_moved_line, fields=("source", "target", "moved", "dropped", "source_removed"))


CALIBRATIONS = View(line=lambda r: f"tau {r['tau']:.3f} keeps strangers named at {r['fpir']:g} with "
                                   f"{counted(r['gallery_size'], 'person')} enrolled "
                                   f"(use it with identify --tau {r['tau']:.3f})",
                    fields=("tau", "fpir", "gallery_size", "model"))


# -- evaluation ------------------------------------------------------------------------------
def _pair_metrics(rows: list[Row]) -> list[tuple]:
    (r,) = rows
    return [
        ("pairs / images", f"{r['pairs']} / {r['images']}"),
        ("accuracy (10-fold)", f"{r['accuracy'] * 100:.2f} % ± {r['accuracy_std'] * 100:.2f}"),
        ("tau per fold", " ".join(f"{t:.2f}" for t in r["fold_tau"])),
        ("tau on all pairs", f"{r['tau']:.2f} ({r['tau_accuracy'] * 100:.2f} %)"),
        (f"VAL @ FAR={r['far_target']:g}", f"{r['val'] * 100:.2f} % ± {r['val_std'] * 100:.2f} (FAR {r['far']:.4f})"),
        ("ROC AUC", f"{r['auc']:.5f}"),
        ("no face found (centre crop used)", str(r["fallbacks"])),
    ]


def _openset_metrics(rows: list[Row]) -> list[tuple]:
    (r,) = rows
    out = [("enrolled / probes / strangers", f"{r['enrolled']} / {r['probes']} / {r['strangers']}"),
           ("rank-1, closed set", f"{r['rank1_closed_set'] * 100:.2f} %")]
    for name, p in r["at_fpir"].items():
        out.append((f"at FPIR {float(name) * 100:g} %",
                    f"rank-1 {p['rank1'] * 100:.2f} % (FNIR {p['fnir'] * 100:.2f} %), tau {p['tau']:.3f}"))
    d = r["at_default_tau"]
    how = f"default, FPIR target {d['fpir_target']:g}" if d["fpir_target"] is not None else "--tau"
    out.append((f"at tau {d['tau']:.3f} ({how})", f"FPIR {d['fpir'] * 100:.2f} %, rank-1 {d['rank1'] * 100:.2f} %"))
    out.append(("no face found (centre crop used)", str(r["fallbacks"])))
    return out


PAIR_REPORTS = View(("metric", "value"), group=_pair_metrics)
OPENSET_REPORTS = View(("metric", "value"), group=_openset_metrics)


# -- tune ------------------------------------------------------------------------------------
def tune_row(result: TuneResult, file: str, sha256: str, skipped: int, calibrated_up_to: int) -> Row:
    """`facecli tune`'s report: the head file and everything its metadata records (how it was trained, the
    validation figures of the base model and of the head), the photos left out, and the largest gallery its
    impostor distances calibrate identify's default tau for (FPIR 1 %: the reach of their tail model)."""
    return {"file": file, "sha256": sha256, **result.metadata(), "skipped": skipped,
            "calibrated_up_to": calibrated_up_to}


def _tune_metrics(rows: list[Row]) -> list[tuple]:
    (r,) = rows
    val = r["validation"]

    def figures(key: str, name: str) -> str:
        base, head = val["base"]["at_fpir"].get(key), val["head"]["at_fpir"].get(key)
        return "-" if base is None else f"{base[name] * 100:.2f} % -> {head[name] * 100:.2f} %"

    return [
        ("head file", f"{r['file']} (sha256 {r['sha256'][:12]})"),
        ("head", f"{r['head']}, {r['base_model']} {r['input_dim']}-d -> {r['output_dim']}-d"),
        ("training", f"{r['loss']} loss, margin {r['margin']:g}, {r['mining']} mining"),
        ("people: training / validation", f"{r['train_people']} / {r['val_people']}"),
        ("photos: training / validation / left out", f"{r['train_images']} / {r['val_images']} / {r['skipped']}"),
        ("epochs", f"kept {r['epochs']} of {r['epochs_run']} run"),
        ("validation FNIR at FPIR 1 %: base -> head", figures("0.01", "fnir")),
        ("validation rank-1 at FPIR 0.1 %: base -> head", figures("0.001", "rank1")),
        ("1:1 tau (verify, cluster)", f"{r['default_tau']:.2f}"),
        ("1:N default tau calibrated up to", f"{r['calibrated_up_to']} people at FPIR 1 % "
                                             f"(from {r['impostor'].get('tail', {}).get('people', r['val_people'])} "
                                             f"validation people, {r['impostor']['pairs']} impostor pairs)"),
    ]


TUNE_REPORTS = View(("metric", "value"), group=_tune_metrics)
