"""Event bus adapters: in-process (embedded default, unit tests) and NATS JetStream.

Both implement :class:`custodes.core.ports.EventBus` with the same meaning:

- ``publish(subject, payload)`` stores a byte message on a concrete dotted subject;
  it returns once the bus holds the message.
- ``fetch(subject, durable, batch, timeout)`` returns up to ``batch`` messages, oldest
  first, that the durable consumer ``durable`` has not been given yet, waiting up to
  ``timeout`` seconds for the first one and returning ``[]`` if none comes. ``subject``
  may hold NATS wildcards: ``*`` matches one token, ``>`` (last token only) one or more.
- A durable consumer is bound to the subject it first fetched with; fetching it with
  another subject is a ``ValueError``. A new durable starts at the oldest message kept.
  Durables are independent of each other: each one sees every message.
- Messages are acknowledged as ``fetch`` returns them, so a caller that dies before
  handling a batch loses that batch (at-most-once per durable).

Events are partitioned by user (see :func:`subject_for_user`) so that per-user state
lives in one scoring worker.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import heapq
import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import nats.errors
import nats.js.errors as js_errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from custodes.core.errors import ConfigurationError, ServiceUnavailableError

__all__ = [
    "HOW_TO_START_NATS",
    "InProcessBus",
    "NatsJetStreamBus",
    "redacted_nats_url",
    "subject_for_user",
    "subject_matches",
]

_log = logging.getLogger(__name__)

HOW_TO_START_NATS = (
    "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server "
    "-- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server"
)

# JetStream stream and consumer names may not hold these (nor whitespace).
_FORBIDDEN_IN_NAMES = frozenset(".*>/\\")


# --------------------------------------------------------------------------- subjects


def _tokens(subject: str, *, what: str) -> list[str]:
    if not isinstance(subject, str) or not subject:
        raise ValueError(f"{what} must be a non-empty string, not {subject!r}")
    if any(ch.isspace() for ch in subject):
        raise ValueError(f"{what} {subject!r} holds whitespace")
    tokens = subject.split(".")
    if "" in tokens:
        raise ValueError(f"{what} {subject!r} has an empty token")
    return tokens


def _check_publish_subject(subject: str) -> None:
    for token in _tokens(subject, what="subject"):
        if "*" in token or ">" in token:
            raise ValueError(f"cannot publish to {subject!r}: wildcards are for fetch only")


def _check_filter_subject(subject: str) -> list[str]:
    tokens = _tokens(subject, what="subject")
    for i, part in enumerate(tokens):
        if part == ">" and i != len(tokens) - 1:
            raise ValueError(f"subject {subject!r}: '>' may only be the last token")
        if part not in ("*", ">") and ("*" in part or ">" in part):
            raise ValueError(f"subject {subject!r}: a wildcard must be a whole token")
    return tokens


def _check_durable(durable: str) -> None:
    if not isinstance(durable, str) or not durable:
        raise ValueError(f"durable must be a non-empty string, not {durable!r}")
    if any(ch in _FORBIDDEN_IN_NAMES or ch.isspace() for ch in durable):
        raise ValueError(f"durable {durable!r} may not hold '.', '*', '>', '/', '\\' or spaces")


def _check_fetch_limits(batch: int, timeout: float) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, not {batch!r}")
    if timeout < 0:
        raise ValueError(f"timeout must be zero or more seconds, not {timeout!r}")


def _matches_tokens(pattern: Sequence[str], tokens: Sequence[str]) -> bool:
    for i, want in enumerate(pattern):
        if want == ">":
            return len(tokens) > i
        if i >= len(tokens) or (want != "*" and want != tokens[i]):
            return False
    return len(tokens) == len(pattern)


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether ``subject`` falls under ``pattern``, with NATS wildcards.

    ``*`` matches exactly one token; ``>`` as the last token matches one or more.

    >>> subject_matches("custodes.events.*", "custodes.events.access")
    True
    >>> subject_matches("custodes.events.*", "custodes.events.access.p07")
    False
    >>> subject_matches("custodes.>", "custodes.events.access.p07")
    True
    >>> subject_matches("custodes.>", "custodes")
    False
    """
    return _matches_tokens(_check_filter_subject(pattern), subject.split("."))


def subject_for_user(prefix: str, user_id: str, partitions: int) -> str:
    """The partition subject under ``prefix`` that carries ``user_id``'s events.

    The partition is the first 8 bytes of SHA-256 over the UTF-8 user id, read as a
    big-endian integer, modulo ``partitions``: stable across processes, machines and
    languages (unlike Python's salted ``hash()``). It is written ``p`` plus at least two
    digits. Changing ``partitions`` moves most users to another partition.

    >>> subject_for_user("custodes.events.access", "u-1001", 16)
    'custodes.events.access.p05'
    >>> subject_for_user("custodes.events.access", "u-1001", 16) == (
    ...     subject_for_user("custodes.events.access", "u-1001", 16))
    True
    >>> subject_for_user("custodes.events.access", "u-1001", 1)
    'custodes.events.access.p00'
    """
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ValueError(f"partitions must be a positive integer, not {partitions!r}")
    _check_publish_subject(prefix)
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    index = int.from_bytes(digest[:8], "big") % partitions
    width = max(2, len(str(partitions - 1)))
    return f"{prefix}.p{index:0{width}d}"


def redacted_nats_url(url: str) -> str:
    """The server address of a NATS URL without user, password, token or path.

    >>> redacted_nats_url("nats://app:s3cret@bus.example:4222")
    'nats://bus.example:4222'
    >>> redacted_nats_url("tls://token@bus.example:4443/ignored?x=1")
    'tls://bus.example:4443'
    >>> redacted_nats_url("127.0.0.1:4222")
    '127.0.0.1:4222'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    netloc = rest.split("/", 1)[0].split("?", 1)[0]
    netloc = netloc.rpartition("@")[2]
    return f"{scheme}://{netloc}" if scheme else netloc


# ----------------------------------------------------------------------- in-process


@dataclass
class _SubjectLog:
    seqs: list[int] = field(default_factory=list)
    payloads: list[bytes] = field(default_factory=list)

    def after(self, seq: int) -> Iterator[tuple[int, bytes]]:
        start = bisect.bisect_right(self.seqs, seq)
        return zip(self.seqs[start:], self.payloads[start:], strict=True)


@dataclass
class _Consumer:
    subject: str
    pattern: list[str]
    delivered: int = 0  # sequence number of the last message handed out


class InProcessBus:
    """An in-memory bus for one process: the embedded default and the unit-test fake.

    Each subject keeps its messages in publish order with a bus-wide sequence number;
    a durable consumer remembers the last sequence it was given, so wildcard consumers
    see messages across subjects in publish order. Every message is kept for the life
    of the bus (like a JetStream stream without limits). Use it from one thread; it
    may be used from successive event loops.

    >>> import asyncio
    >>> bus = InProcessBus()
    >>> async def demo():
    ...     await bus.publish("custodes.events.access.p01", b"a")
    ...     await bus.publish("custodes.events.signin.p01", b"b")
    ...     first = await bus.fetch("custodes.events.>", "scorer", batch=1, timeout=0)
    ...     rest = await bus.fetch("custodes.events.>", "scorer", batch=10, timeout=0)
    ...     again = await bus.fetch("custodes.events.>", "scorer", batch=10, timeout=0)
    ...     return first, rest, again
    >>> asyncio.run(demo())
    ([b'a'], [b'b'], [])
    """

    def __init__(self) -> None:
        self._logs: dict[str, _SubjectLog] = {}
        self._consumers: dict[str, _Consumer] = {}
        self._waiters: set[asyncio.Future[None]] = set()
        self._seq = itertools.count(1)
        self._closed = False

    async def publish(self, subject: str, payload: bytes) -> None:
        """Append ``payload`` to ``subject`` and wake any waiting fetch."""
        self._check_open()
        _check_publish_subject(subject)
        log = self._logs.setdefault(subject, _SubjectLog())
        log.seqs.append(next(self._seq))
        log.payloads.append(bytes(payload))  # a copy: a later change to a bytearray stays out
        self._wake_waiters()

    async def fetch(self, subject: str, durable: str, batch: int, timeout: float) -> list[bytes]:
        """Up to ``batch`` undelivered messages for ``durable``; ``[]`` after ``timeout``."""
        self._check_open()
        _check_fetch_limits(batch, timeout)
        consumer = self._consumer(subject, durable)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            taken = self._take(consumer, batch)
            if taken:
                return taken
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                await asyncio.wait({waiter}, timeout=remaining)
            finally:
                self._waiters.discard(waiter)
            self._check_open()

    async def close(self) -> None:
        """Refuse further use and wake waiting fetches (they raise)."""
        self._closed = True
        self._wake_waiters()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceUnavailableError("the in-process event bus is closed")

    def _wake_waiters(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def _consumer(self, subject: str, durable: str) -> _Consumer:
        pattern = _check_filter_subject(subject)
        _check_durable(durable)
        consumer = self._consumers.get(durable)
        if consumer is None:
            consumer = self._consumers[durable] = _Consumer(subject, pattern)
        elif consumer.subject != subject:
            raise ValueError(
                f"durable {durable!r} is bound to subject {consumer.subject!r}, "
                f"not {subject!r}; use another durable name"
            )
        return consumer

    def _matching_logs(self, consumer: _Consumer) -> Iterable[_SubjectLog]:
        if "*" not in consumer.pattern and ">" not in consumer.pattern:
            log = self._logs.get(consumer.subject)
            return [log] if log is not None else []
        return [
            log
            for subject, log in self._logs.items()
            if _matches_tokens(consumer.pattern, subject.split("."))
        ]

    def _take(self, consumer: _Consumer, batch: int) -> list[bytes]:
        # No await in here: two fetches on one durable never get the same message.
        streams = [log.after(consumer.delivered) for log in self._matching_logs(consumer)]
        taken = list(itertools.islice(heapq.merge(*streams), batch))
        if taken:
            consumer.delivered = taken[-1][0]
        return [payload for _, payload in taken]


# --------------------------------------------------------------------- NATS JetStream


def _describe(err: BaseException | None, wait: float) -> str:
    if err is None or isinstance(err, TimeoutError):
        return f"no answer within {wait:g} s"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return type(err).__name__


@dataclass
class _ConnectionState:
    last_error: BaseException | None = None
    connected: bool = False  # after the first connection; errors are then worth a warning


class NatsJetStreamBus:
    """An event bus on a NATS JetStream stream with file storage.

    Build it with :meth:`connect`, which creates the stream or updates its subjects.
    ``publish`` waits for JetStream's acknowledgement; ``fetch`` pulls from a durable
    consumer (explicit acks, delivery from the first message kept) and acknowledges
    each message before returning it, waiting for the server to confirm the acks.
    Use one bus per event loop.
    """

    def __init__(
        self,
        client: Client,
        jetstream: JetStreamContext,
        stream: str,
        *,
        where: str,
        ack_wait: float,
        request_timeout: float,
    ) -> None:
        self._nc = client
        self._js = jetstream
        self.stream = stream
        self._where = where
        self._ack_wait = ack_wait
        self._request_timeout = request_timeout
        self._subscriptions: dict[str, tuple[str, JetStreamContext.PullSubscription]] = {}
        self._subscribing = asyncio.Lock()

    @classmethod
    async def connect(
        cls,
        url: str,
        stream: str = "CUSTODES",
        subjects: Sequence[str] = ("custodes.>",),
        *,
        connect_timeout: float = 5.0,
        request_timeout: float = 5.0,
        ack_wait: float = 30.0,
        name: str = "custodes",
    ) -> Self:
        """Connect to NATS at ``url`` and create or update ``stream`` over ``subjects``.

        ``connect_timeout`` bounds the whole first connection, retries included; after
        it the client reconnects on its own for as long as the process runs, and
        ``publish``/``fetch`` raise :class:`ServiceUnavailableError` while it is away.
        ``ack_wait`` is how long a consumer created here waits for an acknowledgement
        before delivering a message again.
        """
        if not stream or any(ch in _FORBIDDEN_IN_NAMES or ch.isspace() for ch in stream):
            raise ValueError(f"stream name {stream!r} may not hold '.', '*', '>', '/', '\\'")
        if isinstance(subjects, str) or not subjects:
            raise ValueError("subjects must be a non-empty sequence of subjects")
        for subject in subjects:
            _check_filter_subject(subject)
        where = redacted_nats_url(url)
        client = Client()
        state = _ConnectionState()

        async def on_error(err: Exception) -> None:
            # Logged without the exception text: it may echo a server URL with credentials.
            state.last_error = err
            level = logging.WARNING if state.connected else logging.DEBUG
            _log.log(level, "NATS at %s: %s", where, type(err).__name__)

        try:
            await asyncio.wait_for(
                client.connect(
                    url,
                    name=name,
                    error_cb=on_error,
                    connect_timeout=max(1, round(min(connect_timeout, 2.0))),
                    reconnect_time_wait=1,
                    max_reconnect_attempts=-1,  # a long-running worker outlives a server restart
                ),
                timeout=connect_timeout,
            )
        except (OSError, nats.errors.Error) as err:  # TimeoutError is an OSError
            await client.close()
            last = state.last_error or err
            if isinstance(last, nats.errors.AuthorizationError):
                raise ConfigurationError(
                    f"NATS at {where} refused the credentials; check the user, password or token"
                ) from err
            raise ServiceUnavailableError(
                f"NATS is not reachable at {where} ({_describe(last, connect_timeout)}); "
                f"start it with: {HOW_TO_START_NATS}"
            ) from err
        state.connected = True

        bus = cls(
            client,
            client.jetstream(timeout=request_timeout),
            stream,
            where=where,
            ack_wait=ack_wait,
            request_timeout=request_timeout,
        )
        try:
            await bus._ensure_stream(list(subjects))
        except BaseException:
            await client.close()
            raise
        return bus

    async def _ensure_stream(self, subjects: list[str]) -> None:
        wanted = StreamConfig(name=self.stream, subjects=subjects, storage=StorageType.FILE)
        try:
            try:
                await self._js.add_stream(wanted)  # idempotent when the config is the same
                return
            except js_errors.BadRequestError as err:
                if err.err_code != 10058:  # "stream name already in use"; anything else is fatal
                    raise
            current = (await self._js.stream_info(self.stream)).config
            if current.storage != StorageType.FILE:
                raise ConfigurationError(
                    f"stream {self.stream} on NATS at {self._where} uses "
                    f"{current.storage} storage, not file; delete it or choose another name"
                )
            await self._js.update_stream(current.evolve(subjects=subjects))
        except (js_errors.ServiceUnavailableError, nats.errors.NoRespondersError) as err:
            raise ServiceUnavailableError(
                f"NATS at {self._where} answers but JetStream is off; "
                f"start the server with -js: {HOW_TO_START_NATS}"
            ) from err
        except js_errors.APIError as err:
            raise ConfigurationError(
                f"NATS at {self._where} refused stream {self.stream} over {subjects}: "
                f"{err.description}"
            ) from err
        except (TimeoutError, nats.errors.Error) as err:
            raise self._unavailable(err) from err

    def _unavailable(self, err: BaseException | None = None) -> ServiceUnavailableError:
        if self._nc.is_closed:
            return ServiceUnavailableError(f"the connection to NATS at {self._where} is closed")
        return ServiceUnavailableError(
            f"NATS at {self._where} does not answer "
            f"({_describe(err, self._request_timeout)}); is it running? {HOW_TO_START_NATS}"
        )

    def _check_connected(self) -> None:
        if not self._nc.is_connected:
            raise self._unavailable()

    async def publish(self, subject: str, payload: bytes) -> None:
        """Publish to the stream and wait for JetStream's acknowledgement."""
        _check_publish_subject(subject)
        self._check_connected()
        try:
            await self._js.publish(subject, bytes(payload), stream=self.stream)
        except js_errors.NoStreamResponseError as err:
            raise ConfigurationError(
                f"no JetStream stream on NATS at {self._where} takes subject {subject!r}; "
                f"stream {self.stream} must list it"
            ) from err
        except js_errors.APIError as err:
            raise ConfigurationError(
                f"stream {self.stream} on NATS at {self._where} refused a message on "
                f"{subject!r}: {err.description}"
            ) from err
        except (TimeoutError, nats.errors.Error) as err:
            raise self._unavailable(err) from err

    async def fetch(self, subject: str, durable: str, batch: int, timeout: float) -> list[bytes]:
        """Pull up to ``batch`` messages for ``durable``, acknowledging each one.

        The server needs a positive expiry, so a ``timeout`` under 10 ms waits 10 ms.
        """
        _check_filter_subject(subject)
        _check_durable(durable)
        _check_fetch_limits(batch, timeout)
        self._check_connected()
        subscription = await self._subscription(subject, durable)
        try:
            msgs = await subscription.fetch(batch, timeout=max(timeout, 0.01))
        except TimeoutError:  # nats' own timeouts derive from it
            return []
        except js_errors.APIError as err:
            raise ConfigurationError(
                f"durable {durable!r} on stream {self.stream} at {self._where}: {err.description}"
            ) from err
        except nats.errors.Error as err:
            raise self._unavailable(err) from err
        await self._acknowledge(msgs)
        return [msg.data for msg in msgs]

    async def _acknowledge(self, msgs: list[Msg]) -> None:
        # Concurrent ack_sync: confirmed by the server in about one round trip per batch.
        # Unconfirmed messages come again after ack_wait, so failing here loses nothing.
        try:
            await asyncio.gather(*(msg.ack_sync(timeout=self._request_timeout) for msg in msgs))
        except (TimeoutError, nats.errors.Error) as err:
            raise self._unavailable(err) from err

    async def _subscription(self, subject: str, durable: str) -> JetStreamContext.PullSubscription:
        async with self._subscribing:
            known = self._subscriptions.get(durable)
            if known is not None:
                bound, subscription = known
                if bound != subject:
                    raise self._rebound(durable, bound, subject)
                return subscription
            try:
                try:
                    info = await self._js.consumer_info(self.stream, durable)
                except js_errors.NotFoundError:
                    pass
                else:
                    bound = info.config.filter_subject or ">"
                    if bound != subject:
                        raise self._rebound(durable, bound, subject)
                subscription = await self._js.pull_subscribe(
                    subject,
                    durable=durable,
                    stream=self.stream,
                    config=ConsumerConfig(
                        ack_policy=AckPolicy.EXPLICIT,
                        deliver_policy=DeliverPolicy.ALL,
                        ack_wait=self._ack_wait,
                    ),
                )
            except js_errors.APIError as err:
                raise ConfigurationError(
                    f"cannot create durable {durable!r} for {subject!r} on stream "
                    f"{self.stream} at {self._where}: {err.description}"
                ) from err
            except (TimeoutError, nats.errors.Error) as err:
                raise self._unavailable(err) from err
            self._subscriptions[durable] = (subject, subscription)
            return subscription

    @staticmethod
    def _rebound(durable: str, bound: str, subject: str) -> ValueError:
        return ValueError(
            f"durable {durable!r} is bound to subject {bound!r}, not {subject!r}; "
            "use another durable name"
        )

    async def close(self) -> None:
        """Close the connection. Unacknowledged messages come again after ``ack_wait``."""
        await self._nc.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
