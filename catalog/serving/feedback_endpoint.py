"""The router's ``POST /v2/feedback``: outcome events for the application it routes, stored before acknowledged.

Body ``{"events": [event, ...]}`` (one event as in ``catalog.feedback.events``), at most
``MAX_BODY_BYTES``. Answers:

- 200 ``{"accepted": n, "duplicates": k}`` once every event is written and fsynced to the outcome
  log (``catalog.feedback.ingest``). ``duplicates``: events whose id this router stored before
  (since it started) or that repeat one earlier in the batch; kept in the log, counted once.
- 400 ``{"error", "problems": [{"index", "field", "message"}]}`` naming every bad event and field
  (an outcome the application does not declare is one): nothing of the batch is written.
- 413 when the body is larger than ``MAX_BODY_BYTES`` (split the batch); nothing written.
- 503 when the events cannot be stored (disk full, or the router has no analytics folder):
  nothing acknowledged, and nothing of the batch left in the log; send the batch again later.

The declared outcomes come from the routing table in force (its ``outcomes``). The write runs in a
worker thread, so inference requests are not held up by the disk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from catalog.errors import EventsInvalid, ModelcatError
from catalog.feedback.events import validate_events
from catalog.feedback.ingest import store_events
from catalog.serving.table import RoutingTable

__all__ = ["MAX_BODY_BYTES", "FeedbackEndpoint"]

log = logging.getLogger("catalog.serving.router")

MAX_BODY_BYTES = 8 << 20
REMEMBERED_IDS = 200_000  # event ids a router remembers to count duplicates (the oldest are forgotten)


class _RecentIds:
    """The last ``capacity`` event ids stored by this router, oldest forgotten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: dict[str, None] = {}

    def repeats(self, ids: Iterable[str]) -> int:
        """How many of ``ids`` were stored before or repeat an earlier one among them."""
        seen: set[str] = set()
        count = 0
        for event_id in ids:
            count += event_id in self._ids or event_id in seen
            seen.add(event_id)
        return count

    def add(self, ids: Iterable[str]) -> None:
        for event_id in ids:
            self._ids.pop(event_id, None)
            self._ids[event_id] = None
        while len(self._ids) > self.capacity:
            del self._ids[next(iter(self._ids))]


def _refused(status: int, message: str, **fields: object) -> Response:
    return JSONResponse({"error": message, **fields}, status_code=status)


async def _body(request: Request) -> bytes | None:
    """The request body, or None when it is over ``MAX_BODY_BYTES`` (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class FeedbackEndpoint:
    """``POST /v2/feedback`` of a router: ``table()`` is the routing table in force, ``analytics``
    the stack's analytics folder (None: the router stores no events and answers 503)."""

    def __init__(self, table: Callable[[], RoutingTable], analytics: Path | None) -> None:
        self._table = table
        self._analytics = analytics
        self._recent = _RecentIds(REMEMBERED_IDS)
        self._lock = threading.Lock()  # one batch at a time: the duplicate count sees each stored batch

    async def handle(self, request: Request) -> Response:
        try:
            data = await _body(request)
        except ClientDisconnect:
            return Response(status_code=499)  # nobody to answer; nothing was stored
        if data is None:
            return _refused(413, f"the body is over {MAX_BODY_BYTES} bytes: send the events in smaller batches")
        # parsing, validating and writing happen in a worker thread: inference requests go on meanwhile
        return await asyncio.to_thread(self._accept, data, self._table())

    def _accept(self, data: bytes, table: RoutingTable) -> Response:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            return _refused(400, f"the body is not valid JSON: {e}")
        if not isinstance(body, dict) or set(body) != {"events"} or not isinstance(body["events"], list):
            return _refused(400, 'the body is {"events": [event, ...]}, and nothing else')
        try:
            events = validate_events(body["events"], table.outcomes, application=table.application, source="events")
        except EventsInvalid as e:
            problems = [{"index": p.loc[0], "field": p.loc[1], "message": p.message} for p in e.problems]
            return _refused(400, str(e), problems=problems)
        if self._analytics is None:
            return _refused(503, "this router stores no outcome events (started without --analytics-dir)")
        ids = [event["event_id"] for event in events]
        with self._lock:
            duplicates = self._recent.repeats(ids)
            try:
                store_events(self._analytics, table.application, events)
            except ModelcatError as e:
                log.error("feedback refused: %s", e)
                return _refused(503, f"{e}: nothing was acknowledged, send the batch again later")
            self._recent.add(ids)
        return JSONResponse({"accepted": len(events), "duplicates": duplicates})
