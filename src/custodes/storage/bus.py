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
- Messages are acknowledged before ``fetch`` returns them, so a caller that dies before
  handling a batch loses that batch (at-most-once per durable). A ``fetch`` that cannot
  have its acknowledgements confirmed raises instead of returning the batch: the
  messages whose acknowledgement the bus did not get are given again later, the others
  are lost, never given twice.

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
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    Header,
    StorageType,
    StreamConfig,
)

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

# A consumer's max_ack_pending: no cap. The server's default (1,000) would cut every
# fetch to 1,000 messages and make it wait out its timeout for the rest, since a batch
# is acknowledged only when it is complete; one fetch's batch is all that is ever pending.
_UNLIMITED = -1
# Pull answers that end a batch: no messages (404), request expired (408), and those
# that say this request is over for another reason (409: leadership change, too many
# waiting requests, ...); the next fetch asks again, as nats-py does.
_END_OF_BATCH = frozenset({"404", "408", "409"})
_HEARTBEAT = "100"


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


class _Puller:
    """Pull requests for one durable consumer, answered on one inbox (the JetStream pull
    protocol: a request to ``$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>``).

    ``nats-py``'s own ``fetch`` bounds the whole batch by its timeout: a batch that takes
    longer to arrive than the micro-batch's wait (2,000 messages take about 70 ms to
    read) is cut short, its request stays open on the server and holds back the next
    fetch; and it takes each message with a new task and timer. Here a ``no_wait``
    request takes what is there at once, however long it takes to read, and only a
    request for one message waits. Each request has its own reply subject under the
    inbox, so an answer to an earlier request is told apart: its messages are kept
    (they were delivered, and are acknowledged with the rest), its end-of-batch notices
    are ignored.
    """

    def __init__(
        self, client: Client, subject: str, next_subject: str, request_timeout: float
    ) -> None:
        self._nc = client
        self.subject = subject
        self._next = next_subject
        self._inbox = client.new_inbox()
        self._request_timeout = request_timeout
        self._requests = itertools.count(1)
        # Filled by the subscription's callback: taking a message that is already there
        # costs no task and no timer (``Subscription.next_msg`` makes both, per message).
        self._inbound: asyncio.Queue[Msg] = asyncio.Queue()
        self._replies: Subscription | None = None

    async def start(self) -> None:
        async def take(msg: Msg) -> None:
            self._inbound.put_nowait(msg)

        self._replies = await self._nc.subscribe(f"{self._inbox}.*", cb=take)

    async def pull(self, batch: int, *, wait: float | None) -> list[Msg]:
        """Up to ``batch`` messages: those there now (``wait=None``), or, waiting up to
        ``wait`` seconds, the first to come."""
        reply = f"{self._inbox}.{next(self._requests)}"
        request: dict[str, object] = {"batch": batch}
        if wait is None:
            request["no_wait"] = True
        else:
            request["expires"] = int(wait * 1e9)
        await self._nc.publish(self._next, orjson.dumps(request), reply=reply)
        msgs: list[Msg] = []
        # The server ends the batch itself (a full batch, or a 404/408 notice); the
        # timeout only guards against a server that stopped answering.
        async with asyncio.timeout(self._request_timeout + (wait or 0.0)):
            while len(msgs) < batch:
                msg = await self._inbound.get()
                status = msg.headers.get(Header.STATUS) if msg.headers else None
                if not status:
                    msgs.append(msg)
                elif msg.subject != reply or status == _HEARTBEAT:
                    continue  # the end of an earlier request, or a heartbeat
                elif status in _END_OF_BATCH:
                    break
                else:
                    raise js_errors.APIError.from_msg(msg)
        return msgs


class NatsJetStreamBus:
    """An event bus on a NATS JetStream stream with file storage.

    Build it with :meth:`connect`, which creates the stream or updates its subjects.
    ``publish`` waits for JetStream's acknowledgement; ``fetch`` pulls from a durable
    consumer (explicit acks, delivery from the first message kept, no cap on the
    messages awaiting acknowledgement) and acknowledges
    the batch before returning it, in one round trip: every message but the last is
    acknowledged without waiting, the last one with a request whose answer the server
    sends after it has processed the acknowledgements before it (a consumer processes
    the acknowledgements of one connection in order). Use one bus per event loop.
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
        api_prefix: str = "$JS.API",
    ) -> None:
        self._nc = client
        self._js = jetstream
        self.stream = stream
        self._where = where
        self._ack_wait = ack_wait
        self._request_timeout = request_timeout
        self._api_prefix = api_prefix
        self._pullers: dict[str, _Puller] = {}
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
        """Pull up to ``batch`` messages for ``durable``, acknowledged as one batch.

        What the stream holds is returned at once; only when it holds nothing new does
        the fetch wait, up to ``timeout``, for the first message (the server needs a
        positive expiry, so a ``timeout`` under 10 ms waits 10 ms), then takes what
        else has arrived, without waiting again.
        """
        _check_filter_subject(subject)
        _check_durable(durable)
        _check_fetch_limits(batch, timeout)
        self._check_connected()
        puller = await self._puller(subject, durable)
        try:
            msgs = await puller.pull(batch, wait=None)
            if not msgs:
                msgs = await puller.pull(1, wait=max(timeout, 0.01))
                if msgs and batch > 1:
                    msgs += await puller.pull(batch - 1, wait=None)
        except js_errors.APIError as err:
            raise ConfigurationError(
                f"durable {durable!r} on stream {self.stream} at {self._where}: {err.description}"
            ) from err
        except (TimeoutError, nats.errors.Error) as err:
            raise self._unavailable(err) from err
        await self._acknowledge(msgs)
        return [msg.data for msg in msgs]

    async def _acknowledge(self, msgs: list[Msg]) -> None:
        # One confirmed round trip per batch instead of one request per message (about
        # 0.15 s per 1,000 messages): plain acks are written to the socket, and the
        # server's answer to the last message's ack_sync comes after it has handled them.
        # A failure raises, so the caller never handles a batch twice: messages whose ack
        # the server did not get come again after ack_wait, the others are not redelivered.
        if not msgs:
            return
        *first, last = msgs
        try:
            for msg in first:
                await msg.ack()
            await last.ack_sync(timeout=self._request_timeout)
        except (TimeoutError, nats.errors.Error) as err:
            raise self._unavailable(err) from err

    async def _puller(self, subject: str, durable: str) -> _Puller:
        async with self._subscribing:
            known = self._pullers.get(durable)
            if known is not None:
                if known.subject != subject:
                    raise self._rebound(durable, known.subject, subject)
                return known
            try:
                try:
                    info = await self._js.consumer_info(self.stream, durable)
                except js_errors.NotFoundError:
                    await self._js.add_consumer(
                        self.stream,
                        ConsumerConfig(
                            durable_name=durable,
                            filter_subject=subject,
                            ack_policy=AckPolicy.EXPLICIT,
                            deliver_policy=DeliverPolicy.ALL,
                            ack_wait=self._ack_wait,
                            max_ack_pending=_UNLIMITED,
                        ),
                    )
                else:
                    bound = info.config.filter_subject or ">"
                    if bound != subject:
                        raise self._rebound(durable, bound, subject)
                    if info.config.max_ack_pending != _UNLIMITED:
                        # A durable made with the server's default (1,000) or by an
                        # older release: lift the cap, an editable setting.
                        await self._js.add_consumer(
                            self.stream, info.config.evolve(max_ack_pending=_UNLIMITED)
                        )
                puller = _Puller(
                    self._nc,
                    subject,
                    f"{self._api_prefix}.CONSUMER.MSG.NEXT.{self.stream}.{durable}",
                    self._request_timeout,
                )
                await puller.start()
            except js_errors.APIError as err:
                raise ConfigurationError(
                    f"cannot create durable {durable!r} for {subject!r} on stream "
                    f"{self.stream} at {self._where}: {err.description}"
                ) from err
            except (TimeoutError, nats.errors.Error) as err:
                raise self._unavailable(err) from err
            self._pullers[durable] = puller
            return puller

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
