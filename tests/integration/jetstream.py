"""Clean-up on the real NATS JetStream server the integration tests share."""

from __future__ import annotations

import nats
import nats.js.errors


async def delete_stream(url: str, stream: str) -> None:
    """Delete a test's stream, if it is there."""
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=1)
    try:
        await nc.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()
