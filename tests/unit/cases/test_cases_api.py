"""The case API through the wired application on SQLite: roles, verdicts, suppressions,
approvals, one-line 4xx errors, OpenAPI and the Prometheus endpoint."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from tests.unit.cases.alerts_table import T0, alert, compromised_credentials, frame

from custodes.api.app import create_app
from custodes.bootstrap import Custodes, Settings
from custodes.core.clock import FixedClock

CHEAP = {"argon2_memory_kib": 8, "argon2_time_cost": 1, "argon2_parallelism": 1}


@pytest.fixture
def api(tmp_path):
    app = Custodes(Settings(data_dir=tmp_path, **CHEAP), FixedClock(T0 + timedelta(hours=1)))
    app.identity.add_user("olivia", "privacy_officer", kind="service")
    app.identity.add_user("carl", "clinician", kind="service")
    officer = app.identity.issue_token("olivia", ("alerts:read",), timedelta(days=1))
    clinician = app.identity.issue_token("carl", ("alerts:read",), timedelta(days=1))
    report = app.case_book().record(compromised_credentials(user="mallory"))
    mass = frame([alert(f"m{i}", 200 + i, user="u9", patient=f"q{i}") for i in range(10)])
    report2 = app.case_book().record(mass)
    app.respond([*report.case_ids, *report2.case_ids])
    client = TestClient(create_app(app), base_url="https://testserver")
    return client, {"Authorization": f"Bearer {officer}"}, {"Authorization": f"Bearer {clinician}"}


def test_only_officers_work_cases(api) -> None:
    client, officer, clinician = api
    assert client.get("/api/cases", headers=clinician).status_code == 403
    assert client.get("/api/cases").status_code == 401
    cases = client.get("/api/cases", headers=officer).json()["cases"]
    assert [c["kind"] for c in cases] == ["compromised_credentials_chain", "mass_access"]


def test_the_queue_least_sure_first(api) -> None:
    client, officer, _ = api
    cases = client.get("/api/cases?order=uncertain", headers=officer).json()["cases"]
    assert [c["uncertainty"] for c in cases] == sorted(
        (c["uncertainty"] for c in cases), reverse=True
    )
    # The mass access (scores of 70) is less sure than the chain (an export scored 96).
    assert [c["kind"] for c in cases] == ["mass_access", "compromised_credentials_chain"]
    assert client.get("/api/cases?order=random", headers=officer).status_code == 422


def test_show_acknowledge_and_close(api) -> None:
    client, officer, _ = api
    case_id = client.get("/api/cases", headers=officer).json()["cases"][0]["case_id"]
    shown = client.get(f"/api/cases/{case_id}", headers=officer).json()
    assert len(shown["alerts"]) == 14
    assert {r["action"] for r in shown["responses"]} >= {"lock_account", "webhook"}
    acked = client.post(f"/api/cases/{case_id}/acknowledge", headers=officer)
    assert acked.json()["case"]["status"] == "acknowledged"
    closed = client.post(f"/api/cases/{case_id}/verdict", headers=officer,
                         json={"verdict": "confirmed_misuse", "note": "confirmed"})
    assert closed.status_code == 200 and closed.json()["case"]["closed_by"] == "olivia"
    again = client.post(f"/api/cases/{case_id}/verdict", headers=officer,
                        json={"verdict": "false_positive"})
    assert again.status_code == 409 and "already closed" in again.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("get", "/api/cases/c-nope", None, 404, "no case"),
        ("post", "/api/cases/c-nope/verdict", {"verdict": "maybe"}, 422, "verdict"),
        ("post", "/api/suppressions", {"scope": "ward", "value": "x", "reason": "r"}, 422,
         "scope"),
        ("post", "/api/suppressions", {"scope": "user", "value": "x", "reason": ""}, 422,
         "reason"),
        ("post", "/api/approvals/r-nope/approve", None, 404, "no response step"),
        ("post", "/api/responses/r-nope/undo", None, 404, "no response step"),
    ],
)
def test_bad_requests_are_one_line(api, method, path, body, status, detail) -> None:
    client, officer, _ = api
    response = getattr(client, method)(path, headers=officer, **({"json": body} if body else {}))
    assert response.status_code == status
    assert detail in response.json()["detail"] and "\n" not in response.json()["detail"]


def test_suppressions_and_playbooks(api) -> None:
    client, officer, _ = api
    made = client.post("/api/suppressions", headers=officer,
                       json={"scope": "user", "value": "u3", "reason": "on-call", "hours": 2})
    assert made.status_code == 201
    listed = client.get("/api/suppressions", headers=officer).json()["suppressions"]
    assert listed[0]["created_by"] == "olivia" and listed[0]["active"]
    books = client.get("/api/playbooks", headers=officer).json()["playbooks"]
    assert books[0]["name"] == "compromised_credentials"


def test_approvals_wait_for_an_officer(api) -> None:
    client, officer, _ = api
    waiting = client.get("/api/approvals", headers=officer).json()["approvals"]
    assert {w["action"] for w in waiting} == {"lock_account", "ticket"}
    lock = next(w for w in waiting if w["action"] == "lock_account")
    runs = client.post(f"/api/approvals/{lock['step_id']}/approve", headers=officer).json()["runs"]
    assert runs[-1]["status"] == "failed" and "no such account" in runs[-1]["detail"]
    ticket = next(w for w in waiting if w["action"] == "ticket")
    rejected = client.post(f"/api/approvals/{ticket['step_id']}/reject", headers=officer)
    assert rejected.json()["run"]["status"] == "rejected"
    assert client.get("/api/approvals", headers=officer).json()["approvals"] == []


def test_metrics_and_openapi(api) -> None:
    client, officer, _ = api
    text = client.get("/metrics").text
    assert 'custodes_cases{status="new"} 2.0' in text
    assert "custodes_alerts 24.0" in text
    # Delays are histograms: both cases were opened within the hour after their first
    # access; no step succeeded (mallory has no account here, no channel is configured)
    # and no case is closed.
    assert 'custodes_event_to_case_seconds_bucket{le="3600.0"} 2.0' in text
    assert "custodes_event_to_case_seconds_count 2.0" in text
    # Event to alert: the 14 of the credentials chain were stored 20-60 minutes after
    # their events; the 10 of u9 happen after the fixture's clock (negative delays, in
    # the lowest bucket). Each case opened with its first alert.
    assert "custodes_event_to_alert_seconds_count 24.0" in text
    assert 'custodes_event_to_alert_seconds_bucket{le="3600.0"} 24.0' in text
    assert 'custodes_event_to_alert_seconds_bucket{le="900.0"} 10.0' in text
    assert 'custodes_alert_to_case_seconds_bucket{le="1.0"} 2.0' in text
    assert 'custodes_case_to_action_seconds_bucket{le="+Inf"} 0.0' in text
    assert "custodes_case_to_closure_seconds_count 0.0" in text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/cases", "/api/cases/{case_id}/verdict", "/api/approvals", "/metrics"} <= set(
        paths
    )
