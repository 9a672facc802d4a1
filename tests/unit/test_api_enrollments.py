"""GET /v1/enroll (a page of the key's enrollments) and GET /v1/enroll/{id} on the fake engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from facegate.errors import BadRequest
from facegate.service.common import Tenant
from facegate.service.container import Services
from facegate.service.enrollments import MAX_PAGE_SIZE

if TYPE_CHECKING:
    from tests.unit.conftest import Faces, Tenants


def _data(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"data", "message", "success"}
    assert body["success"] is (status == 200)
    return body["data"]


def _enroll(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    enrollment_id: str = _data(client.post("/v1/enroll", json=body, headers=headers))[
        "enrollment_id"
    ]
    return enrollment_id


def test_list_and_show_names_counts_collections_and_recipes(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    alice = tenants.alice
    home = _data(client.post("/v1/collection", json={"name": "home"}, headers=alice))[
        "collection_id"
    ]
    first = _enroll(
        client,
        alice,
        {"name": "Alice", "collection_id": home, "img0": faces.b64(faces.alice)}
        | {"img1": faces.b64(faces.alice)},
    )
    second = _enroll(client, alice, {"img0": faces.b64(faces.bob)})
    client.put(
        "/v1/enroll",
        json={"enrollment_id": second, "img0": faces.b64(faces.bob)},
        headers=alice,
    )
    response = client.get("/v1/enroll", headers=alice)
    assert response.json()["message"] == "enrollments listed successfully"
    page = _data(response)
    assert (page["total"], page["limit"], page["offset"]) == (2, 50, 0)
    listed = {e["id"]: e for e in page["enrollments"]}
    assert [e["id"] for e in page["enrollments"]] == [first, second]  # oldest first
    assert listed[first]["name"] == "Alice" and listed[first]["images"] == 2
    assert listed[first]["collections"] == [home]
    assert listed[first]["recipes"] == [{"recipe": "fake@1/tiles", "tta": "none", "images": 2}]
    assert listed[second]["name"] is None and listed[second]["collections"] == []
    assert listed[second]["images"] == 2 and listed[second]["updated"] > listed[second]["created"]
    shown = client.get(f"/v1/enroll/{first}", headers=alice)
    assert shown.json()["message"] == "enrollment found"
    assert _data(shown) == listed[first]
    # A trailing slash is the same route, as everywhere.
    assert _data(client.get("/v1/enroll/", headers=alice))["total"] == 2


def test_pages_neither_repeat_nor_skip(
    client: TestClient, tenants: Tenants, faces: Faces, services: Services
) -> None:
    ids = [_enroll(client, tenants.alice, {"img0": faces.b64(faces.alice)}) for _ in range(5)]
    seen: list[str] = []
    for offset in (0, 2, 4):
        page = _data(client.get(f"/v1/enroll?limit=2&offset={offset}", headers=tenants.alice))
        assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == offset
        seen += [e["id"] for e in page["enrollments"]]
    assert seen == ids
    past_the_end = _data(client.get("/v1/enroll?offset=10", headers=tenants.alice))
    assert past_the_end["enrollments"] == [] and past_the_end["total"] == 5


def test_tenants_see_only_their_own(client: TestClient, tenants: Tenants, faces: Faces) -> None:
    mine = _enroll(client, tenants.alice, {"img0": faces.b64(faces.alice)})
    assert _data(client.get("/v1/enroll", headers=tenants.bob)) == {
        "enrollments": [],
        "total": 0,
        "limit": 50,
        "offset": 0,
    }
    response = client.get(f"/v1/enroll/{mine}", headers=tenants.bob)
    assert _data(response, 404) is None
    assert response.json()["message"] == f"no enrollment with id '{mine}' for this API key"
    assert response.headers["x-facegate-error"] == "not_found"
    assert client.get(f"/v1/enroll/{mine}").status_code == 401


def test_bad_paging_is_400_in_the_envelope(client: TestClient, tenants: Tenants) -> None:
    for query, fragment in (
        ("limit=0", "limit: Input should be greater than or equal to 1"),
        (
            f"limit={MAX_PAGE_SIZE + 1}",
            f"limit: Input should be less than or equal to {MAX_PAGE_SIZE}",
        ),
        ("offset=-1", "offset: Input should be greater than or equal to 0"),
        ("limit=ten", "limit: Input should be a valid integer"),
    ):
        response = client.get(f"/v1/enroll?{query}", headers=tenants.alice)
        assert _data(response, 400) is None
        assert fragment in response.json()["message"], response.json()
        assert response.headers["x-facegate-error"] == "bad_request"


def test_deleted_enrollment_leaves_the_listing(
    client: TestClient, tenants: Tenants, faces: Faces
) -> None:
    gone = _enroll(client, tenants.alice, {"img0": faces.b64(faces.alice)})
    client.request("DELETE", "/v1/enroll", json={"enrollment_id": gone}, headers=tenants.alice)
    assert _data(client.get("/v1/enroll", headers=tenants.alice))["total"] == 0
    assert client.get(f"/v1/enroll/{gone}", headers=tenants.alice).status_code == 404


def test_service_refuses_out_of_range_pages(services: Services) -> None:
    tenant = Tenant(key_id="nobody", name="nobody")
    for limit, offset in ((0, 0), (MAX_PAGE_SIZE + 1, 0), (10, -1)):
        with pytest.raises(BadRequest, match=r"^(limit|offset): "):
            services.enrollments.page(tenant, limit=limit, offset=offset)
