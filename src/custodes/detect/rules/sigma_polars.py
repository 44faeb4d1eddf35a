"""Turn a parsed Sigma rule into one vectorised Polars expression.

pySigma parses the YAML and resolves the ``condition:`` (``and``, ``or``, ``not``,
parentheses, ``1 of sel*``, ``all of them``) into a tree whose leaves are "field equals
value" tests, with the modifiers already folded into the values (``contains`` becomes
``*value*``, ``gte`` a comparison, ``re`` a regular expression). This module only walks
that tree: every leaf becomes a column test and every node a horizontal ``all`` / ``any``
/ negation, so a rule runs over a whole frame at once with no Python per row.

Matching follows Sigma: strings compare case-insensitively unless ``cased``; ``*`` and
``?`` are wildcards; a plain value and a regular expression must match the whole value
(``re|contains`` or ``.*`` loosen that, as pySigma's modifiers assume). A null cell never
equals a value, so ``not`` over it is true; ``field: null`` asks for the null itself.

Everything the converter cannot honour is refused when the rule is converted, with a
one-line :class:`~custodes.core.errors.InputFormatError` naming the rule's origin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from difflib import get_close_matches

import polars as pl
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.modifiers import reverse_modifier_mapping
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCompareExpression,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)

from custodes.core.errors import InputFormatError

__all__ = ["SUPPORTED_MODIFIERS", "rule_expression"]

#: The Sigma modifiers this converter honours; any other is refused at load time.
SUPPORTED_MODIFIERS: frozenset[str] = frozenset(
    {
        "contains",
        "startswith",
        "endswith",
        "all",
        "cased",
        "re",
        "i",
        "ignorecase",
        "m",
        "multiline",
        "s",
        "dotall",
        "gt",
        "gte",
        "lt",
        "lte",
    }
)

_COMPARISONS: dict[CompareOperators, Callable[[pl.Expr, int | float], pl.Expr]] = {
    CompareOperators.LT: pl.Expr.lt,
    CompareOperators.LTE: pl.Expr.le,
    CompareOperators.GT: pl.Expr.gt,
    CompareOperators.GTE: pl.Expr.ge,
    CompareOperators.NEQ: pl.Expr.ne,
}

_REGEX_FLAGS: dict[SigmaRegularExpressionFlag, str] = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}


class _Refused(Exception):
    """Why a rule cannot be converted; the caller adds where the rule came from."""


def rule_expression(
    rule: SigmaRule, fields: Mapping[str, pl.DataType], *, origin: str = "<rule>"
) -> pl.Expr:
    """Convert a Sigma rule's condition into one Boolean expression over a frame.

    Parameters
    ----------
    rule
        A rule parsed by pySigma (``SigmaRule.from_yaml``).
    fields
        The columns the rule may name, with their types.
    origin
        Where the rule came from (a file name), quoted in error messages.

    Returns
    -------
    pl.Expr
        True where the rule matches, never null.

    Raises
    ------
    InputFormatError
        The rule uses something this converter does not support: a keyword detection,
        a field not in ``fields``, an unsupported modifier, a value that does not fit
        the column's type, or a regular expression Polars cannot run.

    Examples
    --------
    >>> rule = SigmaRule.from_yaml('''
    ... title: Nurses
    ... logsource: {product: ehr, category: record_access}
    ... detection:
    ...   sel: {user_role|contains: NURSE}
    ...   condition: sel
    ... ''')
    >>> frame = pl.DataFrame({"user_role": ["registered nurse", "porter", None]})
    >>> frame.select(rule_expression(rule, {"user_role": pl.String()})).to_series().to_list()
    [True, False, False]
    """
    try:
        _check_modifiers(rule.detection.detections.values())
        trees = [condition.parse() for condition in rule.detection.parsed_condition]
        expressions = [_convert(tree, fields) for tree in trees]
    except _Refused as refused:
        raise InputFormatError(f"{origin}: {refused}") from None
    except SigmaError as error:
        raise InputFormatError(f"{origin}: {_one_line(str(error))}") from None
    # Several conditions in one rule are alternatives (pySigma emits one query each).
    return expressions[0] if len(expressions) == 1 else pl.any_horizontal(expressions)


def _check_modifiers(detections: Iterable[SigmaDetection | SigmaDetectionItem]) -> None:
    for detection in detections:
        if isinstance(detection, SigmaDetection):
            _check_modifiers(detection.detection_items)
            continue
        for modifier in detection.modifiers:
            name = reverse_modifier_mapping.get(modifier.__name__, modifier.__name__)
            if name not in SUPPORTED_MODIFIERS:
                raise _Refused(
                    f"the modifier '{name}' on field '{detection.field}' is not supported "
                    f"(supported: {', '.join(sorted(SUPPORTED_MODIFIERS))})"
                )


def _convert(node: object, fields: Mapping[str, pl.DataType]) -> pl.Expr:
    if isinstance(node, ConditionAND):
        return pl.all_horizontal([_convert(arg, fields) for arg in node.args])
    if isinstance(node, ConditionOR):
        return _convert_or(node.args, fields)
    if isinstance(node, ConditionNOT):
        return ~_convert(node.args[0], fields)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_test(node.field, node.value, fields)
    if isinstance(node, ConditionValueExpression):
        raise _Refused(
            f"the keyword detection '{node.value}' names no field; "
            "write it as 'field: value' (keyword search is not supported)"
        )
    raise _Refused(f"the condition element {type(node).__name__} is not supported")


def _convert_or(args: list[object], fields: Mapping[str, pl.DataType]) -> pl.Expr:
    # A value list on one field ("action: [print, export]") is the commonest OR; one
    # is_in over the lower-cased column is cheaper than one comparison per value.
    plain: dict[str, list[str]] = {}
    others: list[pl.Expr] = []
    for arg in args:
        if (
            isinstance(arg, ConditionFieldEqualsValueExpression)
            and type(arg.value) is SigmaString
            and not arg.value.contains_special()
            and _kind(arg.field, fields) == "text"
        ):
            plain.setdefault(arg.field, []).append(_literal(arg.value).lower())
        else:
            others.append(_convert(arg, fields))
    for field, values in plain.items():
        text = pl.col(field).cast(pl.String).str.to_lowercase()
        test = text == values[0] if len(values) == 1 else text.is_in(values)
        others.append(test.fill_null(False))
    return others[0] if len(others) == 1 else pl.any_horizontal(others)


def _kind(field: str, fields: Mapping[str, pl.DataType]) -> str:
    if field not in fields:
        close = get_close_matches(field, list(fields), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise _Refused(f"the field '{field}' is not a column of the access frame{hint}")
    dtype = fields[field]
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():
        return "number"
    if dtype in (pl.String, pl.Categorical, pl.Enum):
        return "text"
    return dtype.base_type().__name__.lower()


def _field_test(field: str, value: object, fields: Mapping[str, pl.DataType]) -> pl.Expr:
    kind = _kind(field, fields)
    column = pl.col(field)
    if isinstance(value, SigmaNull):
        return column.is_null()
    if isinstance(value, SigmaBool):
        if kind != "boolean":
            raise _Refused(
                f"the field '{field}' is {kind}, not true/false; got {str(value.boolean).lower()}"
            )
        return column.eq(value.boolean).fill_null(False)
    if isinstance(value, SigmaCompareExpression):
        if kind != "number":
            raise _Refused(f"the field '{field}' is {kind}; gt/gte/lt/lte need a number field")
        return _COMPARISONS[value.op](column, value.number.number).fill_null(False)
    if isinstance(value, SigmaNumber):
        if kind == "number":
            return column.eq(value.number).fill_null(False)
        if kind == "text":
            return _string_test(field, SigmaString(str(value.number)), cased=False)
        raise _Refused(f"the field '{field}' is {kind}; got the number {value.number}")
    if isinstance(value, SigmaRegularExpression):
        if kind != "text":
            raise _Refused(f"the field '{field}' is {kind}; 're' needs a text field")
        return _regex_test(field, value)
    if isinstance(value, SigmaString):
        if kind == "boolean":
            raise _Refused(
                f"the field '{field}' is true/false; write true or false without quotes, "
                f"not '{value}'"
            )
        if kind != "text":
            raise _Refused(f"the field '{field}' is {kind}; got the text '{value}'")
        return _string_test(field, value, cased=isinstance(value, SigmaCasedString))
    raise _Refused(f"the value {value!r} of field '{field}' is not supported")


def _literal(value: SigmaString) -> str:
    return "".join(part for part in value.s if isinstance(part, str))


def _string_test(field: str, value: SigmaString, *, cased: bool) -> pl.Expr:
    parts = value.s
    if any(not isinstance(part, str | SpecialChars) for part in parts):
        raise _Refused(f"the value '{value}' of field '{field}' holds a placeholder")
    text = pl.col(field).cast(pl.String)
    if not cased:
        text = text.str.to_lowercase()
    star = SpecialChars.WILDCARD_MULTI
    inner = parts[1:-1] if len(parts) >= 2 and parts[0] == star and parts[-1] == star else None
    # The common shapes get Polars' literal string kernels; the rest becomes a regex.
    if not value.contains_special():
        test = text == _fold(_literal(value), cased)
    elif inner is not None and all(isinstance(part, str) for part in inner):
        test = text.str.contains(_fold(_literal(value), cased), literal=True)
    elif parts[-1] == star and all(isinstance(part, str) for part in parts[:-1]):
        test = text.str.starts_with(_fold(_literal(value), cased))
    elif parts[0] == star and all(isinstance(part, str) for part in parts[1:]):
        test = text.str.ends_with(_fold(_literal(value), cased))
    else:
        pattern = "".join(
            ".*"
            if part == star
            else "."
            if part == SpecialChars.WILDCARD_SINGLE
            else pl.escape_regex(_fold(str(part), cased))
            for part in parts
        )
        # (?s): a wildcard stands for any character, line breaks included.
        test = text.str.contains(rf"(?s)\A(?:{pattern})\z")
    return test.fill_null(False)


def _fold(text: str, cased: bool) -> str:
    return text if cased else text.lower()


def _regex_test(field: str, value: SigmaRegularExpression) -> pl.Expr:
    flags = "".join(sorted(_REGEX_FLAGS[flag] for flag in value.flags))
    prefix = f"(?{flags})" if flags else ""
    # \A and \z rather than ^ and $: with the m flag those would anchor at each line.
    pattern = rf"{prefix}\A(?:{value.regexp.to_plain(regex=True)})\z"
    try:
        pl.select(pl.lit("", dtype=pl.String).str.contains(pattern))
    except pl.exceptions.PolarsError as error:
        # pySigma checked the pattern with Python's re; Polars' engine has no
        # look-around and no back-references, so say so now rather than at run time.
        detail = next((line for line in str(error).splitlines() if line.startswith("error:")), "")
        raise _Refused(
            f"the regular expression '{value.regexp.to_plain(regex=True)}' of field '{field}' "
            f"cannot run in Polars ({detail.removeprefix('error: ') or 'invalid pattern'})"
        ) from None
    return pl.col(field).cast(pl.String).str.contains(pattern).fill_null(False)


def _one_line(message: str) -> str:
    return " ".join(message.split())
