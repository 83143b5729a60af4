"""The quality-check functions the page, the API and the CLI call (over the history's rules and hits)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import UserError
from ..history import HistoryError, HistoryStore, Record
from ..transcript import Transcript
from .matcher import CallText, Checker
from .report import render_report
from .rules import Hit, Located, Rule, dump_rules, parse_rules, rule_from_dict

log = logging.getLogger(__name__)

HOTWORDS_SETTING = "hotwords"
# Whether the active rules' phrases go to the engine as hotwords when the switch was never set: on, because measured
# on every shared recording, English speech, noise and near silence, the embedded engine with a call centre's rule
# phrases as hotwords wrote none of them into a call that did not say them (bench/RESULTS.md, "issue 12").
HOTWORDS_DEFAULT = True


class QaService:
    def __init__(self, history: HistoryStore, itn: Callable[[str], str] | None = None) -> None:
        self.history = history
        self.itn = itn
        self._cache: tuple[tuple, Checker] | None = None

    # ---- rules

    def rules(self) -> list[Rule]:
        return self.history.rules()

    def active_rules(self) -> list[Rule]:
        return self.history.rules(enabled_only=True)

    def rule(self, rule_id: int) -> Rule:
        rule = self.history.rule(rule_id)
        if rule is None:
            raise UserError("rule_not_found", id=rule_id)
        return rule

    def add_rule(self, data: dict[str, Any]) -> Rule:
        rule = rule_from_dict({k: v for k, v in data.items() if k != "id"})
        try:
            rule.id = self.history.add_rule(rule)
        except ValueError:
            raise UserError("rule_exists", rule=rule.name) from None
        return rule

    def update_rule(self, rule_id: int, data: dict[str, Any]) -> Rule:
        self.rule(rule_id)
        rule = rule_from_dict({k: v for k, v in data.items() if k != "id"})
        try:
            if not self.history.update_rule(rule_id, rule):
                raise UserError("rule_not_found", id=rule_id)
        except ValueError:
            raise UserError("rule_exists", rule=rule.name) from None
        rule.id = rule_id
        return rule

    def delete_rule(self, rule_id: int) -> None:
        if not self.history.delete_rule(rule_id):
            raise UserError("rule_not_found", id=rule_id)

    def import_rules(self, text: str | bytes, replace: bool = False) -> tuple[int, int, int]:
        """A rules file (JSON list): every rule is checked first, so a bad one changes nothing."""
        return self.history.import_rules(parse_rules(text), replace=replace)

    def export_rules(self) -> str:
        return dump_rules(self.rules())

    # ---- the hotword switch

    def hotwords_on(self) -> bool:
        value = self.history.qa_setting(HOTWORDS_SETTING)
        return HOTWORDS_DEFAULT if value is None else value == "on"

    def set_hotwords(self, on: bool) -> None:
        self.history.set_qa_setting(HOTWORDS_SETTING, "on" if on else "off")

    def hotwords(self, words: list[str], limit: int) -> list[str]:
        """``words`` plus the active rules' phrases when the switch is on, up to ``limit`` in all."""
        try:
            if not self.hotwords_on():
                return words
            phrases = [p for r in self.active_rules() for p in r.phrases]
        except HistoryError as e:  # the history cannot be read: transcribe with the user's words
            log.error("could not read the quality rules: %s", e)
            return words
        out = list(words)
        for p in phrases:
            if len(out) >= limit:
                break
            if p not in out:
                out.append(p)
        return out

    # ---- checking

    def checker(self, rules: list[Rule] | None = None) -> Checker:
        rules = self.active_rules() if rules is None else rules
        key = tuple((r.id, r.name, r.kind, tuple(r.phrases), r.within_s, r.speaker) for r in rules)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, Checker(rules, self.itn))
        return self._cache[1]

    def check(self, transcript: Transcript) -> list[Hit] | None:
        """The hits of a new transcript against the active rules; None when there are none (not checked)."""
        try:
            rules = self.active_rules()
        except HistoryError as e:
            log.error("could not read the quality rules: %s", e)
            return None
        if not rules:
            return None
        call = CallText(transcript.segments, transcript.raw_text, transcript.duration)
        return self.checker(rules).check(call, transcript.itn)

    def apply(
        self, date_from: Any = None, date_to: Any = None, progress: Callable[[int], None] | None = None
    ) -> tuple[int, int]:
        """Check the stored records of a date range again with the active rules: (records, hits)."""
        return self.history.apply_rules(self.checker(), date_from=date_from, date_to=date_to, progress=progress)

    # ---- results

    def hits(self, ids: Iterable[int]) -> dict[int, list[Hit]]:
        return self.history.hits(ids)

    def report(self, date_from: Any = None, date_to: Any = None, rule: str | None = None) -> list[Located]:
        return self.history.qa_report(date_from=date_from, date_to=date_to, rule=rule)

    def report_file(self, fmt: str, date_from: Any = None, date_to: Any = None, rule: str | None = None) -> bytes:
        return render_report(self.report(date_from, date_to, rule), fmt)

    def summary(self, date_from: Any = None, date_to: Any = None) -> dict[str, Any]:
        return self.history.qa_summary(date_from=date_from, date_to=date_to)

    def flagged(
        self, date_from: Any = None, date_to: Any = None, rule: str | None = None, limit: int = 200
    ) -> list[tuple[Record, list[Hit]]]:
        return self.history.flagged(date_from=date_from, date_to=date_to, rule=rule, limit=limit)

    def rule_names(self) -> list[str]:
        """The rules to filter the history by: today's rules, then names that only old hits carry."""
        names = [r.name for r in self.rules()]
        return names + [n for n in self.history.hit_rules() if n not in names]
