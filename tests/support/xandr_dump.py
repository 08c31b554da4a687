"""Catalogue dumps of the original platform's API, for the import's tests and benchmark.

Objects follow the field lists and examples of the platform's documentation (the Advertiser,
Line Item, Publisher, Placement, Payment Rule, Impression Tracker and Click Tracker services;
see ``tests/services/xandr/documented_objects.py``); responses follow its envelope and paging
(``{"response": {"status": "OK", "<service>s": [...], "start_element", "num_elements",
"count", "dbg_info"}}``, at most 100 objects a page).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

PAGE_SIZE = 100  # the platform's default and maximum num_elements
MEMBER_ID = 958
KINDS = (
    "advertiser",
    "line-item",
    "publisher",
    "placement",
    "payment-rule",
    "imptracker",
    "clicktracker",
)


@dataclass
class XandrCatalogue:
    """Objects by service (the singular name), each as the platform's API shows it."""

    objects: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {kind: [] for kind in KINDS}
    )

    def by_id(self, kind: str, id: int) -> dict[str, Any]:
        return next(o for o in self.objects[kind] if o["id"] == id)

    def total(self) -> int:
        return sum(len(objects) for objects in self.objects.values())


def build_catalogue(
    *,
    advertisers: int = 2,
    line_items_per_advertiser: int = 2,
    publishers: int = 2,
    placements_per_publisher: int = 2,
    trackers_per_placement: int = 2,
    first_id: int = 1000,
) -> XandrCatalogue:
    """A consistent catalogue: advertisers with line items, publishers with placements, a base
    rule and a conditional CPM rule each, and an impression and a click tracker per line item,
    placement and ``trackers_per_placement``."""
    catalogue = XandrCatalogue()
    o = catalogue.objects
    next_id = iter(range(first_id, 10**9))
    stamp = "2026-02-20 10:11:12"
    for a in range(advertisers):
        advertiser_id = next(next_id)
        o["advertiser"].append(
            {
                "id": advertiser_id,
                "code": None,
                "name": f"Advertiser {a}",
                "state": "active",
                "timezone": "EST5EDT",
                "last_modified": stamp,
                "default_currency": "USD",
                "use_insertion_orders": False,
            }
        )
        for n in range(line_items_per_advertiser):
            o["line-item"].append(
                {
                    "id": next(next_id),
                    "code": f"li-{a}-{n}",
                    "name": f"Line Item {a}.{n}",
                    "advertiser_id": advertiser_id,
                    "state": "active",
                    "start_date": "2026-01-01 00:00:00",
                    "end_date": "2026-12-31 23:59:59",
                    "timezone": "EST5EDT",
                    "revenue_type": "cpm" if n % 2 == 0 else "cpc",
                    "revenue_value": "2.50" if n % 2 == 0 else "0.40",
                    "line_item_type": "standard_v1",
                    "last_modified": stamp,
                    "advertiser": {"id": advertiser_id, "name": f"Advertiser {a}"},
                }
            )
    for p in range(publishers):
        publisher_id = next(next_id)
        base_id = next(next_id)
        placements = []
        for n in range(placements_per_publisher):
            placement = {
                "id": next(next_id),
                "name": f"Placement {p}.{n}",
                "code": None,
                "state": "active",
                "publisher_id": publisher_id,
                "site_id": publisher_id + 1_000_000,
                "width": 1,
                "height": 1,
                "last_modified": stamp,
                "publisher_name": f"Publisher {p}",
                "site_name": f"[Publisher {p}] - ROS",
            }
            o["placement"].append(placement)
            placements.append(placement)
        o["publisher"].append(
            {
                "id": publisher_id,
                "code": None,
                "name": f"Publisher {p}",
                "description": "",
                "state": "active",
                "timezone": "EST5EDT",
                "default_site_id": publisher_id + 1_000_000,
                "base_payment_rule_id": base_id,
                "currency": "USD",
                "last_modified": stamp,
                "placements": [{"id": pl["id"], "code": None} for pl in placements],
            }
        )
        o["payment-rule"].append(
            {
                "id": base_id,
                "code": None,
                "name": "Base Payment Rule",
                "description": "",
                "pricing_type": "revshare",
                "cost_cpm": None,
                "revshare": 0.6,
                "state": "active",
                "start_date": None,
                "end_date": None,
                "profile_id": None,
                "timezone": "EST5EDT",
                "priority": 1,
                "last_modified": stamp,
                "buyer_type": "both",
                "demand_filter_action": "default",
                "filtered_advertisers": None,
                "filtered_line_items": None,
                "filtered_campaigns": None,
            }
        )
        o["payment-rule"].append(
            {
                "id": next(next_id),
                "code": f"cpm_rule_{p}",
                "name": f"Publisher {p} - $.40 CPM",
                "description": "",
                "pricing_type": "cpm",
                "cost_cpm": 0.4,
                "revshare": None,
                "state": "active",
                "start_date": "2026-01-01 00:00:00",
                "end_date": None,
                "profile_id": None,
                "timezone": "EST5EDT",
                "priority": 8,
                "last_modified": stamp,
                "buyer_type": "both",
                "demand_filter_action": "include",
                "filtered_advertisers": [
                    {"id": a["id"], "name": a["name"]} for a in o["advertiser"][:1]
                ],
                "filtered_line_items": None,
            }
        )
    publishers_of = {pl["id"]: pl["publisher_id"] for pl in o["placement"]}
    rules_of = {
        pub["id"]: next(
            r for r in o["payment-rule"] if r["code"] == f"cpm_rule_{o['publisher'].index(pub)}"
        )
        for pub in o["publisher"]
    }
    for line_item in o["line-item"]:
        for placement in o["placement"]:
            publisher = catalogue.by_id("publisher", publishers_of[placement["id"]])
            rule = rules_of[publisher["id"]]
            for n in range(trackers_per_placement):
                common = {
                    "member_id": MEMBER_ID,
                    "advertiser_id": line_item["advertiser_id"],
                    "code": None,
                    "state": "active",
                    "last_modified": stamp,
                    "publisher": {"id": publisher["id"], "name": publisher["name"]},
                    "tag": [{"id": placement["id"], "name": placement["name"]}],
                    "payment_rule": {"id": rule["id"], "name": rule["name"]} if n == 0 else None,
                    "line_item": {"id": line_item["id"], "name": line_item["name"]},
                }
                o["imptracker"].append(
                    {
                        "id": next(next_id),
                        "name": f"Imp {line_item['name']} / {placement['name']} #{n}",
                        **common,
                    }
                )
                o["clicktracker"].append(
                    {
                        "id": next(next_id),
                        "name": f"Click {line_item['name']} / {placement['name']} #{n}",
                        "click_url": f"https://shop.example.com/landing?li={line_item['id']}",
                        **common,
                    }
                )
    return catalogue


def plural(kind: str) -> str:
    return kind + "s"


def pages(
    kind: str, objects: list[dict[str, Any]], page_size: int = PAGE_SIZE
) -> Iterator[tuple[str, bytes]]:
    """The responses of ``GET /<kind>?start_element=N`` for every page: (file name, JSON)."""
    for start in range(0, max(len(objects), 1), page_size):
        page = objects[start : start + page_size]
        body = {
            "response": {
                "status": "OK",
                "count": len(objects),
                "start_element": start,
                "num_elements": page_size,
                plural(kind): page,
                "dbg_info": {"instance": "bench.api.adnxs.net", "time": 12.5, "version": "1.0"},
            }
        }
        yield f"{kind}-{start // page_size:05d}.json", orjson.dumps(body)


def dump_files(catalogue: XandrCatalogue, page_size: int = PAGE_SIZE) -> list[tuple[str, bytes]]:
    """Every page of every service, in reverse order of dependencies (the import must not
    care)."""
    files: list[tuple[str, bytes]] = []
    for kind in reversed(KINDS):
        files.extend(pages(kind, catalogue.objects[kind], page_size))
    return files


def write_folder(folder: Path, catalogue: XandrCatalogue, page_size: int = PAGE_SIZE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in dump_files(catalogue, page_size):
        (folder / name).write_bytes(data)
    return folder


def zip_bytes(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            archive.writestr(f"dump/{name}", data)
    return buffer.getvalue()


def singular_response(kind: str, obj: dict[str, Any]) -> bytes:
    """``GET /<kind>?id=N``: one object under the singular key."""
    return orjson.dumps({"response": {"status": "OK", "count": 1, "id": obj["id"], kind: obj}})
