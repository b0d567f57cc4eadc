"""The tune command: a projection head learnt with the triplet loss on your own labelled faces."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facecli.calibration import largest_gallery
from facecli.cli import render
from facecli.cli.options import (
    EXIT_ERROR,
    EXIT_OK,
    DetSize,
    Device,
    ModelOpt,
    Quiet,
    Verbose,
    choice,
    engine,
    message,
    model_for,
    output,
)
from facecli.cli.output import Output
from facecli.decisions import MIN_FACE, calibration
from facecli.detectors import DET_SIZE
from facecli.errors import InputError
from facecli.inputs import scan_people_dir
from facecli.modes import HEADS, LOSSES, MININGS
from facecli.tune.config import DEFAULT_MARGIN, TuneConfig

if TYPE_CHECKING:
    from facecli.tune import EpochStats

app = typer.Typer()
DEFAULTS = TuneConfig()


@app.command()
def tune(
    directory: Annotated[Path, typer.Argument(
        metavar="DIR", show_default=False,
        help="The people to learn from, as enroll --dir reads them: DIR/<name>/*.jpg (or files named after the "
             "person). Some of them are kept apart to validate on.")],
    out_file: Annotated[Path, typer.Option(
        "--out", metavar="FILE", show_default=False,
        help="Where to write the head (ONNX), with FILE.sha256 beside it.")],
    model: ModelOpt = None,
    loss: Annotated[choice(LOSSES), typer.Option(
        help="triplet: max(d(a,p) - d(a,n) + margin, 0) (FaceNet); contrastive: pairs, d(a,p) and "
             "max(margin - d(a,n), 0).")] = DEFAULTS.loss,
    margin: Annotated[float | None, typer.Option(
        min=0.0, show_default=False,
        help=f"The loss's margin, in squared L2 (default: triplet {DEFAULT_MARGIN['triplet']:g} as FaceNet, "
             f"contrastive {DEFAULT_MARGIN['contrastive']:g}).")] = None,
    mining: Annotated[choice(MININGS), typer.Option(
        help="Which negatives of each mini-batch train: semi-hard (the nearest still farther than the positive, "
             "within the margin: FaceNet's), hard (the nearest), all.")] = DEFAULTS.mining,
    head: Annotated[choice(HEADS), typer.Option(
        "--head", help="linear (one matrix) or two-layer (a hidden ReLU layer); both start as the identity, "
                       "then L2-normalise.")] = DEFAULTS.head,
    epochs: Annotated[int, typer.Option(min=0, help="At most this many passes over the training people; stops "
                                                    f"after {DEFAULTS.patience} without a better validation "
                                                    "figure.")] = DEFAULTS.epochs,
    people_per_batch: Annotated[int, typer.Option(
        "--people-per-batch", min=2, metavar="P", help="People in each mini-batch.")] = DEFAULTS.people_per_batch,
    images_per_person: Annotated[int, typer.Option(
        "--images-per-person", min=2, metavar="K",
        help="Photos of each person in a mini-batch (at most).")] = DEFAULTS.images_per_person,
    learning_rate: Annotated[float, typer.Option(
        "--learning-rate", min=0.0, help="Adam's step size.")] = DEFAULTS.learning_rate,
    val_fraction: Annotated[float, typer.Option(
        "--val-fraction", help="Share of the people (never of one person's photos) kept apart to validate on: "
                               "training stops on their FNIR at FPIR 1 %.")] = DEFAULTS.val_fraction,
    seed: Annotated[int, typer.Option(help="The split and the batches: same folder, same seed, same head.")] =
    DEFAULTS.seed,
    plot: Annotated[Path | None, typer.Option(
        metavar="PNG", show_default=False, help="Draw the loss and validation curves (matplotlib).")] = None,
    largest: Annotated[bool, typer.Option(help="Learn from the largest face of a photo with several.")] = False,
    min_face: Annotated[float, typer.Option(
        "--min-face", min=0, metavar="PX", help="Leave out faces with a box side under PX pixels.")] = MIN_FACE,
    device: Device = "auto", det_size: DetSize = DET_SIZE,
    json_lines: Annotated[bool, typer.Option("--json", help="The training report as one JSON object.")] = False,
    quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """Learn a projection head on your own faces (metric learning, the triplet loss) for --head FILE.

    The base model stays frozen: its embeddings of DIR's photos (one face per photo, as enroll takes it)
    train a small head that pulls each person's photos together and pushes different people apart. Exit 0
    head written, 2 error (a photo left out is reported, and the exit code is 2 at the end).

    Examples:
      [bold]facecli tune people/ --out head.onnx --plot curves.png[/]
      [bold]facecli gallery set --head head.onnx && facecli identify door.jpg --head head.onnx[/]
    """
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.heads import load_head
    from facecli.tune import embed_people, export_head, plot_curves, train_head
    from facecli.tune.export import require_onnx

    out = output(json_lines, quiet, verbose)
    config = TuneConfig(head=head, loss=loss, margin=margin, mining=mining, people_per_batch=people_per_batch,
                        images_per_person=images_per_person, epochs=epochs, learning_rate=learning_rate,
                        val_fraction=val_fraction, seed=seed)
    config.check()
    require_onnx()  # before minutes of work, not after
    if plot is not None:
        # numpy and OpenCV: loaded only by the commands that detect or embed
        from facecli.evaluation.plots import pyplot

        pyplot(plot)
    if not out_file.parent.is_dir():
        raise InputError(str(out_file), "its folder does not exist")
    items = scan_people_dir(directory)
    eng = engine(out, model_for(model), device=device, det_size=det_size)
    with out.progress(len(items), "embedding") as tick:
        data, skipped = embed_people(eng, items, largest, min_face, on_image=tick)
    for exc in skipped:
        out.error(message(exc))
    out.info(f"{render.counted(len(data.people), 'photo')} of {render.counted(len(set(data.people)), 'person')} "
             f"embedded with {eng.model}")
    with _training_bar(out, config.epochs) as progress:
        result = train_head(data, config, progress)
    sha256 = export_head(result.head, result.metadata(), out_file)
    if plot is not None:
        plot_curves(result, plot)
        out.info(f"wrote {plot}")
    if result.best_epoch == 0:
        out.warn("no epoch did better than the base model on the validation people: the head written is its "
                 "starting point (the identity when it keeps the size), with its own calibration")
    written = load_head(out_file, sha256)  # what --head will read: the calibration comes from the file
    reach = largest_gallery(calibration(eng.model, written))
    with out.results(render.TUNE_REPORTS, f"wrote {out_file} and {out_file.name}.sha256") as results:
        results.add(render.tune_row(result, str(out_file), sha256, len(skipped), reach))
    raise typer.Exit(EXIT_ERROR if skipped else EXIT_OK)


def _progress_line(s: EpochStats) -> str:
    if s.loss is None:
        return f"validation FNIR {s.val_fnir:.2%} (base)"
    return (f"loss {s.loss:.4f}  active {s.active:.1%}  validation FNIR {s.val_fnir:.2%} "
            f"(best {s.best_val_fnir:.2%}, epoch {s.best_epoch})")


@contextmanager
def _training_bar(out: Output, epochs: int) -> Iterator[Callable[[EpochStats], None]]:
    """A bar on stderr with each epoch's loss, share of active triplets and validation figure (FNIR at FPIR
    1 %), on a terminal only; elsewhere, with --verbose, one line per epoch."""
    if out.quiet or not out.err.is_terminal:
        yield lambda s: out.info(f"epoch {s.epoch}/{s.epochs}: {_progress_line(s)}")
        return
    # rich's progress bars: loaded only when a bar is shown
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
                  TimeElapsedColumn(), console=out.err, transient=True) as bar:
        task = bar.add_task("training", total=epochs, stats="")
        yield lambda s: bar.update(task, completed=s.epoch, stats=_progress_line(s))
