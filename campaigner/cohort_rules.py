"""The cohort allow-list: which parts of PostgreSQL's parse tree a cohort may use.

A cohort is untrusted text run every minute against the customer database, so
its parse tree (PostgreSQL's own grammar, via pglast) is walked node by node
and anything not listed here is refused: an allow-list, not a deny-list, so a
feature PostgreSQL adds tomorrow is refused until someone lists it.

Functions, operators and types are matched by name, unqualified or qualified by
`pg_catalog`; cohorts run with `search_path = pg_catalog, pg_temp`, so these
names can only resolve to PostgreSQL's built-ins (see cohort.reading).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pglast import ast, enums

BUILTIN_SCHEMA = "pg_catalog"

# Pure functions: no side effects, no session state, no reading of anything but
# their arguments (and the clock). Every overload of these names in pg_catalog
# is as harmless as the one an operator has in mind.
STRING_FUNCTIONS = frozenset({
    "ascii", "bit_length", "btrim", "char_length", "character_length", "chr",
    "concat", "concat_ws", "initcap", "left", "length", "like_escape", "lower",
    "ltrim", "md5", "normalize", "is_normalized", "octet_length", "overlay",
    "position", "regexp_count", "regexp_instr", "regexp_like", "regexp_match",
    "regexp_replace", "regexp_substr", "replace", "reverse", "right", "rtrim",
    "similar_to_escape", "split_part", "starts_with", "strpos", "substr",
    "substring", "to_char", "to_number", "translate", "upper",
})  # fmt: skip
DATE_TIME_FUNCTIONS = frozenset({
    "age", "clock_timestamp", "date", "date_add", "date_bin", "date_part",
    "date_subtract", "date_trunc", "extract", "isfinite", "justify_days",
    "justify_hours", "justify_interval", "make_date", "make_interval",
    "make_time", "make_timestamp", "make_timestamptz", "now",
    "statement_timestamp", "timezone", "to_date", "to_timestamp",
    "transaction_timestamp",
})  # fmt: skip
MATH_FUNCTIONS = frozenset({
    "abs", "cbrt", "ceil", "ceiling", "div", "exp", "floor", "gcd", "lcm", "ln",
    "log", "log10", "mod", "num_nonnulls", "num_nulls", "pow", "power", "round",
    "sign", "sqrt", "trunc", "width_bucket",
})  # fmt: skip
JSON_FUNCTIONS = frozenset({
    "json_array_length", "json_extract_path", "json_extract_path_text",
    "json_typeof", "jsonb_array_length", "jsonb_build_array",
    "jsonb_build_object", "jsonb_contains", "jsonb_exists", "jsonb_exists_all",
    "jsonb_exists_any", "jsonb_extract_path", "jsonb_extract_path_text",
    "jsonb_path_exists", "jsonb_path_match", "jsonb_path_query_array",
    "jsonb_path_query_first", "jsonb_typeof", "to_jsonb",
})  # fmt: skip
ARRAY_FUNCTIONS = frozenset({
    "array_append", "array_cat", "array_length", "array_lower", "array_ndims",
    "array_position", "array_prepend", "array_remove", "array_to_string",
    "array_upper", "cardinality", "string_to_array",
})  # fmt: skip
ALLOWED_FUNCTIONS = (
    STRING_FUNCTIONS
    | DATE_TIME_FUNCTIONS
    | MATH_FUNCTIONS
    | JSON_FUNCTIONS
    | ARRAY_FUNCTIONS
)

# Built-in operator names: comparison, arithmetic, text and pattern, bit, array,
# JSON and JSON path. `!=` reaches the tree as `<>`.
ALLOWED_OPERATORS = frozenset({
    "=", "<>", "<", ">", "<=", ">=",
    "+", "-", "*", "/", "%", "^", "|/", "||/", "@", "&", "|", "#", "~", "<<", ">>",
    "||", "~~", "~~*", "!~~", "!~~*", "~*", "!~", "!~*", "^@",
    "@>", "<@", "&&", "->", "->>", "#>", "#>>", "?", "?|", "?&", "@?", "@@", "#-",
})  # fmt: skip

# Plain types a cohort may cast to, by the names the parser produces (`integer`
# arrives as pg_catalog.int4, `timestamp with time zone` as timestamptz, ...).
# Refused on purpose: reg* and oid types (they look up catalogs), xml, and
# every type outside pg_catalog.
ALLOWED_TYPES = frozenset({
    "bool", "boolean", "text", "varchar", "bpchar", "char", "int2", "int4",
    "int8", "int", "integer", "smallint", "bigint", "float4", "float8", "real",
    "numeric", "decimal", "date", "time", "timetz", "timestamp", "timestamptz",
    "interval", "json", "jsonb", "jsonpath", "uuid", "inet", "cidr",
})  # fmt: skip

# The SQL keywords that read the clock; current_user and friends are refused.
ALLOWED_VALUE_FUNCTIONS = {
    enums.SQLValueFunctionOp.SVFOP_CURRENT_DATE: "current_date",
    enums.SQLValueFunctionOp.SVFOP_CURRENT_TIME: "current_time",
    enums.SQLValueFunctionOp.SVFOP_CURRENT_TIME_N: "current_time",
    enums.SQLValueFunctionOp.SVFOP_CURRENT_TIMESTAMP: "current_timestamp",
    enums.SQLValueFunctionOp.SVFOP_CURRENT_TIMESTAMP_N: "current_timestamp",
    enums.SQLValueFunctionOp.SVFOP_LOCALTIME: "localtime",
    enums.SQLValueFunctionOp.SVFOP_LOCALTIME_N: "localtime",
    enums.SQLValueFunctionOp.SVFOP_LOCALTIMESTAMP: "localtimestamp",
    enums.SQLValueFunctionOp.SVFOP_LOCALTIMESTAMP_N: "localtimestamp",
}

# A_Expr kinds whose `name` is an operator to check; the others (BETWEEN and
# friends) carry a keyword there.
OPERATOR_KINDS = frozenset({
    enums.A_Expr_Kind.AEXPR_OP, enums.A_Expr_Kind.AEXPR_OP_ANY,
    enums.A_Expr_Kind.AEXPR_OP_ALL, enums.A_Expr_Kind.AEXPR_DISTINCT,
    enums.A_Expr_Kind.AEXPR_NOT_DISTINCT, enums.A_Expr_Kind.AEXPR_NULLIF,
    enums.A_Expr_Kind.AEXPR_IN, enums.A_Expr_Kind.AEXPR_LIKE,
    enums.A_Expr_Kind.AEXPR_ILIKE, enums.A_Expr_Kind.AEXPR_SIMILAR,
})  # fmt: skip
BETWEEN_KINDS = frozenset({
    enums.A_Expr_Kind.AEXPR_BETWEEN, enums.A_Expr_Kind.AEXPR_NOT_BETWEEN,
    enums.A_Expr_Kind.AEXPR_BETWEEN_SYM, enums.A_Expr_Kind.AEXPR_NOT_BETWEEN_SYM,
})  # fmt: skip

# How refused node types are named in messages; others by their pglast name.
NODE_NAMES = {
    "SubLink": "a sub-query",
    "SelectStmt": "a sub-query",
    "ParamRef": "a parameter ($n)",
    "SetToDefault": "DEFAULT",
    "CollateClause": "COLLATE",
    "GroupingFunc": "GROUPING",
    "XmlExpr": "an XML expression",
    "XmlSerialize": "an XML expression",
    "A_Star": "*",
    "JsonFuncExpr": "an SQL/JSON query function",
    "JsonIsPredicate": "IS JSON",
    "JsonObjectConstructor": "JSON_OBJECT",
    "JsonArrayConstructor": "JSON_ARRAY",
}


@dataclasses.dataclass(frozen=True)
class Violation:
    """What a cohort may not do, and where: `position` counts characters from 1."""

    what: str
    position: int | None

    def describe(self) -> str:
        where = f" (position {self.position})" if self.position else ""
        return f"{self.what}{where}"


class Refused(Exception):
    """Raised inside the walk; the caller turns it into InvalidCohort."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(violation.describe())
        self.violation = violation


def check_expression(
    node: ast.Node,
    *,
    offset: int,
    columns: Mapping[str, str] | None = None,
    table: str = "user_data",
) -> None:
    """Raise Refused at the first part of `node` outside the allow-list.

    `offset` is the length of the text put before the cohort to parse it, so
    positions count in the cohort's own text. With `columns` (the live
    table's), column references are checked against them too.
    """
    Walker(offset=offset, columns=columns, table=table).visit(node, None)


class Walker:
    """One walk over one cohort's parse tree."""

    def __init__(
        self, *, offset: int, columns: Mapping[str, str] | None, table: str
    ) -> None:
        self.offset = offset
        self.columns = columns
        self.table = table

    def refuse(self, what: str, node: Any, near: int | None) -> Refused:
        location = getattr(node, "location", None)
        if not isinstance(location, int) or location < 0:
            location = near
        position = location - self.offset + 1 if location is not None else None
        return Refused(Violation(what, position if position and position > 0 else None))

    def visit(self, node: Any, near: int | None) -> None:
        if node is None:
            return
        if isinstance(node, list | tuple):
            for item in node:
                self.visit(item, near)
            return
        location = getattr(node, "location", None)
        if isinstance(location, int) and location >= 0:
            near = location
        handler = getattr(self, f"visit_{type(node).__name__}", None)
        if handler is None:
            name = type(node).__name__
            raise self.refuse(
                f"{NODE_NAMES.get(name, name)} is not allowed", node, near
            )
        handler(node, near)

    # -- leaves -------------------------------------------------------------

    def visit_A_Const(self, node: ast.A_Const, near: int | None) -> None:
        pass

    def visit_ColumnRef(self, node: ast.ColumnRef, near: int | None) -> None:
        fields = node.fields or ()
        if any(not isinstance(field, ast.String) for field in fields):
            raise self.refuse("* is not allowed", node, near)
        names = [field.sval for field in fields]
        if len(names) != 1:
            raise self.refuse(
                f"{'.'.join(names)} names another table or schema; write the"
                " column name alone",
                node,
                near,
            )
        if self.columns is not None and names[0] not in self.columns:
            raise self.refuse(
                f"column {names[0]} is not a column of {self.table!r}", node, near
            )

    def visit_SQLValueFunction(
        self, node: ast.SQLValueFunction, near: int | None
    ) -> None:
        if node.op not in ALLOWED_VALUE_FUNCTIONS:
            name = getattr(node.op, "name", "a value function").removeprefix("SVFOP_")
            raise self.refuse(f"{name.lower()} is not allowed", node, near)

    # -- operators ----------------------------------------------------------

    def visit_A_Expr(self, node: ast.A_Expr, near: int | None) -> None:
        if node.kind in OPERATOR_KINDS:
            operator = builtin_name(node.name)
            if operator is None or operator not in ALLOWED_OPERATORS:
                spelled = ".".join(part.sval for part in node.name or ())
                raise self.refuse(f"operator {spelled} is not allowed", node, near)
        elif node.kind not in BETWEEN_KINDS:
            kind = getattr(node.kind, "name", "this expression")
            raise self.refuse(f"{kind} is not allowed", node, near)
        self.visit(node.lexpr, near)
        self.visit(node.rexpr, near)

    def visit_BoolExpr(self, node: ast.BoolExpr, near: int | None) -> None:
        self.visit(node.args, near)

    def visit_NullTest(self, node: ast.NullTest, near: int | None) -> None:
        self.visit(node.arg, near)

    def visit_BooleanTest(self, node: ast.BooleanTest, near: int | None) -> None:
        self.visit(node.arg, near)

    # -- conditional and constructed values ---------------------------------

    def visit_CaseExpr(self, node: ast.CaseExpr, near: int | None) -> None:
        self.visit([node.arg, node.args, node.defresult], near)

    def visit_CaseWhen(self, node: ast.CaseWhen, near: int | None) -> None:
        self.visit([node.expr, node.result], near)

    def visit_CoalesceExpr(self, node: ast.CoalesceExpr, near: int | None) -> None:
        self.visit(node.args, near)

    def visit_MinMaxExpr(self, node: ast.MinMaxExpr, near: int | None) -> None:
        self.visit(node.args, near)

    def visit_A_ArrayExpr(self, node: ast.A_ArrayExpr, near: int | None) -> None:
        self.visit(node.elements, near)

    def visit_RowExpr(self, node: ast.RowExpr, near: int | None) -> None:
        self.visit(node.args, near)

    def visit_A_Indirection(self, node: ast.A_Indirection, near: int | None) -> None:
        for step in node.indirection or ():
            if not isinstance(step, ast.A_Indices):
                raise self.refuse(
                    "field selection is not allowed; use -> or ->> on JSON",
                    node,
                    near,
                )
            self.visit([step.lidx, step.uidx], near)
        self.visit(node.arg, near)

    # -- functions and casts ------------------------------------------------

    def visit_FuncCall(self, node: ast.FuncCall, near: int | None) -> None:
        name = builtin_name(node.funcname)
        spelled = ".".join(part.sval for part in node.funcname or ())
        if name is None or name not in ALLOWED_FUNCTIONS:
            raise self.refuse(f"function {spelled} is not allowed", node, near)
        extras = {
            "an aggregate's ORDER BY": node.agg_order,
            "FILTER": node.agg_filter,
            "OVER": node.over,
            "WITHIN GROUP": node.agg_within_group,
            "*": node.agg_star,
            "DISTINCT": node.agg_distinct,
            "VARIADIC": node.func_variadic,
        }
        for what, present in extras.items():
            if present:
                raise self.refuse(f"{what} in {spelled}() is not allowed", node, near)
        self.visit(node.args, near)

    def visit_NamedArgExpr(self, node: ast.NamedArgExpr, near: int | None) -> None:
        self.visit(node.arg, near)

    def visit_TypeCast(self, node: ast.TypeCast, near: int | None) -> None:
        self.check_type(node.typeName, node, near)
        self.visit(node.arg, near)

    def check_type(
        self, type_name: ast.TypeName | None, node: Any, near: int | None
    ) -> None:
        if type_name is None:
            raise self.refuse("a cast without a type is not allowed", node, near)
        name = builtin_name(type_name.names)
        spelled = ".".join(part.sval for part in type_name.names or ())
        if (
            name is None
            or name not in ALLOWED_TYPES
            or type_name.setof
            or type_name.pct_type
        ):
            # A typed literal (regclass 'x') has its place on the type name.
            location = getattr(node, "location", None)
            placed = isinstance(location, int) and location >= 0
            where = node if placed else type_name
            raise self.refuse(f"cast to {spelled} is not allowed", where, near)
        # Type modifiers are plain numbers: varchar(3), numeric(10, 2), interval's
        # field masks.
        for modifier in type_name.typmods or ():
            if not (
                isinstance(modifier, ast.A_Const)
                and isinstance(modifier.val, ast.Integer)
            ):
                raise self.refuse(
                    f"type modifier of {spelled} is not allowed", node, near
                )


def builtin_name(names: Sequence[Any] | None) -> str | None:
    """The object's name when unqualified or qualified by pg_catalog, else None."""
    parts = [
        part.sval if isinstance(part, ast.String) else None for part in names or ()
    ]
    if len(parts) == 1 and parts[0] is not None:
        return parts[0]
    if len(parts) == 2 and parts[0] == BUILTIN_SCHEMA and parts[1] is not None:
        return parts[1]
    return None


def allowed_names() -> Iterator[tuple[str, list[str]]]:
    """The allow-list as (kind, sorted names), for documentation and tests."""
    yield "functions", sorted(ALLOWED_FUNCTIONS)
    yield "operators", sorted(ALLOWED_OPERATORS)
    yield "types", sorted(ALLOWED_TYPES)
    yield "clock keywords", sorted(set(ALLOWED_VALUE_FUNCTIONS.values()))
