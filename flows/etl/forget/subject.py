"""Who is erased, and how a value, a record or a text is recognised as theirs (pure functions).

One definition serves the erasure and its verification: the subject's id in an id column (or as
a JSON member in raw text), and each identifying value (an email) as a whole token anywhere.
The patterns use only syntax that Python, Arrow (RE2) and Delta (Rust regex) read alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from flows.core.lineage import fingerprint

ERASED = "[erased]"
_REGEX_SPECIALS = frozenset("\\.^$*+?()[]{}|")
_TOKEN_CHARACTERS = "A-Za-z0-9_.+-"


@dataclass(frozen=True)
class Subject:
    """The person to erase: an id in `id_column`, and the identifying values found for it."""

    id_column: str
    id: int
    identifying: tuple[str, ...] = ()

    @property
    def id_text(self) -> str:
        return str(self.id)

    @property
    def reference(self) -> str:
        """A pseudonym for records and logs: it proves which request was served without the id."""
        return fingerprint("erasure-subject", self.id_column, self.id_text)

    @cached_property
    def value_pattern(self) -> str | None:
        """Finds an identifying value as a whole token (not inside a longer address), any case."""
        if not self.identifying:
            return None
        alternatives = "|".join(escaped(v) for v in sorted(set(self.identifying)))
        edge = f"[^{_TOKEN_CHARACTERS}]"
        return f"(?i)(^|{edge})({alternatives})($|{edge})"

    @property
    def _bare_value_pattern(self) -> str | None:
        return self.value_pattern.removeprefix("(?i)") if self.value_pattern else None

    @cached_property
    def member_pattern(self) -> str:
        """Finds the id as a JSON member of raw text, e.g. `"customer_id": 7` or `"7"`."""
        return f'"{escaped(self.id_column)}"\\s*:\\s*"?\\s*{self.id}\\s*"?\\s*[,}}]'

    @cached_property
    def text_pattern(self) -> str:
        """Either pattern: what marks a piece of raw text as the subject's."""
        patterns = (self._bare_value_pattern, self.member_pattern)
        return "(?i)" + "|".join(f"({p})" for p in patterns if p)

    def in_text(self, text: str, *, members: bool = True) -> int:
        """How many times the subject shows in `text` (JSON id members only when `members`)."""
        pattern = self.text_pattern if members else self.value_pattern
        return len(re.findall(pattern, text)) if pattern else 0

    def redact(self, text: str) -> str:
        """`text` with each identifying value and each JSON id member replaced by `[erased]`."""
        for value in self.identifying:
            text = re.sub(escaped(value), ERASED, text, flags=re.IGNORECASE)
        return re.sub(
            self.member_pattern,
            lambda found: f'"{self.id_column}": "{ERASED}"{found.group(0)[-1]}',
            text,
            flags=re.IGNORECASE,
        )

    def owns(self, record: Mapping[str, Any]) -> bool:
        """Whether a delivered record is the subject's: their id, or a value of theirs anywhere."""
        if _text(record.get(self.id_column)).strip() == self.id_text:
            return True
        return any(self.in_text(_text(value)) for value in record.values())


def escaped(value: str) -> str:
    """`value` as a literal in a regular expression."""
    return "".join(f"\\{c}" if c in _REGEX_SPECIALS else c for c in value)


def identifying_values(found: Iterable[Iterable[str | None]]) -> tuple[str, ...]:
    """The distinct non-empty values found for the subject, sorted."""
    return tuple(sorted({v.strip() for values in found for v in values if v and v.strip()}))


def stored_id(is_text: bool, subject: Subject) -> int | str:
    """The id as the column stores it: raw layers keep delivered values as strings."""
    return subject.id_text if is_text else subject.id


def _text(value: Any) -> str:
    return "" if value is None else str(value)
