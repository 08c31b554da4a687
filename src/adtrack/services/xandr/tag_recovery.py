"""Recovering trackers from exported tag files: the candidates ``tag_files.py`` reads become
trackers under the ids their tags carry, on the line item and publisher (and optional placement
and payment rule) the user picks, so the tags already in the ad servers count in adtrack once
they point at its tracking host.

- an id held by nothing becomes a tracker with that id (``original_id`` = the id too), created
  with the catalogue's bulk create keeping ids: all or nothing, one transaction;
- an id held by a tracker recovered or imported from the same id (same type, ``original_id``
  the same) is left as it is: running the recovery again changes nothing;
- an id held by another tracker (or a deleted one, whose id stays its own) is reported and not
  overwritten; that tracker's tags keep counting for whatever holds the id.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from adtrack.domain.errors import BatchRefused, NotFound, ValidationError
from adtrack.domain.model import Tracker, TrackerType
from adtrack.services.catalogue import CatalogueService
from adtrack.services.ports import TakenTrackerId, TrackerIds
from adtrack.services.xandr.tag_files import TagCandidate, TagNote, scan_tag_files

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_TRACKERS",
    "TagAssignment",
    "TagRecoveryResult",
    "TagRecoveryService",
]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_TRACKERS = 100_000


@dataclass(frozen=True)
class TagAssignment:
    """What the recovered trackers belong to (adtrack ids)."""

    line_item_id: int
    publisher_id: int
    placement_id: int | None = None
    payment_rule_id: int | None = None


@dataclass
class TagRecoveryResult:
    dry_run: bool
    files: list[str]
    to_create: list[TagCandidate] = field(default_factory=list)
    unchanged: list[tuple[TagCandidate, TakenTrackerId]] = field(default_factory=list)
    taken: list[tuple[TagCandidate, TakenTrackerId]] = field(default_factory=list)
    notes: list[TagNote] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        def candidate(c: TagCandidate) -> dict[str, object]:
            return {
                "id": c.id,
                "tracker_type": c.tracker_type.value,
                "name": c.name,
                "named_in_file": c.named,
                "javascript": c.javascript,
                "form": c.form,
                "landing_page_url": c.landing_page_url,
                "file": c.file,
                "line": c.line,
            }

        return {
            "dry_run": self.dry_run,
            "files": self.files,
            "created" if not self.dry_run else "to_create": [candidate(c) for c in self.to_create],
            "unchanged": [
                {**candidate(c), "message": f"tracker {c.id} is already there"}
                for c, _ in self.unchanged
            ],
            "taken": [
                {**candidate(c), "message": taken_message(c, held)} for c, held in self.taken
            ],
            "notes": [
                {"file": n.file, "line": n.line, "id": n.id, "message": n.message}
                for n in self.notes
            ],
        }


def taken_message(candidate: TagCandidate, held: TakenTrackerId) -> str:
    state = "deleted " if held.deleted else ""
    return (
        f"id {candidate.id} is taken by {state}{held.tracker_type.value} tracker "
        f"{held.name!r}: not overwritten (its tags count for that tracker)"
    )


class TagRecoveryService:
    def __init__(
        self,
        catalogue: CatalogueService,
        tracker_ids: TrackerIds,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_trackers: int = DEFAULT_MAX_TRACKERS,
    ) -> None:
        self._catalogue = catalogue
        self._tracker_ids = tracker_ids
        self.max_bytes = max_bytes
        self.max_trackers = max_trackers

    def recover(
        self,
        files: Sequence[tuple[str, bytes]],
        assignment: TagAssignment,
        *,
        dry_run: bool = False,
    ) -> TagRecoveryResult:
        """Read ``files`` (name, bytes) and create the trackers they name under
        ``assignment`` (not in a dry run). Raises ``ValidationError`` / ``NotFound`` naming the
        field: no files, too large, no tracker in them, an unknown line item..."""
        if not files:
            raise ValidationError("file", "choose at least one tag file")
        size = sum(len(data) for _, data in files)
        if size > self.max_bytes:
            raise ValidationError(
                "file", f"is larger than {self.max_bytes} bytes (ADTRACK_TAG_FILE_MAX_BYTES)"
            )
        self._check_assignment(assignment)
        scan = scan_tag_files(files, max_trackers=self.max_trackers)
        if not scan.candidates:
            raise ValidationError(
                "file",
                "holds no tracker tag (imptr?id=..., clktr?id=... or clktrb?id=...)",
            )
        result = TagRecoveryResult(
            dry_run=dry_run, files=[name for name, _ in files], notes=scan.notes
        )
        held = self._tracker_ids.taken([c.id for c in scan.candidates])
        for c in scan.candidates:
            existing = held.get(c.id)
            if existing is None:
                result.to_create.append(c)
            elif (
                existing.tracker_type is c.tracker_type
                and existing.original_id == c.id
                and not existing.deleted
            ):
                result.unchanged.append((c, existing))
            else:
                result.taken.append((c, existing))
        if dry_run or not result.to_create:
            return result
        created = self._create(result.to_create, assignment)
        result.created_ids = [tracker.id for tracker in created]
        for candidate, tracker in zip(result.to_create, created, strict=True):
            if tracker.id != candidate.id:  # taken by another writer since the check above
                result.notes.append(
                    TagNote(
                        candidate.file,
                        candidate.line,
                        candidate.id,
                        f"id {candidate.id} was taken meanwhile: the tracker got id {tracker.id} "
                        "(re-export its tags)",
                    )
                )
        return result

    def _check_assignment(self, assignment: TagAssignment) -> None:
        """Unknown objects are refused before anything is read, naming the field; the
        catalogue's own rules (a placement of another publisher...) are checked by the create
        itself."""
        catalogue = self._catalogue
        kinds: tuple[tuple[str, int | None, Callable[[int], object]], ...] = (
            ("line_item_id", assignment.line_item_id, catalogue.line_items.get),
            ("publisher_id", assignment.publisher_id, catalogue.publishers.get),
            ("placement_id", assignment.placement_id, catalogue.placements.get),
            ("payment_rule_id", assignment.payment_rule_id, catalogue.payment_rules.get),
        )
        for field_name, value, get in kinds:
            if value is None:
                continue
            try:
                get(value)
            except NotFound:
                label = field_name.removesuffix("_id").replace("_", " ")
                raise NotFound(field_name, f"no {label} has the id {value}") from None

    def _create(
        self, candidates: Sequence[TagCandidate], assignment: TagAssignment
    ) -> list[Tracker]:
        items = [
            {
                "id": c.id,
                "tracker_type": c.tracker_type,
                "name": c.name,
                "line_item_id": assignment.line_item_id,
                "publisher_id": assignment.publisher_id,
                "placement_id": assignment.placement_id,
                "payment_rule_id": assignment.payment_rule_id,
                "original_id": c.id,
                **(
                    {"landing_page_url": c.landing_page_url}
                    if c.tracker_type is TrackerType.CLICK and c.landing_page_url
                    else {}
                ),
            }
            for c in candidates
        ]
        try:
            return self._catalogue.trackers.create_many(items, keep_ids=True)
        except BatchRefused as refused:
            first = refused.refusals[0]
            where = candidates[first.item]
            raise ValidationError(
                first.field,
                f"{first.message} ({where.file} line {where.line}, tracker {where.id}; "
                f"{refused.total} refused, nothing was created)",
            ) from None
