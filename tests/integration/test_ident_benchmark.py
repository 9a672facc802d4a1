"""Issue 10's experiment, over HTTP against the live server: a collection with ``unknowns: true``,
40 LFW people enrolled from 2 photos each, probed with 2 other photos of each and with 80 people
never enrolled. Before the size-aware threshold: 65 of 80 known probes named, 19 of 80 strangers
(24 %) named as someone. Wanted: rank-1 for >= 95 % of the known probes, <= 1 stranger named.

LFW is not shipped with the project: this benchmark runs where ``../shared/facedata`` (beside the
checkout, as CI has it) holds LFW, and is skipped otherwise. The people are drawn with a fixed
seed from those with >= 4 images (known) and with 1 image (strangers), never from a pair list.
"""

from __future__ import annotations

import base64
import csv
import random
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import LiveServer

LFW = Path(__file__).resolve().parents[2].parent / "shared" / "facedata" / "lfw"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (LFW / "people_counts.csv").is_file(), reason=f"no LFW at {LFW}"),
]


def _data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _image(person: str, number: int) -> str:
    path = LFW / "lfw-deepfunneled" / person / f"{person}_{number:04d}.jpg"
    return base64.b64encode(path.read_bytes()).decode("ascii")


def test_40_known_and_80_strangers_in_an_unknowns_collection(live: LiveServer) -> None:
    with (LFW / "people_counts.csv").open() as handle:
        counts = {row["name"]: int(row["num_images"]) for row in csv.DictReader(handle)}
    rng = random.Random(40)
    known = rng.sample(sorted(p for p, n in counts.items() if n >= 4), 40)
    strangers = rng.sample(sorted(p for p, n in counts.items() if n == 1), 80)
    client = live.client("alice")
    collection_id = _data(client.post("/collection", json={"name": "issue 10", "unknowns": True}))[
        "collection_id"
    ]
    enrolled = {}
    for person in known:
        body = {"img0": _image(person, 1), "img1": _image(person, 2), "name": person}
        enrollment_id = _data(client.post("/enroll", json=body))["enrollment_id"]
        enrolled[enrollment_id] = person
        _data(
            client.put(
                "/collection", json={"collection_id": collection_id, "enrollment_id": enrollment_id}
            )
        )
    _data(client.post("/train", json={"collection_id": collection_id}))
    deadline = time.monotonic() + 120
    while True:
        entry = next(c for c in _data(client.get("/collection")) if c["id"] == collection_id)
        if entry["status"] == "ready" and entry["size"] == {"enrollments": 40, "embeddings": 80}:
            break
        assert time.monotonic() < deadline, entry
        time.sleep(0.2)

    def identify(image: str) -> dict[str, Any]:
        answer: dict[str, Any] = _data(
            client.post(
                "/identify", json={"img": image, "collection_id": collection_id, "top_k": 1}
            )
        )
        return answer

    rank1 = named = 0
    for person in known:
        for number in (3, 4):
            answer = identify(_image(person, number))
            rank1 += enrolled[answer["candidates"][0]["key"]] == person
            named += answer["name"] == person
    accepted = [p for p in strangers if identify(_image(p, 1))["name"] is not None]
    print(
        f"\nissue 10 benchmark: threshold {entry['identify_threshold']:.6f} (target FPIR "
        f"{entry['target_fpir']}); rank-1 {rank1}/80 known probes, named correctly {named}/80, "
        f"strangers named {len(accepted)}/80 {accepted}"
    )
    assert rank1 >= 76  # 95 % of 80
    assert len(accepted) <= 1
