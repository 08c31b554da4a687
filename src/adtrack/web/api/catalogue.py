"""REST endpoints for the catalogue, under ``/api/v1``.

Eight resources share one shape (see ``services/catalogue_resources.py``): ``POST /{path}``
(201 + the object), ``GET /{path}`` (a page: ``?q=``, ``?state=``, filters such as
``?advertiser_id=``, ``?offset=&limit=``), ``GET|PATCH|DELETE /{path}/{id}`` (DELETE answers
204). Trackers and conversion pixels also have batch writes: ``POST /{path}/batch``
``{"items": [...]}`` (201), ``PATCH /{path}/batch`` ``{"items": [{"id": N, ...}]}`` and
``POST /{path}/batch/deactivate`` ``{"ids": [...]}``: all or nothing, at most
``ADTRACK_BATCH_MAX_ITEMS`` items. Any role may read; writing needs the admin or trafficker
role. The work is done by ``CatalogueService``; this module only converts JSON to its input and
its entities back to JSON (``services/schemas.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import create_model
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from adtrack.domain.errors import ValidationError
from adtrack.domain.validation import ID_MAX
from adtrack.services import schemas
from adtrack.services.catalogue import CatalogueService
from adtrack.services.catalogue_resources import RESOURCES, KindResource
from adtrack.services.json_fields import ApiModel, to_domain
from adtrack.web.api.answers import ErrorOut, PageOut
from adtrack.web.api.deps import get_catalogue, read_access, write_access
from adtrack.web.api.errors import OpenApiResponses
from adtrack.web.api.jsonio import ApiJSONResponse, DecimalJSONRoute
from adtrack.web.state import services

__all__ = ["router"]

Catalogue = Annotated[CatalogueService, Depends(get_catalogue)]
ObjectId = Annotated[int, Path(ge=1, le=ID_MAX, description="The object's id.")]


_ERRORS: OpenApiResponses = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (401, "No valid API token."),
        (403, "The caller's role may not do this."),
        (404, "No such object."),
        (409, "A conflict (duplicate code), or the object is still in use (see blockers)."),
        (422, "Invalid input; `field` names the culprit."),
    )
}


EndpointT = TypeVar("EndpointT", bound=Callable[..., object])


def _with_types(**annotations: object) -> Callable[[EndpointT], EndpointT]:
    """Give FastAPI this resource's own model classes for the named parameters.

    The endpoints below are written once for all resources, with the common base classes in
    their signatures (for type checkers); FastAPI reads ``__annotations__`` when the route is
    registered, so replacing them there makes it validate and document the real models.
    """

    def apply(endpoint: EndpointT) -> EndpointT:
        endpoint.__annotations__.update(annotations)
        return endpoint

    return apply


def add_resource_routes(router: APIRouter, resource: KindResource) -> None:
    """Register the five endpoints of one resource on ``router``."""
    tags: list[str | Enum] = [resource.path]
    collection = f"/{resource.path}"
    # With batch routes, "batch" is a path of its own and not an id (so that other methods on
    # it answer 405 listing its own, not 422 about an id).
    item = f"/{resource.path}/{{id:{'not_batch' if resource.batch else 'str'}}}"

    @router.post(
        collection,
        status_code=201,
        response_model=resource.out_model,
        dependencies=[Depends(write_access)],
        responses=_ERRORS,
        summary=f"Create a {resource.label}",
        tags=tags,
        operation_id=f"create_{resource.path}",
    )
    @_with_types(body=resource.create_model)
    def create(body: ApiModel, catalogue: Catalogue) -> Response:
        entity = resource.objects(catalogue).create(to_domain(body.model_dump(exclude_unset=True)))
        return ApiJSONResponse(resource.to_json(entity), status_code=201)

    @router.get(
        collection,
        response_model=PageOut[resource.out_model],  # type: ignore[name-defined]
        dependencies=[Depends(read_access)],
        responses=_ERRORS,
        summary=f"List {resource.label}s",
        tags=tags,
        operation_id=f"list_{resource.path}",
    )
    @_with_types(params=Annotated[resource.params_model, Query()])
    def list_(params: schemas.ListParams, catalogue: Catalogue) -> Response:
        page = resource.objects(catalogue).list(
            q=params.q,
            state=params.state,
            offset=params.offset,
            limit=params.limit,
            **params.filters(),
        )
        return ApiJSONResponse(
            {
                "items": [resource.to_json(entity) for entity in page.items],
                "total": page.total,
                "offset": page.offset,
                "limit": page.limit,
            }
        )

    if resource.batch is not None:  # before the item routes: "batch" is not an id
        add_batch_routes(router, resource, *resource.batch)

    @router.get(
        item,
        response_model=resource.out_model,
        dependencies=[Depends(read_access)],
        responses=_ERRORS,
        summary=f"Get a {resource.label}",
        tags=tags,
        operation_id=f"get_{resource.path}",
    )
    def get(id: ObjectId, catalogue: Catalogue) -> Response:
        return ApiJSONResponse(resource.to_json(resource.objects(catalogue).get(id)))

    @router.patch(
        item,
        response_model=resource.out_model,
        dependencies=[Depends(write_access)],
        responses=_ERRORS,
        summary=f"Change a {resource.label} (only the fields given)",
        tags=tags,
        operation_id=f"update_{resource.path}",
    )
    @_with_types(body=resource.update_model)
    def update(id: ObjectId, body: ApiModel, catalogue: Catalogue) -> Response:
        changes = to_domain(body.model_dump(exclude_unset=True))
        return ApiJSONResponse(resource.to_json(resource.objects(catalogue).update(id, changes)))

    @router.delete(
        item,
        status_code=204,
        response_class=Response,
        dependencies=[Depends(write_access)],
        responses=_ERRORS,
        summary=f"Delete a {resource.label}",
        tags=tags,
        operation_id=f"delete_{resource.path}",
    )
    def delete(id: ObjectId, catalogue: Catalogue) -> Response:
        resource.objects(catalogue).delete(id)
        return Response(status_code=204)


def _batch_size(request: Request, count: int) -> None:
    limit = services(request).settings.batch_max_items
    if count > limit:
        raise ValidationError(
            "items", f"at most {limit} items per batch (got {count}; ADTRACK_BATCH_MAX_ITEMS)"
        )


def add_batch_routes(
    router: APIRouter,
    resource: KindResource,
    create_model: type[ApiModel],
    update_model: type[ApiModel],
) -> None:
    """Register batch create, batch update and batch deactivate of one resource: all or
    nothing, one transaction; a refusal lists each refused item (``errors``)."""
    tags: list[str | Enum] = [resource.path]
    path = f"/{resource.path}/batch"
    out = _batch_out(resource)

    @router.post(
        path,
        status_code=201,
        response_model=out,
        dependencies=[Depends(write_access)],
        responses=_ERRORS,
        summary=f"Create many {resource.label}s (all or none)",
        tags=tags,
        operation_id=f"create_batch_{resource.path}",
    )
    @_with_types(body=create_model)
    def create_batch(body: ApiModel, request: Request, catalogue: Catalogue) -> Response:
        items = [to_domain(item.model_dump(exclude_unset=True)) for item in _items(body)]
        _batch_size(request, len(items))
        created = resource.objects(catalogue).create_many(items)
        return ApiJSONResponse(
            {"items": [resource.to_json(entity) for entity in created]}, status_code=201
        )

    @router.patch(
        path,
        response_model=out,
        dependencies=[Depends(write_access)],
        responses=_ERRORS,
        summary=f"Change many {resource.label}s (all or none; only the fields given)",
        tags=tags,
        operation_id=f"update_batch_{resource.path}",
    )
    @_with_types(body=update_model)
    def update_batch(body: ApiModel, request: Request, catalogue: Catalogue) -> Response:
        items = [to_domain(item.model_dump(exclude_unset=True)) for item in _items(body)]
        _batch_size(request, len(items))
        updated = resource.objects(catalogue).update_many(items)
        return ApiJSONResponse({"items": [resource.to_json(entity) for entity in updated]})

    @router.post(
        f"{path}/deactivate",
        response_model=out,
        dependencies=[Depends(write_access)],
        responses=_ERRORS,
        summary=f"Set many {resource.label}s inactive (all or none)",
        tags=tags,
        operation_id=f"deactivate_batch_{resource.path}",
    )
    def deactivate_batch(
        body: schemas.BatchDeactivate, request: Request, catalogue: Catalogue
    ) -> Response:
        _batch_size(request, len(body.ids))
        updated = resource.objects(catalogue).deactivate_many(body.ids)
        return ApiJSONResponse({"items": [resource.to_json(entity) for entity in updated]})


def _items(body: ApiModel) -> list[ApiModel]:
    items: list[ApiModel] = getattr(body, "items")  # noqa: B009
    return items


def _batch_out(resource: KindResource) -> type[ApiModel]:
    """``{"items": [<the resource's out model>]}``, documented."""
    name = resource.out_model.__name__.removesuffix("Out")
    return create_model(
        f"{name}BatchOut",
        __base__=ApiModel,
        items=(list[resource.out_model], ...),  # type: ignore[name-defined]
    )


class _NotBatch(Convertor[str]):
    """A path segment other than ``batch`` (FastAPI then validates the id as usual)."""

    regex = "(?!batch$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("not_batch", _NotBatch())


def build_router() -> APIRouter:
    router = APIRouter(route_class=DecimalJSONRoute, default_response_class=ApiJSONResponse)
    for resource in RESOURCES:
        add_resource_routes(router, resource)
    return router


router = build_router()
