"""Exporting a conversion pixel's tags: the pixel from the catalogue, its tags
(``domain/conversion_tags.py``) on the deployment's tag host, and what to check before using
them. What ``GET /api/v1/conversion-pixels/{id}/tags``, the console's **Export tags** and
``adtrack export pixel`` all answer (through ``ExportService.pixel_tags``)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import JsonValue

from adtrack.domain.conversion_tags import (
    PLACEHOLDERS,
    ConversionPixelTags,
    PixelTagData,
    render_pixel_tags,
)
from adtrack.domain.model import ConversionPixel, State
from adtrack.domain.tags import local_host_warning
from adtrack.services.catalogue import CatalogueService

__all__ = ["PixelTags", "pixel_tags", "placeholders_json"]


def placeholders_json() -> list[JsonValue]:
    """The placeholders of every pixel's tags, as the API lists them."""
    return [
        {
            "placeholder": p.placeholder,
            "parameter": p.parameter,
            "required": p.required,
            "meaning": p.meaning,
        }
        for p in PLACEHOLDERS
    ]


@dataclass(frozen=True)
class PixelTags:
    """One pixel's tags and the warnings that go with them."""

    pixel: ConversionPixel
    tags: ConversionPixelTags
    warnings: list[str]

    def to_json(self) -> dict[str, JsonValue]:
        """The API's answer."""
        pixel = self.pixel
        tags: dict[str, JsonValue] = dict(self.tags.as_json())
        warnings: list[JsonValue] = list(self.warnings)
        return {
            "conversion_pixel_id": pixel.id,
            "name": pixel.name,
            "code": pixel.code,
            "advertiser_id": pixel.advertiser_id,
            "tags": tags,
            "placeholders": placeholders_json(),
            "warnings": warnings,
        }


def pixel_tags(
    catalogue: CatalogueService, public_url: str, pixel_id: int, *, use_code: bool = False
) -> PixelTags:
    """The tags of live pixel ``pixel_id``; ``NotFound`` (``id``) when it is unknown or deleted.

    ``use_code``: name the pixel by its code (``code=``) instead of its id, where it has one (a
    warning says when it has none).
    """
    pixel = catalogue.conversion_pixels.get(pixel_id)
    tags = render_pixel_tags(
        PixelTagData(pixel.id, pixel.name, pixel.code), public_url, use_code=use_code
    )
    warnings: list[str] = []
    local = local_host_warning(public_url)
    if local is not None:
        warnings.append(local)
    if use_code and not pixel.code:
        warnings.append("the pixel has no code: its tags name it by id=")
    if pixel.state is not State.ACTIVE:
        warnings.append(
            "the pixel is inactive: its conversions are not recorded until it is active"
        )
    return PixelTags(pixel, tags, warnings)
