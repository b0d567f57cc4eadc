"""What the commands share: options (choices built from the library's constants), input expansion,
the engine and gallery they open, and how a library error becomes one line."""

from __future__ import annotations

import atexit
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from facecli.cli import completion
from facecli.cli.output import Output
from facecli.decisions import choose_model
from facecli.detectors import DET_SIZE, DETECTORS
from facecli.errors import (
    BadValue,
    FaceCliError,
    FaceTooSmall,
    HeadMismatch,
    InputError,
    LooseThreshold,
    ModelMismatch,
    SeveralFaces,
)
from facecli.inputs import expand as inputs
from facecli.models import check_built
from facecli.modes import LINKAGES, SEARCH_MODES, TEMPLATE_MODES
from facecli.paths import default_gallery
from facecli.runtime import DEVICES

if TYPE_CHECKING:
    from facecli.gallery import Gallery
    from facecli.heads import LoadedHead

EXIT_OK, EXIT_NO, EXIT_ERROR = 0, 1, 2


def choice(values) -> type:
    """A typer choice of these values: --help lists them, any other value is a usage error (exit 2)."""
    return Literal.__getitem__(tuple(values))  # type: ignore[attr-defined]


Json = Annotated[bool, typer.Option("--json", help="JSON Lines on stdout, one object per row.")]
Csv = Annotated[bool, typer.Option(
    "--csv", help="CSV on stdout: a header, then one row per JSON Lines object, nested fields flattened "
                  "(box_x1 ... box_y2).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only results and errors.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also report models, provider and timings on stderr.")]
Device = Annotated[choice(DEVICES), typer.Option(help="Where the networks run (auto: the GPU when there is one).",
                                                  envvar="FACECLI_DEVICE")]
DetectorOpt = Annotated[choice(DETECTORS) | None, typer.Option(
    "--detector", show_default=False,
    help="mtcnn or yunet (boxes and 5 landmarks), or haar (boxes only, frontal) (default: the model's own).")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", envvar="FACECLI_MODEL", show_default=False, autocompletion=completion.models,
    help="facenet (MTCNN + FaceNet, 512-d), sface (YuNet + SFace, 128-d) or fusion (both, 640-d) "
         "(default: the gallery's model, else fusion). A gallery keeps the model it was built with.")]
Flip = Annotated[bool | None, typer.Option(
    "--flip/--no-flip", show_default=False,
    help="Add the mirror image's embedding, for every model / for none (default: where the manifest "
         "measured it to help: SFace).")]
DetSize = Annotated[int, typer.Option(
    "--det-size", min=0, envvar="FACECLI_DET_SIZE",
    help="Longest side, in pixels, that detection works at; faces under ~3 % of it are missed "
         "(raise for crowd photos; 0 = full size; never more than 2048).")]
Annotate = Annotated[Path | None, typer.Option(
    "--annotate", show_default=False, metavar="DIR",
    help="Also write each image with boxes, landmarks and names drawn on it, as DIR/<n>-<name>.png.")]
# text, not a Path: a Path would turn postgresql://host/db into postgresql:/host/db (gallery_location reads it)
GalleryOpt = Annotated[str | None, typer.Option(
    "--gallery", envvar="FACECLI_GALLERY", show_default=False, metavar="PATH|URL",
    help="Gallery file, or a PostgreSQL database postgresql://user@host:port/dbname "
         "(default: $XDG_DATA_HOME/facecli/gallery.db).")]
Tau = Annotated[float | None, typer.Option(
    help="Decision threshold on squared L2 distance (0-4). Default: for identify and watch, the tau for "
         "--fpir with the gallery's number of people; otherwise the model's 1:1 tau from LFW.",
    show_default=False)]
Templates = Annotated[choice(TEMPLATE_MODES), typer.Option(
    help="A person enrolled with several photos is matched by their mean template (mean) or by the "
         "nearest one (best).")]
SearchMode = Annotated[choice(SEARCH_MODES), typer.Option(
    help="exact (every template), index (HNSW index beside the gallery, built or updated as needed) "
         "or auto (exact up to 100 000 templates).")]
Linkage = Annotated[choice(LINKAGES), typer.Option(
    help="average: clusters join while their mean distance is within tau (robust); "
         "single: connected components of distance <= tau (chains more).")]
Force = Annotated[bool, typer.Option(
    "--force", help="Accept a --tau of 2 or more, where unrelated faces count as the same person.")]
MinFace = Annotated[float, typer.Option(
    "--min-face", min=0, metavar="PX",
    help="Faces with a box side under PX pixels are reported as too small to identify, never named.")]
VideoOpt = Annotated[str | None, typer.Option(
    "--video", metavar="FILE|URL", show_default=False,
    help="A video file, or a stream URL that FFmpeg reads (rtsp://, http://, https://...).")]
#: An enrolled person's name, completed from the gallery.
Person = Annotated[str, typer.Argument(metavar="NAME", show_default=False, autocompletion=completion.people)]
CameraOpt = Annotated[int | None, typer.Option("--camera", metavar="N", show_default=False,
                                               help="A camera by index (0 = the first).")]
MinQuality = Annotated[float | None, typer.Option(
    "--min-quality", min=0.0, max=1.0, metavar="Q", show_default=False,
    help="Faces whose quality (0-1) is under Q are reported as too poor to identify, never named (default: the "
         "model's threshold, chosen on degraded LFW; 0: name faces of any quality).")]
MinGap = Annotated[float | None, typer.Option(
    "--min-gap", min=0.0, max=4.0, metavar="G", show_default=False,
    help="A face whose second-nearest person is less than G farther than its nearest is reported ambiguous, never "
         "named (default: the model's, chosen on LFW; 0: no such rule).")]
Fpir = Annotated[float | None, typer.Option(
    "--fpir", show_default=False,
    help="Share of strangers allowed to be given a name; sets tau for the gallery's size "
         "(default: the gallery's setting, else 0.01). --tau overrides it.")]
HeadOpt = Annotated[Path | None, typer.Option(
    "--head", metavar="FILE", show_default=False,
    help="Match faces through this projection head from `facecli tune` (FILE.sha256 beside it). A gallery set to "
         "use a head (`facecli gallery set --head`) keeps it and uses it without --head, and refuses any other.")]
Images = Annotated[list[str], typer.Argument(
    metavar="IMAGE", show_default=False,
    help="Image files, or folders (their images, recursively, in sorted order); '-' reads one image path "
         "per line from stdin, each processed as it arrives.")]


def expand(args: list[str], folders: bool = True) -> list[str | InputError] | Iterator[str | InputError]:
    """The inputs the arguments name (``facecli.inputs.expand``): a list when they are all known now
    (its length sizes the progress bar), a stream when '-' reads stdin."""
    found = inputs(args, folders)
    return found if "-" in args else list(found)


def total(inputs: list | Iterator) -> int | None:
    """How many inputs there are, when known (not for a stream from stdin)."""
    return len(inputs) if isinstance(inputs, list) else None


def gallery_location(value: str | None):
    """The one place a --gallery value (or a gallery argument) becomes a location: a Path, or a
    ``DatabaseURL`` that prints with its password masked (``facecli.gallery.as_location``)."""
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery.locations import as_location

    return as_location(value) if value is not None else default_gallery()


def output(json_lines: bool = False, quiet: bool = False, verbose: bool = False, csv_rows: bool = False) -> Output:
    """The printing policy of a command; --json and --csv together are a usage error (exit 2)."""
    if json_lines and csv_rows:
        raise typer.BadParameter("cannot be used with --json", param_hint="--csv")
    return Output(json_lines, quiet, verbose, csv_rows)


def engine(out: Output, model: str, detector: str | None = None, device: str = "auto", flip: bool | None = None,
           det_size: int = DET_SIZE, embed: bool = True, head: LoadedHead | None = None):
    """The engine of one command; with --verbose it says what runs where."""
    # numpy and OpenCV: loaded only by the commands that detect or embed
    from facecli.engine import load

    eng = load(model, device, detector, flip, det_size, embed, head)
    if out.verbose:  # naming the provider waits for the model to load: only when asked
        parts = f", embedder {eng.model} ({eng.dim}-d)" if embed else ""
        if head is not None:
            parts += f", head {head.label} ({head.out_dim}-d)"
        out.info(f"detector {eng.pipeline.detector.name}{parts} on {eng.provider}")
        # said when the command ends, however it ends (its result's exit code, an error, Ctrl-C)
        atexit.register(lambda: out.info(eng.pipeline.times.summary()))
    return eng


def load_head(path: Path | None) -> LoadedHead | None:
    """The --head file, checked by its sha256 sidecar (``facecli.heads.load_head``); None without --head."""
    if path is None:
        return None
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.heads import load_head as load

    return load(path)


def head_for(g: Gallery | None, given: LoadedHead | None) -> LoadedHead | None:
    """The head a command matches through against the gallery ``g``: --head when given (a gallery refuses another
    than its own), else the one the gallery keeps, else none (``gallery.settings.head_in_use``)."""
    if g is None:
        return given
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery.settings import head_in_use

    return head_in_use(g, given)


def model_for(model: str | None, gallery: Gallery | None = None, head: LoadedHead | None = None) -> str:
    """--model, else the model of the open gallery in use, else the --head's base model, else the default
    (``decisions.choose_model``)."""
    return choose_model(model, gallery.model if gallery is not None else None, head)


def open_gallery_at(path: str | None, model: str | None = None, create: bool = False, write: bool = False,
                    strict: bool = True, embeds: bool = False) -> Gallery:
    """The gallery in use (--gallery, else FACECLI_GALLERY, else the user's), for ``model`` (None: whatever model
    it was built with), opened once for the whole command; read-only unless ``write``; ``create``: a missing one
    is new, and created by the command's first write. A command that ``embeds`` first checks that the models are
    built: without them nothing else matters."""
    # numpy: loaded by the commands that handle vectors, not by --help or argument errors
    from facecli.gallery import open_gallery

    if embeds:
        check_built()

    return open_gallery(gallery_location(path), model, create=create, write=write, strict=strict)


def message(exc: FaceCliError) -> str:
    """A library error in the CLI's words: values become the options that set them."""
    if isinstance(exc, BadValue):
        hint = "; add --force to use it anyway" if isinstance(exc, LooseThreshold) else ""
        return f"--{exc.setting.replace('_', '-')} {exc.value}: {exc.reason}{hint}"
    if isinstance(exc, SeveralFaces):
        return f"{exc}; use --largest to take the largest"
    if isinstance(exc, FaceTooSmall):
        return f"{exc}; use --min-face 0 to enroll it anyway"
    if isinstance(exc, ModelMismatch):
        return f"{exc}: use --model {exc.built_with} or another --gallery"
    if isinstance(exc, HeadMismatch):
        if exc.kept and exc.given is not None:
            return f"{exc}: drop --head (the gallery uses its own), or change it: facecli gallery set --head FILE"
        if exc.expected is not None:
            return f"{exc}: use --head {shlex.quote(exc.expected)}"
        return f"{exc}: drop --head, or make the gallery use it: facecli gallery set --head {shlex.quote(exc.given)}"
    return str(exc)
