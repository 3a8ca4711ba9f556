"""Multi-valued HTTP headers as policies read them.

HTTP allows a header to appear on several field lines (two ``set-cookie`` lines must stay
two), so a plain ``dict[str, str]`` loses information. :class:`Headers` keeps every field
line while still behaving like the ``Mapping[str, str]`` policies written against the
original SDK expect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TypeAlias

HeaderValue: TypeAlias = str | Sequence[str]
"""One header value, or several field lines for the same name."""

HeaderInput: TypeAlias = Mapping[str, HeaderValue] | Iterable[tuple[str, str]]
"""What :class:`Headers` can be built from: a mapping or ``(name, value)`` field lines."""


def header_values(value: HeaderValue) -> list[str]:
    """The field-line values of ``value``: a plain string is one line, a sequence is several."""
    if isinstance(value, str):
        return [value]
    return list(value)


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive view of HTTP headers.

    Looking a name up (``headers[name]``, ``headers.get(name)``) returns every value of the
    header joined with ``", "``, like the Fetch API's ``Headers.get`` (RFC 9110 §5.3). Use
    :meth:`get_all` for headers whose values must not be joined, such as ``set-cookie``.
    Iteration yields each distinct name once, lower-cased, in first-seen order; ``len()``
    counts distinct names.

    The executor builds a fresh instance for every policy call, so a policy cannot change
    the headers another policy sees except through the action it returns.
    """

    __slots__ = ("_fields",)

    def __init__(self, headers: HeaderInput | None = None) -> None:
        """Builds headers from a mapping (values may be lists) or from ``(name, value)`` lines.

        Names are lower-cased; repeated names keep every value, in order.
        """
        fields: dict[str, list[str]] = {}
        if isinstance(headers, Headers):  # copy field lines; items() would join them
            fields = headers.to_dict()
        elif headers is not None:
            pairs: Iterable[tuple[str, str]]
            if isinstance(headers, Mapping):
                pairs = [(name, v) for name, value in headers.items() for v in header_values(value)]
            else:
                pairs = headers
            for name, value in pairs:
                fields.setdefault(name.lower(), []).append(value)
        self._fields = fields

    @classmethod
    def of_fields(cls, fields: Mapping[str, Sequence[str]]) -> Headers:
        """Headers from field lines already grouped by lower-case name (the executor's own form).

        The lists are copied: later changes to ``fields`` do not show through.
        """
        headers = cls.__new__(cls)
        headers._fields = {name: list(values) for name, values in fields.items()}
        return headers

    def __getitem__(self, name: str) -> str:
        """Every value of ``name`` joined with ``", "``; ``KeyError`` when absent."""
        if not isinstance(name, str):
            raise KeyError(name)
        values = self._fields.get(name.lower())
        if values is None:
            raise KeyError(name)
        return ", ".join(values)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __repr__(self) -> str:
        return f"Headers({self.to_dict()!r})"

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, one per field line, in order (empty when absent)."""
        return list(self._fields.get(name.lower(), ()))

    def field_lines(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` field line, in order; names are lower-case."""
        return [(name, value) for name, values in self._fields.items() for value in values]

    def to_dict(self) -> dict[str, list[str]]:
        """A plain ``name -> values`` dict, handy for logging and JSON."""
        return {name: list(values) for name, values in self._fields.items()}
