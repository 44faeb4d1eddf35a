"""Load Sigma rules for EHR access logs and run them over a frame of accesses.

A rule is a Sigma YAML document with ``logsource: {product: ehr, category:
record_access}`` whose fields are the columns of the access frame (``RULE_FIELDS``).
:meth:`RuleSet.load` reads files and folders of rules, :meth:`RuleSet.default` the pack
shipped with Custodes; both convert every rule to one Polars expression up front, so a
rule that cannot run is refused at load time with a one-line message and evaluation
never meets it.

A rule from another log source is refused, not skipped: in a folder of EHR rules it is
almost certainly a mistake, and a silently ignored rule is worse than a loud one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from uuid import UUID

import polars as pl
import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule, SigmaYAMLLoader

from custodes.core.errors import ConfigurationError, InputFormatError
from custodes.core.events import ACCESS_EVENT_SCHEMA
from custodes.detect.columns import EXPLANATION_COLUMNS, FEATURES
from custodes.detect.rules.sigma_polars import rule_expression

__all__ = [
    "LEVEL_WEIGHTS",
    "LOGSOURCE",
    "RULE_FIELDS",
    "Rule",
    "RuleSet",
    "parse_rules",
]

#: The only log source Custodes runs rules on.
LOGSOURCE: Mapping[str, str] = MappingProxyType({"product": "ehr", "category": "record_access"})

#: What a hit of each Sigma level adds to an access's suspicion. A critical hit alone
#: should outweigh several medium ones; informational rules annotate without scoring.
LEVEL_WEIGHTS: Mapping[str, int] = MappingProxyType(
    {"informational": 0, "low": 10, "medium": 25, "high": 50, "critical": 80}
)

#: The columns a rule may name, with their types: the event, the user's roster entry,
#: the features of ``custodes.detect.columns`` and the explanation model's verdict.
RULE_FIELDS: Mapping[str, pl.DataType] = MappingProxyType(
    {
        **ACCESS_EVENT_SCHEMA,
        "user_role": pl.String(),
        "user_department": pl.String(),
        **{name: dtype for name, (dtype, _) in FEATURES.items()},
        **{name: dtype for name, (dtype, _) in EXPLANATION_COLUMNS.items()},
    }
)

#: File endings read when a folder of rules is loaded.
RULE_SUFFIXES: tuple[str, ...] = (".yml", ".yaml")


@dataclass(frozen=True, slots=True)
class Rule:
    """One Sigma rule, converted and ready to run.

    Attributes
    ----------
    id: the rule's UUID, as text; also the name of its column in ``RuleSet.evaluate``.
    title: the rule's title.
    level: informational, low, medium, high or critical.
    reason: a short phrase a privacy officer reads when the rule fires.
    tags: the Sigma tags (``hipaa.164.312.b``, ``attack.t1078``, ...).
    expression: True where the rule matches, never null.
    origin: the file the rule came from.
    status: stable, test, experimental, ... when the rule says.
    description: the rule's description, when it has one.
    """

    id: str
    title: str
    level: str
    reason: str
    tags: tuple[str, ...]
    expression: pl.Expr = field(compare=False, repr=False)
    origin: str = field(default="<rule>", compare=False)
    status: str | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVEL_WEIGHTS:
            raise ValueError(f"level must be one of {', '.join(LEVEL_WEIGHTS)}, not {self.level!r}")

    @property
    def weight(self) -> int:
        """What a hit adds to suspicion, from the level (see ``LEVEL_WEIGHTS``)."""
        return LEVEL_WEIGHTS[self.level]

    @property
    def fields(self) -> frozenset[str]:
        """The columns the rule reads."""
        return frozenset(self.expression.meta.root_names())


def parse_rules(
    text: str, *, origin: str, fields: Mapping[str, pl.DataType] = RULE_FIELDS
) -> list[Rule]:
    """Parse and convert the rules of one YAML text (one or more documents).

    Parameters
    ----------
    text
        The YAML, as read from a rule file.
    origin
        Where it came from, quoted in error messages.
    fields
        The columns rules may name, with their types.

    Raises
    ------
    InputFormatError
        The YAML is invalid, a rule is not a valid Sigma rule for the EHR access log,
        or it uses something the converter does not support.

    Examples
    --------
    >>> [rule] = parse_rules('''
    ... title: Record of a VIP
    ... id: 0b5c4a1e-8f0d-4c1e-9d57-3a1f3f0f7a11
    ... level: medium
    ... logsource: {product: ehr, category: record_access}
    ... detection:
    ...   sel: {vip: true}
    ...   condition: sel
    ... ''', origin="vip.yml")
    >>> rule.reason, rule.weight
    ('Record of a VIP', 25)
    """
    try:
        documents = [doc for doc in yaml.load_all(text, SigmaYAMLLoader) if doc is not None]
    except yaml.YAMLError as error:
        raise InputFormatError(f"{origin}: not valid YAML ({_yaml_problem(error)})") from None
    if not documents:
        raise InputFormatError(f"{origin}: holds no rule")
    if not all(isinstance(doc, dict) for doc in documents):
        raise InputFormatError(f"{origin}: a rule must be a YAML mapping (title:, detection:, ...)")
    try:
        collection = SigmaCollection.from_dicts(documents)
    except SigmaError as error:
        raise InputFormatError(f"{origin}: {_one_line(str(error))}") from None
    rules = []
    for item in collection.rules:
        if not isinstance(item, SigmaRule):
            raise InputFormatError(
                f"{origin}: only detection rules are supported, not {type(item).__name__}"
            )
        rules.append(_converted(item, origin, fields))
    return rules


def _converted(rule: SigmaRule, origin: str, fields: Mapping[str, pl.DataType]) -> Rule:
    where = f"{origin} ({rule.title!r})" if rule.title else origin
    source = rule.logsource
    if (source.product, source.category) != (LOGSOURCE["product"], LOGSOURCE["category"]):
        raise InputFormatError(
            f"{where}: the logsource must be product: ehr, category: record_access "
            f"(got product: {source.product}, category: {source.category}); "
            "Custodes runs rules on EHR access events only"
        )
    if not rule.title:
        raise InputFormatError(f"{where}: the rule has no title")
    if rule.id is None:
        raise InputFormatError(
            f"{where}: the rule has no id; add 'id:' with a new UUID "
            "(python -c 'import uuid; print(uuid.uuid4())')"
        )
    if not isinstance(rule.id, UUID):
        raise InputFormatError(f"{where}: the id {rule.id!r} is not a UUID")
    if rule.level is None:
        raise InputFormatError(
            f"{where}: the rule has no level; add 'level:' ({', '.join(LEVEL_WEIGHTS)})"
        )
    reason = rule.custom_attributes.get("reason", rule.title)
    if not isinstance(reason, str) or not reason.strip():
        raise InputFormatError(f"{where}: 'reason:' must be a short non-empty phrase")
    return Rule(
        id=str(rule.id),
        title=rule.title,
        level=str(rule.level),
        reason=" ".join(reason.split()),
        tags=tuple(str(tag) for tag in rule.tags),
        expression=rule_expression(rule, fields, origin=where),
        origin=origin,
        status=str(rule.status) if rule.status is not None else None,
        description=rule.description.strip() if rule.description else None,
    )


class RuleSet:
    """An ordered set of rules with distinct ids, run together over a frame.

    Parameters
    ----------
    rules
        The rules, in the order their columns come out of :meth:`evaluate`.

    Raises
    ------
    InputFormatError
        Two rules share an id.

    Examples
    --------
    >>> rules = RuleSet.default()
    >>> len(rules) > 10 and all(rule.reason for rule in rules)
    True
    """

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        seen: dict[str, Rule] = {}
        for rule in self.rules:
            if rule.id in seen:
                raise InputFormatError(
                    f"{rule.origin}: the rule id {rule.id} is already used by "
                    f"{seen[rule.id].origin}; every rule needs its own id"
                )
            seen[rule.id] = rule
        self._by_id = seen

    @classmethod
    def load(
        cls, paths: Iterable[Path | str], *, fields: Mapping[str, pl.DataType] = RULE_FIELDS
    ) -> RuleSet:
        """Load rules from files, and from the ``.yml`` / ``.yaml`` files under folders.

        Raises
        ------
        ConfigurationError
            A path does not exist, cannot be read, or is a folder with no rule file.
        InputFormatError
            A rule is invalid or unsupported (see :func:`parse_rules`).
        """
        rules: list[Rule] = []
        for path in map(Path, paths):
            for file in _rule_files(path):
                rules.extend(parse_rules(_read(file), origin=str(file), fields=fields))
        return cls(rules)

    @classmethod
    def default(
        cls,
        extra: Iterable[Path | str] = (),
        *,
        fields: Mapping[str, pl.DataType] = RULE_FIELDS,
    ) -> RuleSet:
        """The rule pack shipped with Custodes, plus the rules under ``extra``.

        Raises
        ------
        ConfigurationError
            The pack is missing from the installation, or an ``extra`` path is.
        """
        pack = resources.files("custodes.detect.rules") / "pack"
        files = sorted(
            (f for f in pack.iterdir() if f.name.endswith(RULE_SUFFIXES)), key=lambda f: f.name
        )
        if not files:
            # An empty pack means a broken install (the YAML was not packaged); running
            # with no rules would look like a clean bill of health.
            raise ConfigurationError(
                "the rule pack shipped with Custodes is missing; reinstall Custodes"
            )
        rules = [
            rule
            for f in files
            for rule in parse_rules(
                f.read_text(encoding="utf-8"), origin=f"pack/{f.name}", fields=fields
            )
        ]
        return cls([*rules, *cls.load(extra, fields=fields)])

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __getitem__(self, rule_id: str) -> Rule:
        return self._by_id[rule_id]

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._by_id

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules)"

    @property
    def fields(self) -> frozenset[str]:
        """Every column some rule reads."""
        return frozenset().union(*(rule.fields for rule in self.rules))

    def expressions(self) -> list[pl.Expr]:
        """One Boolean expression per rule, named by the rule id, for lazy pipelines."""
        return [rule.expression.alias(rule.id) for rule in self.rules]

    def evaluate(self, frame: pl.DataFrame) -> pl.DataFrame:
        """One Boolean column per rule, named by its id, row for row with ``frame``.

        Raises
        ------
        InputFormatError
            ``frame`` lacks a column a rule reads, or a column has a type the rule
            cannot compare with.

        An empty rule set gives a frame with no columns (and so no rows).
        """
        missing = self.fields - set(frame.columns)
        if missing:
            users = [rule.title for rule in self.rules if rule.fields & missing]
            raise InputFormatError(
                f"the access frame lacks the column(s) {', '.join(sorted(missing))} "
                f"that these rules read: {'; '.join(users)}"
            )
        try:
            return frame.select(self.expressions())
        except pl.exceptions.PolarsError:
            raise self._explain_failure(frame) from None

    def hits(self, frame: pl.DataFrame, name: str = "rule_hits") -> pl.Series:
        """For each row of ``frame``, the ids of the rules it matches (``List(String)``).

        Raises
        ------
        InputFormatError
            As :meth:`evaluate`.
        """
        if not self.rules:
            return pl.Series(name, [[]], dtype=pl.List(pl.String)).new_from_index(0, frame.height)
        matched = self.evaluate(frame)
        # Assembling a list on every row is slow in Polars (seconds per million rows);
        # rows share few combinations of hits, so list each combination once and join.
        combinations = matched.unique()
        listed = combinations.select(
            pl.concat_list(
                [pl.when(pl.col(r.id)).then(pl.lit(r.id)).otherwise(None) for r in self.rules]
            )
            .list.drop_nulls()
            .alias(name)
        )
        table = pl.concat([combinations, listed], how="horizontal")
        return matched.join(table, on=matched.columns, how="left", maintain_order="left")[name]

    def _explain_failure(self, frame: pl.DataFrame) -> InputFormatError:
        # Only on the error path: run the rules one at a time to name the one that broke.
        for rule in self.rules:
            try:
                frame.select(rule.expression)
            except pl.exceptions.PolarsError as error:
                columns = ", ".join(f"{c} ({frame.schema[c]})" for c in sorted(rule.fields))
                return InputFormatError(
                    f"{rule.origin}: the rule {rule.title!r} cannot run on this frame "
                    f"(columns {columns}): {_one_line(str(error).split(chr(10))[0])}"
                )
        return InputFormatError("the rules cannot run on this frame")


def _rule_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in RULE_SUFFIXES)
        if not files:
            raise ConfigurationError(f"{path}: the folder holds no .yml or .yaml rule file")
        return files
    if not path.exists():
        raise ConfigurationError(f"{path}: no such rule file or folder")
    return [path]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFormatError(f"{path}: a rule file must be UTF-8 text") from None
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot read the rule file ({error.strerror})") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{error.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return _one_line(str(error))


def _one_line(message: str) -> str:
    return " ".join(message.split())
