"""Sigma rules over the access frame: the converter's table, the shipped pack, the errors."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from custodes.core.errors import ConfigurationError, InputFormatError
from custodes.core.events import ACCESS_EVENT_SCHEMA
from custodes.detect.columns import EXPLANATION_COLUMNS, FEATURES
from custodes.detect.rules import (
    LEVEL_WEIGHTS,
    RULE_FIELDS,
    SUPPORTED_MODIFIERS,
    Rule,
    RuleSet,
    parse_rules,
)

# --- building frames ---------------------------------------------------------------

#: An ordinary access: a nurse on the care team, at a usual hour, at a usual volume.
#: No shipped rule fires on it (a test holds that).
_NEUTRAL_EVENT: dict[str, Any] = {
    "event_id": "e-1",
    "time": datetime(2026, 3, 2, 10, 15, tzinfo=UTC),
    "user_id": "u-1",
    "patient_id": "p-1",
    "action": "read",
    "resource_type": "Observation",
    "resource_id": "obs-1",
    "application": "EHR",
    "workstation": "ws-1",
    "source_ip": "10.0.0.1",
    "outcome": "success",
    "purpose_of_use": "TREAT",
    "break_the_glass": False,
    "session_id": "s-1",
    "source_format": "csv",
    "source_file": "accesses.csv",
    "source_line": 1,
    "user_role": "registered nurse",
    "user_department": "dept-emergency",
    "explained": True,
    "explanation": "on care team",
}
_NEUTRAL_FEATURES: dict[str, Any] = {
    "on_care_team": True,
    "hour": 10,
    "user_hour_accesses": 3,
    "user_day_patients": 5,
    "volume_vs_user": 1.0,
    "volume_vs_peers": 1.0,
    "collaborative_expectedness": 0.8,
}


def one_access(**overrides: Any) -> pl.DataFrame:
    """A one-row access frame with every rule column, neutral unless overridden."""
    row: dict[str, Any] = {}
    for name, dtype in RULE_FIELDS.items():
        if name in _NEUTRAL_EVENT:
            row[name] = _NEUTRAL_EVENT[name]
        elif name in _NEUTRAL_FEATURES:
            row[name] = _NEUTRAL_FEATURES[name]
        elif dtype == pl.Boolean:
            row[name] = False
        elif dtype.is_numeric():
            row[name] = 0
        else:
            row[name] = None
    unknown = set(overrides) - set(row)
    assert not unknown, f"not rule columns: {unknown}"
    row.update(overrides)
    return pl.DataFrame({name: [value] for name, value in row.items()}, schema=dict(RULE_FIELDS))


def accesses(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.concat([one_access(**row) for row in rows])


def rule_text(
    detection: str, *, rule_id: str = "6f1b7c57-2a0e-4f43-9a8e-2d6c1f0b3e55", **meta: Any
) -> str:
    """A complete rule around an indented ``detection:`` body."""
    header = {
        "title": "Test rule",
        "id": rule_id,
        "level": "medium",
        "logsource": {"product": "ehr", "category": "record_access"},
        **meta,
    }
    return yaml.safe_dump(header, sort_keys=False) + "detection:\n" + detection


def matches(detection: str, rows: list[dict[str, Any]]) -> list[bool]:
    rules = RuleSet(parse_rules(rule_text(detection), origin="test.yml"))
    [rule] = rules
    return rules.evaluate(accesses(*rows))[rule.id].to_list()


# --- the converter, construct by construct -------------------------------------------

CASES = [
    # (name, detection body, rows, expected)
    ("boolean true", "  sel: {vip: true}\n  condition: sel",
     [{"vip": True}, {"vip": False}, {"vip": None}], [True, False, False]),
    ("boolean false; null is not false", "  sel: {explained: false}\n  condition: sel",
     [{"explained": False}, {"explained": True}, {"explained": None}], [True, False, False]),
    ("string equality ignores case", "  sel: {user_role: Registered Nurse}\n  condition: sel",
     [{"user_role": "registered nurse"}, {"user_role": "REGISTERED NURSE"},
      {"user_role": "registered nurse practitioner"}, {"user_role": None}],
     [True, True, False, False]),
    ("case folding is Unicode", "  sel: {user_department: ÉQUIPE-NUIT}\n  condition: sel",
     [{"user_department": "équipe-nuit"}, {"user_department": "equipe-nuit"}], [True, False]),
    ("value list is OR", "  sel: {action: [print, export]}\n  condition: sel",
     [{"action": "print"}, {"action": "EXPORT"}, {"action": "read"}, {"action": None}],
     [True, True, False, False]),
    ("field map is AND", "  sel: {action: read, vip: true}\n  condition: sel",
     [{"action": "read", "vip": True}, {"action": "read"}, {"action": "print", "vip": True}],
     [True, False, False]),
    ("list of maps is OR of ANDs",
     "  sel:\n    - {vip: true, explained: false}\n    - {sensitive: true}\n  condition: sel",
     [{"vip": True, "explained": False}, {"vip": True}, {"sensitive": True}, {}],
     [True, False, True, False]),
    ("integer equality", "  sel: {hour: 3}\n  condition: sel",
     [{"hour": 3}, {"hour": 4}], [True, False]),
    ("float equality", "  sel: {off_shift: 0.5}\n  condition: sel",
     [{"off_shift": 0.5}, {"off_shift": 0.25}], [True, False]),
    ("number on a text field compares as text", "  sel: {workstation: 1234}\n  condition: sel",
     [{"workstation": "1234"}, {"workstation": "ws-1234"}], [True, False]),
    ("contains", "  sel: {user_department|contains: EMERG}\n  condition: sel",
     [{"user_department": "dept-emergency"}, {"user_department": "dept-cardiology"}],
     [True, False]),
    ("contains, list", "  sel: {user_role|contains: [nurse, physician]}\n  condition: sel",
     [{"user_role": "Attending Physician"}, {"user_role": "registered nurse"},
      {"user_role": "billing specialist"}], [True, True, False]),
    ("contains|all", "  sel: {user_role|contains|all: [nurse, registered]}\n  condition: sel",
     [{"user_role": "registered nurse"}, {"user_role": "nurse practitioner"}], [True, False]),
    ("contains takes the value literally", "  sel: {explanation|contains: '.'}\n  condition: sel",
     [{"explanation": "a.b"}, {"explanation": "ab"}], [True, False]),
    ("startswith", "  sel: {source_ip|startswith: '10.'}\n  condition: sel",
     [{"source_ip": "10.0.0.1"}, {"source_ip": "192.168.10.1"}], [True, False]),
    ("endswith", "  sel: {user_role|endswith: NURSE}\n  condition: sel",
     [{"user_role": "Registered Nurse"}, {"user_role": "nurse practitioner"}], [True, False]),
    ("cased", "  sel: {application|cased: EHR}\n  condition: sel",
     [{"application": "EHR"}, {"application": "ehr"}], [True, False]),
    ("cased with contains", "  sel: {application|contains|cased: Rep}\n  condition: sel",
     [{"application": "EHR Reporting"}, {"application": "EHR REPORTING"}], [True, False]),
    ("wildcard *", "  sel: {user_department: 'dept-*gency'}\n  condition: sel",
     [{"user_department": "dept-emergency"}, {"user_department": "DEPT-URGENCY"},
      {"user_department": "dept-cardiology"}], [True, True, False]),
    ("wildcard ?", "  sel: {workstation: 'ws-?'}\n  condition: sel",
     [{"workstation": "ws-1"}, {"workstation": "WS-7"}, {"workstation": "ws-12"}],
     [True, True, False]),
    ("wildcards mixed, regex characters literal", "  sel: {explanation: 'a.(*)?'}\n  condition: sel",
     [{"explanation": "a.(xyz)!"}, {"explanation": "ab(xyz)!"}], [True, False]),
    ("* alone matches any value but null", "  sel: {explanation: '*'}\n  condition: sel",
     [{"explanation": ""}, {"explanation": "x"}, {"explanation": None}], [True, True, False]),
    ("escaped wildcard is literal", "  sel: {explanation: 'why\\*'}\n  condition: sel",
     [{"explanation": "why*"}, {"explanation": "whyX"}], [True, False]),
    ("re matches the whole value", r"  sel: {source_ip|re: '10\.0\.\d+\.\d+'}" "\n  condition: sel",
     [{"source_ip": "10.0.3.4"}, {"source_ip": "110.0.3.4"}, {"source_ip": "10.0.3.4 "}],
     [True, False, False]),
    ("re is case-sensitive", "  sel: {user_role|re: 'nurse.*'}\n  condition: sel",
     [{"user_role": "nurse x"}, {"user_role": "Nurse x"}], [True, False]),
    ("re|i", "  sel: {user_role|re|i: 'nurse.*'}\n  condition: sel",
     [{"user_role": "nurse x"}, {"user_role": "Nurse x"}], [True, True]),
    ("re|contains", "  sel: {user_role|re|contains: 'nur?se'}\n  condition: sel",
     [{"user_role": "registered nuse"}, {"user_role": "porter"}], [True, False]),
    ("re|s lets . cross lines", "  sel: {explanation|re|s: 'a.b'}\n  condition: sel",
     [{"explanation": "a\nb"}, {"explanation": "a\nc"}], [True, False]),
    ("re|m anchors ^ and $ at line breaks", "  sel: {explanation|re|m|s: '.*^b$.*'}\n  condition: sel",
     [{"explanation": "a\nb\nc"}, {"explanation": "a\nbb\nc"}], [True, False]),
    ("gt", "  sel: {volume_vs_user|gt: 3}\n  condition: sel",
     [{"volume_vs_user": 2.9}, {"volume_vs_user": 3.0}, {"volume_vs_user": 3.1}],
     [False, False, True]),
    ("gte", "  sel: {volume_vs_user|gte: 3}\n  condition: sel",
     [{"volume_vs_user": 2.9}, {"volume_vs_user": 3.0}, {"volume_vs_user": 3.1}],
     [False, True, True]),
    ("lt", "  sel: {volume_vs_user|lt: 3}\n  condition: sel",
     [{"volume_vs_user": 2.9}, {"volume_vs_user": 3.0}, {"volume_vs_user": 3.1}],
     [True, False, False]),
    ("lte", "  sel: {volume_vs_user|lte: 3}\n  condition: sel",
     [{"volume_vs_user": 2.9}, {"volume_vs_user": 3.0}, {"volume_vs_user": 3.1}],
     [True, True, False]),
    ("gte on an integer field, null never matches", "  sel: {user_day_patients|gte: 50}\n  condition: sel",
     [{"user_day_patients": 49}, {"user_day_patients": 50}, {"user_day_patients": None}],
     [False, True, False]),
    ("null value asks for null", "  sel: {explanation: null}\n  condition: sel",
     [{"explanation": None}, {"explanation": "on care team"}], [True, False]),
    ("null in a value list", "  sel: {explained: [false, null]}\n  condition: sel",
     [{"explained": False}, {"explained": None}, {"explained": True}], [True, True, False]),
    ("and, or, not, parentheses",
     "  a: {vip: true}\n  b: {sensitive: true}\n  c: {explained: true}\n"
     "  condition: (a or b) and not c",
     [{"vip": True, "explained": False}, {"sensitive": True, "explained": False},
      {"vip": True, "explained": True}, {"explained": False}],
     [True, True, False, False]),
    ("not binds tighter than and, and than or",
     "  a: {vip: true}\n  b: {sensitive: true}\n  c: {deceased: true}\n"
     "  condition: not a and b or c",
     [{"sensitive": True}, {"vip": True, "sensitive": True}, {"vip": True, "deceased": True}],
     [True, False, True]),
    ("not over null is true", "  sel: {vip: true}\n  condition: not sel",
     [{"vip": True}, {"vip": False}, {"vip": None}], [False, True, True]),
    ("1 of sel*",
     "  sel_a: {vip: true}\n  sel_b: {sensitive: true}\n  other: {deceased: true}\n"
     "  condition: 1 of sel_*",
     [{"vip": True}, {"sensitive": True}, {"deceased": True}], [True, True, False]),
    ("all of sel*",
     "  sel_a: {vip: true}\n  sel_b: {sensitive: true}\n  other: {deceased: true}\n"
     "  condition: all of sel_*",
     [{"vip": True, "sensitive": True}, {"vip": True, "deceased": True}], [True, False]),
    ("all of them",
     "  sel: {vip: true}\n  unexplained: {explained: false}\n  condition: all of them",
     [{"vip": True, "explained": False}, {"vip": True, "explained": True}], [True, False]),
    ("1 of them",
     "  sel: {vip: true}\n  other: {sensitive: true}\n  condition: 1 of them",
     [{"sensitive": True}, {}], [True, False]),
    ("several conditions are alternatives",
     "  a: {vip: true}\n  b: {sensitive: true}\n  condition: [a, b]",
     [{"vip": True}, {"sensitive": True}, {}], [True, True, False]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("detection", "rows", "expected"),
    [pytest.param(d, r, e, id=name) for name, d, r, e in CASES],
)
def test_construct(detection: str, rows: list[dict[str, Any]], expected: list[bool]) -> None:
    assert matches(detection, rows) == expected


def test_every_supported_modifier_is_in_the_table() -> None:
    table = " ".join(detection for _, detection, _, _ in CASES)
    aliases = {"ignorecase": "i", "multiline": "m", "dotall": "s"}
    untested = {
        m
        for m in SUPPORTED_MODIFIERS - set(aliases)
        if f"|{m}:" not in table and f"|{m}|" not in table
    }
    assert not untested


def test_text_matching_works_on_categorical_columns() -> None:
    [rule] = parse_rules(rule_text("  sel: {action|startswith: EXP}\n  condition: sel"), origin="t")
    frame = accesses({"action": "export"}, {"action": "read"}).with_columns(
        pl.col("action").cast(pl.Categorical)
    )
    assert RuleSet([rule]).evaluate(frame).to_series().to_list() == [True, False]


# --- errors at load time ------------------------------------------------------------

BAD_RULES = [
    # (name, rule text, words the message must hold)
    ("unsupported modifier", rule_text("  sel: {source_ip|cidr: 10.0.0.0/8}\n  condition: sel"),
     ["modifier 'cidr'", "not supported", "contains"]),
    ("encoding modifier", rule_text("  sel: {user_id|base64: abc}\n  condition: sel"),
     ["modifier 'base64'"]),
    ("exists modifier", rule_text("  sel: {explanation|exists: true}\n  condition: sel"),
     ["modifier 'exists'"]),
    ("unknown modifier", rule_text("  sel: {vip|sometimes: true}\n  condition: sel"),
     ["Unknown modifier", "sometimes"]),
    ("unknown field", rule_text("  sel: {vipp: true}\n  condition: sel"),
     ["field 'vipp'", "not a column", "did you mean 'vip'"]),
    ("keyword detection", rule_text("  keywords: [snoop, peek]\n  condition: keywords"),
     ["keyword", "no field"]),
    ("wrong logsource", rule_text("  sel: {vip: true}\n  condition: sel",
                                   logsource={"product": "windows", "category": "process_creation"}),
     ["logsource must be product: ehr, category: record_access", "product: windows"]),
    ("invalid YAML", "title: broken\ndetection: {sel: [unclosed\n", ["not valid YAML", "line"]),
    ("duplicate YAML key", rule_text("  sel: {vip: true}\n  sel: {sensitive: true}\n  condition: sel"),
     ["Duplicate key 'sel'"]),
    ("not a mapping", "- just\n- a list\n", ["must be a YAML mapping"]),
    ("empty file", "", ["holds no rule"]),
    ("quoted boolean", rule_text("  sel: {vip: 'yes'}\n  condition: sel"),
     ["field 'vip'", "true or false"]),
    ("boolean on text", rule_text("  sel: {action: true}\n  condition: sel"),
     ["field 'action' is text"]),
    ("comparison on text", rule_text("  sel: {user_role|gt: 3}\n  condition: sel"),
     ["field 'user_role' is text", "need a number"]),
    ("text on a date-time", rule_text("  sel: {time: '2026*'}\n  condition: sel"),
     ["field 'time' is datetime"]),
    ("invalid regex", rule_text("  sel: {user_role|re: '(?<=a)b'}\n  condition: sel"),
     ["Regular expression '(?<=a)b' is invalid"]),
    ("regex Polars cannot run", rule_text("  sel: {user_role|re: '\\Qa.b\\E'}\n  condition: sel"),
     ["cannot run in Polars", "unrecognized escape sequence"]),
    ("undefined detection", rule_text("  sel: {vip: true}\n  condition: sel and missing"),
     ["Detection 'missing' not defined"]),
    ("no id", rule_text("  sel: {vip: true}\n  condition: sel", rule_id=None), ["no id", "UUID"]),
    ("id not a UUID", rule_text("  sel: {vip: true}\n  condition: sel", rule_id="vip-1"),
     ["identifier must be an UUID"]),
    ("no level", rule_text("  sel: {vip: true}\n  condition: sel", level=None), ["no level"]),
    ("reason not text", rule_text("  sel: {vip: true}\n  condition: sel", reason=["a", "b"]),
     ["'reason:' must be a short non-empty phrase"]),
    ("correlation rule",
     rule_text("  sel: {vip: true}\n  condition: sel", name="vip_access")
     + "\n---\ntitle: many\nid: 1d0c9f8e-3b8a-4f0e-8a53-5b7e3c1d2a10\ncorrelation:\n"
     "  type: event_count\n  rules: [vip_access]\n  group-by: [user_id]\n  timespan: 1h\n"
     "  condition: {gte: 10}\n",
     ["only detection rules", "SigmaCorrelationRule"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "words"), [pytest.param(t, w, id=name) for name, t, w in BAD_RULES]
)
def test_bad_rule_is_refused_in_one_line_naming_the_file(text: str, words: list[str]) -> None:
    with pytest.raises(InputFormatError) as caught:
        parse_rules(text, origin="site/bad.yml")
    message = str(caught.value)
    assert message.startswith("site/bad.yml")
    assert "\n" not in message
    for word in words:
        assert word in message


def test_load_names_the_file_and_refuses_duplicate_ids(tmp_path: Path) -> None:
    body = "  sel: {vip: true}\n  condition: sel"
    (tmp_path / "a.yml").write_text(rule_text(body))
    (tmp_path / "b.yaml").write_text(rule_text(body))
    with pytest.raises(InputFormatError, match=r"b\.yaml.*already used by .*a\.yml"):
        RuleSet.load([tmp_path])
    bad = tmp_path / "c.yml"
    bad.write_text(rule_text("  sel: {source_ip|cidr: 10.0.0.0/8}\n  condition: sel"))
    with pytest.raises(InputFormatError, match=rf"^{bad}.*'cidr'"):
        RuleSet.load([bad])


def test_load_reports_missing_paths_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such rule file"):
        RuleSet.load([tmp_path / "absent.yml"])
    with pytest.raises(ConfigurationError, match="holds no .yml or .yaml"):
        RuleSet.load([tmp_path])


def test_load_reads_folders_recursively_and_several_rules_per_file(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    first = rule_text("  sel: {vip: true}\n  condition: sel")
    second = rule_text(
        "  sel: {sensitive: true}\n  condition: sel", rule_id="0f7c5f3e-9d55-4f8e-8d1c-2b1f8e3c4a77"
    )
    (tmp_path / "site" / "two.yml").write_text(first + "\n---\n" + second)
    (tmp_path / "notes.txt").write_text("not a rule")
    rules = RuleSet.load([tmp_path])
    assert len(rules) == 2


def test_default_takes_extra_site_rules(tmp_path: Path) -> None:
    site = tmp_path / "site.yml"
    site.write_text(rule_text("  sel: {user_role|contains: locum}\n  condition: sel"))
    rules = RuleSet.default(extra=[site])
    assert len(rules) == len(RuleSet.default()) + 1
    assert "6f1b7c57-2a0e-4f43-9a8e-2d6c1f0b3e55" in rules


# --- errors at evaluation time ------------------------------------------------------


def test_a_missing_column_is_named() -> None:
    rules = RuleSet(parse_rules(rule_text("  sel: {vip: true}\n  condition: sel"), origin="t"))
    with pytest.raises(InputFormatError, match=r"lacks the column\(s\) vip .*Test rule"):
        rules.evaluate(pl.DataFrame({"sensitive": [True]}))


def test_a_column_of_the_wrong_type_names_the_rule() -> None:
    rules = RuleSet(
        parse_rules(rule_text("  sel: {volume_vs_user|gte: 3}\n  condition: sel"), origin="t.yml")
    )
    with pytest.raises(
        InputFormatError, match=r"^t\.yml.*'Test rule' cannot run.*volume_vs_user \(String\)"
    ):
        rules.evaluate(pl.DataFrame({"volume_vs_user": ["high"]}))


# --- rules, rule sets, outputs ------------------------------------------------------


def test_metadata_reason_weight_and_fallback() -> None:
    [with_reason] = parse_rules(
        rule_text("  sel: {vip: true}\n  condition: sel", level="high", reason="a VIP's record",
                  tags=["hipaa.164.312.b", "attack.t1078"], status="stable"),
        origin="t",
    )  # fmt: skip
    assert (with_reason.reason, with_reason.level, with_reason.weight) == (
        "a VIP's record",
        "high",
        50,
    )
    assert with_reason.tags == ("hipaa.164.312.b", "attack.t1078")
    assert with_reason.status == "stable" and with_reason.fields == {"vip"}
    [without] = parse_rules(rule_text("  sel: {vip: true}\n  condition: sel"), origin="t")
    assert without.reason == "Test rule"
    assert LEVEL_WEIGHTS == {
        "informational": 0,
        "low": 10,
        "medium": 25,
        "high": 50,
        "critical": 80,
    }


def test_rules_are_immutable_and_pickle() -> None:
    rules = RuleSet.default()
    rule = rules.rules[0]
    with pytest.raises(FrozenInstanceError):
        rule.level = "low"  # type: ignore[misc]
    copy = pickle.loads(pickle.dumps(rules))
    assert [r.id for r in copy] == [r.id for r in rules] and copy.rules[0] == rule
    frame = accesses(*FIRING_ROWS.values())
    assert copy.evaluate(frame).equals(rules.evaluate(frame))


def test_evaluate_and_hits_keep_rows_and_order() -> None:
    texts = [
        rule_text(
            "  sel: {vip: true}\n  condition: sel", rule_id="11111111-1111-4111-8111-111111111111"
        ),
        rule_text(
            "  sel: {sensitive: true}\n  condition: sel",
            rule_id="22222222-2222-4222-8222-222222222222",
        ),
    ]
    rules = RuleSet(rule for text in texts for rule in parse_rules(text, origin="t"))
    frame = accesses({"vip": True}, {}, {"vip": True, "sensitive": True}, {"sensitive": True})
    result = rules.evaluate(frame)
    assert result.columns == [r.id for r in rules]
    assert result.schema == pl.Schema({r.id: pl.Boolean() for r in rules})
    assert result.rows() == [(True, False), (False, False), (True, True), (False, True)]
    hits = rules.hits(frame)
    assert hits.dtype == pl.List(pl.String) and hits.name == "rule_hits"
    one, two = (r.id for r in rules)
    assert hits.to_list() == [[one], [], [one, two], [two]]


def test_hits_agree_with_evaluate_row_by_row() -> None:
    # hits() lists each combination once and joins it back: the join must keep row order.
    flags = ["vip", "sensitive", "deceased", "coworker", "neighbour"]
    shuffled = [k * 37 % 97 for k in range(97)]
    rows = [
        {flag: bool(i >> bit & 1) for bit, flag in enumerate(flags)} | {"explained": i % 3 == 0}
        for i in shuffled
    ]
    frame = accesses(*rows)
    ids = [rule.id for rule in PACK]
    expected = [
        [rid for rid, hit in zip(ids, row, strict=True) if hit]
        for row in PACK.evaluate(frame).rows()
    ]
    assert PACK.hits(frame).to_list() == expected
    assert any(len(h) > 1 for h in expected) and any(not h for h in expected)


def test_an_empty_rule_set_hits_nothing() -> None:
    assert RuleSet().hits(accesses({}, {})).to_list() == [[], []]


# --- the shipped pack ---------------------------------------------------------------

#: A row each shipped rule must fire on; a new rule in the pack needs its row here.
FIRING_ROWS: dict[str, dict[str, Any]] = {
    "4da7aa26-2726-402c-88f7-ac964b83dd27": {"relative_of_user": True, "on_care_team": False, "explained": False},
    "6f1c2a7e-0d3b-4c55-9a8e-2b7d41e6c930": {"same_surname": True, "explained": False},
    "e212f557-818c-4a18-ac0c-7a2dd859e6a2": {"coworker": True, "explained": False},
    "531da60e-a6af-41e4-b77f-c9ea37e5883a": {"neighbour": True, "explained": False},
    "84b03584-7b4a-46f8-aede-8782129bd1c5": {"vip": True, "explained": False},
    "fc1ae866-0651-46ee-aba7-c581afdcf928": {"self_access": True, "explained": False},
    "f1498a75-fe92-4f15-8f10-b41a8f455457": {"name_search": True, "explained": False},
    "3998da00-18ac-4c60-893c-31f473b474d8": {"volume_vs_user": 4.0, "first_access": True, "explained": False},
    "ff34adb2-587e-4537-a0bd-837e65309b21": {"export": True, "action": "export", "user_day_patients": 120},
    "525f8bd2-f779-4d32-9633-24a90400f669": {"user_terminated": True},
    "9b3d62be-3836-433a-8ef9-ab5d6c9a0e40": {"break_the_glass": True, "purpose_of_use": "ETREAT", "on_care_team": False},
    "f8321a60-223d-4574-9473-fd8619f407e4": {"deceased": True, "explained": False},
    "85afac04-735a-44b3-a03f-c37eb5ae099a": {"sensitive": True, "explained": False},
    "274855f7-ce8d-48b2-ba0c-7de3229776c9": {"off_shift": 0.98, "hour": 2, "first_access": True, "explained": False},
    "729fa0bc-e1b4-4a47-865e-b53ee9bb83b2": {"new_place_today": True, "volume_vs_user": 3.5},
}  # fmt: skip

#: Rows just short of a rule's threshold or missing one of its conditions.
NEAR_MISSES: list[tuple[str, dict[str, Any]]] = [
    ("4da7aa26-2726-402c-88f7-ac964b83dd27", {"neighbour": True, "explained": False}),
    ("4da7aa26-2726-402c-88f7-ac964b83dd27", {"same_surname": True, "explained": False}),
    ("6f1c2a7e-0d3b-4c55-9a8e-2b7d41e6c930", {"same_surname": True, "same_household": True, "explained": False}),
    ("3998da00-18ac-4c60-893c-31f473b474d8", {"volume_vs_user": 2.9, "first_access": True, "explained": False}),
    ("3998da00-18ac-4c60-893c-31f473b474d8", {"volume_vs_user": 4.0, "first_access": False, "explained": False}),
    ("ff34adb2-587e-4537-a0bd-837e65309b21", {"export": True, "user_day_patients": 49}),
    ("ff34adb2-587e-4537-a0bd-837e65309b21", {"user_day_patients": 400}),
    ("9b3d62be-3836-433a-8ef9-ab5d6c9a0e40", {"break_the_glass": True, "on_care_team": True}),
    ("9b3d62be-3836-433a-8ef9-ab5d6c9a0e40", {"break_the_glass": True, "on_care_team": False, "department_encounter": True}),
    ("274855f7-ce8d-48b2-ba0c-7de3229776c9", {"off_shift": 0.9, "first_access": True, "explained": False}),
    ("729fa0bc-e1b4-4a47-865e-b53ee9bb83b2", {"new_place_today": True, "volume_vs_user": 2.0, "volume_vs_user_hour": 2.9}),
    ("729fa0bc-e1b4-4a47-865e-b53ee9bb83b2", {"volume_vs_user": 10.0, "volume_vs_user_hour": 10.0}),
    # The first access from the place: new, but only the rest of the day counts it so.
    ("729fa0bc-e1b4-4a47-865e-b53ee9bb83b2", {"new_workstation": True, "volume_vs_user": 10.0}),
]  # fmt: skip

PACK = RuleSet.default()


def _pack_documents() -> list[tuple[str, dict[str, Any]]]:
    pack = resources.files("custodes.detect.rules") / "pack"
    return [
        (f.name, yaml.safe_load(f.read_text(encoding="utf-8")))
        for f in sorted(pack.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".yml")
    ]


@pytest.mark.parametrize(
    ("name", "document"), [pytest.param(name, doc, id=name) for name, doc in _pack_documents()]
)
def test_shipped_rule_is_complete(name: str, document: dict[str, Any]) -> None:
    assert document["logsource"] == {"product": "ehr", "category": "record_access"}
    assert document["author"] == "Custodes"
    assert document["status"] in {"stable", "experimental"}
    assert document["level"] in LEVEL_WEIGHTS
    assert document["reason"].strip() and document["description"].strip()
    assert document["falsepositives"]
    tags = document["tags"]
    assert any(t.startswith("hipaa.") for t in tags) and any(t.startswith("attack.") for t in tags)
    rule = PACK[document["id"]]
    assert rule.reason == " ".join(document["reason"].split()) and rule.origin == f"pack/{name}"


def test_every_shipped_rule_has_a_firing_row() -> None:
    assert {rule.id for rule in PACK} == set(FIRING_ROWS)
    assert len(PACK) >= 13


def test_no_shipped_rule_fires_on_an_ordinary_access() -> None:
    assert PACK.hits(one_access()).to_list() == [[]]


@pytest.mark.parametrize("rule", PACK.rules, ids=lambda r: r.origin)
def test_shipped_rule_fires_on_its_row_unless_explained(rule: Rule) -> None:
    row = FIRING_ROWS[rule.id]
    explained = {**row, "explained": True, "explanation": "documented"}
    fired, when_explained = PACK.evaluate(accesses(row, explained))[rule.id].to_list()
    assert fired
    # Rules that read the explanation are cleared by it; the others (termination,
    # bulk export, break the glass, self-access, new device) ignore it on purpose.
    assert when_explained is ("explained" not in rule.fields)


@pytest.mark.parametrize(("rule_id", "row"), NEAR_MISSES)
def test_shipped_rule_holds_back_on_a_near_miss(rule_id: str, row: dict[str, Any]) -> None:
    assert PACK.evaluate(one_access(**row))[rule_id].to_list() == [False]


def test_rule_fields_cover_the_feature_columns() -> None:
    assert set(FEATURES) | set(EXPLANATION_COLUMNS) | set(ACCESS_EVENT_SCHEMA) <= set(RULE_FIELDS)
    assert {"user_role", "user_department"} <= set(RULE_FIELDS)


def test_a_sweep_from_a_new_place_fires_by_the_hour_for_a_user_who_sees_many_a_day() -> None:
    # A pharmacist's 150 patients are a usual day, but not a usual hour.
    row = one_access(new_place_today=True, volume_vs_user=1.2, volume_vs_user_hour=3.9)
    assert PACK.evaluate(row)["729fa0bc-e1b4-4a47-865e-b53ee9bb83b2"].to_list() == [True]
