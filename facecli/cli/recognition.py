"""Commands on photos: detect, embed, enroll, verify, identify, cluster, search."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Annotated

import typer

from facecli.cli import completion, door, render
from facecli.cli.files import link_clusters, make_folder, write_annotated, write_crop
from facecli.cli.options import (
    EXIT_ERROR,
    EXIT_NO,
    EXIT_OK,
    Annotate,
    CameraOpt,
    Csv,
    DetectorOpt,
    DetSize,
    Device,
    Flip,
    Force,
    Fpir,
    GalleryOpt,
    HeadOpt,
    Images,
    Json,
    Linkage,
    MinFace,
    MinGap,
    MinQuality,
    ModelOpt,
    Quiet,
    SearchMode,
    Tau,
    Templates,
    Verbose,
    VideoOpt,
    engine,
    expand,
    head_for,
    load_head,
    message,
    model_for,
    open_gallery_at,
    output,
    total,
)
from facecli.decisions import MIN_FACE, check_top_k
from facecli.detectors import DET_SIZE
from facecli.errors import FaceCliError, InputError
from facecli.inputs import scan_people_dir
from facecli.models import check_built
from facecli.private import check_replaceable, private_output

app = typer.Typer()


def _report_unusable(out, result) -> bool:
    """Say on stderr why an image gave no face; True when it was an error (not just faceless)."""
    if result.error:
        out.error(message(result.error))
        return True
    out.warn(f"{result.path}: no face found")
    return False


def _annotate(folder: Path | None, n: int, result, faces) -> str | None:
    """Write the annotated picture of one decoded image (``--annotate``); None when not asked or not decoded."""
    if folder is None or result.error:
        return None

    return str(write_annotated(folder, n, result.path, faces))


def _make_folders(*folders: Path | None) -> None:
    for folder in folders:
        if folder is not None:
            make_folder(folder)


# -- detect / embed -------------------------------------------------------------------
def _optional(**fields: object) -> tuple[str, ...]:
    """The row fields that options add (``annotated`` with --annotate): CSV columns only when asked for."""
    return tuple(name for name, given in fields.items() if given)


def _faces(command: str, images: list[str], detector: str | None, model: str | None, device: str,
           flip: bool | None, det_size: int, json_lines: bool, csv_rows: bool, quiet: bool, verbose: bool,
           crops: Path | None = None, npy: Path | None = None, annotate: Path | None = None,
           head: Path | None = None) -> None:
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.matching import face_vectors

    out = output(json_lines, quiet, verbose, csv_rows)
    if npy is not None:
        check_replaceable(npy, InputError)  # before any work; and again when it is written
    paths = expand(images)
    embedding = command == "embed"
    tuned = load_head(head)
    eng = engine(out, model_for(model, head=tuned), detector, device, flip, det_size, embed=embedding, head=tuned)
    _make_folders(crops, annotate)
    failed = no_face = False
    vectors = []
    view = render.EMBEDDINGS if embedding else render.DETECTIONS
    fields = view.fields + _optional(head=tuned, crop=crops, annotated=annotate)
    with out.progress(total(paths), command) as tick, \
            out.results(view, fields=fields, sizes={"embedding": eng.vector_dim} if embedding else {}) as results:
        for n, res in enumerate(eng.run(paths)):
            tick()
            drawn = _annotate(annotate, n, res, [(f.detection, None, None) for f in res.faces])
            if res.error or not res.faces:
                failed |= _report_unusable(out, res)
                no_face |= res.error is None
                results.add(render.no_face_row(res))
                continue
            matched = face_vectors(res.faces) if embedding else [None] * len(res.faces)  # through the head
            for face, vector in zip(res.faces, matched):
                crop = None
                if crops is not None:
                    crop = str(write_crop(crops, n, res.path, face))
                if embedding:
                    vectors.append(vector)
                results.add(render.face_row(res, face, eng.model if embedding else None,
                                            eng.provider if embedding else None, crop, drawn, vector,
                                            tuned.sha256 if tuned is not None else None))
    if npy is not None:
        # numpy: loaded by the commands that handle vectors, not by --help or argument errors
        import numpy as np

        with private_output(npy, InputError) as tmp, tmp.open("wb") as fh:  # 0600, never through a link
            np.save(fh, np.stack(vectors) if vectors else np.empty((0, eng.vector_dim), np.float32))
        out.info(f"wrote {len(vectors)} embeddings to {npy}")
    raise typer.Exit(EXIT_ERROR if failed else EXIT_NO if no_face else EXIT_OK)


@app.command()
def detect(images: Images, detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto",
           det_size: DetSize = DET_SIZE, annotate: Annotate = None,
           crops: Annotated[Path | None, typer.Option(help="Write each face's model input crop here (PNG).")] = None,
           json_lines: Json = False, csv_rows: Csv = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Find faces: box, score and 5 landmarks per face.

    Examples:
      [bold]facecli detect group.jpg --json | jq .box[/]
      [bold]facecli detect photos/ --csv > faces.csv[/]
    """
    _faces("detect", images, detector, model, device, False, det_size, json_lines, csv_rows, quiet, verbose,
           crops=crops, annotate=annotate)


@app.command()
def embed(images: Images, detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto",
          det_size: DetSize = DET_SIZE, flip: Flip = None, head: HeadOpt = None,
          npy: Annotated[Path | None, typer.Option(help="Also save all embeddings as an (N, dim) .npy.")] = None,
          json_lines: Json = False, csv_rows: Csv = False, quiet: Quiet = False, verbose: Verbose = False) -> None:
    """Embed every face: a unit vector per face (512-d FaceNet, 128-d SFace, 640-d fusion; with --head, the
    head's output).

    Example: [bold]ls *.jpg | facecli embed - --json --npy faces.npy[/]
    """
    _faces("embed", images, detector, model, device, flip, det_size, json_lines, csv_rows, quiet, verbose,
           npy=npy, head=head)


# -- enroll / verify / identify ------------------------------------------------------------
@app.command()
def enroll(
    name: Annotated[str | None, typer.Argument(help="The person's name.", show_default=False)] = None,
    images: Annotated[list[str] | None, typer.Argument(
        help="Photos of that person; '-' reads paths from stdin.", show_default=False)] = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Import a folder: one sub-folder per person, or files named after the person "
                      "(alice.jpg, alice_2.jpg).", show_default=False)] = None,
    largest: Annotated[bool, typer.Option(help="Enroll the largest face of a photo with several.")] = False,
    min_face: Annotated[float, typer.Option(
        "--min-face", min=0, metavar="PX",
        help="Refuse faces with a box side under PX pixels: identify would never name them.")] = MIN_FACE,
    gallery: GalleryOpt = None, detector: DetectorOpt = None, model: ModelOpt = None,
    device: Device = "auto", flip: Flip = None, head: HeadOpt = None,
    det_size: DetSize = DET_SIZE, json_lines: Json = False, csv_rows: Csv = False, quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Enroll a person from one or more photos (one is enough). Templates are the base model's embeddings, so a
    head (--head: a new gallery records it) can be added, changed or removed later without enrolling again.

    Examples:
      [bold]facecli enroll alice alice.jpg[/]
      [bold]facecli enroll --dir people/[/]     (people/alice/*.jpg or people/alice_2.jpg)
    """
    out = output(json_lines, quiet, verbose, csv_rows)
    tuned = load_head(head)
    if directory is not None:
        if name or images:
            raise FaceCliError("--dir", "give either --dir or NAME and photos, not both")
        items = scan_people_dir(directory)
    else:
        if not name or not images:
            raise FaceCliError("enroll", "give a NAME and at least one photo, or --dir FOLDER")
        items = [(name, p) for p in expand(images, folders=False)]
    with open_gallery_at(gallery, model, create=True, embeds=True) as g:
        tuned = head_for(g, tuned)
        eng = engine(out, model_for(model, g, tuned), detector, device, flip, det_size, head=tuned)
        with out.progress(len(items), "enroll") as tick:
            enrolled = eng.enroll(g, items, largest, min_face, on_image=tick)
        where = g.location
    with out.results(render.ENROLLMENTS, f"gallery {where}") as results:
        for r in enrolled:
            if r.error:
                out.error(message(r.error))
            elif r.too_poor:
                out.warn(f"{r.path}: enrolled, but its face is too poor to identify (quality {r.quality:.2f}, under "
                         f"{eng.min_quality():g}): a poor template draws strangers to {r.name}; enroll a clearer photo")
            if out.machine or not quiet:
                results.add(render.enroll_row(r))
    raise typer.Exit(EXIT_ERROR if any(r.error for r in enrolled) else EXIT_OK)


@app.command()
def verify(
    photo: Annotated[str | None, typer.Argument(
        metavar="[PHOTO]", show_default=False,
        help="The photo to check; with --claim also a folder (its images, recursively) or '-' (paths on stdin).")
    ] = None,
    other: Annotated[str | None, typer.Argument(help="A second photo to compare with.",
                                                   show_default=False)] = None,
    claim: Annotated[str | None, typer.Option(help="Compare with this enrolled person instead.",
                                                 show_default=False, autocompletion=completion.people)] = None,
    camera: CameraOpt = None, video: VideoOpt = None, timeout: door.Timeout = 10.0, liveness: door.Liveness = False,
    challenge: door.Challenge = False,
    all_faces: Annotated[bool, typer.Option(
        help="Two photos: compare the closest pair of all their faces, not the largest. --claim: decide on each "
             "face (a row each; the photo is the person's when one of its faces is).")] = False,
    min_face: Annotated[float, typer.Option(
        "--min-face", min=0, metavar="PX",
        help="--claim: a face with a box side under PX pixels cannot be judged (never 'same').")] = MIN_FACE,
    min_quality: Annotated[float | None, typer.Option(
        "--min-quality", min=0.0, max=1.0, metavar="Q", show_default=False,
        help="--claim: a face of quality (0-1) under Q cannot be judged (never 'same') (default: the model's "
             "threshold; 0: judge faces of any quality).")] = None,
    templates: Templates = "mean", tau: Tau = None, force: Force = False, gallery: GalleryOpt = None,
    detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto",
    flip: Flip = None, head: HeadOpt = None, det_size: DetSize = DET_SIZE, json_lines: Json = False,
    csv_rows: Csv = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """1:1 — same person or not? Exit 0 same (every photo, for a folder), 1 not (different, no face, cannot judge),
    2 error.

    Examples:
      [bold]facecli verify a.jpg b.jpg[/]
      [bold]facecli verify door-cam.jpg --claim alice --json[/]
      [bold]facecli verify door-cam/ --claim alice --csv[/]
      [bold]facecli verify --camera 0 --claim "$USER" --liveness --timeout 10 && open-door[/]
    """
    out = output(json_lines, quiet, verbose, csv_rows)
    streamed = camera is not None or video is not None
    if challenge and not liveness:
        raise FaceCliError("--challenge", "is part of the liveness check: add --liveness")
    if streamed:
        if camera is not None and video is not None or photo is not None or claim is None:
            raise FaceCliError("verify", "--camera N or --video FILE|URL (one of them) is verified against "
                                         "--claim NAME, without a photo")
        door.verify_at_door(out, camera if camera is not None else video, claim, timeout, liveness, challenge,
                            gallery, model, detector, device, flip, det_size, load_head(head), tau, force,
                            templates, min_face, min_quality, threading.Event())
    if photo is None:
        raise FaceCliError("verify", "give a photo (or --camera N / --video FILE with --claim NAME)")
    if liveness:
        raise InputError(photo, "a single photo cannot show that a face is live (a print of it would pass): "
                                "use --camera N or --video FILE with --liveness")
    if (other is None) == (claim is None):
        raise FaceCliError("verify", "give a second photo or --claim NAME (exactly one of them)")
    tuned = load_head(head)
    if claim is None:
        for p in (photo, other):
            if p == "-" or Path(p).is_dir():
                raise InputError(p, "a folder or '-' is verified against an enrolled person: use --claim NAME")
        eng = engine(out, model_for(model, head=tuned), detector, device, flip, det_size, head=tuned)
        v = eng.verify(photo, other, tau, all_faces, force)
        with out.results(render.VERIFICATIONS) as results:
            results.add(render.verification_row(v))
        raise typer.Exit(EXIT_OK if v.same else EXIT_NO)
    photos = expand([photo])
    failed = different = False
    with open_gallery_at(gallery, model, embeds=True) as g, \
            out.results(render.VERIFICATIONS, fields=render.CLAIM_FIELDS) as results:
        tuned = head_for(g, tuned)
        eng = engine(out, model_for(model, g, tuned), detector, device, flip, det_size, head=tuned)
        for found in eng.verify_claims(g, photos, claim, tau, all_faces, templates, force, min_face, min_quality):
            if isinstance(found, FaceCliError):  # reported, and the other photos still verified
                out.error(message(found))
                failed = True
                continue
            different |= not any(v.same for v in found)
            for v in found:
                results.add(render.verification_row(v))
    raise typer.Exit(EXIT_ERROR if failed else EXIT_NO if different else EXIT_OK)


@app.command()
def identify(
    images: Images,
    top_k: Annotated[int, typer.Option(min=1, help="List the N nearest people per face.")] = 1,
    search: SearchMode = "auto", min_face: MinFace = MIN_FACE, min_quality: MinQuality = None, min_gap: MinGap = None,
    templates: Templates = "mean", tau: Tau = None, force: Force = False, fpir: Fpir = None, gallery: GalleryOpt = None,
    detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto",
    flip: Flip = None, head: HeadOpt = None, det_size: DetSize = DET_SIZE, annotate: Annotate = None,
    json_lines: Json = False, csv_rows: Csv = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """1:K — who is each face, or "not recognized". Exit 0 someone recognised, 1 nobody, 2 error.

    Examples:
      [bold]facecli identify party.jpg --top-k 3 --annotate out/[/]
      [bold]facecli identify photos/ --csv > who.csv[/]
      [bold]find photos -name '*.jpg' | facecli identify - --json | jq 'select(.name)'[/]
    """
    # numpy and OpenCV: loaded only by the commands that detect or embed
    from facecli.cli.annotate import labelled

    out = output(json_lines, quiet, verbose, csv_rows)
    check_top_k(top_k)  # before anything is sized by it
    tuned = load_head(head)
    paths = expand(images)
    _make_folders(annotate)
    recognised = failed = False
    fields = render.IDENTITIES.fields + _optional(annotated=annotate)
    with open_gallery_at(gallery, model, embeds=True) as g, out.progress(total(paths), "identify") as tick, \
            out.results(render.IDENTITIES, fields=fields, sizes={"candidates": top_k}) as results:
        tuned = head_for(g, tuned)
        eng = engine(out, model_for(model, g, tuned), detector, device, flip, det_size, head=tuned)
        threshold = eng.threshold(g, tau, fpir, force, min_gap=min_gap)
        results.title = render.threshold_title(threshold)
        floor = eng.min_quality(min_quality)
        out.info(f"gallery {g.location}: {render.counted(threshold.gallery_size, 'person')}; tau {threshold.tau:.3f}"
                 + (f" for FPIR {threshold.fpir:g}" if threshold.fpir is not None else " (--tau)")
                 + (f"; faces of quality under {floor:g} are not named" if floor else "")
                 + (f"; a face whose two nearest people are within {threshold.min_gap:g} of each other is ambiguous"
                    if threshold.min_gap else ""))
        found = eng.identify(g, paths, threshold, top_k, search=search, min_face=min_face, templates=templates,
                             log=out.note, min_quality=floor)
        for n, (res, decisions) in enumerate(found):
            tick()
            drawn = _annotate(annotate, n, res, labelled(res.faces, decisions))
            if res.error or not res.faces:
                failed |= _report_unusable(out, res)
                results.add(render.unidentified_row(res, threshold))
                continue
            for face, d in zip(res.faces, decisions):
                recognised |= d.name is not None
                results.add(render.identity_row(res, face, d, top_k, drawn))
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK if recognised else EXIT_NO)


@app.command()
def cluster(
    images: Annotated[list[str], typer.Argument(
        metavar="DIR|IMAGE", help="Folders (searched recursively) and image files; '-' reads image paths from "
                                  "stdin.",
        show_default=False)],
    linkage: Linkage = "average",
    link: Annotated[Path | None, typer.Option(
        "--link", metavar="DIR", show_default=False,
        help="Write DIR/cluster-NNNN/ with a symbolic link per face to its photo.")] = None,
    enroll_as_unknown: Annotated[bool, typer.Option(
        "--enroll-as-unknown", help="Enroll each cluster as a person unknown-N (name them later with "
                                    "`gallery rename`).")] = False,
    min_face: Annotated[float, typer.Option(
        "--min-face", min=0, metavar="PX",
        help="With --enroll-as-unknown, leave out faces with a box side under PX pixels: identify would never "
             "name them.")] = MIN_FACE,
    tau: Tau = None, force: Force = False, gallery: GalleryOpt = None, detector: DetectorOpt = None,
    model: ModelOpt = None, device: Device = "auto", head: HeadOpt = None,
    det_size: DetSize = DET_SIZE, json_lines: Json = False, csv_rows: Csv = False, quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Group the faces of a folder by person, without a gallery. Exit 0, 1 no face at all, 2 error (with
    --enroll-as-unknown: also a face not enrolled).

    Examples:
      [bold]facecli cluster holiday/ --link by-person/[/]
      [bold]facecli cluster holiday/ --enroll-as-unknown && facecli gallery rename unknown-1 alice[/]
    """
    out = output(json_lines, quiet, verbose, csv_rows)
    tuned = load_head(head)
    paths = list(expand(images))
    _make_folders(link)
    # the gallery is opened only to enroll the clusters: clustering itself needs none
    with open_gallery_at(gallery, model, create=True, embeds=True) if enroll_as_unknown else \
            contextlib.nullcontext() as g:
        check_built()
        tuned = head_for(g, tuned)
        eng = engine(out, model_for(model, g, tuned), detector, device, det_size=det_size, head=tuned)
        with out.progress(len(paths), "cluster") as tick:
            results, clustered, threshold = eng.cluster(paths, tau, linkage, on_image=tick, force=force)
        enrolled = eng.enroll_clusters(g, clustered, min_face) if g is not None else [None] * len(clustered)
    failed = False
    for res in results:
        if res.error or not res.faces:
            failed |= _report_unusable(out, res)
    for r in enrolled:
        if r is not None and r.error is not None:
            out.error(message(r.error))
            failed = True
    order = {p: i for i, p in reversed(list(enumerate(paths)))}
    links = link_clusters(link, clustered, order) if link else [None] * len(clustered)
    sizes: dict[int, int] = {}
    for c in clustered:
        sizes[c.cluster] = sizes.get(c.cluster, 0) + 1
    title = (f"{render.counted(len(sizes), 'cluster')} of {render.counted(len(clustered), 'face')} "
             f"(tau {threshold.tau:.3f}, {linkage} linkage)")
    fields = render.CLUSTERS.fields + _optional(link=link, person=enroll_as_unknown, status=enroll_as_unknown,
                                                error=enroll_as_unknown)
    with out.results(render.CLUSTERS, title, fields) as rows:
        for c, symlink, r in zip(clustered, links, enrolled):
            rows.add(render.cluster_row(c, sizes[c.cluster], symlink and str(symlink), r))
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK if clustered else EXIT_NO)


@app.command()
def search(
    images: Images, top_k: Annotated[int, typer.Option(min=1, help="How many templates to list per photo.")] = 10,
    gallery: GalleryOpt = None, detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto",
    head: HeadOpt = None, det_size: DetSize = DET_SIZE, json_lines: Json = False, csv_rows: Csv = False,
    quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """The enrolled templates most similar to each photo's largest face, across all persons, nearest first.

    Examples:
      [bold]facecli search stranger.jpg --top-k 10 --json[/]
      [bold]facecli search unknowns/ --top-k 3 --csv[/]
    """
    out = output(json_lines, quiet, verbose, csv_rows)
    check_top_k(top_k)
    tuned = load_head(head)
    paths = expand(images)
    failed = False
    with open_gallery_at(gallery, model, embeds=True) as g, out.progress(total(paths), "search") as tick, \
            out.results(render.MATCHES, "nearest templates to each photo's largest face") as results:
        tuned = head_for(g, tuned)
        eng = engine(out, model_for(model, g, tuned), detector, device, det_size=det_size, head=tuned)
        for result, matches in eng.search_each(g, paths, top_k):
            tick()
            if isinstance(matches, FaceCliError):  # reported, and the other photos still searched
                out.error(message(matches))
                failed = True
                continue
            for m in matches:
                results.add(render.match_row(result.path, result.faces[0], m))
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK)
