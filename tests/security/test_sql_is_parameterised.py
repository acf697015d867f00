"""SQL is built only with parameters: no f-string, ``%`` formatting, ``.format`` or ``+``
concatenation may produce text that reads as SQL anywhere in Refundry's code (the
packages ``ledger``, ``providers``, ``handlers``, ``workers``). Identifiers that must vary
(the PostgreSQL schema) go through ``psycopg.sql``'s composition, which this allows.

Read with ``ast``: a string built at run time whose literal parts hold an SQL statement's
shape (``SELECT … FROM``, ``INSERT INTO``, ``UPDATE … SET``, ``DELETE FROM``, DDL, ``SET
search_path``) fails the build, naming the file and line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "providers", "handlers", "workers")
SQL_SHAPE = re.compile(
    r"\b(select\b[\s\S]*\bfrom|insert\s+into|update\b[\s\S]*\bset|delete\s+from|"
    r"create\s+(table|index|schema)|alter\s+table|drop\s+(table|schema)|set\s+search_path|"
    r"where\b[\s\S]*(=|\blike\b|\bin\b))",
    re.IGNORECASE,
)


def _literal_text(node: ast.AST) -> str:
    """The literal parts of a string being built (the holes left out)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return " ".join(_literal_text(v) for v in node.values)
    if isinstance(node, ast.BinOp):
        return _literal_text(node.left) + " " + _literal_text(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return _literal_text(node.func.value)
    return ""


def _built_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, literal text) of every string built at run time."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) for v in node.values
        ):
            found.append((node.lineno, _literal_text(node)))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
            text = _literal_text(node)
            if text.strip():
                found.append((node.lineno, text))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
        ):
            found.append((node.lineno, _literal_text(node)))
    return found


def string_built_sql(source: str) -> list[tuple[int, str]]:
    """Lines where ``source`` builds SQL text from values at run time."""
    return [
        (line, text) for line, text in _built_strings(ast.parse(source)) if SQL_SHAPE.search(text)
    ]


def test_no_sql_is_built_by_string_formatting_or_concatenation() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {text.strip()[:80]!r}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, text in string_built_sql(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "SQL built from strings:\n" + "\n".join(offenders)


def test_the_check_sees_each_way_of_building_sql() -> None:
    """The check is not vacuous: each way of building SQL from a value is caught, and
    parameters and psycopg's composition are not."""
    built = [
        'q = f"SELECT * FROM entries WHERE id = {entry_id}"',
        'q = "SELECT * FROM entries WHERE id = %s" % entry_id',
        'q = "DELETE FROM inbox WHERE id = " + inbox_id',
        'q = "UPDATE accounts SET balance = {}".format(n)',
        'q = f"SET search_path TO {schema}"',
        'conn.execute(f"INSERT INTO t (a) VALUES ({a})")',
    ]
    for source in built:
        assert string_built_sql(source), source
    safe = [
        'conn.execute("SELECT * FROM entries WHERE id = %s", (entry_id,))',
        'tx.one("account_balance", account_id=account)',
        'conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))',
        'message = f"refund of {credits} credits from {account}"',
    ]
    for source in safe:
        assert not string_built_sql(source), source
