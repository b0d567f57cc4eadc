"""What a gallery is set to, and changing it: its FPIR target and the projection head it is used with.

``gallery stats`` and ``gallery set`` show and change these; the rules are
here so that the library and the command line decide alike: the thresholds
that follow from the settings (identify's tau at the gallery's size,
verify's tau), what is refused (a target the model's or the head's
measurements cannot meet), and what is only reported (a recorded head that
cannot be read now; a head whose measurements do not reach this gallery's
size, so identify needs a tau by hand).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facecli.calibration import DEFAULT_FPIR
from facecli.decisions import identification_threshold, verification_threshold
from facecli.errors import FaceCliError, GalleryError
from facecli.gallery.keptheads import kept_head
from facecli.heads import LoadedHead, head_from_bytes, load_head

if TYPE_CHECKING:
    from facecli.gallery.store import Gallery
    from facecli.values import HeadRecord, Threshold


@dataclass(frozen=True)
class GallerySettings:
    """A gallery's settings and the thresholds they give; a problem is kept, not raised, where the settings
    stand all the same."""

    fpir: float  # the target identify aims at (the gallery's, else the default)
    head: HeadRecord | None
    identify: Threshold | None  # None: identify needs a tau by hand here (``identify_problem``) or the head is lost
    verify: Threshold | None  # None: the recorded head cannot be read (``head_problem``)
    head_problem: FaceCliError | None = None
    identify_problem: FaceCliError | None = None
    head_kept: bool = False  # the gallery keeps its head's bytes (else it reads them from the path recorded)

    def as_dict(self) -> dict[str, Any]:
        return {"fpir": self.identify.fpir if self.identify else self.fpir,
                "identify_tau": self.identify.tau if self.identify else None,
                "verify_tau": self.verify.tau if self.verify else None,
                "head": self.head.path if self.head else None,
                "head_sha256": self.head.sha256 if self.head else None,
                "head_kept": self.head_kept if self.head else None}


def recorded_head(gallery: Gallery) -> tuple[LoadedHead | None, FaceCliError | None]:
    """The head the gallery is used with (None: none): the copy it keeps, else (a head set by an older facecli)
    its file where it was found, checked against the sha256 recorded; or why it cannot be read now."""
    record = gallery.head()
    if record is None:
        return None, None
    try:
        data = kept_head(gallery)
        if data is not None:
            return head_from_bytes(data, record.path, record.sha256, gallery.location), None
        return load_head(record.path, expected_sha256=record.sha256), None
    except FaceCliError as exc:
        return None, exc


def head_in_use(gallery: Gallery, given: LoadedHead | None = None) -> LoadedHead | None:
    """The head faces are matched through against ``gallery``: ``given`` when there is one (the gallery refuses
    another than its own: ``identification.check_head``), else the gallery's own (``recorded_head``), else none;
    a head the gallery records but can no longer read is an error that says how to mend it."""
    if given is not None:
        return given
    head, problem = recorded_head(gallery)
    if problem is not None:
        raise GalleryError(gallery.location, f"is used with a head it cannot read now ({problem}): give it "
                                             "(--head FILE), keep it in the gallery (`facecli gallery set --head "
                                             "FILE`) or forget it (`facecli gallery set --no-head`)")
    return head


def settings(gallery: Gallery) -> GallerySettings:
    """What ``gallery`` is set to, and the thresholds identify and verify use with it."""
    head, problem = recorded_head(gallery)
    return _with(gallery, gallery.fpir() or DEFAULT_FPIR, gallery.head(), head, problem, strict=False,
                 kept=head is not None and head.kept_in is not None)


def change(gallery: Gallery, fpir: float | None = None, reset: bool = False, head: LoadedHead | None = None,
           no_head: bool = False) -> GallerySettings:
    """Store a new FPIR target (``reset``: back to the default) and/or use the gallery with ``head`` (``no_head``:
    without one); nobody is enrolled again. A target the measurements cannot meet is refused before anything is
    written; a new head whose measurements do not reach the gallery's size is set all the same (reported)."""
    if fpir is not None and reset or head is not None and no_head \
            or fpir is None and not reset and head is None and not no_head:
        raise FaceCliError("gallery set", "give an FPIR or a reset, and/or a head or no head")
    changing_head = head is not None or no_head
    if head is not None:
        head.check_model(str(gallery.model), gallery.dim)
    using, problem = (head, None) if changing_head else recorded_head(gallery)
    target = DEFAULT_FPIR if reset else fpir if fpir is not None else gallery.fpir() or DEFAULT_FPIR
    record = head.record if head is not None else None if no_head else gallery.head()
    # computed first: it refuses a target the model's (or the head's) measurements cannot meet
    result = _with(gallery, target, record, using, problem, strict=fpir is not None or reset or not changing_head,
                   kept=head is not None or using is not None and using.kept_in is not None)
    if fpir is not None or reset:
        gallery.set_fpir(None if reset else fpir)
    if changing_head:
        gallery.set_head(record)
    return result


def _with(gallery: Gallery, target: float, record: HeadRecord | None, head: LoadedHead | None,
          problem: FaceCliError | None, strict: bool, kept: bool) -> GallerySettings:
    if problem is not None:
        return GallerySettings(target, record, None, None, head_problem=problem)
    model = str(gallery.model)
    verify = verification_threshold(model, head=head)
    try:
        identify = identification_threshold(model, gallery.person_count(), fpir=target, head=head)
    except FaceCliError as exc:  # a head's measurements may not reach this gallery's size
        if strict:
            raise
        return GallerySettings(target, record, None, verify, identify_problem=exc, head_kept=kept)
    return GallerySettings(target, record, identify, verify, head_kept=kept)
