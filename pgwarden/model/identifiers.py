"""SQL text: quoting identifiers and literals for remediation SQL and messages.

A name may hold any character but NUL: line breaks, escape sequences, right-to-left
overrides, zero-width spaces. Written raw into a script, a report or a terminal, such a
name would run escape codes when the file is shown, or reorder the SQL around it as it
is read. Names that are not all printable are written with escapes PostgreSQL reads
back to the same name (``U&"…\\001B…"`` identifiers, ``E'…\\u001B…'`` literals), and text
for people (messages, SQL comments) shows them escaped (``printable``).
"""

from __future__ import annotations

import re
from functools import lru_cache


def quote_ident(identifier: str) -> str:
    """Quote an SQL identifier when PostgreSQL would need it (as ``quote_ident`` does);
    one holding a character that is not printable, as a Unicode-escaped identifier."""
    # Most names are plain lower-case words, answered here without the cache: a wide
    # database's 100,000 table names would each miss it and push out the roles.
    if (
        identifier.isascii()
        and identifier.islower()
        and identifier.isidentifier()
        and identifier not in _KEYWORDS
    ):
        return identifier
    return _quoted(identifier)


# Cached: remediation SQL names the same roles and databases tens of thousands of times.
@lru_cache(maxsize=65_536)
def _quoted(identifier: str) -> str:
    if _PLAIN_IDENTIFIER.match(identifier) and identifier not in _KEYWORDS:
        return identifier
    quoted = identifier.replace('"', '""')
    if identifier.isprintable():
        return f'"{quoted}"'
    return 'U&"' + "".join(_escaped(c, _U_SHORT, _U_LONG) for c in quoted) + '"'


def quote_literal(value: str) -> str:
    """Quote an SQL string literal; one holding a backslash or a character that is not
    printable, as an escape string (``E'…'``: read the same whatever
    standard_conforming_strings says)."""
    quoted = value.replace("'", "''")
    if value.isprintable() and "\\" not in value:
        return f"'{quoted}'"
    return "E'" + "".join(_escaped(c, _E_SHORT, _E_LONG) for c in quoted) + "'"


def regrole(role: str) -> str:
    """SQL naming ``role``'s OID: its name, quoted as an identifier, in a ``regrole``
    literal (``'"My Role"'::regrole``)."""
    return f"{quote_literal(quote_ident(role))}::regrole"


def printable(text: str) -> str:
    """``text`` with every character that is not printable escaped as Python writes it
    (``\\n``, ``\\x1b``, ``\\u202e``): for messages and SQL comments, where a name must
    not break the line, run an escape code or turn the text around it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


# How a code point is written in a U&"…" identifier and in an E'…' string.
_U_SHORT, _U_LONG = "\\{:04X}", "\\+{:06X}"
_E_SHORT, _E_LONG = "\\u{:04X}", "\\U{:08X}"


def _escaped(char: str, short: str, long: str) -> str:
    # The backslash is the escape in both: itself doubled, and a character that is
    # not printable written by its code point.
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    code = ord(char)
    return (short if code <= 0xFFFF else long).format(code)


_PLAIN_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# PostgreSQL's reserved, type/function-name and column-name keywords (pg_get_keywords()
# with catcode <> 'U'): these cannot stand bare where a role or database name goes.
_KEYWORDS = frozenset(
    [
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "authorization",
        "between",
        "bigint",
        "binary",
        "bit",
        "boolean",
        "both",
        "case",
        "cast",
        "char",
        "character",
        "check",
        "coalesce",
        "collate",
        "collation",
        "column",
        "concurrently",
        "constraint",
        "create",
        "cross",
        "current_catalog",
        "current_date",
        "current_role",
        "current_schema",
        "current_time",
        "current_timestamp",
        "current_user",
        "dec",
        "decimal",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "exists",
        "extract",
        "false",
        "fetch",
        "float",
        "for",
        "foreign",
        "freeze",
        "from",
        "full",
        "grant",
        "greatest",
        "group",
        "grouping",
        "having",
        "ilike",
        "in",
        "initially",
        "inner",
        "inout",
        "int",
        "integer",
        "intersect",
        "interval",
        "into",
        "is",
        "isnull",
        "join",
        "lateral",
        "leading",
        "least",
        "left",
        "like",
        "limit",
        "localtime",
        "localtimestamp",
        "national",
        "natural",
        "nchar",
        "none",
        "normalize",
        "not",
        "notnull",
        "null",
        "nullif",
        "numeric",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "out",
        "outer",
        "overlaps",
        "overlay",
        "placing",
        "position",
        "precision",
        "primary",
        "public",
        "real",
        "references",
        "returning",
        "right",
        "row",
        "select",
        "session_user",
        "setof",
        "similar",
        "smallint",
        "some",
        "substring",
        "symmetric",
        "table",
        "tablesample",
        "then",
        "time",
        "timestamp",
        "to",
        "trailing",
        "treat",
        "trim",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "values",
        "varchar",
        "variadic",
        "verbose",
        "when",
        "where",
        "window",
        "with",
        "xmlattributes",
        "xmlconcat",
        "xmlelement",
        "xmlexists",
        "xmlforest",
        "xmlnamespaces",
        "xmlparse",
        "xmlpi",
        "xmlroot",
        "xmlserialize",
        "xmltable",
    ]
)


def setting_list(value: str) -> list[str]:
    """The names of a list-valued setting (``shared_preload_libraries``, ``log_destination``):
    comma-separated, each maybe double-quoted; lower-cased, as PostgreSQL folds them."""
    names: list[str] = []
    for part in value.split(","):
        name = part.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1]
        elif name:
            name = name.lower()
        if name:
            names.append(name)
    return names
