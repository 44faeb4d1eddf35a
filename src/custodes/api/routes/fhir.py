"""The FHIR R4 REST API at ``/fhir``: read, vread, create, update, delete, search by
patient or identifier, ``Patient/{id}/$everything`` and transaction Bundles.

Callers authenticate with a bearer credential: a session from ``/auth/login``, or an API
token with the ``fhir`` scope. Sensitive records need a session with a fresh passkey
check; break-the-glass (the ``X-Break-Glass-Reason`` header) needs a session with a fresh
second factor. Every refusal is an ``OperationOutcome`` with a 4xx and one line.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from custodes.access import BREAK_GLASS_LIMIT, BreakGlass
from custodes.api.deps import CallerDep
from custodes.bootstrap import Custodes
from custodes.core.errors import CustodesError
from custodes.identity.errors import NotAuthenticated, StepUpRequired
from custodes.identity.stepup import Operation
from custodes.vault.errors import InvalidResource, VersionMismatch
from custodes.vault.resources import SUPPORTED_TYPES
from custodes.vault.service import RecordVault, Requester, SearchResult

FHIR_JSON = "application/fhir+json"
#: The token scope that opens the FHIR API.
FHIR_SCOPE = "fhir"
_MAX_COUNT = 1000


def fhir_response(body: dict, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def operation_outcome(message: str, code: str = "processing", severity: str = "error") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }


def get_requester(
    request: Request,
    caller: CallerDep,
    x_purpose_of_use: Annotated[str | None, Header(max_length=40)] = None,
    x_break_glass_reason: Annotated[str | None, Header(max_length=500)] = None,
) -> Requester:
    custodes: Custodes = request.app.state.custodes
    identity = custodes.identity
    now = identity.clock.now()
    if caller.token is not None and FHIR_SCOPE not in caller.token.scopes:
        raise NotAuthenticated(f"this API token lacks the {FHIR_SCOPE!r} scope")
    session = caller.session
    fresh = session is not None and identity.step_up_policy.missing(session, Operation.SENSITIVE_TIER, now) is None
    glass = None
    if x_break_glass_reason:
        if session is None:
            raise StepUpRequired("break-the-glass needs a signed-in session, not an API token")
        identity.require_step_up(session, Operation.BREAK_THE_GLASS)
        glass = BreakGlass(x_break_glass_reason.strip(), now, now + BREAK_GLASS_LIMIT)
    return Requester(
        user_id=caller.user.name,
        role=caller.user.role,
        session=session.key if session else None,
        source_ip=request.client.host if request.client else None,
        purpose_of_use=(x_purpose_of_use or ("ETREAT" if glass else None)),
        break_glass=glass,
        step_up_fresh=fresh,
    )


def get_vault(request: Request) -> RecordVault:
    return request.app.state.custodes.vault


RequesterDep = Annotated[Requester, Depends(get_requester)]
VaultDep = Annotated[RecordVault, Depends(get_vault)]

router = APIRouter(prefix="/fhir", tags=["fhir"])


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _searchset(request: Request, result: SearchResult) -> dict:
    base = _base(request)
    entries = [
        {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
        for r in result.resources
    ]
    if result.withheld:
        note = operation_outcome(
            f"{result.withheld} matching record(s) withheld: sensitive records need a fresh passkey "
            "check, and some types are outside this role",
            code="suppressed", severity="information",
        )  # fmt: skip
        entries.append({"resource": note, "search": {"mode": "outcome"}})
    return {"resourceType": "Bundle", "type": "searchset", "total": len(result.resources), "entry": entries}


def _etag(resource: dict) -> dict[str, str]:
    meta = resource.get("meta") or {}
    return {"ETag": f'W/"{meta.get("versionId", "1")}"', "Last-Modified": meta.get("lastUpdated", "")}


async def _json_body(request: Request) -> object:
    body = await request.body()
    if not body:
        raise InvalidResource("the request has no body", code="required")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidResource("the body is not JSON", code="structure") from None


def _if_match(value: str | None) -> int | None:
    if value is None:
        return None
    digits = value.removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise InvalidResource('If-Match must be a version ETag such as W/"3"', code="value")
    return int(digits)


def _type(resource_type: str) -> str:
    if resource_type not in SUPPORTED_TYPES:
        raise InvalidResource(f"the vault does not hold {resource_type[:40]} resources", code="not-supported")
    return resource_type


@router.get("/metadata")
def capability_statement(request: Request) -> Response:
    """What this server does (public, as FHIR expects)."""
    interactions = [{"code": c} for c in ("read", "vread", "update", "delete", "create", "search-type")]
    resources = [
        {"type": t, "interaction": interactions, "versioning": "versioned", "readHistory": True,
         "searchParam": [{"name": "patient", "type": "reference"}, {"name": "_id", "type": "token"}]
         + ([{"name": "identifier", "type": "token"}, {"name": "name", "type": "string"}]
            if t in ("Patient", "Practitioner") else [])}
        for t in sorted(SUPPORTED_TYPES)
    ]  # fmt: skip
    return fhir_response({
        "resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1",
        "format": ["json"], "date": "2026-11-25",
        "rest": [{"mode": "server", "resource": resources, "interaction": [{"code": "transaction"}],
                  "operation": [{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}],  # noqa: E501
                  "security": {"description": "Bearer session or API token with the fhir scope"}}],
    })  # fmt: skip


@router.post("")
@router.post("/", include_in_schema=False)
async def transaction(request: Request, who: RequesterDep, vault: VaultDep) -> Response:
    bundle = await _json_body(request)
    return fhir_response(await run_in_threadpool(vault.transaction, who, bundle))


@router.get("/Patient/{patient_id}/$everything")
def everything(request: Request, patient_id: str, who: RequesterDep, vault: VaultDep) -> Response:
    return fhir_response(_searchset(request, vault.everything(who, patient_id)))


@router.get("/{resource_type}/{record_id}/_history/{version}")
def vread(resource_type: str, record_id: str, version: int, who: RequesterDep, vault: VaultDep) -> Response:
    resource = vault.vread(who, _type(resource_type), record_id, version)
    return fhir_response(resource, headers=_etag(resource))


@router.get("/{resource_type}/{record_id}")
def read(resource_type: str, record_id: str, who: RequesterDep, vault: VaultDep) -> Response:
    resource = vault.read(who, _type(resource_type), record_id)
    return fhir_response(resource, headers=_etag(resource))


@router.get("/{resource_type}")
def search(request: Request, resource_type: str, who: RequesterDep, vault: VaultDep) -> Response:
    params = request.query_params
    known = {"patient", "subject", "identifier", "name", "family", "_id", "_count", "_format"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidResource(f"unsupported search parameter {unknown[0][:40]}", code="not-supported")
    patient = params.get("patient") or params.get("subject")
    if patient is not None:
        patient = patient.removeprefix("Patient/")
    count = params.get("_count", "100")
    if not count.isdigit() or not 0 < int(count) <= _MAX_COUNT:
        raise InvalidResource(f"_count must be between 1 and {_MAX_COUNT}", code="value")
    ids = [i for i in (params.get("_id") or "").split(",") if i]
    if resource_type == "Patient" and patient is not None:
        ids, patient = [patient], None
    result = vault.search(
        who, _type(resource_type), patient=patient, identifier=params.get("identifier"),
        name=params.get("name") or params.get("family"), ids=ids, count=int(count),
    )  # fmt: skip
    return fhir_response(_searchset(request, result))


@router.post("/{resource_type}")
async def create(request: Request, resource_type: str, who: RequesterDep, vault: VaultDep) -> Response:
    body = await _json_body(request)
    if isinstance(body, dict) and body.get("resourceType") != _type(resource_type):
        raise InvalidResource(f"the body must be a {resource_type}", code="invalid")
    resource = await run_in_threadpool(vault.create, who, body)
    location = f"{_base(request)}/{resource_type}/{resource['id']}/_history/{resource['meta']['versionId']}"
    return fhir_response(resource, 201, {**_etag(resource), "Location": location})


@router.put("/{resource_type}/{record_id}")
async def update(
    request: Request,
    resource_type: str,
    record_id: str,
    who: RequesterDep,
    vault: VaultDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    body = await _json_body(request)
    resource, created = await run_in_threadpool(
        vault.update, who, _type(resource_type), record_id, body, _if_match(if_match)
    )
    location = f"{_base(request)}/{resource_type}/{record_id}/_history/{resource['meta']['versionId']}"
    return fhir_response(resource, 201 if created else 200, {**_etag(resource), "Location": location})


@router.delete("/{resource_type}/{record_id}")
def delete(resource_type: str, record_id: str, who: RequesterDep, vault: VaultDep) -> Response:
    vault.delete(who, _type(resource_type), record_id)
    return Response(status_code=204)


def outcome_for(error: CustodesError, status: int) -> Response:
    """The ``OperationOutcome`` a FHIR client gets for a refusal."""
    code = getattr(error, "code", None) or {401: "login", 403: "forbidden", 404: "not-found"}.get(status, "processing")
    if isinstance(error, VersionMismatch):
        code = "conflict"
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return fhir_response(operation_outcome(str(error), code), status, headers)

