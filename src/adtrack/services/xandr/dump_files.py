"""Reading a catalogue dump of the original platform's API: the JSON responses its services
returned, as files, a folder of them or a zip.

Each file is one response, ``{"response": {"status": "OK", "imptrackers": [...],
"start_element": 0, "num_elements": 100, "count": 250, "dbg_info": {...}}}``, with the plural
key for a list (``"line-items"``) or the singular one for one object (``"line-item": {...}``).
A service's list may come as several pages (files), in any order; several services may be in
one response. Anything else is refused naming the file: broken JSON, a response that is not
``OK`` (an error saved instead of a page), a response with none of the seven services' keys.

Sizes are bounded (``DumpLimits``): the bytes read in all (a zip's members counted as
unpacked, so a small zip cannot unpack into more) and the objects.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import orjson

from adtrack.domain.errors import ValidationError
from adtrack.domain.json_values import JsonObject
from adtrack.services.xandr.objects import XandrKind

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_OBJECTS",
    "Dump",
    "DumpError",
    "DumpLimits",
    "DumpObject",
    "read_path",
    "read_uploads",
]

DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # ADTRACK_IMPORT_MAX_BYTES
DEFAULT_MAX_OBJECTS = 250_000  # ADTRACK_IMPORT_MAX_OBJECTS

# Keys of a response that are not objects: paging, status, the platform's debugging.
_RESPONSE_KEYS = frozenset(
    {"status", "count", "start_element", "num_elements", "id", "dbg_info", "dbg", "warnings"}
)
_KINDS_BY_KEY: dict[str, tuple[XandrKind, bool]] = {
    **{kind.value: (kind, False) for kind in XandrKind},
    **{kind.plural: (kind, True) for kind in XandrKind},
}
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"


class DumpError(ValidationError):
    """A dump that cannot be read; ``field`` names the file (and where in it)."""


@dataclass(frozen=True)
class DumpLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_objects: int = DEFAULT_MAX_OBJECTS


@dataclass(frozen=True)
class DumpObject:
    """One object of the dump and where it was: ``source`` the file, ``position`` its place in
    the response (``imptrackers[3]``)."""

    kind: XandrKind
    obj: JsonObject
    source: str
    position: str

    @property
    def where(self) -> str:
        return f"{self.source}: {self.position}"


@dataclass
class Dump:
    """Every object of a dump, in the order read, and what the dump says about itself."""

    objects: list[DumpObject] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    # The "count" the responses of each service gave (all of its pages should say the same).
    counts: dict[XandrKind, int] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """What looks incomplete: fewer objects of a service than its responses counted (a
        page missing from the dump)."""
        found: dict[XandrKind, set[object]] = {}
        for item in self.objects:
            found.setdefault(item.kind, set()).add(item.obj.get("id"))
        out = []
        for kind, count in sorted(self.counts.items()):
            have = len(found.get(kind, ()))
            if have < count:
                out.append(
                    f"{kind.value}: the responses count {count} objects but the dump holds "
                    f"{have} (a page missing?)"
                )
        return out


class _Reader:
    def __init__(self, limits: DumpLimits) -> None:
        self.limits = limits
        self.dump = Dump()
        self.bytes = 0

    def take_bytes(self, count: int, source: str) -> None:
        self.bytes += count
        if self.bytes > self.limits.max_bytes:
            raise DumpError(
                source,
                f"the dump is larger than {self.limits.max_bytes} bytes (ADTRACK_IMPORT_MAX_BYTES)",
            )

    def add_file(self, name: str, data: bytes) -> None:
        """A JSON file or a zip of them."""
        if data.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
            self.add_zip(name, data)
        else:
            self.add_json(name, data)

    def add_zip(self, name: str, data: bytes) -> None:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            members = [m for m in archive.infolist() if not m.is_dir()]
        except (zipfile.BadZipFile, ValueError) as exc:
            raise DumpError(name, f"is not a readable zip file ({exc})") from None
        for member in sorted(members, key=lambda m: m.filename):
            inner = f"{name}/{member.filename}"
            if not _is_json_name(member.filename):
                continue  # a README or the like next to the responses
            self.take_bytes(member.file_size, inner)
            try:
                with archive.open(member) as opened:
                    # read at most what the header declared (plus one byte to notice a lie)
                    content = opened.read(member.file_size + 1)
            except (zipfile.BadZipFile, OSError, NotImplementedError, RuntimeError) as exc:
                raise DumpError(inner, f"cannot be unpacked ({exc})") from None
            if len(content) > member.file_size:
                raise DumpError(inner, "unpacks to more than its declared size")
            self.add_json(inner, content)

    def add_json(self, name: str, data: bytes) -> None:
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DumpError(name, f"is not valid JSON ({exc})") from None
        self.dump.files.append(name)
        self.add_response(name, document)

    def add_response(self, name: str, document: object) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("response"), dict):
            raise DumpError(
                name,
                'is not a response of the platform\'s API: expected {"response": {...}}',
            )
        response: JsonObject = document["response"]
        status = response.get("status")
        if "error" in response or "error_id" in response or status != "OK":
            error = response.get("error") or response.get("error_id") or status
            raise DumpError(
                f"{name}: response.status",
                f"is not OK: the file holds an error response ({str(error)[:200]}), not objects",
            )
        found = False
        for key, value in response.items():
            if key in _RESPONSE_KEYS:
                continue
            known = _KINDS_BY_KEY.get(key)
            if known is None:
                raise DumpError(
                    f"{name}: response.{key}",
                    "is not a service this import reads (advertiser, line-item, publisher, "
                    "placement, payment-rule, imptracker, clicktracker, singular or plural)",
                )
            kind, plural = known
            found = True
            if plural:
                if not isinstance(value, list):
                    raise DumpError(f"{name}: response.{key}", "must be a list of objects")
                self.add_objects(name, kind, key, value)
                self.note_count(kind, response.get("count"))
            elif value is not None:
                self.add_objects(name, kind, key, [value], singular=True)
        if not found:
            raise DumpError(
                name,
                "holds no objects of a known service: expected a key such as "
                '"imptrackers" or "line-item" in the response',
            )

    def note_count(self, kind: XandrKind, count: object) -> None:
        if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
            self.dump.counts[kind] = max(count, self.dump.counts.get(kind, 0))

    def add_objects(
        self,
        name: str,
        kind: XandrKind,
        key: str,
        objects: Iterable[object],
        *,
        singular: bool = False,
    ) -> None:
        for index, obj in enumerate(objects):
            position = key if singular else f"{key}[{index}]"
            if not isinstance(obj, dict):
                raise DumpError(f"{name}: {position}", "must be an object")
            if len(self.dump.objects) >= self.limits.max_objects:
                raise DumpError(
                    f"{name}: {position}",
                    f"the dump holds more than {self.limits.max_objects} objects "
                    "(ADTRACK_IMPORT_MAX_OBJECTS)",
                )
            self.dump.objects.append(DumpObject(kind, obj, name, position))


def _is_json_name(name: str) -> bool:
    path = PurePosixPath(name)
    hidden = any(part.startswith((".", "__MACOSX")) for part in path.parts)
    return path.suffix.lower() == ".json" and not hidden


def _files_of(path: Path) -> Iterator[Path]:
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            relative = child.relative_to(path)
            hidden = any(p.startswith(".") for p in relative.parts)
            if child.is_file() and not hidden and child.suffix.lower() in (".json", ".zip"):
                yield child
    else:
        yield path


def read_path(path: Path, limits: DumpLimits | None = None) -> Dump:
    """A dump from a JSON file, a zip, or a folder of them (its ``.json`` and ``.zip`` files,
    subfolders included)."""
    reader = _Reader(limits or DumpLimits())
    if not path.exists():
        raise DumpError(str(path), "does not exist")
    base = path if path.is_dir() else path.parent
    any_file = False
    for file in _files_of(path):
        any_file = True
        name = str(file.relative_to(base))
        try:
            size = file.stat().st_size
        except OSError as exc:
            raise DumpError(name, f"cannot be read ({exc.strerror})") from None
        if file.suffix.lower() != ".zip" or size > reader.limits.max_bytes:
            reader.take_bytes(size, name)  # a zip's members are counted as they are unpacked
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise DumpError(name, f"cannot be read ({exc.strerror})") from None
        reader.add_file(name, data)
    if not any_file:
        raise DumpError(str(path), "holds no .json or .zip files")
    return reader.dump


def read_uploads(files: Iterable[tuple[str, bytes]], limits: DumpLimits | None = None) -> Dump:
    """A dump from uploaded files (name, content): JSON responses or zips of them."""
    reader = _Reader(limits or DumpLimits())
    any_file = False
    for name, data in files:
        any_file = True
        if not data.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
            reader.take_bytes(len(data), name)
        reader.add_file(name, data)
    if not any_file:
        raise DumpError("files", "no file was uploaded")
    return reader.dump
