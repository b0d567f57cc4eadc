"""The eval commands: LFW and labelled pairs (1:1), and the open-set protocol (1:N)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli import render
from facecli.cli.options import (
    DetectorOpt,
    Device,
    Flip,
    Force,
    Fpir,
    HeadOpt,
    Json,
    MinGap,
    ModelOpt,
    Quiet,
    Tau,
    Templates,
    Verbose,
    load_head,
    model_for,
    output,
)
from facecli.decisions import identification_threshold
from facecli.errors import FaceCliError
from facecli.paths import lfw_dir

app = typer.Typer()
eval_app = typer.Typer(help="Measure accuracy: LFW 10-fold, your own labelled pairs, or open-set 1:N.",
                       no_args_is_help=True)
app.add_typer(eval_app, name="eval")

Margin = Annotated[float | None, typer.Option(help="Crop margin in pixels (default: the manifest's, 32).",
                                                 show_default=False)]
Far = Annotated[float, typer.Option(help="False accept rate for VAL@FAR.")]
Plot = Annotated[Path | None, typer.Option(help="Write ROC and distance histograms to this PNG (matplotlib).",
                                              show_default=False)]


def _embedder(out, model: str, detector: str | None, device: str, flip: bool | None, margin: float | None,
              images: int, head=None):
    # numpy and OpenCV: loaded only by the commands that detect or embed
    from facecli.evaluation import LabelledEmbedder

    embedder = LabelledEmbedder(model, detector, device, flip, margin, head)
    if out.verbose:  # naming the provider loads the model, which a fully cached run never needs
        through = f", head {head.label}" if head is not None else ""
        out.info(f"{images} images; model {model}{through}, detector {embedder.detector_name}, "
                 f"flip {embedder.setting['flip']}, provider {embedder.provider}")
    return embedder


def _lfw(given: Path | None, name: str, option: str) -> Path:
    """An eval command's data: the option given, else ``name`` in $FACECLI_LFW, else a one-line usage error."""
    if given is not None:
        return given

    root = lfw_dir()
    if root is None:
        raise FaceCliError(option, f"give {option}, or set FACECLI_LFW to the LFW folder (pairs.txt and images/)")
    return root / name


def _named(model: str, head) -> str:
    """How a report's title names what was measured: the model, and the head's file."""
    return model if head is None else f"{model} + head {head.path.name}"


def _run_pairs(pairs, title: str, detector: str | None, model: str | None, device: str, flip: bool | None,
               margin: float | None, far: float, json_lines: bool, quiet: bool, verbose: bool,
               plot: Path | None, head: Path | None, model_in_title: bool = False) -> None:
    # numpy and OpenCV: loaded only by the commands that detect or embed
    from facecli.evaluation import evaluate_pairs

    out = output(json_lines, quiet, verbose)
    tuned = load_head(head)
    model = model_for(model, head=tuned)
    if model_in_title or tuned is not None:
        title = f"{title}, {_named(model, tuned)}"
    images = len(set(pairs.a) | set(pairs.b))
    out.info(f"{len(pairs.a)} pairs, {images} images")
    embedder = _embedder(out, model, detector, device, flip, margin, images, tuned)
    with out.progress(images, "embedding") as tick:
        rep, d = evaluate_pairs(pairs, embedder, far, on_image=tick)
    if rep.pairs < 100:
        out.warn(f"only {rep.pairs} pairs: every figure rests on a handful of pairs and may move by "
                 f"{100 / rep.pairs:.0f} points or more with a few more")
    with out.results(render.PAIR_REPORTS, title) as results:
        results.add(rep.as_dict())
    if plot is not None:
        # numpy and OpenCV: loaded only by the commands that detect or embed
        from facecli.evaluation.plots import plot_pairs

        plot_pairs(d, pairs.same, rep.tau, plot, f"{title}: {rep.accuracy * 100:.2f} %")
        out.info(f"wrote {plot}")


@eval_app.command("lfw")
def eval_lfw(
    pairs: Annotated[Path | None, typer.Option(help="LFW pairs.txt (default: $FACECLI_LFW/pairs.txt).",
                                               show_default=False)] = None,
    images: Annotated[Path | None, typer.Option(
        help="LFW images folder, <Name>/<Name>_NNNN.jpg (default: $FACECLI_LFW/images).", show_default=False)] = None,
    detector: DetectorOpt = None, model: ModelOpt = None,
    device: Device = "auto", flip: Flip = None, head: HeadOpt = None, margin: Margin = None,
    far: Far = 1e-3, plot: Plot = None, json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """LFW verification, 10-fold as FaceNet's validate_on_lfw: accuracy, tau, VAL@FAR, AUC.

    Example: [bold]facecli eval lfw --pairs lfw/pairs.txt --images lfw/images --plot roc.png[/]
    """
    # numpy and OpenCV: loaded only by the commands that detect or embed
    from facecli.evaluation import read_lfw_pairs

    lfw = read_lfw_pairs(_lfw(pairs, "pairs.txt", "--pairs"), _lfw(images, "images", "--images"))
    _run_pairs(lfw, "LFW", detector, model, device, flip, margin,
               far, json_lines, quiet, verbose, plot, head, model_in_title=True)


@eval_app.command("pairs")
def eval_pairs(
    pairs: Annotated[Path, typer.Option(help="Lines 'a.jpg b.jpg 1|0' (1 = same person), paths relative "
                                             "to the file.", show_default=False)],
    detector: DetectorOpt = None, model: ModelOpt = None,
    device: Device = "auto", flip: Flip = None, head: HeadOpt = None, margin: Margin = None,
    far: Far = 1e-3, plot: Plot = None, json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """Calibrate tau on your own labelled pairs (your cameras, your people).

    Example: [bold]facecli eval pairs --pairs my-pairs.txt --json | jq .tau[/]
    """
    # numpy and OpenCV: loaded only by the commands that detect or embed
    from facecli.evaluation import read_labelled_pairs

    _run_pairs(read_labelled_pairs(pairs), str(pairs), detector, model, device, flip, margin, far, json_lines,
               quiet, verbose, plot, head)


@eval_app.command("openset")
def eval_openset(
    images: Annotated[Path | None, typer.Option(
        help="A labelled folder: <person>/<photos> (default: $FACECLI_LFW/images).", show_default=False)] = None,
    enroll: Annotated[int, typer.Option(min=1, help="Photos enrolled per person (the first N by name).")] = 1,
    templates: Templates = "mean",
    gallery_size: Annotated[int | None, typer.Option(
        "--gallery-size", min=1, show_default=False,
        help="Enroll only K people drawn at random (--seed); the strangers stay the same.")] = None,
    seed: Annotated[int, typer.Option(help="Random draw of --gallery-size.")] = 0,
    detector: DetectorOpt = None, model: ModelOpt = None, device: Device = "auto", flip: Flip = None,
    head: HeadOpt = None, margin: Margin = None, tau: Tau = None, force: Force = False, fpir: Fpir = None,
    min_gap: MinGap = None,
    plot: Annotated[Path | None, typer.Option(
        help="Write the FNIR-FPIR trade-off (log axes) to this PNG (matplotlib).", show_default=False)] = None,
    json_lines: Json = False, quiet: Quiet = False, verbose: Verbose = False,
) -> None:
    """Open-set 1:N on a labelled folder: rank-1, FNIR at FPIR 1 % and 0.1 %, and the taus that give them.

    People with more than --enroll photos are enrolled with their first ones and searched with the rest;
    everyone else is a stranger, searched with one photo. FPIR = strangers given a name; FNIR = enrolled
    people's photos not given their own name (NIST FRVT 1:N terms). The "default" row is what identify
    does without --tau: the tau for --fpir (0.01) with this many people enrolled.

    Example: [bold]facecli eval openset --images lfw/images --plot det.png[/]
    """
    # numpy and OpenCV: loaded only by the commands that detect or embed
    from facecli.evaluation import evaluate_openset, read_openset, sub_gallery

    images = _lfw(images, "images", "--images")
    out = output(json_lines, quiet, verbose)
    tuned = load_head(head)
    model = model_for(model, head=tuned)
    openset = read_openset(images, enroll)
    if gallery_size is not None:
        openset = sub_gallery(openset, gallery_size, seed)
    # as identify would: with a head, from the head's impostor quantiles
    threshold = identification_threshold(model, len(openset.enrolled), tau, fpir, force=force, head=tuned, gap=min_gap)
    n_images = len({p for ps in openset.enrolled.values() for p in ps} | {p for p, _ in openset.probes}
                   | set(openset.strangers))
    embedder = _embedder(out, model, detector, device, flip, margin, n_images, tuned)
    with out.progress(n_images, "embedding") as tick:
        rep = evaluate_openset(openset, embedder, threshold, templates, seed if gallery_size is not None else None,
                               on_image=tick)
    with out.results(render.OPENSET_REPORTS, f"open set: {images}, {_named(model, tuned)}") as results:
        results.add(rep.as_dict())
    if plot is not None:
        # numpy and OpenCV: loaded only by the commands that detect or embed
        from facecli.evaluation.plots import plot_openset

        plot_openset(rep, plot, f"{images.name}, {_named(model, tuned)}: {rep.enrolled} enrolled, "
                                f"{rep.strangers} strangers")
        out.info(f"wrote {plot}")
