"""Access: the policy decision point. ``decide()`` is pure; the default is deny."""

from custodes.access.policy import (
    BREAK_GLASS_LIMIT,
    AccessRequest,
    BreakGlass,
    ConsentDirective,
    Decision,
    Obligation,
    decide,
)
from custodes.access.relationship import care_relationship
from custodes.access.roles import ROLE_POLICIES, RolePolicy, Sensitive

__all__ = [
    "BREAK_GLASS_LIMIT",
    "ROLE_POLICIES",
    "AccessRequest",
    "BreakGlass",
    "ConsentDirective",
    "Decision",
    "Obligation",
    "RolePolicy",
    "Sensitive",
    "care_relationship",
    "decide",
]
