"""The composition root: read settings once, build the adapters, wire the services.

Nothing else in Custodes reads the environment. The CLI (and later the API) ask this
module for a ready ``Custodes`` and call its use cases.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ctypes
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

import orjson
import platformdirs
import polars as pl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import Engine

from custodes.audit import AuditLog
from custodes.audit.recorders import AuditedCaseStore, AuditedResponseRuns, AuditedSignIns
from custodes.context import HospitalContext
from custodes.core.clock import Clock, SystemClock
from custodes.core.errors import ConfigurationError
from custodes.core.events import SignInEvent
from custodes.core.ports import KeyService, SignInRecorder
from custodes.core.responses import ResponseRun
from custodes.correlate.alerts import alerts_from_scores, budget_threshold
from custodes.correlate.service import CaseBook, RecordReport
from custodes.detect.engine import DetectionEngine, EngineState
from custodes.detect.signins import UnusualSignIns
from custodes.detect.stream import StreamDetector
from custodes.identity.errors import AccountError
from custodes.identity.passkeys import RelyingParty
from custodes.identity.passwords import Argon2Parameters, PasswordPolicy
from custodes.identity.sealing import KEY_BYTES, SecretSealer
from custodes.identity.service import IdentityConfig, IdentityService
from custodes.identity.sessions import SessionTimeouts
from custodes.ingest.context_service import ContextReport, ingest_context_files
from custodes.ingest.csv_access import CsvMapping
from custodes.ingest.service import EventLog, IngestReport, Progress, ingest_event_files
from custodes.keys import BlindIndex, EnvelopeCipher, LocalKeyring
from custodes.keys.keyfile import read_or_create
from custodes.keys.transit import TransitKeyService
from custodes.respond.actions import (
    ActionRegistry,
    EmailAction,
    SyslogAction,
    WebhookAction,
    account_actions,
)
from custodes.respond.executor import ResponseExecutor
from custodes.respond.playbooks import load_playbooks
from custodes.storage.archive import ParquetArchive
from custodes.storage.bus import InProcessBus, NatsJetStreamBus
from custodes.storage.database import create_engine, ensure_schema, upgrade
from custodes.storage.signins import BackgroundBus, SignInFanOut
from custodes.storage.sql_cases import SqlCaseStore
from custodes.storage.sql_context import QuarantineStore, SqlContextStore, SqlIngestRuns
from custodes.storage.sql_events import SqlEventStore
from custodes.storage.sql_identity import SqlIdentityStore
from custodes.storage.sql_records import SqlCareRelationships, SqlRecordStore
from custodes.storage.sql_responses import SqlResponseRuns
from custodes.storage.sql_vault import SqlAuditStore, SqlScopeKeyStore
from custodes.streaming import CaseResponder, StreamPipeline, StreamTotals, Subjects
from custodes.vault.classify import SensitivityClassifier
from custodes.vault.service import RecordVault

EVENT_STORES = ("archive", "database")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@cache
def tune_memory_allocator() -> bool:
    """Let glibc keep and reuse large freed blocks instead of returning them at once.

    Ingestion allocates and frees a 48 MB block of input many times a second; by
    default glibc maps each one fresh from the kernel and unmaps it when freed, and the
    page faults cost a quarter of the CPU time. Keeping up to 256 MB for reuse cut them by
    almost half and the ingest time by about 12% (benchmarks/RESULTS.md). Process-wide,
    so it is set here, at the composition root, once; elsewhere than glibc it does
    nothing and says so by returning False.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024 * 1024)
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, 256 * 1024 * 1024)
    except (OSError, AttributeError):
        return False
    return bool(ok)


class EveryRecorder:
    """Hands each sign-in event to every recorder, in order."""

    def __init__(self, *recorders: SignInRecorder) -> None:
        self.recorders = recorders

    def record(self, event: SignInEvent) -> None:
        for recorder in self.recorders:
            recorder.record(event)


class Settings(BaseSettings):
    """Settings from ``CUSTODES_*`` environment variables (or a ``.env`` file)."""

    model_config = SettingsConfigDict(env_prefix="CUSTODES_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("custodes", appauthor=False)),
        description="Where the embedded database, the Parquet archive and the quarantine live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: SQLite in the data directory. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db",
    )
    nats_url: str | None = Field(
        default=None, description="NATS JetStream server, when scaled out."
    )
    nats_stream: str = Field(default="CUSTODES", description="The JetStream stream's name.")
    nats_prefix: str = Field(
        default="custodes",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="First token of every subject: PREFIX.access.<partition> for accesses, "
        "PREFIX.events.signin.<partition> for sign-ins.",
    )
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        le=64,
        description="Processes for CPU-bound Python work: audit-log verification spans, "
        "vault import planning.",
    )
    ingest_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Parser processes for CSV access logs. 1 reads in-process, where "
        "Polars already splits each chunk on every core; on a 2-core machine worker "
        "processes were slower (benchmarks/RESULTS.md, Ingest rate).",
    )
    event_stores: tuple[str, ...] = Field(
        default=EVENT_STORES, description="Where accepted events go: archive, database or both."
    )

    # Identity: sign-in, sessions, lockout, step-up (docs/identity.md).
    identity_key: SecretStr | None = Field(
        default=None,
        description="32 bytes, base64: seals TOTP secrets and keys session and token digests. "
        "Default: DATA_DIR/identity.key, created 0600 on first use.",
    )
    password_min_length: int = Field(default=12, ge=8, le=64)
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    argon2_max_concurrent: int = Field(
        default=4, ge=1, description="Argon2id hashes computed at once (bounds their memory)."
    )
    session_idle_minutes: float = Field(default=15, gt=0, description="Automatic logoff.")
    session_absolute_hours: float = Field(default=12, gt=0)
    lockout_threshold: int = Field(default=10, ge=1, description="Failures in a row that lock.")
    lockout_minutes: float = Field(default=30, gt=0)
    step_up_minutes: float = Field(default=10, gt=0)
    webauthn_rp_id: str = Field(default="localhost", description="The passkeys' domain.")
    webauthn_origins: tuple[str, ...] = Field(
        default=("http://localhost:8000",), description="Origins allowed to use passkeys."
    )
    # The record vault: keys and the audit log (docs/vault.md).
    audit_checkpoint_every: int = Field(
        default=1000, ge=1, description="Sign a checkpoint of the audit log every N entries."
    )
    # The key service under envelope encryption: the local keyring, or Vault / OpenBao
    # transit (docs/vault.md, "An external KMS"). The token is read from a file.
    kms: Literal["local", "vault-transit"] = Field(
        default="local", description="local (DATA_DIR/keyring.json) or vault-transit."
    )
    vault_addr: str | None = Field(default=None, description="Vault or OpenBao address (https://...).")
    vault_token_file: Path | None = Field(
        default=None, description="A file holding the Vault token (never the token itself)."
    )
    vault_mount: str = Field(default="transit", description="Where the transit engine is mounted.")
    vault_key: str = Field(default="custodes", description="The transit key's name.")
    vault_ca_file: Path | None = Field(default=None, description="CA bundle for Vault's TLS.")
    cookie_secure: bool = Field(
        default=True, description="Mark the session cookie Secure (browsers allow it on localhost)."
    )

    # Cases and response (docs/cases.md).
    alert_budget: float = Field(
        default=10.0, ge=0, description="Alerts a privacy officer reads per 10,000 accesses."
    )
    playbooks: Path | None = Field(
        default=None, description="Response playbooks (YAML); default: the shipped ones."
    )
    webhook_url: str | None = Field(default=None, description="Where case webhooks go.")
    ticket_url: str | None = Field(default=None, description="The ticketing system's webhook.")
    webhook_key: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key that signs webhooks (or webhook_key_file)."
    )
    webhook_key_file: Path | None = Field(default=None)
    smtp_host: str | None = Field(default=None)
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_sender: str = Field(default="custodes@localhost")
    smtp_recipients: tuple[str, ...] = Field(default=())
    smtp_username: str | None = Field(default=None)
    smtp_password: SecretStr | None = Field(default=None)
    smtp_password_file: Path | None = Field(default=None)
    smtp_starttls: bool = Field(default=False)
    syslog_host: str | None = Field(default=None)
    syslog_port: int = Field(default=514, ge=1, le=65535)
    syslog_protocol: str = Field(default="udp", pattern="^(udp|tcp)$")

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'custodes.db'}"

    def identity_config(self) -> IdentityConfig:
        return IdentityConfig(
            argon2=Argon2Parameters(
                self.argon2_time_cost,
                self.argon2_memory_kib,
                self.argon2_parallelism,
                self.argon2_max_concurrent,
            ),
            password_policy=PasswordPolicy(min_length=self.password_min_length),
            timeouts=SessionTimeouts(
                idle=timedelta(minutes=self.session_idle_minutes),
                absolute=timedelta(hours=self.session_absolute_hours),
            ),
            lock_threshold=self.lockout_threshold,
            lock_duration=timedelta(minutes=self.lockout_minutes),
            step_up_fresh_for=timedelta(minutes=self.step_up_minutes),
            relying_party=RelyingParty(
                rp_id=self.webauthn_rp_id, origins=tuple(self.webauthn_origins)
            ),
        )


class IdentityAccounts:
    """``AccountControl`` over the identity service: what a response may do to an account."""

    def __init__(self, identity: IdentityService) -> None:
        self.identity = identity

    def _known(self, name: str) -> None:
        try:
            self.identity.user(name)
        except AccountError as err:
            raise LookupError(name) from err

    def lock(self, name: str) -> None:
        self._known(name)
        self.identity.lock(name, by="custodes response")

    def unlock(self, name: str) -> None:
        self._known(name)
        self.identity.unlock(name)

    def revoke_sessions(self, name: str) -> int:
        self._known(name)
        return self.identity.sessions.revoke_all(name)

    def revoke_tokens(self, name: str) -> int:
        self._known(name)
        return self.identity.store.revoke_tokens_of(name)

    def require_step_up(self, name: str) -> None:
        self._known(name)
        self.identity.demand_step_up(name)

    def withdraw_step_up(self, name: str) -> None:
        self._known(name)
        self.identity.withdraw_step_up(name)

    def require_mfa_reenrolment(self, name: str) -> int:
        self._known(name)
        return self.identity.reset_second_factors(name, by="custodes response")


@dataclass
class IngestRun:
    run_id: str
    report: IngestReport


@dataclass
class ContextRun:
    run_id: str
    report: ContextReport


class Custodes:
    """The application, wired: the one object the edges talk to."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()

    @property
    def data_dir(self) -> Path:
        path = self.settings.data_dir
        if not path.exists():
            path.mkdir(parents=True, mode=0o700)
        elif not path.is_dir():
            raise ConfigurationError(f"data directory {path} is not a directory")
        return path

    @cached_property
    def engine(self) -> Engine:
        self.data_dir  # noqa: B018 - the SQLite file lives there
        return create_engine(self.settings.resolved_database_url)

    def upgrade_database(self) -> str:
        return upgrade(self.engine)

    def ready_engine(self) -> Engine:
        ensure_schema(self.engine)
        return self.engine

    @cached_property
    def archive(self) -> ParquetArchive:
        return ParquetArchive(self.data_dir / "archive")

    def identity_key(self) -> bytes:
        """The instance key: from the environment, or a 0600 file made on first use."""
        if self.settings.identity_key is not None:
            try:
                key = base64.b64decode(self.settings.identity_key.get_secret_value(), validate=True)
            except (binascii.Error, ValueError) as err:
                raise ConfigurationError("CUSTODES_IDENTITY_KEY is not base64") from err
        else:
            key = read_or_create(self.data_dir / "identity.key", lambda: os.urandom(KEY_BYTES))
        if len(key) != KEY_BYTES:
            raise ConfigurationError(f"the identity key must be {KEY_BYTES} bytes")
        return key

    @cached_property
    def keyring(self) -> LocalKeyring:
        """The local keyring: DATA_DIR/keyring.json, made 0600 on first use."""
        return LocalKeyring.open_file(self.data_dir / "keyring.json")

    @cached_property
    def key_service(self) -> KeyService:
        """The KEKs: the local keyring, or Vault transit when ``CUSTODES_KMS=vault-transit``."""
        settings = self.settings
        if settings.kms == "local":
            return self.keyring
        if not settings.vault_addr or settings.vault_token_file is None:
            raise ConfigurationError(
                "CUSTODES_KMS=vault-transit needs CUSTODES_VAULT_ADDR and CUSTODES_VAULT_TOKEN_FILE"
            )
        return TransitKeyService.connect(
            settings.vault_addr, settings.vault_token_file, settings.vault_key,
            mount=settings.vault_mount, ca_file=settings.vault_ca_file,
            index_file=self.data_dir / "blind-index.transit",
        )  # fmt: skip

    @cached_property
    def envelope(self) -> EnvelopeCipher:
        """Envelope encryption over the key service, scope keys in the relational store."""
        return EnvelopeCipher(self.key_service, SqlScopeKeyStore(self.ready_engine()))

    def audit_signing_key(self) -> Ed25519PrivateKey:
        """The audit log's Ed25519 key: DATA_DIR/audit-signing.key, made 0600 on first use."""
        raw = read_or_create(
            self.data_dir / "audit-signing.key",
            lambda: Ed25519PrivateKey.generate().private_bytes_raw(),
        )
        try:
            return Ed25519PrivateKey.from_private_bytes(raw)
        except ValueError as err:
            raise ConfigurationError("the audit signing key file is damaged") from err

    @cached_property
    def audit_store(self) -> SqlAuditStore:
        return SqlAuditStore(self.ready_engine())

    @cached_property
    def audit_log(self) -> AuditLog:
        return AuditLog(
            self.audit_store,
            self.clock,
            self.audit_signing_key(),
            checkpoint_every=self.settings.audit_checkpoint_every,
        )

    @cached_property
    def vault(self) -> RecordVault:
        """The encrypted FHIR record store (docs/vault.md): sealed records in the relational
        store, keys from the key service, every act in the audit log, care relationships from
        the hospital context."""
        engine = self.ready_engine()
        return RecordVault(
            SqlRecordStore(engine),
            self.envelope,
            BlindIndex(self.key_service.index_secret()),
            SensitivityClassifier(),
            self.audit_log,
            self.clock,
            care_relationship=SqlCareRelationships(engine),
        )

    @cached_property
    def signin_bus(self) -> BackgroundBus:
        """The bus sign-in events are published on: NATS JetStream when
        ``CUSTODES_NATS_URL`` is set, else the in-process bus (the embedded default)."""
        url = self.settings.nats_url
        if url:
            return BackgroundBus(self.event_bus)

        async def in_process() -> InProcessBus:
            return InProcessBus()

        return BackgroundBus(in_process)

    @cached_property
    def identity(self) -> IdentityService:
        """The front door, over the relational store; sign-ins go to the event store, the
        bus and the audit log."""
        engine = self.ready_engine()
        if "database" in self.settings.event_stores:
            sinks = [SqlEventStore(engine)]
        else:
            sinks = [ParquetArchive(self.data_dir / "archive")]
        return IdentityService(
            SqlIdentityStore(engine),
            SecretSealer(self.identity_key()),
            self.clock,
            EveryRecorder(
                SignInFanOut(sinks, self.signin_bus, subject=self.subjects.signin),
                AuditedSignIns(self.audit_log),
            ),
            self.settings.identity_config(),
        )

    def context_store(self) -> SqlContextStore:
        return SqlContextStore(self.ready_engine())

    def ingest_events(
        self,
        paths: Sequence[Path],
        *,
        fmt: str | None = None,
        mapping: Path | None = None,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> IngestRun:
        tune_memory_allocator()
        engine = self.ready_engine()
        run_id = uuid.uuid4().hex[:16]
        runs = SqlIngestRuns(engine)
        runs.start(run_id, "events", [str(p) for p in paths], self.clock.now())
        unknown = set(self.settings.event_stores) - set(EVENT_STORES)
        if unknown or not self.settings.event_stores:
            raise ConfigurationError(
                f"CUSTODES_EVENT_STORES must name archive and/or database, not {sorted(unknown)}"
            )
        sinks = []
        if "archive" in self.settings.event_stores:
            sinks.append(ParquetArchive(self.data_dir / "archive"))
        if "database" in self.settings.event_stores:
            sinks.append(SqlEventStore(engine))
        report = ingest_event_files(
            paths,
            sinks,
            QuarantineStore(engine, self.data_dir / "quarantine", run_id),
            fmt=fmt,
            mapping=CsvMapping.load(mapping) if mapping else None,
            workers=workers or self.settings.ingest_workers,
            progress=progress,
        )
        runs.finish(run_id, self.clock.now(), **report.as_json())
        return IngestRun(run_id, report)

    def ingest_context(
        self, paths: Sequence[Path], *, fmt: str | None = None, progress: Progress | None = None
    ) -> ContextRun:
        engine = self.ready_engine()
        run_id = uuid.uuid4().hex[:16]
        runs = SqlIngestRuns(engine)
        runs.start(run_id, "context", [str(p) for p in paths], self.clock.now())
        report = ingest_context_files(
            paths,
            SqlContextStore(engine),
            QuarantineStore(engine, self.data_dir / "quarantine", run_id),
            fmt=fmt,
            progress=progress,
        )
        runs.finish(run_id, self.clock.now(), **report.as_json())
        return ContextRun(run_id, report)

    def _secret(self, value: SecretStr | None, path: Path | None, name: str) -> str | None:
        if value is not None:
            return value.get_secret_value()
        if path is None:
            return None
        try:
            return path.read_text().strip()
        except OSError as err:
            raise ConfigurationError(f"cannot read {name} from {path}: {err.strerror}") from err

    def response_actions(self) -> ActionRegistry:
        """The actions the settings configure; account actions act on Custodes accounts."""
        s = self.settings
        registry = ActionRegistry.of(*account_actions(IdentityAccounts(self.identity)))
        key = self._secret(s.webhook_key, s.webhook_key_file, "CUSTODES_WEBHOOK_KEY")
        for kind, url in (("webhook", s.webhook_url), ("ticket", s.ticket_url)):
            if url:
                if not key:
                    raise ConfigurationError(f"a {kind} URL needs CUSTODES_WEBHOOK_KEY(_FILE)")
                registry.register(WebhookAction(url, key.encode(), type=kind))
        if s.smtp_host:
            registry.register(
                EmailAction(
                    s.smtp_host,
                    s.smtp_port,
                    s.smtp_sender,
                    tuple(s.smtp_recipients),
                    s.smtp_username,
                    self._secret(s.smtp_password, s.smtp_password_file, "CUSTODES_SMTP_PASSWORD"),
                    s.smtp_starttls,
                )
            )
        if s.syslog_host:
            registry.register(SyslogAction(s.syslog_host, s.syslog_port, s.syslog_protocol))
        return registry

    def responder(self) -> ResponseExecutor:
        runs = AuditedResponseRuns(SqlResponseRuns(self.ready_engine()), self.audit_log)
        return ResponseExecutor(self.response_actions(), runs, self.clock)

    def case_responder(self) -> CaseResponder:
        """The case book, the executor and the playbooks, built once for many batches."""
        return CaseResponder(
            self.case_book(), self.responder(), load_playbooks(self.settings.playbooks)
        )

    def respond(self, case_ids: Sequence[str]) -> list[ResponseRun]:
        """Plan and perform the playbooks' response to these cases."""
        if not case_ids:
            return []
        return self.case_responder().respond(case_ids)

    def stream_pipeline(
        self,
        engine: DetectionEngine,
        signins: UnusualSignIns,
        threshold: float,
        *,
        state: EngineState | None = None,
        departments: pl.DataFrame | None = None,
        durable: str = "custodes-watch",
    ) -> StreamPipeline:
        """The streaming pipeline over a fitted engine; ``state`` continues from history."""
        detector = StreamDetector(engine, threshold=threshold, clock=self.clock)
        if state is not None:
            detector.state_ = state
        return StreamPipeline(
            detector,
            signins,
            threshold,
            self.case_responder(),
            departments=departments,
            access_subject=f"{self.subjects.access}.>",
            signin_subject=f"{self.subjects.signin}.>",
            durable=durable,
        )

    @property
    def subjects(self) -> Subjects:
        return Subjects(self.settings.nats_prefix)

    async def event_bus(self) -> NatsJetStreamBus:
        """The NATS JetStream bus of ``CUSTODES_NATS_URL`` (streaming needs one)."""
        url = self.settings.nats_url
        if not url:
            raise ConfigurationError(
                "streaming reads NATS JetStream: set CUSTODES_NATS_URL (nats://host:4222)"
            )
        return await NatsJetStreamBus.connect(
            url, self.settings.nats_stream, (f"{self.settings.nats_prefix}.>",)
        )

    def watch(
        self,
        hospital: HospitalContext,
        history: EventLog,
        *,
        budget: float,
        threshold: float | None = None,
        seed: int = 0,
        max_events: int | None = None,
        max_seconds: float | None = None,
        batch: int = 2_000,
    ) -> tuple[float, StreamTotals]:
        """Learn from ``history``, then run the streaming pipeline on the bus until a bound
        is reached. Returns the alert threshold and what the run did."""
        engine = DetectionEngine(hospital, seed=seed).fit(
            history.access, self.training_labels(history.access, seed=seed)
        )
        scores, state = engine.score(history.access)
        if threshold is None:
            threshold = budget_threshold(scores["score"], budget)
        pipeline = self.stream_pipeline(
            engine,
            UnusualSignIns().fit(history.signins),
            threshold,
            state=state,
            departments=hospital.staff.select("user_id", department="user_department"),
        )

        async def run() -> StreamTotals:
            bus = await self.event_bus()
            try:
                return await pipeline.run(
                    bus, max_events=max_events, max_seconds=max_seconds, batch=batch
                )
            finally:
                await bus.close()

        return threshold, asyncio.run(run())

    def training_labels(
        self, events: pl.DataFrame, background: int = 5000, seed: int = 0
    ) -> pl.DataFrame | None:
        """Verdicts of closed cases, plus a seeded sample of the other accesses as presumed
        legitimate: verdicts alone come from the top of the queue, nearly all misuse, and
        a ranker fitted on them alone ranks worse than none (benchmarks/RESULTS.md)."""
        verdicts = self.case_book().verdict_labels()
        if verdicts.is_empty():
            return None
        others = events.select("event_id").filter(
            ~pl.col("event_id").is_in(verdicts["event_id"].implode())
        )
        sample = others.sample(n=min(background, others.height), seed=seed).with_columns(
            label=pl.lit(0, pl.Int64)
        )
        return pl.concat([verdicts, sample])

    def record_model_version(self, **metrics: float | int | bool) -> dict:
        """Append the fitted model's version and metrics to DATA_DIR/model_versions.ndjson."""
        path = self.data_dir / "model_versions.ndjson"
        try:
            version = sum(1 for _ in path.open()) + 1
        except FileNotFoundError:
            version = 1
        entry = {"version": version, "at": self.clock.now().isoformat(), **metrics}
        with path.open("ab") as handle:
            handle.write(orjson.dumps(entry) + b"\n")
        return entry

    def undo_due(self) -> list[ResponseRun]:
        """Undo the response steps whose automatic undo time has come (run it on a timer)."""
        return self.responder().undo_due(self.case_book().store.case)

    def case_book(self) -> CaseBook:
        """Alerts, cases and suppressions in the relational store; every verdict,
        acknowledgement and suppression in the audit log too."""
        return CaseBook(AuditedCaseStore(SqlCaseStore(self.ready_engine()), self.audit_log), self.clock)

    def record_alerts(
        self,
        scores: pl.DataFrame,
        events: pl.DataFrame,
        threshold: float,
        departments: pl.DataFrame | None = None,
    ) -> RecordReport:
        """Store the accesses scored at or above ``threshold`` as alerts; build their cases."""
        alerts = alerts_from_scores(scores, events, threshold, departments=departments)
        report, _ = self.case_responder().record(alerts)
        return report
