"""The API's answer shapes shared by every endpoint: a page of a list and an error."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, Field

__all__ = ["BatchErrorItem", "ErrorItem", "ErrorOut", "PageOut"]

T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="How many objects match in all.")
    offset: int
    limit: int


class ErrorItem(BaseModel):
    field: str | None = Field(description="The field at fault, as named in the request.")
    message: str


class BatchErrorItem(BaseModel):
    item: int = Field(description="The refused item's position in the request (from 0).")
    id: int | None = Field(description="Its id, when it has one.")
    field: str = Field(description="The field at fault, as named in the item.")
    message: str


class ErrorOut(BaseModel):
    detail: list[ErrorItem]
    blockers: list[dict[str, object]] | None = Field(
        default=None, description="On a refused delete (409): the objects still using it."
    )
    errors: list[BatchErrorItem] | None = Field(
        default=None,
        description="On a refused batch (422): each refused item (nothing was written).",
    )
    refused: int | None = Field(
        default=None, description="On a refused batch: how many items were refused in all."
    )
