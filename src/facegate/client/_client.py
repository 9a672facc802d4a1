"""``Client`` and ``AsyncClient``: the same methods, one blocking, one awaitable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from facegate import __version__
from facegate.client import _core as core
from facegate.client._errors import APIError, TransportError
from facegate.client._images import ImageInput
from facegate.client._types import (
    Collection,
    Enrollment,
    EnrollmentPage,
    Face,
    Identification,
    Match,
    SpoofCheck,
)

T = TypeVar("T")

_TRAINING_POLL_S = 0.2
# GET /v1/enroll's default page; the server accepts up to 500.
PAGE_SIZE = 50


def _http_options(
    url: str, api_key: str | None, timeout: float, headers: dict[str, str] | None
) -> dict[str, Any]:
    all_headers = {"user-agent": f"facegate-client/{__version__}", "accept": "application/json"}
    if api_key is not None:
        all_headers["x-api-key"] = api_key
    all_headers.update(headers or {})
    return {"base_url": core.base_url(url), "headers": all_headers, "timeout": timeout}


class _Base:
    def __init__(self, url: str, max_retries: int, max_retry_wait: float) -> None:
        self.url = core.base_url(url)
        self.retry = core.RetryPolicy(max_retries=max_retries, max_wait=max_retry_wait)

    def _unreachable(self, exc: httpx.TransportError) -> TransportError:
        return TransportError(f"no answer from {self.url}: {exc or type(exc).__name__}")


class Client(_Base):
    """A blocking client for a facegate server (or any Trueface v1 server).

    ``url`` is the server's root (``/v1`` is added; given with it, it is not doubled),
    ``api_key`` goes in ``x-api-key``. 429 and 503 answers are retried up to ``max_retries``
    times, sleeping at most ``max_retry_wait`` seconds in all and honouring ``Retry-After``.
    ``transport`` is handed to httpx (e.g. ``httpx.MockTransport`` in tests).
    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str = core.DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(url, max_retries, max_retry_wait)
        self._http = httpx.Client(
            **_http_options(url, api_key, timeout, headers), transport=transport
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: core.Call[T], *, retry: bool = True) -> T:
        attempt, waited = 0, 0.0
        while True:
            try:
                response = self._http.request(call.method, call.path, **call.request_kwargs())
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from exc
            try:
                return core.outcome(response, call.parse)
            except APIError as error:
                delay = self.retry.delay(error, attempt, waited) if retry else None
                if delay is None:
                    raise
            time.sleep(delay)
            attempt, waited = attempt + 1, waited + delay

    # Faces ---------------------------------------------------------------------------------

    def detect(self, image: ImageInput, *, landmarks: bool = False) -> list[Face]:
        """Every face in the image, largest first (``landmarks``: also 68 points per face)."""
        return self._send(core.detect(image, landmarks=landmarks))

    def spoof(self, image: ImageInput) -> SpoofCheck:
        """Whether the largest face is real or a presentation attack (NoFaceFound if none)."""
        return self._send(core.spoof(image))

    # Enrollments ---------------------------------------------------------------------------

    def enroll(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        name: str | None = None,
        collection_id: str | None = None,
    ) -> str:
        """Enroll a person from 1 to 10 images (the largest face of each); the enrollment id."""
        return self._send(core.enroll(images, name=name, collection_id=collection_id))

    def add_images(self, enrollment_id: str, images: ImageInput | Sequence[ImageInput]) -> str:
        """Add 1 to 10 images to an enrollment."""
        return self._send(core.add_images(enrollment_id, images))

    def delete_enrollment(self, enrollment_id: str) -> None:
        """Delete an enrollment and its embeddings for good."""
        self._send(core.delete_enrollment(enrollment_id))

    def enrollments(self, *, limit: int = PAGE_SIZE, offset: int = 0) -> EnrollmentPage:
        """One page of this key's enrollments, oldest first (``total`` counts them all)."""
        return self._send(core.list_enrollments(limit=limit, offset=offset))

    def iter_enrollments(self, *, page_size: int = PAGE_SIZE) -> Iterator[Enrollment]:
        """Every enrollment of this key, fetched a page at a time."""
        offset: int | None = 0
        while offset is not None:
            page = self.enrollments(limit=page_size, offset=offset)
            yield from page.enrollments
            offset = page.next_offset

    def enrollment(self, enrollment_id: str) -> Enrollment:
        """One enrollment (NotFound if this key has none with that id)."""
        return self._send(core.get_enrollment(enrollment_id))

    # Collections ---------------------------------------------------------------------------

    def create_collection(self, name: str, *, unknowns: bool = False) -> str:
        """A new collection's id (``unknowns``: stricter unknown rejection)."""
        return self._send(core.create_collection(name, unknowns=unknowns))

    def add_to_collection(self, collection_id: str, enrollment_id: str) -> str:
        """Add an enrollment to a collection; the server retrains it in the background."""
        return self._send(core.add_to_collection(collection_id, enrollment_id))

    def delete_collection(self, collection_id: str) -> None:
        """Delete a collection (its enrollments stay)."""
        self._send(core.delete_collection(collection_id))

    def collections(
        self, *, enrollments_limit: int | None = None, enrollments_offset: int = 0
    ) -> list[Collection]:
        """Every collection of this API key, each with one page of its member ids: at most
        ``enrollments_limit`` (None: the server's default, 1000; 0: none) from
        ``enrollments_offset`` on; ``enrollment_count`` is how many members there are."""
        return self._send(
            core.list_collections(
                enrollments_limit=enrollments_limit, enrollments_offset=enrollments_offset
            )
        )

    def collection(self, collection_id: str) -> Collection:
        """One collection (NotFound if this key has none with that id)."""
        listed = self._send(core.list_collections(collection_id=collection_id))
        return core.find_collection(listed, collection_id)

    def train(self, collection_id: str, *, wait: bool = False, timeout: float = 60.0) -> str:
        """Start training a collection; with ``wait``, return once training has finished."""
        collection_id = self._send(core.train(collection_id))
        if wait:
            self.wait_until_trained(collection_id, timeout=timeout)
        return collection_id

    def wait_until_trained(self, collection_id: str, *, timeout: float = 60.0) -> Collection:
        """Poll until the collection is no longer training (TimeoutError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while (entry := self.collection(collection_id)).status == "training":
            if time.monotonic() >= deadline:
                raise TimeoutError(f"collection {collection_id} still training after {timeout} s")
            time.sleep(_TRAINING_POLL_S)
        return entry

    # Recognition ---------------------------------------------------------------------------

    def match(
        self, image: ImageInput, enrollment_id: str, *, threshold: float | None = None
    ) -> Match:
        """1:1: the largest face against every stored embedding of an enrollment."""
        return self._send(core.match(image, enrollment_id, threshold=threshold))

    def identify(
        self,
        image: ImageInput,
        collection_id: str,
        *,
        top_k: int | None = None,
        all_faces: bool = False,
    ) -> Identification:
        """1:N in a trained collection (``top_k`` candidates; ``all_faces``: every face)."""
        return self._send(core.identify(image, collection_id, top_k=top_k, all_faces=all_faces))

    # Operations ----------------------------------------------------------------------------

    def ready(self) -> bool:
        """Whether the server has its models loaded and its store reachable."""
        try:
            # A readiness probe wants the answer of now, not one after retries.
            return self._send(core.ready(), retry=False)
        except APIError:
            return False


class AsyncClient(_Base):
    """The awaitable twin of :class:`Client`: the same arguments, methods and errors.

    Images are read and encoded before sending, in the calling thread (they are small).
    """

    def __init__(
        self,
        url: str = core.DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        max_retries: int = 3,
        max_retry_wait: float = 30.0,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(url, max_retries, max_retry_wait)
        self._http = httpx.AsyncClient(
            **_http_options(url, api_key, timeout, headers), transport=transport
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: core.Call[T], *, retry: bool = True) -> T:
        attempt, waited = 0, 0.0
        while True:
            try:
                response = await self._http.request(call.method, call.path, **call.request_kwargs())
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from exc
            try:
                return core.outcome(response, call.parse)
            except APIError as error:
                delay = self.retry.delay(error, attempt, waited) if retry else None
                if delay is None:
                    raise
            await asyncio.sleep(delay)
            attempt, waited = attempt + 1, waited + delay

    async def detect(self, image: ImageInput, *, landmarks: bool = False) -> list[Face]:
        return await self._send(core.detect(image, landmarks=landmarks))

    async def spoof(self, image: ImageInput) -> SpoofCheck:
        return await self._send(core.spoof(image))

    async def enroll(
        self,
        images: ImageInput | Sequence[ImageInput],
        *,
        name: str | None = None,
        collection_id: str | None = None,
    ) -> str:
        return await self._send(core.enroll(images, name=name, collection_id=collection_id))

    async def add_images(
        self, enrollment_id: str, images: ImageInput | Sequence[ImageInput]
    ) -> str:
        return await self._send(core.add_images(enrollment_id, images))

    async def delete_enrollment(self, enrollment_id: str) -> None:
        await self._send(core.delete_enrollment(enrollment_id))

    async def enrollments(self, *, limit: int = PAGE_SIZE, offset: int = 0) -> EnrollmentPage:
        return await self._send(core.list_enrollments(limit=limit, offset=offset))

    async def iter_enrollments(self, *, page_size: int = PAGE_SIZE) -> AsyncIterator[Enrollment]:
        offset: int | None = 0
        while offset is not None:
            page = await self.enrollments(limit=page_size, offset=offset)
            for entry in page.enrollments:
                yield entry
            offset = page.next_offset

    async def enrollment(self, enrollment_id: str) -> Enrollment:
        return await self._send(core.get_enrollment(enrollment_id))

    async def create_collection(self, name: str, *, unknowns: bool = False) -> str:
        return await self._send(core.create_collection(name, unknowns=unknowns))

    async def add_to_collection(self, collection_id: str, enrollment_id: str) -> str:
        return await self._send(core.add_to_collection(collection_id, enrollment_id))

    async def delete_collection(self, collection_id: str) -> None:
        await self._send(core.delete_collection(collection_id))

    async def collections(
        self, *, enrollments_limit: int | None = None, enrollments_offset: int = 0
    ) -> list[Collection]:
        return await self._send(
            core.list_collections(
                enrollments_limit=enrollments_limit, enrollments_offset=enrollments_offset
            )
        )

    async def collection(self, collection_id: str) -> Collection:
        listed = await self._send(core.list_collections(collection_id=collection_id))
        return core.find_collection(listed, collection_id)

    async def train(self, collection_id: str, *, wait: bool = False, timeout: float = 60.0) -> str:
        collection_id = await self._send(core.train(collection_id))
        if wait:
            await self.wait_until_trained(collection_id, timeout=timeout)
        return collection_id

    async def wait_until_trained(self, collection_id: str, *, timeout: float = 60.0) -> Collection:
        deadline = time.monotonic() + timeout
        while (entry := await self.collection(collection_id)).status == "training":
            if time.monotonic() >= deadline:
                raise TimeoutError(f"collection {collection_id} still training after {timeout} s")
            await asyncio.sleep(_TRAINING_POLL_S)
        return entry

    async def match(
        self, image: ImageInput, enrollment_id: str, *, threshold: float | None = None
    ) -> Match:
        return await self._send(core.match(image, enrollment_id, threshold=threshold))

    async def identify(
        self,
        image: ImageInput,
        collection_id: str,
        *,
        top_k: int | None = None,
        all_faces: bool = False,
    ) -> Identification:
        return await self._send(
            core.identify(image, collection_id, top_k=top_k, all_faces=all_faces)
        )

    async def ready(self) -> bool:
        try:
            return await self._send(core.ready(), retry=False)
        except APIError:
            return False
