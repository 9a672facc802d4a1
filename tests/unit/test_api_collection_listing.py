"""GET /v1/collection pages each collection's member ids and counts them, on the fake engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from facegate.errors import BadRequest
from facegate.service.collections import DEFAULT_ENROLLMENTS_LIMIT, MAX_ENROLLMENTS_LIMIT
from facegate.service.common import Tenant
from facegate.service.container import Services

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, Tenants

SEED_FIELDS = {"id", "name", "enrollments", "unknown", "created", "updated", "owner"}


def _data(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is (status == 200)
    return body["data"]


def _collection(client: TestClient, headers: dict[str, str], name: str) -> str:
    created = _data(client.post("/v1/collection", json={"name": name}, headers=headers))
    return str(created["collection_id"])


def _members(
    client: TestClient, headers: dict[str, str], faces: Faces, collection_id: str, count: int
) -> list[str]:
    body = {"img0": faces.b64(faces.alice), "collection_id": collection_id}
    return [
        str(_data(client.post("/v1/enroll", json=body, headers=headers))["enrollment_id"])
        for _ in range(count)
    ]


def _listing(client: TestClient, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    listed = _data(client.get(f"/v1/collection{query}", headers=headers))
    return {c["id"]: c for c in listed}


def test_a_small_collection_lists_every_id_and_its_count(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    home = _collection(client, tenants.alice, "home")
    empty = _collection(client, tenants.alice, "empty")
    ids = _members(client, tenants.alice, faces, home, 3)
    listed = _listing(client, tenants.alice)
    assert set(listed[home]) >= SEED_FIELDS
    assert listed[home]["enrollments"] == ids  # oldest membership first, as before
    assert listed[home]["enrollment_count"] == 3
    assert (listed[empty]["enrollments"], listed[empty]["enrollment_count"]) == ([], 0)
    assert DEFAULT_ENROLLMENTS_LIMIT == 1000  # documented in docs/api.md


def test_pages_of_every_collection_neither_repeat_nor_skip(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    big = _collection(client, tenants.alice, "big")
    small = _collection(client, tenants.alice, "small")
    big_ids = _members(client, tenants.alice, faces, big, 5)
    small_ids = _members(client, tenants.alice, faces, small, 2)
    seen: dict[str, list[str]] = {big: [], small: []}
    for offset in (0, 2, 4, 6):
        page = _listing(client, tenants.alice, f"?enrollments_limit=2&enrollments_offset={offset}")
        for collection_id, collection in page.items():
            assert len(collection["enrollments"]) <= 2
            assert collection["enrollment_count"] == {big: 5, small: 2}[collection_id]
            seen[collection_id] += collection["enrollments"]
    assert seen == {big: big_ids, small: small_ids}


def test_limit_zero_answers_only_the_counts(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    home = _collection(client, tenants.alice, "home")
    _members(client, tenants.alice, faces, home, 2)
    listed = _listing(client, tenants.alice, "?enrollments_limit=0")
    assert (listed[home]["enrollments"], listed[home]["enrollment_count"]) == ([], 2)
    assert _listing(client, tenants.bob) == {}  # another key counts nothing of these


def test_one_collection_only_and_404_for_another_keys(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    big = _collection(client, tenants.alice, "big")
    _collection(client, tenants.alice, "other")
    ids = _members(client, tenants.alice, faces, big, 3)
    page = _listing(client, tenants.alice, f"?collection_id={big}&enrollments_limit=2")
    assert list(page) == [big]
    assert (page[big]["enrollments"], page[big]["enrollment_count"]) == (ids[:2], 3)
    refused = client.get(f"/v1/collection?collection_id={big}", headers=tenants.bob)
    assert refused.status_code == 404 and refused.json()["success"] is False
    too_long = client.get(f"/v1/collection?collection_id={'x' * 65}", headers=tenants.alice)
    assert too_long.status_code == 400 and "collection_id" in too_long.json()["message"]


def test_deleting_a_member_changes_the_count(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    home = _collection(client, tenants.alice, "home")
    first, second = _members(client, tenants.alice, faces, home, 2)
    client.request("DELETE", "/v1/enroll", json={"enrollment_id": first}, headers=tenants.alice)
    listed = _listing(client, tenants.alice)
    assert (listed[home]["enrollments"], listed[home]["enrollment_count"]) == ([second], 1)


def test_bad_paging_is_400_in_the_envelope(client: TestClient, tenants: Tenants) -> None:
    for query, fragment in (
        ("enrollments_limit=-1", "enrollments_limit: Input should be greater than or equal to 0"),
        (
            f"enrollments_limit={MAX_ENROLLMENTS_LIMIT + 1}",
            f"enrollments_limit: Input should be less than or equal to {MAX_ENROLLMENTS_LIMIT}",
        ),
        ("enrollments_offset=-1", "enrollments_offset: Input should be greater than or equal"),
        ("enrollments_limit=ten", "enrollments_limit: Input should be a valid integer"),
    ):
        response = client.get(f"/v1/collection?{query}", headers=tenants.alice)
        assert _data(response, 400) is None
        assert fragment in response.json()["message"], response.json()
        assert response.headers["x-facegate-error"] == "bad_request"


def test_service_refuses_out_of_range_pages(services: Services) -> None:
    tenant = Tenant(key_id="nobody", name="nobody")
    for limit, offset in ((-1, 0), (MAX_ENROLLMENTS_LIMIT + 1, 0), (10, -1)):
        with pytest.raises(BadRequest, match=r"^enrollments_(limit|offset): "):
            services.collections.list(tenant, enrollments_limit=limit, enrollments_offset=offset)


def test_openapi_documents_the_parameters_and_the_count(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/v1/collection"]["get"]["parameters"]}
    assert parameters["enrollments_limit"]["schema"]["default"] == DEFAULT_ENROLLMENTS_LIMIT
    assert parameters["enrollments_offset"]["schema"]["default"] == 0
    assert "description" in parameters["enrollments_limit"]
    assert "enrollment_count" in schema["components"]["schemas"]["CollectionOut"]["properties"]
