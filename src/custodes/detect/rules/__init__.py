"""Sigma rules for EHR access logs, evaluated in-process over a Polars frame.

``RuleSet.default()`` loads the pack shipped under ``pack/``; ``RuleSet.load(paths)``
loads a site's own rules. See ``docs/rules.md`` for how to write one.
"""

from custodes.detect.rules.ruleset import (
    LEVEL_WEIGHTS,
    LOGSOURCE,
    RULE_FIELDS,
    Rule,
    RuleSet,
    parse_rules,
)
from custodes.detect.rules.sigma_polars import SUPPORTED_MODIFIERS, rule_expression

__all__ = [
    "LEVEL_WEIGHTS",
    "LOGSOURCE",
    "RULE_FIELDS",
    "SUPPORTED_MODIFIERS",
    "Rule",
    "RuleSet",
    "parse_rules",
    "rule_expression",
]
