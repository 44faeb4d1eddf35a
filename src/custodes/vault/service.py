"""``RecordVault``: the encrypted FHIR record store behind the ``/fhir`` API and the CLI.

Every request goes the same way: find what the request touches (type, id, patient and
tier are stored in the clear next to the ciphertext, so the policy decides before
anything is decrypted), ask ``access.decide``, append the decision to the audit log,
and only then open, mask and return the record. A denied attempt is audited too. A
write classifies the resource, seals it under a fresh data key bound to its id, type,
version and tier, and stores it with its blind index entries in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import orjson

from custodes.access import (
    ROLE_POLICIES,
    AccessRequest,
    BreakGlass,
    ConsentDirective,
    Decision,
    Obligation,
    decide,
)
from custodes.audit.chain import AuditEntry
from custodes.core.accounts import Role
from custodes.core.clock import Clock
from custodes.core.events import Action, Outcome
from custodes.core.ports import IndexEntry, RecordStore, StoredRecord, VersionConflict
from custodes.keys import BlindIndex, EnvelopeCipher, RecordRef, SealedRecord, Tier, Undecryptable
from custodes.keys.envelope import KeyConflict, SealBatch
from custodes.vault import resources as fhir
from custodes.vault.consent import directives as consent_directives
from custodes.vault.errors import (
    AccessDenied,
    InvalidResource,
    RecordGone,
    RecordNotFound,
    VaultError,
    VersionMismatch,
)


class Classified(Protocol):
    tier: Tier
    categories: frozenset[str]


class Classifier(Protocol):
    def classify(self, resource: dict) -> Classified: ...


class AuditRecorder(Protocol):
    def record_many(self, entries: list[AuditEntry]) -> list[int]: ...


class RecordUnreadable(VaultError):
    """A stored record did not decrypt (its key is gone or the row was tampered with)."""

    code = "exception"


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, in what capacity. ``session`` is the session's stored digest, never its id."""

    user_id: str
    role: Role
    session: str | None = None
    source_ip: str | None = None
    purpose_of_use: str | None = None
    break_glass: BreakGlass | None = None
    step_up_fresh: bool = False


@dataclass(frozen=True, slots=True)
class SearchResult:
    resources: list[dict]
    #: Matches the requester may not see (sensitive without step-up, masked types): a
    #: count only, so a client knows the answer is partial.
    withheld: int = 0


@dataclass(slots=True)
class _Planned:
    """One write of a transaction, ready to seal."""

    method: str
    resource_type: str
    record_id: str
    resource: dict | None
    patient_id: str | None = None
    version: int = 1
    tier: Tier = Tier.STANDARD
    unchanged: bool = False
    status: str = "201 Created"
    decision: Decision | None = None


def _canonical(resource: dict) -> bytes:
    return orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)


def _without_meta(resource: dict) -> dict:
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    body = {k: v for k, v in resource.items() if k != "meta"}
    return {**body, "meta": meta} if meta else body


def _plan_entries(bundle: object, new_id: Callable[[], str]) -> list[_Planned]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidResource("POST /fhir takes a Bundle", code="invalid")
    if bundle.get("type") != "transaction":
        raise InvalidResource("only transaction Bundles are processed (all or nothing)", code="not-supported")
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidResource("Bundle.entry must be a list", code="structure")
    plans: list[_Planned] = []
    mapping: dict[str, str] = {}
    for n, entry in enumerate(entries):
        where = f"Bundle.entry[{n}]"
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict) or request.get("method") not in ("POST", "PUT", "DELETE"):
            raise InvalidResource(f"{where}.request.method must be POST, PUT or DELETE", code="not-supported")
        method, url = request["method"], str(request.get("url") or "")
        resource = entry.get("resource")
        if method == "DELETE":
            resource_type, _, record_id = url.partition("/")
            fhir.check_type(resource_type)
            fhir.check_id(record_id)
            plans.append(_Planned(method, resource_type, record_id, None, status="204 No Content"))
            continue
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidResource(f"{where}.resource is missing", code="required")
        resource_type = resource["resourceType"]
        fhir.check_type(resource_type)
        if method == "PUT":
            url_type, _, record_id = url.partition("/")
            if url_type != resource_type:
                raise InvalidResource(f"{where}.request.url must be {resource_type}/ID", code="invalid")
            fhir.check_id(record_id)
        else:
            # The client's UUID becomes the id: references resolve, and importing the
            # same Bundle twice stores nothing twice.
            full_url = str(entry.get("fullUrl") or "")
            candidate = full_url.removeprefix("urn:uuid:") if full_url.startswith("urn:uuid:") else ""
            record_id = candidate if fhir.is_id(candidate) else new_id()
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and full_url:
            mapping[full_url] = f"{resource_type}/{record_id}"
        plans.append(_Planned(method, resource_type, record_id, dict(resource)))
    for plan in plans:
        if plan.resource is not None:
            fhir.rewrite_references(plan.resource, mapping)
            plan.resource["id"] = plan.record_id
    return plans

def plan_transaction(bundle: object, new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> list[_Planned]:
    """Ids, references and validation of a transaction: everything but the writing.

    Pure and picklable, so a bulk import runs it in worker processes.
    """
    plans = _plan_entries(bundle, new_id)
    for n, plan in enumerate(plans):
        if plan.resource is not None:
            try:
                fhir.validate(plan.resource)
                plan.patient_id = fhir.patient_of(plan.resource)
            except InvalidResource as err:
                raise InvalidResource(f"Bundle.entry[{n}]: {err}", code=err.code) from None
    return plans


class RecordVault:
    def __init__(
        self,
        store: RecordStore,
        cipher: EnvelopeCipher,
        index: BlindIndex,
        classifier: Classifier,
        audit: AuditRecorder,
        clock: Clock,
        *,
        care_relationship: Callable[[str, str], bool] = lambda _user, _patient: False,
        consents: Callable[[str], tuple[ConsentDirective, ...]] | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._index = index
        self._classifier = classifier
        self._audit = audit
        self._clock = clock
        self._care = care_relationship
        # By default the patient's directives are the active Consent resources of theirs
        # this vault holds (vault/consent.py).
        self._consents = consents or self._stored_consents
        self._new_id = new_id

    # --- policy and audit --------------------------------------------------------------

    def _stored_consents(self, patient_id: str) -> tuple[ConsentDirective, ...]:
        found: list[ConsentDirective] = []
        for record in self._store.by_patient(patient_id, ["Consent"]):
            found.extend(consent_directives(self._open(record), patient_id))
        return tuple(found)

    def _request(
        self, who: Requester, action: Action, resource_type: str, patient_id: str | None, sensitive: bool, now: datetime
    ) -> AccessRequest:
        return AccessRequest(
            user_id=who.user_id, role=who.role, action=action, resource_type=resource_type, now=now,
            patient_id=patient_id, sensitive=sensitive, purpose_of_use=who.purpose_of_use,
            care_relationship=self._cares(who, patient_id),
            consents=self._consents(patient_id) if patient_id else (),
            break_glass=who.break_glass, step_up_fresh=who.step_up_fresh,
        )  # fmt: skip

    def _cares(self, who: Requester, patient_id: str | None) -> bool:
        policy = ROLE_POLICIES.get(who.role)
        if not patient_id or policy is None or not policy.needs_care_relationship:
            return False  # only asked where the role's policy turns on it: it costs a query
        return self._care(who.user_id, patient_id)

    def _entry(
        self,
        who: Requester,
        action: Action,
        now: datetime,
        decision: Decision,
        resource_type: str | None,
        resource_id: str | None,
        patient_id: str | None,
        outcome: Outcome = Outcome.SUCCESS,
        **detail: str,
    ) -> AuditEntry:
        glass = who.break_glass
        return AuditEntry(
            time=now, actor=who.user_id, action=action,
            outcome=outcome if decision.allowed else Outcome.MINOR_FAILURE,
            allowed=decision.allowed, role=str(who.role), patient_id=patient_id,
            resource_type=resource_type, resource_id=resource_id, purpose_of_use=who.purpose_of_use,
            break_the_glass=glass is not None, reason=glass.reason if glass else None,
            review=Obligation.REVIEW in decision.obligations, session_id=who.session,
            source_ip=who.source_ip, detail={"decision": decision.reasons[0][:120], **detail},
        )  # fmt: skip

    def _decide(
        self,
        who: Requester,
        action: Action,
        resource_type: str,
        resource_id: str | None,
        patient_id: str | None,
        sensitive: bool,
        now: datetime,
    ) -> Decision:
        """The decision; a denial is audited and raised."""
        decision = decide(self._request(who, action, resource_type, patient_id, sensitive, now))
        if not decision.allowed:
            self._audit.record_many(
                [self._entry(who, action, now, decision, resource_type, resource_id, patient_id)]
            )
            raise AccessDenied(decision.reasons[0], step_up=Obligation.STEP_UP in decision.obligations)
        return decision

    def _miss(self, who: Requester, action: Action, resource_type: str, record_id: str, now: datetime) -> None:
        """Audit a request for a record that is not there (probing ids is worth seeing)."""
        decision = Decision(True, ("no such record",), frozenset({Obligation.AUDIT}))
        self._audit.record_many(
            [self._entry(who, action, now, decision, resource_type, record_id, None, Outcome.MINOR_FAILURE)]
        )

    # --- sealing -----------------------------------------------------------------------

    @staticmethod
    def _ref(record: StoredRecord) -> RecordRef:
        return RecordRef(record.record_id, record.resource_type, record.version, Tier(record.tier), record.patient_id)

    def _open(self, record: StoredRecord) -> dict:
        sealed = SealedRecord(record.scope_id, record.wrapped_key, record.ciphertext)
        try:
            return orjson.loads(self._cipher.open(self._ref(record), sealed))
        except Undecryptable:
            raise RecordUnreadable("the record cannot be decrypted") from None

    @staticmethod
    def _plan_ref(plan: _Planned) -> RecordRef:
        return RecordRef(plan.record_id, plan.resource_type, plan.version, plan.tier, plan.patient_id)

    def _seal(
        self, plan: _Planned, now: datetime, batch: SealBatch | None = None
    ) -> tuple[StoredRecord, list[IndexEntry]]:
        ref = self._plan_ref(plan)
        if plan.resource is None:  # a deletion: a sealed tombstone keeps the version chain
            sealed = self._cipher.seal(ref, b"{}", batch)
            return StoredRecord(
                plan.resource_type, plan.record_id, plan.version, plan.patient_id, str(plan.tier),
                sealed.scope_id, sealed.wrapped_data_key, sealed.ciphertext, now, deleted=True,
            ), []  # fmt: skip
        sealed = self._cipher.seal(ref, _canonical(plan.resource), batch)
        index = [
            IndexEntry(purpose, self._index.value(purpose, value), plan.resource_type, plan.record_id, plan.patient_id)
            for purpose, value in fhir.index_values(plan.resource)
        ]
        stored = StoredRecord(
            plan.resource_type, plan.record_id, plan.version, plan.patient_id, str(plan.tier),
            sealed.scope_id, sealed.wrapped_data_key, sealed.ciphertext, now,
        )  # fmt: skip
        return stored, index

    def _stamp(self, resource: dict, version: int, now: datetime) -> dict:
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {**resource, "meta": meta}

    def _prepare(self, plan: _Planned, resource: dict) -> None:
        """Patient and tier of a resource about to be written."""
        plan.patient_id = fhir.patient_of(resource)
        tier = self._classifier.classify(resource).tier
        if plan.patient_id is not None and tier is Tier.ORGANISATIONAL:
            tier = Tier.STANDARD  # a record of a patient is never below the standard tier
        if plan.patient_id is None:
            # No patient: a Practitioner or Organization whose free text names someone
            # still has no patient key to go under; it stays with the tenant's key.
            tier = Tier.ORGANISATIONAL
        plan.tier = tier

    # --- reads ---------------------------------------------------------------------------

    def _disclose(
        self, who: Requester, action: Action, record: StoredRecord, now: datetime, **detail: str
    ) -> dict:
        sensitive = record.tier == Tier.SENSITIVE
        decision = self._decide(
            who, action, record.resource_type, record.record_id, record.patient_id, sensitive, now
        )
        resource = self._open(record)
        # Audited before it is returned: no disclosure goes unrecorded.
        self._audit.record_many(
            [self._entry(who, action, now, decision, record.resource_type, record.record_id, record.patient_id,
                         version=str(record.version), **detail)]  # fmt: skip
        )
        return fhir.mask(resource, decision.visible_elements)

    def read(self, who: Requester, resource_type: str, record_id: str) -> dict:
        fhir.check_type(resource_type)
        fhir.check_id(record_id)
        now = self._clock.now()
        record = self._store.latest(resource_type, record_id)
        if record is None:
            self._miss(who, Action.READ, resource_type, record_id, now)
            raise RecordNotFound(f"{resource_type}/{record_id} is not in the vault")
        if record.deleted:
            raise RecordGone(f"{resource_type}/{record_id} was deleted")
        return self._disclose(who, Action.READ, record, now)

    def vread(self, who: Requester, resource_type: str, record_id: str, version: int) -> dict:
        fhir.check_type(resource_type)
        fhir.check_id(record_id)
        now = self._clock.now()
        record = self._store.version(resource_type, record_id, version)
        if record is None:
            self._miss(who, Action.VREAD, resource_type, record_id, now)
            raise RecordNotFound(f"{resource_type}/{record_id} has no version {version}")
        if record.deleted:
            raise RecordGone(f"{resource_type}/{record_id} version {version} records its deletion")
        return self._disclose(who, Action.VREAD, record, now)

    def _visible(
        self, who: Requester, action: Action, records: Sequence[StoredRecord], now: datetime, **detail: str
    ) -> SearchResult:
        """Open the records the requester may see; count the rest; audit once per patient."""
        decisions: dict[tuple[str, str | None, bool], Decision] = {}
        shown: list[tuple[StoredRecord, Decision]] = []
        withheld = 0
        for record in records:
            key = (record.resource_type, record.patient_id, record.tier == Tier.SENSITIVE)
            if key not in decisions:
                decisions[key] = decide(self._request(who, action, *key, now))
            decision = decisions[key]
            if decision.allowed:
                shown.append((record, decision))
            else:
                withheld += 1
        by_patient: dict[str | None, list[tuple[StoredRecord, Decision]]] = {}
        for record, decision in shown:
            by_patient.setdefault(record.patient_id, []).append((record, decision))
        entries = []
        for patient_id, items in by_patient.items():
            decision = items[0][1]
            review = any(Obligation.REVIEW in d.obligations for _r, d in items)
            if review and Obligation.REVIEW not in decision.obligations:
                decision = Decision(True, decision.reasons, decision.obligations | {Obligation.REVIEW})
            types = sorted({r.resource_type for r, _d in items})
            entries.append(
                self._entry(who, action, now, decision, ",".join(types)[:200], None, patient_id,
                            results=str(len(items)), **detail)  # fmt: skip
            )
        denied = [d for d in decisions.values() if not d.allowed]
        if denied and not shown:
            reason = denied[0]
            entries.append(self._entry(who, action, now, reason, None, None, None, withheld=str(withheld), **detail))
        if entries:
            self._audit.record_many(entries)
        opened = [fhir.mask(self._open(r), d.visible_elements) for r, d in shown]
        return SearchResult(opened, withheld)

    def search(
        self,
        who: Requester,
        resource_type: str,
        *,
        patient: str | None = None,
        identifier: str | None = None,
        name: str | None = None,
        ids: Sequence[str] = (),
        count: int = 100,
    ) -> SearchResult:
        """Search by patient, by identifier (MRN, SSN or any) or name (blind index), or by id.

        Organisational types may also be listed without a parameter. Records the
        requester may not see are withheld and counted.
        """
        fhir.check_type(resource_type)
        now = self._clock.now()
        if patient is not None:
            fhir.check_id(patient)
            records = self._store.by_patient(patient, [resource_type])
        elif identifier is not None or name is not None:
            if identifier is not None:
                value = identifier.split("|", 1)[-1]
                purposes = ["mrn"] + (["ssn"] if sum(c.isdigit() for c in value) == 9 else [])
                found = {i for p in purposes for i in self._store.find(p, self._index.value(p, value), resource_type)}
            else:
                found = set(self._store.find("name", self._index.value("name", name or ""), resource_type))
            latest = self._store.latest_many([(resource_type, i) for i in sorted(found)])
            records = [r for r in latest.values() if not r.deleted]
        elif ids:
            for record_id in ids:
                fhir.check_id(record_id)
            latest = self._store.latest_many([(resource_type, i) for i in ids])
            records = [r for r in latest.values() if not r.deleted]
        elif resource_type in fhir.ORGANISATIONAL_TYPES:
            records = self._store.of_type(resource_type, count)
        else:
            raise InvalidResource(
                f"a search of {resource_type} needs patient, identifier, name or _id", code="too-costly"
            )
        return self._visible(who, Action.SEARCH, records[:count], now)

    def everything(self, who: Requester, patient_id: str) -> SearchResult:
        """``Patient/{id}/$everything``: the patient's record, every type the requester may see."""
        fhir.check_id(patient_id)
        now = self._clock.now()
        patient = self._store.latest("Patient", patient_id)
        if patient is None:
            self._miss(who, Action.READ, "Patient", patient_id, now)
            raise RecordNotFound(f"Patient/{patient_id} is not in the vault")
        if patient.deleted:
            raise RecordGone(f"Patient/{patient_id} was deleted")
        self._decide(who, Action.READ, "Patient", patient_id, patient_id, patient.tier == Tier.SENSITIVE, now)
        records = self._store.by_patient(patient_id)
        records.sort(key=lambda r: (r.resource_type != "Patient", r.last_updated, r.resource_type, r.record_id))
        return self._visible(who, Action.READ, records, now, operation="$everything")

    # --- writes --------------------------------------------------------------------------

    def _commit(self, who: Requester, plans: list[_Planned], now: datetime, **detail: str) -> None:
        """Decide every write, then seal and store all of them at once, then audit."""
        actions = {"POST": Action.CREATE, "PUT": Action.UPDATE, "DELETE": Action.DELETE}
        decisions: dict[tuple[Action, str, str | None], Decision] = {}
        for plan in plans:
            if plan.unchanged:
                continue
            action = Action.CREATE if plan.version == 1 else actions[plan.method]
            key = (action, plan.resource_type, plan.patient_id)
            if key not in decisions:
                # Writing does not disclose: the sensitive tier's step-up guards reads.
                decisions[key] = self._decide(
                    who, action, plan.resource_type, plan.record_id, plan.patient_id, False, now
                )
            plan.decision = decisions[key]
        writes = [plan for plan in plans if not plan.unchanged]
        for plan in writes:
            if plan.resource is not None:
                plan.resource = self._stamp(plan.resource, plan.version, now)
        for attempt in (1, 2):
            # Scope keys: looked up in one query, the new ones stored in one, before the
            # records; a key another writer made first means sealing again with theirs.
            batch = self._cipher.batch(self._plan_ref(plan) for plan in writes)
            sealed = [self._seal(plan, now, batch) for plan in writes]
            try:
                self._cipher.store_new_keys(batch)
                break
            except KeyConflict:
                if attempt == 2:
                    raise VersionMismatch("another writer is storing this patient's records; try again") from None
        records = [stored for stored, _entries in sealed]
        index = [entry for _stored, entries in sealed for entry in entries]
        try:
            self._store.write(records, index)
        except VersionConflict as err:
            raise VersionMismatch(str(err)) from None
        entries = []
        for plan in plans:
            if plan.unchanged or plan.decision is None:
                continue
            action = Action.DELETE if plan.resource is None else (Action.CREATE if plan.version == 1 else Action.UPDATE)
            entries.append(
                self._entry(who, action, now, plan.decision, plan.resource_type, plan.record_id, plan.patient_id,
                            version=str(plan.version), tier=str(plan.tier), **detail)  # fmt: skip
            )
        if entries:
            self._audit.record_many(entries)

    def create(self, who: Requester, resource: object) -> dict:
        """Store a new resource under a new id; return it as stored."""
        resource = dict(fhir.validate(resource))
        plan = _Planned("POST", resource["resourceType"], self._new_id(), None)
        resource["id"] = plan.record_id
        self._prepare(plan, resource)
        plan.resource = resource
        self._commit(who, [plan], self._clock.now())
        return plan.resource

    def update(self, who: Requester, resource_type: str, record_id: str, resource: object, if_match: int | None = None) -> tuple[dict, bool]:  # noqa: E501
        """Store a new version (or the first, under the client's id); return it and whether it was created."""
        fhir.check_type(resource_type)
        fhir.check_id(record_id)
        resource = dict(fhir.validate(resource, expected_type=resource_type))
        if resource.get("id") != record_id:
            raise InvalidResource(f"the body's id must be {record_id}, as in the URL", code="invalid")
        latest = self._store.latest(resource_type, record_id)
        if if_match is not None and (latest is None or latest.version != if_match):
            raise VersionMismatch(f"{resource_type}/{record_id} is not at version {if_match}")
        plan = _Planned("PUT", resource_type, record_id, None, version=1 if latest is None else latest.version + 1)
        self._prepare(plan, resource)
        plan.resource = resource
        now = self._clock.now()
        if latest is not None and not latest.deleted and latest.patient_id != plan.patient_id:
            # Moving a record to another patient touches the first patient's record too.
            self._decide(who, Action.UPDATE, resource_type, record_id, latest.patient_id, False, now)
        self._commit(who, [plan], now)
        return plan.resource, latest is None

    def delete(self, who: Requester, resource_type: str, record_id: str) -> None:
        fhir.check_type(resource_type)
        fhir.check_id(record_id)
        latest = self._store.latest(resource_type, record_id)
        if latest is None or latest.deleted:
            return  # FHIR: deleting what is not there succeeds
        plan = _Planned(
            "DELETE", resource_type, record_id, None, latest.patient_id, latest.version + 1, Tier(latest.tier)
        )
        self._commit(who, [plan], self._clock.now())

    # --- transactions ------------------------------------------------------------------

    def transaction(self, who: Requester, bundle: object) -> dict:
        return self.commit_transaction(who, plan_transaction(bundle, self._new_id))

    def commit_transaction(self, who: Requester, plans: list[_Planned]) -> dict:
        """Write a planned transaction: all of it or, on any refusal, none of it."""
        now = self._clock.now()
        keys = [(p.resource_type, p.record_id) for p in plans]
        if len(set(keys)) != len(keys):
            raise InvalidResource("a transaction may touch each resource once", code="invalid")
        existing = self._store.latest_many(keys)
        for plan in plans:
            latest = existing.get((plan.resource_type, plan.record_id))
            if plan.resource is None:
                if latest is None or latest.deleted:
                    plan.unchanged = True
                else:
                    plan.patient_id, plan.tier, plan.version = latest.patient_id, Tier(latest.tier), latest.version + 1
                continue
            self._prepare(plan, plan.resource)
            if latest is not None:
                plan.version = latest.version + 1
                plan.status = "200 OK"
                if not latest.deleted and latest.patient_id == plan.patient_id:
                    try:
                        same = _without_meta(self._open(latest)) == _without_meta(plan.resource)
                    except RecordUnreadable:
                        same = False
                    if same:
                        plan.unchanged, plan.version = True, latest.version
        self._commit(who, plans, now, operation="transaction")
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [
                {
                    "response": {
                        "status": p.status,
                        "location": f"{p.resource_type}/{p.record_id}/_history/{p.version}",
                        "etag": f'W/"{p.version}"',
                        "lastModified": stamp,
                    }
                }
                for p in plans
            ],
        }

    # --- erasure -------------------------------------------------------------------------

    def erase_patient(self, who: Requester, patient_id: str) -> dict[str, int]:
        """Crypto-shred a patient: destroy their keys, then drop every version and index entry.

        A backup taken before holds only ciphertext and wrapped keys; those keys die
        when the key-encryption key version that wrapped them is retired (rotate after
        erasing: docs/vault.md).
        """
        fhir.check_id(patient_id)
        now = self._clock.now()
        decision = self._decide(who, Action.DELETE, "Patient", patient_id, patient_id, False, now)
        keys = self._cipher.shred_patient(patient_id)
        versions = self._store.erase_patient(patient_id)
        self._audit.record_many(
            [self._entry(who, Action.DELETE, now, decision, "Patient", patient_id, patient_id,
                         operation="erase", keys=str(keys), versions=str(versions))]  # fmt: skip
        )
        return {"keys_destroyed": keys, "versions_erased": versions}

    def counts(self) -> dict[str, int]:
        return self._store.count()
