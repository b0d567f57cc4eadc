"""The ``facecli`` command line: parse arguments, call the library, render what it returns.

One module per command group, each with its own ``typer.Typer`` joined here:
``recognition`` (detect, embed, enroll, verify, identify, cluster, search),
``library`` (index, find, people, name),
``video`` (watch), ``management`` (models, gallery, calibrate),
``evaluation`` (eval) and ``tuning`` (tune). Shared options live in ``options``; rows and their
tables in ``facecli.cli.render``.

Exit codes (all commands): 0 success / positive decision, 1 negative
decision (verify: different people; identify: nobody recognised; detect and
embed: some image had no face), 2 error (bad input, missing model or gallery,
usage). Results go to stdout (a table, or JSON Lines with ``--json``); logs,
warnings and progress go to stderr.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Annotated

import typer

import facecli
from facecli import models
from facecli.cli import evaluation, library, management, recognition, tuning, video
from facecli.cli.options import EXIT_ERROR, message, output
from facecli.errors import FaceCliError
from facecli.paths import models_dir
from facecli.runtime import gpu_runtime_present, onnxruntime

app = typer.Typer(
    name="facecli",
    help="Face verification and identification: FaceNet and SFace on ONNX Runtime.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
for group in (recognition, library, video, management, evaluation, tuning):
    app.add_typer(group.app)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", "-V", help="Print facecli's version and exit.")] = False,
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v",
        help="With --version: also onnxruntime's, OpenCV's and the models' versions and the execution "
             "providers.")] = False,
) -> None:
    """facecli's own options; each command has its --help."""
    if version:
        print_version(verbose)
        raise typer.Exit()
    if ctx.invoked_subcommand is None:  # `facecli -v` alone: nothing to do
        typer.echo(ctx.get_help())
        raise typer.Exit(EXIT_ERROR)


def print_version(verbose: bool = False) -> None:
    """facecli's version on stdout; verbose: what it runs on, for bug reports."""
    print(f"facecli {facecli.__version__}")
    if not verbose:
        return

    # OpenCV: loaded only where pixels are decoded or drawn
    import cv2


    ort = onnxruntime()


    print(f"python {platform.python_version()} ({sys.executable})")
    print(f"onnxruntime {ort.__version__}, providers: {', '.join(ort.get_available_providers())}")
    gpu = "found" if gpu_runtime_present() else "not found: --device auto runs on the CPU"
    print(f"CUDA 13 / cuDNN 9 libraries: {gpu}")
    print(f"opencv {cv2.__version__}")
    print(f"models in {models_dir()}:")
    width = max(map(len, models.manifest()))
    for r, s in zip(models.status(), models.manifest().values()):
        print(f"  {r.name:<{width}} {r.source:<32} sha256 {s.sha256[:12]}  {r.state}")


def main() -> None:
    """Entry point: one line on stderr and exit 2 for every failure, never a traceback.

    Usage errors are typer's (exit 2 with the usage); a FaceCliError is any
    failure the user can act on. Anything else is a bug: it is still one line
    and exit 2, since exit 1 means "not recognized" to a script;
    ``FACECLI_DEBUG=1`` shows its traceback.
    """
    try:
        app()
    except FaceCliError as exc:
        output().error(message(exc))
        sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        if os.environ.get("FACECLI_DEBUG"):
            raise
        reason = (str(exc).strip().splitlines() or [""])[0]
        output().error(f"{_command()}: unexpected {type(exc).__name__}{': ' + reason if reason else ''} "
                       "(a bug: FACECLI_DEBUG=1 shows where)")
        sys.exit(EXIT_ERROR)


def _command() -> str:
    """The command being run, as typed (``identify``, ``gallery list``), to name what failed."""
    words = [a for a in sys.argv[1:] if not a.startswith("-")]
    groups = {name for name, cmd in typer.main.get_command(app).commands.items() if hasattr(cmd, "commands")}
    return " ".join(words[:2] if words and words[0] in groups else words[:1]) or "facecli"
