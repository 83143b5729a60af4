"""Call-centre quality checks: rules (``rules``), the checker (``matcher``), reports (``report``) and the service
functions every entry point calls (``service``). Rules and hits are stored by funasr_webui.history (all SQL)."""

from __future__ import annotations

from .matcher import CallText, Checker, check, normalize
from .rules import KINDS, Hit, Rule, parse_rules, rule_from_dict

__all__ = ["KINDS", "CallText", "Checker", "Hit", "Rule", "check", "normalize", "parse_rules", "rule_from_dict"]
