"""Commands on a photo library: index, find, people, name (``facecli.library``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from facecli.cli import completion, render
from facecli.cli.files import link_found, make_folder, write_face_sample
from facecli.cli.options import (
    EXIT_ERROR,
    EXIT_NO,
    EXIT_OK,
    Csv,
    DetectorOpt,
    DetSize,
    Device,
    Fpir,
    GalleryOpt,
    HeadOpt,
    Json,
    MinFace,
    MinGap,
    ModelOpt,
    Quiet,
    SearchMode,
    Tau,
    Templates,
    Verbose,
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
from facecli.decisions import MIN_FACE
from facecli.detectors import DET_SIZE
from facecli.names import as_stored, person_name

app = typer.Typer()

Paths = Annotated[list[str], typer.Argument(
    metavar="PATH", show_default=False,
    help="Folders (their images, recursively) and image files; '-' reads one path per line from stdin.")]


@app.command("index")
def index_photos(
    paths: Paths,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Forget indexed files under these paths that no longer exist.")] = False,
    gallery: GalleryOpt = None, detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto",
    det_size: DetSize = DET_SIZE, json_lines: Json = False, csv_rows: Csv = False, quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Record every face of every photo in the gallery's photo index, once: a re-run skips what is unchanged
    and recognises moved files by their content. Exit 0, 2 if a file could not be read.

    Examples:
      [bold]facecli index ~/Pictures[/]
      [bold]facecli index ~/Pictures --prune --json | jq 'select(.status == "error")'[/]
    """
    # numpy and OpenCV: loaded only by the commands that detect or embed
    from facecli.library import IndexSummary, index

    out = output(json_lines, quiet, verbose, csv_rows)
    inputs = expand(paths)
    summary = IndexSummary()
    with open_gallery_at(gallery, model, create=True, embeds=True) as g, \
            out.progress(total(inputs), "index") as tick, out.results(render.INDEXED) as results:
        eng = engine(out, model_for(model, g), detector, device, det_size=det_size)
        roots = [p for p in paths if p != "-"]
        for event in index(eng, g, inputs, prune, roots, summary):
            tick()
            if event.error is not None:
                out.error(message(event.error))
            results.add(render.index_row(event))
    c = summary.counts
    out.note(f"{render.counted(c['seen'], 'file')}: {c['new']} new, {c['changed']} changed, {c['redone']} redone, "
             f"{c['moved']} moved, {render.counted(c['copy'], 'copy')}, {c['unchanged']} unchanged, "
             f"{render.counted(c['error'], 'error')}; {render.counted(c['faces'], 'face')} recorded"
             + (f"; {render.counted(c['pruned'], 'file')} forgotten" if prune else ""))
    raise typer.Exit(EXIT_ERROR if c["error"] else EXIT_OK)


@app.command()
def find(
    names: Annotated[list[str], typer.Argument(metavar="NAME", show_default=False, help="Enrolled people.",
                                               autocompletion=completion.people)],
    link: Annotated[Path | None, typer.Option(
        "--link", metavar="DIR", show_default=False,
        help="Also make DIR/NAME/ with a symbolic link to each photo the person is in.")] = None,
    min_face: MinFace = MIN_FACE, min_gap: MinGap = None, templates: Templates = "mean",
    search: SearchMode = "auto", tau: Tau = None, fpir: Fpir = None, gallery: GalleryOpt = None, head: HeadOpt = None,
    json_lines: Json = False,
    csv_rows: Csv = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """The indexed photos each person is in: every face `identify` would name them, answered from the index
    (`facecli index`) without reading a photo. Exit 0 found, 1 none, 2 error.

    Examples:
      [bold]facecli find alice[/]
      [bold]facecli find alice bob --link by-person/[/]
      [bold]facecli find alice --json | jq -r .file[/]
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery import identification
    from facecli.library import find as find_faces

    out = output(json_lines, quiet, verbose, csv_rows)
    tuned = load_head(head)
    if link is not None:
        make_folder(link)
    with open_gallery_at(gallery) as g:
        tuned = head_for(g, tuned)
        threshold = identification.threshold(g, tau, fpir, head=tuned, gap=min_gap)
        found = find_faces(g, names, threshold, tuned, templates, min_face, search, log=out.note)
    rows = [(f, path) for f in found for path in (f.paths or [f.face["sha256"]])]
    links = [None] * len(rows) if link is None else \
        link_found(link, [(f.name, path) for f, path in rows], [as_stored(n) for n in names])
    fields = render.FOUND.fields + (("link",) if link is not None else ())
    with out.results(render.FOUND, render.threshold_title(threshold), fields) as results:
        for (f, path), made in zip(rows, links):
            results.add(render.found_row(f, path, made and str(made)))
    raise typer.Exit(EXIT_OK if found else EXIT_NO)


@app.command()
def people(
    unnamed: Annotated[bool, typer.Option(
        "--unnamed", help="List the clusters of indexed faces nobody is named for, largest first (their numbers "
                          "stay as photos are added: `facecli name NUMBER NAME` names one).")] = False,
    crops: Annotated[Path | None, typer.Option(
        "--crops", metavar="DIR", show_default=False,
        help="With --unnamed: write a picture of each cluster's most typical face to DIR/cluster-N.png.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="With --unnamed: list this many clusters.")] = 20,
    min_size: Annotated[int, typer.Option(
        "--min-size", min=1, help="With --unnamed: only clusters of at least this many faces.")] = 2,
    min_face: MinFace = MIN_FACE, gallery: GalleryOpt = None, head: HeadOpt = None, json_lines: Json = False,
    csv_rows: Csv = False, quiet: Quiet = False,
) -> None:
    """Who is in the indexed photos: each enrolled person with the faces `identify` names them for, or
    (--unnamed) the largest groups of faces nobody has a name for yet.

    Examples:
      [bold]facecli people[/]
      [bold]facecli people --unnamed --crops faces/ && facecli name 3 alice[/]
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli import library
    from facecli.gallery.photos import PhotoIndex

    out = output(json_lines, quiet, csv_rows=csv_rows)
    tuned = load_head(head)
    if crops is not None:
        if not unnamed:
            raise typer.BadParameter("needs --unnamed", param_hint="--crops")
        make_folder(crops)
    with open_gallery_at(gallery, write=unnamed) as g:
        tuned = head_for(g, tuned)
        if not unnamed:
            counts = library.people(g, tuned, min_face)
            with out.results(render.PEOPLE) as results:
                for name, (faces, photos) in counts.items():
                    results.add({"name": name, "faces": faces, "photos": photos})
            raise typer.Exit(EXIT_OK if any(f for f, _ in counts.values()) else EXIT_NO)
        clusters = [c for c in library.cluster_unnamed(g, tuned, min_face=min_face) if len(c.faces) >= min_size]
        shown = clusters[:limit]
        index = PhotoIndex(g)
        samples = index.faces([c.sample for c in shown])
        paths = index.paths({s["photo_id"] for s in samples.values()})
        photos = {c.cluster: len({f["photo_id"] for f in index.faces(c.faces).values()}) for c in shown}
    title = f"{render.counted(len(clusters), 'cluster')} of {min_size} or more unnamed faces" + \
        (f" (the {limit} largest)" if len(clusters) > limit else "")
    fields = render.UNNAMED.fields + (("crop",) if crops is not None else ())
    with out.results(render.UNNAMED, title, fields) as results:
        for c in shown:
            sample = samples[c.sample]
            where = paths.get(sample["photo_id"], [])
            crop = None
            if crops is not None:
                crop = write_face_sample(crops / f"cluster-{c.cluster}.png", [p for p in where if os.path.exists(p)],
                                         sample["box"])
            results.add(render.unnamed_row(c, sample, where, photos[c.cluster], crop and str(crop)))
    raise typer.Exit(EXIT_OK if shown else EXIT_NO)


@app.command()
def name(
    cluster: Annotated[int, typer.Argument(metavar="CLUSTER", show_default=False,
                                           help="An unnamed cluster's number (`facecli people --unnamed`).")],
    person: Annotated[str, typer.Argument(metavar="NAME", show_default=False,
                                          help="Who they are: a new person, or one enrolled already.")],
    min_face: MinFace = MIN_FACE, gallery: GalleryOpt = None, head: HeadOpt = None, json_lines: Json = False,
    csv_rows: Csv = False, quiet: Quiet = False,
) -> None:
    """Enroll the person of an unnamed cluster from up to five of its faces (the most typical, then the most
    varied); `facecli find NAME` then lists their photos. Exit 0, 2 error.

    Example: [bold]facecli people --unnamed && facecli name 3 alice[/]
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.library import name_cluster

    out = output(json_lines, quiet, csv_rows=csv_rows)
    person = person_name(person)
    tuned = load_head(head)
    with open_gallery_at(gallery, write=True) as g:
        tuned = head_for(g, tuned)
        stored = name_cluster(g, cluster, person, tuned, min_face=min_face)
    with out.results(render.ENROLLMENTS) as results:
        for r in stored:
            if r.error is not None:
                out.error(message(r.error))
            results.add(render.enroll_row(r))
    out.note(f"{person}: {render.counted(sum(r.status == 'added' for r in stored), 'template')} from cluster {cluster}")
    failed = any(r.error is not None for r in stored)
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK)


# -- XMP -------------------------------------------------------------------------------------
xmp_app = typer.Typer(help="Hand names to photo apps (digiKam, darktable, Lightroom, Immich) as XMP face "
                           "regions, and take the names they have.", no_args_is_help=True)
app.add_typer(xmp_app, name="xmp")


@xmp_app.command("export")
def xmp_export(
    paths: Paths, min_face: MinFace = MIN_FACE, min_gap: MinGap = None, tau: Tau = None, fpir: Fpir = None,
    gallery: GalleryOpt = None, head: HeadOpt = None, json_lines: Json = False, csv_rows: Csv = False,
    quiet: Quiet = False,
) -> None:
    """Write the named faces of indexed photos as MWG face regions into XMP sidecars (PHOTO.jpg.xmp), keeping
    every other tag; the photos themselves are never written. Exit 0, 2 if a photo could not be tagged.

    Example: [bold]facecli index ~/Pictures && facecli xmp export ~/Pictures[/]
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery import identification
    from facecli.phototags import export_tags

    out = output(json_lines, quiet, csv_rows=csv_rows)
    tuned = load_head(head)
    failed = False
    with open_gallery_at(gallery) as g:
        tuned = head_for(g, tuned)
        threshold = identification.threshold(g, tau, fpir, head=tuned, gap=min_gap)
        with out.results(render.TAGS) as results:
            for tagged in export_tags(g, expand(paths), tuned, threshold, min_face):
                failed |= _report_tagged(out, tagged)
                results.add(render.tagged_row(tagged))
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK)


@xmp_app.command("import")
def xmp_import(
    paths: Paths, gallery: GalleryOpt = None, detector: DetectorOpt = None, model: ModelOpt = None,
    device: Device = "auto", det_size: DetSize = DET_SIZE, json_lines: Json = False, csv_rows: Csv = False,
    quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """Enroll the faces that photo apps named (MWG or Windows face regions, in sidecars or in the photos): a
    library tagged by hand bootstraps the gallery. Exit 0, 2 if a region or photo could not be used.

    Example: [bold]facecli xmp import ~/Pictures/tagged[/]
    """
    # numpy and OpenCV: loaded only by the commands that detect or embed
    from facecli.phototags import import_tags

    out = output(json_lines, quiet, verbose, csv_rows)
    inputs = expand(paths)
    failed = False
    with open_gallery_at(gallery, model, create=True, embeds=True) as g, \
            out.progress(total(inputs), "import") as tick, out.results(render.TAGS) as results:
        eng = engine(out, model_for(model, g), detector, device, det_size=det_size, head=head_for(g, None))
        for tagged in import_tags(eng, g, inputs):
            tick()
            failed |= _report_tagged(out, tagged)
            results.add(render.tagged_row(tagged))
    raise typer.Exit(EXIT_ERROR if failed else EXIT_OK)


def _report_tagged(out, tagged) -> bool:
    """Say on stderr what went wrong with one photo; True when something did."""
    if tagged.error is not None:
        out.error(message(tagged.error))
        return True
    for reason in tagged.missed:
        out.error(f"{tagged.path}: region {reason}")
    for name, other in tagged.report.conflicts if tagged.report else []:
        out.warn(f"{tagged.path}: {name} not written: that face is tagged {other} already")
    return bool(tagged.missed)
