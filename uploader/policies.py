"""Per-source policies for lead quality and privacy: Conversion Leads, consent,
Limited Data Use and cancellations. Declared here, read from ``[[sources]]``
sub-tables by ``uploader.settings``, applied by the mapping engine and the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Meta lists these US states for Limited Data Use in Business Tools (marketing-api/data-processing-options).
DEFAULT_LDU_STATES = frozenset({"ca", "co", "ct", "fl", "tx", "or", "mt"})
CONSENT_POLICIES = ("require", "unless_denied")
LDU_MODES = ("never", "always", "by_region")
CANCELLATION_POLICIES = ("ignore", "report")


@dataclass(frozen=True)
class ConversionLeads:
    """Meta's CRM integration for Lead Ads leads: one event per CRM stage, keyed by lead_id."""

    crm_name: str
    ladder: tuple[str, ...] = ()  # event names from the raw lead to the last stage


@dataclass(frozen=True)
class ConsentPolicy:
    """``require``: only rows whose consent says yes are sent. ``unless_denied``: every row
    but those whose consent says no (the default whenever a consent column is present)."""

    policy: str = "unless_denied"
    column: str = "consent"


@dataclass(frozen=True)
class LduPolicy:
    """When to flag events for Limited Data Use."""

    mode: str = "never"
    states: frozenset[str] = DEFAULT_LDU_STATES


@dataclass(frozen=True)
class CancellationPolicy:
    """A conversion cancelled before it was sent is never sent. One cancelled after it was
    sent is left alone (``ignore``) or reported as ``event_name`` with the refunded value."""

    policy: str = "ignore"
    event_name: str = "Refund"


POLICY_KEYS = frozenset({"conversion_leads", "consent", "ldu", "cancellations"})


def source_policies(item: Mapping[str, Any], prefix: str, problems: list[str]) -> dict[str, Any]:
    """The four policy sub-tables of one ``[[sources]]`` entry, checked; every problem is appended."""
    return {
        "conversion_leads": _conversion_leads(_sub(item, "conversion_leads", prefix, problems), prefix, problems),
        "consent": _consent(_sub(item, "consent", prefix, problems), prefix, problems),
        "ldu": _ldu(_sub(item, "ldu", prefix, problems), prefix, problems),
        "cancellations": _cancellations(_sub(item, "cancellations", prefix, problems), prefix, problems),
    }


def _sub(item: Mapping[str, Any], key: str, prefix: str, problems: list[str]) -> dict[str, Any] | None:
    value = item.get(key)
    if value is not None and not isinstance(value, dict):
        problems.append(f"{prefix}{key}: must be a table ([sources.{key}])")
        return None
    return value


def _conversion_leads(table: dict[str, Any] | None, prefix: str, problems: list[str]) -> ConversionLeads | None:
    if table is None:
        return None
    where = f"{prefix}conversion_leads."
    _only(table, {"crm_name", "ladder"}, where, problems)
    name = table.get("crm_name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f'{where}crm_name: missing (the CRM\'s name, sent as lead_event_source, e.g. "HubSpot")')
        name = ""
    ladder = table.get("ladder", [])
    if not isinstance(ladder, list) or not all(isinstance(s, str) and s for s in ladder) \
            or len(set(ladder)) != len(ladder):
        problems.append(f'{where}ladder: must list distinct event names in order, e.g. ["Lead", "Qualified", "Won"]')
        ladder = []
    return ConversionLeads(name.strip(), tuple(ladder))


def _consent(table: dict[str, Any] | None, prefix: str, problems: list[str]) -> ConsentPolicy:
    if table is None:
        return ConsentPolicy()
    where = f"{prefix}consent."
    _only(table, {"policy", "column"}, where, problems)
    policy = _choice(table, "policy", CONSENT_POLICIES, "unless_denied", where, problems)
    column = table.get("column", "consent")
    if not isinstance(column, str) or not column.strip():
        problems.append(f"{where}column: must name the column holding consent (default \"consent\")")
        column = "consent"
    return ConsentPolicy(policy, column.strip())


def _ldu(table: dict[str, Any] | None, prefix: str, problems: list[str]) -> LduPolicy:
    if table is None:
        return LduPolicy()
    where = f"{prefix}ldu."
    _only(table, {"mode", "states"}, where, problems)
    mode = _choice(table, "mode", LDU_MODES, "never", where, problems)
    states = table.get("states", sorted(DEFAULT_LDU_STATES))
    if not isinstance(states, list) or not all(isinstance(s, str) and len(s.strip()) == 2 for s in states):
        problems.append(f'{where}states: must list two-letter US state codes, e.g. ["CA", "CO"]')
        states = sorted(DEFAULT_LDU_STATES)
    return LduPolicy(mode, frozenset(s.strip().lower() for s in states))


def _cancellations(table: dict[str, Any] | None, prefix: str, problems: list[str]) -> CancellationPolicy:
    if table is None:
        return CancellationPolicy()
    where = f"{prefix}cancellations."
    _only(table, {"policy", "event_name"}, where, problems)
    policy = _choice(table, "policy", CANCELLATION_POLICIES, "ignore", where, problems)
    name = table.get("event_name", "Refund")
    if not isinstance(name, str) or not name.strip() or name.strip() == "Purchase":
        problems.append(f'{where}event_name: must be a custom event name such as "Refund" (never Purchase)')
        name = "Refund"
    return CancellationPolicy(policy, name.strip())


def _choice(table: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str, where: str,
            problems: list[str]) -> str:
    value = table.get(key, default)
    if value not in allowed:
        problems.append(f"{where}{key}: {value!r} must be one of {', '.join(repr(a) for a in allowed)}")
        return default
    return value


def _only(table: Mapping[str, Any], known: set[str], where: str, problems: list[str]) -> None:
    for key in sorted(set(table) - known):
        problems.append(f"{where}{key}: unknown setting (known: {', '.join(sorted(known))})")
