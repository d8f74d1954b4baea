"""The adapters' shared helpers: the encoded JSON response."""

from __future__ import annotations

import asyncio

import pytest
from starlette.responses import Response

from service.api.common import JSONBytesResponse, json_response


@pytest.mark.parametrize("status", [200, 422])
def test_json_bytes_response_sends_what_starlettes_response_sends(status: int) -> None:
    body = b'{"predictions":[[0.25,0.75]]}'

    def sent(response: Response) -> list[dict[str, object]]:
        messages: list[dict[str, object]] = []

        async def send(message: dict[str, object]) -> None:
            messages.append(message)

        async def receive() -> dict[str, object]:
            return {"type": "http.disconnect"}

        scope = {"type": "http", "method": "POST", "headers": []}
        asyncio.run(response(scope, receive, send))  # type: ignore[arg-type]
        return messages

    expected = sent(Response(body, status_code=status, media_type="application/json"))
    assert sent(JSONBytesResponse(body, status)) == expected
    fast = json_response({"predictions": [[0.25, 0.75]]}, status)
    assert isinstance(fast, JSONBytesResponse) and sent(fast) == expected
    assert fast.headers["content-type"] == "application/json"
