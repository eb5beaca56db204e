"""Each contract (infra/model/contracts.py) resolved against a declared catalog, offline: parsed with sqlglot's
BigQuery dialect, then every table and column (nested fields, INSERT column lists, UPDATE and MERGE targets)
looked up in the catalog, each value written into a column typed by BigQuery's coercion rules, every read of a
table that requires a partition filter checked for one, and every write of NULL into a REQUIRED column refused.

What it cannot know (a function's result type, a value's length against maxLength, a parameter the application
passes as NULL though the header says it does not, the permissions of the application's identity, the live
schema) the local-server test and `verify`'s dry run find; README "Change a column the applications use".

Rules, each where BigQuery documents it:
- coercion: "Conversion rules" (GoogleSQL): INT64 to NUMERIC, BIGNUMERIC, FLOAT64; NUMERIC to BIGNUMERIC, FLOAT64;
  BIGNUMERIC to FLOAT64; DATE to DATETIME; a STRING literal or parameter to DATE, DATETIME, TIME, TIMESTAMP;
  a STRUCT to a STRUCT field by field, by position.
- a partition filter: REST reference, Table.requirePartitionFilter ("queries over this table require a partition
  filter that can be used for partition elimination"); "Querying partitioned tables": a filter on the
  partitioning column, here a condition joined to the rest of WHERE (or MERGE's ON) by AND.
- an INSERT writes NULL into every column its list leaves out that has no default ("INSERT statement", DML
  reference), which a REQUIRED column refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal

import sqlglot
from sqlglot import TokenType, exp
from sqlglot.errors import ParseError, TokenError

from infra.model.catalog import Catalog
from infra.model.contracts import Contract, Parameter
from infra.model.problems import Problem
from infra.model.schema import Column
from infra.model.settings import Settings
from infra.model.table_properties import Table

DIALECT = "bigquery"
_COERCE = {
    "INT64": {"NUMERIC", "BIGNUMERIC", "FLOAT64"},
    "NUMERIC": {"BIGNUMERIC", "FLOAT64"},
    "BIGNUMERIC": {"FLOAT64"},
    "DATE": {"DATETIME"},
}
_STRING_COERCES_TO = {"DATE", "DATETIME", "TIME", "TIMESTAMP"}  # literals and parameters only
_NUMERIC = {"INT64", "NUMERIC", "BIGNUMERIC", "FLOAT64"}
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_NESTED_QUERIES = (exp.Subquery, exp.Select, exp.SetOperation)
_FUNCTION_TYPES: dict[type[exp.Expr], str] = {
    exp.CurrentTimestamp: "TIMESTAMP",
    exp.CurrentDate: "DATE",
    exp.CurrentDatetime: "DATETIME",
    exp.TimestampAdd: "TIMESTAMP",
    exp.TimestampSub: "TIMESTAMP",
    exp.SHA2: "BYTES",
    exp.ParseJSON: "JSON",
    exp.Uuid: "STRING",
}


@dataclass(frozen=True)
class Typed:
    """What an expression is, as far as it can be told: its type (None: cannot tell), whether it may be NULL,
    and whether it is a literal or a parameter (which coerce further than other values)."""

    type: str | None
    nullable: bool = True
    coercible: bool = False
    null: bool = False  # the literal NULL


_UNKNOWN = Typed(None)


@dataclass(frozen=True)
class Checked:
    contract: Contract
    problems: tuple[ContractProblem, ...]
    uses: frozenset[tuple[str, str]]  # (dataset.table, column path) of every column the query names
    tables: frozenset[str] = frozenset()  # every dataset.table the query names, declared or not
    # A query's output columns, each with its type where it can be told (a view's schema); None: `*` or DML.
    outputs: tuple[tuple[str, str | None], ...] | None = None


@dataclass(frozen=True)
class ContractProblem:
    contract: Contract
    line: int
    column: int
    message: str
    table: str | None = None  # the dataset.table the problem is about, for diff

    @property
    def where(self) -> str:
        return f"{self.contract.name}:{self.line}"

    def problem(self) -> Problem:
        return Problem(self.contract.file, f"{self.line}:{self.column}", self.message)


_Origin = tuple[Table, list[str]]  # a declared table and a column's path in it


@dataclass
class _Source:
    alias: str
    table: Table | None = None  # a declared table
    # A derived table's columns, each with the declared column it passes on when it is one; None: cannot tell.
    outputs: dict[str, _Origin | None] | None = field(default_factory=dict)

    def has(self, name: str) -> bool:
        if self.table is not None:
            return any(c.name.lower() == name for c in self.table.schema)
        return self.outputs is not None and name in self.outputs


def column_type(column: Column) -> str:
    base = "STRUCT" if column.type == "RECORD" else column.type
    return f"ARRAY<{base}>" if column.mode == "REPEATED" else base


def fits(value: Typed, target: str) -> bool:
    """Whether BigQuery coerces the value into a column or field of type `target` ("Conversion rules")."""
    if value.type is None or value.null or value.type == target:
        return True
    if value.type == "ARRAY<?>":
        return target.startswith("ARRAY<")
    if value.type == "STRUCT" or target == "STRUCT":
        return value.type == target
    if value.coercible and value.type == "STRING" and target in _STRING_COERCES_TO:
        return True
    return target in _COERCE.get(value.type, set())


def comparable(left: Typed, right: Typed) -> bool:
    if left.type is None or right.type is None or left.null or right.null:
        return True
    if left.type in _NUMERIC and right.type in _NUMERIC:
        return True
    return fits(left, right.type) or fits(right, left.type)


class _Checker:
    def __init__(self, contract: Contract, catalog: Catalog):
        self.contract = contract
        self.tables = {t.key: t for t in catalog.tables()}
        self.datasets = {d.dataset_id for d in catalog.datasets}
        self.parameters = {p.name: p for p in contract.parameters}
        self.used_parameters: set[str] = set()
        self.undeclared: set[str] = set()
        self.problems: list[ContractProblem] = []
        self.uses: set[tuple[str, str]] = set()
        self.named: set[str] = set()
        self.ctes: dict[str, dict[str, _Origin | None] | None] = {}
        self.types: dict[int, Typed] = {}  # id of a Column node: what it resolved to
        self.origins: dict[int, _Origin] = {}  # id of a Column node: the declared column it names
        self.outputs: tuple[tuple[str, str | None], ...] | None = None

    # ------------------------------------------------------------ positions and problems

    def position(self, node: exp.Expr | None) -> tuple[int, int]:
        """Line and column where `node` starts in the file: its first identifier's, else its parent's."""
        while node is not None:
            parts = node.parts if isinstance(node, exp.Column | exp.Table) else []
            for identifier in [*parts, *node.find_all(exp.Identifier, bfs=False)]:
                if "start" in identifier.meta:
                    start = identifier.meta["start"]
                    text = self.contract.text
                    return text.count("\n", 0, start) + 1, start - text.rfind("\n", 0, start)
            node = node.parent
        return 1, 1

    def fail(self, node: exp.Expr | None, message: str, table: str | None = None) -> None:
        line, column = self.position(node)
        self.problems.append(ContractProblem(self.contract, line, column, message, table))

    # ------------------------------------------------------------ statements

    def statement(self, node: exp.Expr) -> None:
        if isinstance(node, exp.Insert):
            self.insert(node)
        elif isinstance(node, exp.Update):
            self.update(node)
        elif isinstance(node, exp.Delete):
            target = self.source_of(node.this)
            self.block(node, [target] if target else [], [], (node.args.get("where"),))
        elif isinstance(node, exp.Merge):
            self.merge(node)
        elif isinstance(node, exp.Query):
            names = self.query(node, [])
            if names is not None and isinstance(node, exp.Select):
                self.outputs = tuple(
                    (projection.alias_or_name, self.type_of(projection.unalias()).type)
                    for projection in node.expressions
                )
            elif names is not None:
                self.outputs = tuple((name, None) for name in names)
        else:
            self.fail(node, f"a contract is a query or a DML statement, not {node.key.upper()}; move it elsewhere")

    def insert(self, node: exp.Insert) -> None:
        schema = node.this
        table_node = schema.this if isinstance(schema, exp.Schema) else schema
        target = self.source_of(table_node)
        if target is None or target.table is None:
            return
        if not isinstance(schema, exp.Schema):
            self.fail(table_node, "name the columns the INSERT writes: a column added later shifts positional values")
            return
        columns = self.target_columns(target.table, schema.expressions, table_node)
        self.missing_required(target.table, columns, table_node)
        values = node.expression
        if isinstance(values, exp.Values):
            for row in values.expressions:
                items = row.expressions if isinstance(row, exp.Tuple) else [row]
                self.write_row(target.table, columns, items, row, [])
        elif isinstance(values, exp.Query):
            self.query(values, [])
            if isinstance(values, exp.Select):
                self.write_row(target.table, columns, [e.unalias() for e in values.expressions], values, None)

    def update(self, node: exp.Update) -> None:
        target = self.source_of(node.this)
        sources = [target] if target else []
        from_ = node.args.get("from") or node.args.get("from_")
        if from_ is not None:
            sources += [s for s in (self.source_of(e) for e in from_.find_all(exp.Table, exp.Subquery)) if s]
        self.assignments(target, node.expressions, sources)
        self.block(node, sources, [], (node.args.get("where"),), skip=set(map(id, node.expressions)))

    def merge(self, node: exp.Merge) -> None:
        target = self.source_of(node.this)
        using = self.source_of(node.args["using"])
        sources = [s for s in (target, using) if s]
        whens = node.args.get("whens")
        conditions = [node.args.get("on")]
        writes: set[int] = set()
        for when in whens.expressions if whens else []:
            conditions.append(when.args.get("condition"))
            then = when.args.get("then")
            if isinstance(then, exp.Update):
                self.assignments(target, then.expressions, sources)
                writes.add(id(then))
            elif isinstance(then, exp.Insert) and target is not None and target.table is not None:
                writes.add(id(then))
                names = then.this.expressions if isinstance(then.this, exp.Tuple) else []
                columns = self.target_columns(target.table, names, then)
                self.missing_required(target.table, columns, then)
                values = then.expression.expressions if isinstance(then.expression, exp.Tuple) else []
                for value in values:
                    self.resolve_all(value, [s for s in sources if s is not target], [])
                self.write_row(target.table, columns, values, then, None)
        self.block(node, sources, [], tuple(conditions), skip=writes, filtered=[target] if target else [])

    # ------------------------------------------------------------ writes

    def target_columns(self, table: Table, names: list[exp.Expr], at: exp.Expr) -> list[tuple[exp.Expr, Column | None]]:
        columns: list[tuple[exp.Expr, Column | None]] = []
        for name_node in names:
            name = name_node.name
            column = next((c for c in table.schema if c.name.lower() == name.lower()), None)
            if column is None:
                self.unknown_column(name_node, table, name)
            else:
                self.uses.add((table.key, column.name))
            columns.append((name_node, column))
        return columns

    def missing_required(self, table: Table, columns: list[tuple[exp.Expr, Column | None]], at: exp.Expr) -> None:
        named = {c.name for _, c in columns if c is not None}
        for column in table.schema:
            if column.mode == "REQUIRED" and column.name not in named and column.default_value_expression is None:
                self.fail(
                    at,
                    f"{table.key}.{column.name} is REQUIRED and the INSERT leaves it out, so BigQuery writes NULL and "
                    "refuses the row; write a value for it",
                    table.key,
                )

    def write_row(
        self,
        table: Table,
        columns: list[tuple[exp.Expr, Column | None]],
        values: list[exp.Expr],
        at: exp.Expr,
        sources: list[_Source] | None,
    ) -> None:
        if len(values) != len(columns):
            self.fail(at, f"{len(values)} values for {len(columns)} columns; write one value per column", table.key)
            return
        for (name_node, column), value in zip(columns, values, strict=True):
            if sources is not None:
                self.resolve_all(value, sources, [])
            if column is not None:
                self.write(value, column, f"{table.key}.{column.name}", name_node, table.key)

    def assignments(self, target: _Source | None, assignments: list[exp.Expr], sources: list[_Source]) -> None:
        for assignment in assignments:
            if not isinstance(assignment, exp.EQ) or not isinstance(assignment.this, exp.Column):
                continue
            self.resolve_all(assignment.expression, sources, [])
            if target is None or target.table is None:
                continue
            parts = [p.name for p in assignment.this.parts]
            if len(parts) > 1 and parts[0].lower() == target.alias.lower():
                parts = parts[1:]
            column = self.path(target.table, parts, assignment.this)
            if column is not None:
                path = ".".join(parts)
                self.write(
                    assignment.expression, column, f"{target.table.key}.{path}", assignment.this, target.table.key
                )

    def write(self, value: exp.Expr, column: Column, name: str, at: exp.Expr, table: str) -> None:
        """The value goes into the column: its type must coerce, NULL only into a column that takes it."""
        if isinstance(value, exp.Paren):
            value = value.this
        if isinstance(value, exp.If):
            for branch in (value.args.get("true"), value.args.get("false")):
                if branch is not None and not isinstance(branch, exp.Struct):
                    self.write(branch, column, name, at, table)
            return
        if isinstance(value, exp.Struct) and column.type == "RECORD" and column.mode != "REPEATED":
            self.write_struct(value, column, name, at, table)
            return
        typed = self.type_of(value)
        if column.mode == "REQUIRED" and (typed.null or self.nullable_parameter(value)):
            what = "NULL" if typed.null else f"@{value.name}, which the header lets be NULL,"
            self.fail(
                at,
                f"writes {what} into {name}, which is REQUIRED; write a value, or declare the parameter without NULL",
                table,
            )
        elif not fits(typed, column_type(column)):
            shown = self.shown(value, typed)
            self.fail(at, f"{shown} cannot go into {name} ({column_type(column)}); cast it or change the column", table)

    def write_struct(self, value: exp.Struct, column: Column, name: str, at: exp.Expr, table: str) -> None:
        fields = value.expressions
        if len(fields) != len(column.fields):
            self.fail(
                at,
                f"the STRUCT has {len(fields)} fields and {name} {len(column.fields)}; BigQuery matches them by "
                "position, so write every field, in the declared order",
                table,
            )
            return
        for item, nested in zip(fields, column.fields, strict=True):
            label = item.this.name if isinstance(item, exp.PropertyEQ) else None
            inner = item.expression if isinstance(item, exp.PropertyEQ) else item
            if label is not None and label.lower() != nested.name.lower():
                self.fail(
                    item,
                    f"the STRUCT's field {label} stands where {name} has {nested.name}; BigQuery matches them by "
                    "position: write the fields in the declared order",
                    table,
                )
                continue
            self.uses.add((table, f"{name.split('.', 2)[2]}.{nested.name}"))
            self.write(inner, nested, f"{name}.{nested.name}", at, table)

    def nullable_parameter(self, value: exp.Expr) -> bool:
        return isinstance(value, exp.Parameter) and (p := self.parameters.get(value.name)) is not None and p.nullable

    def shown(self, value: exp.Expr, typed: Typed) -> str:
        if isinstance(value, exp.Parameter):
            return f"@{value.name} ({typed.type})"
        if isinstance(value, exp.Column):
            return f"{value.sql(DIALECT)} ({typed.type})"
        return f"the {typed.type} value {value.sql(DIALECT)}"

    # ------------------------------------------------------------ queries

    def query(self, node: exp.Expr, outer: list[list[_Source]]) -> dict[str, _Origin | None] | None:
        """Check a query block and the blocks inside it; the names of its output columns (None: cannot tell)."""
        with_ = node.args.get("with") or node.args.get("with_")
        if with_ is not None:
            for cte in with_.expressions:
                self.ctes[cte.alias] = self.query(cte.this, outer)
        if isinstance(node, exp.Subquery):
            return self.query(node.this, outer)
        if isinstance(node, exp.SetOperation):
            left = self.query(node.left, outer)
            self.query(node.right, outer)
            return left
        if not isinstance(node, exp.Select):
            return None
        sources: list[_Source] = []
        from_ = node.args.get("from") or node.args.get("from_")
        joined = [from_.this] if from_ is not None else []
        joined += [join.this for join in node.args.get("joins") or []]
        skip: set[int] = set()
        for item in joined:
            skip.add(id(item))
            if isinstance(item, exp.Unnest):
                self.resolve_all(item, sources, outer)
                alias = item.alias_or_name
                sources.append(_Source(alias, outputs={alias.lower(): None} if alias else None))
            elif (source := self.source_of(item, outer)) is not None:
                sources.append(source)
        conditions = [node.args.get("where")] + [join.args.get("on") for join in node.args.get("joins") or []]
        aliases = {e.alias.lower() for e in node.expressions if e.alias}
        self.block(node, sources, outer, tuple(conditions), skip=skip, aliases=aliases)
        outputs: dict[str, _Origin | None] = {}
        for projection in node.expressions:
            if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and projection.is_star):
                return None
            outputs[projection.alias_or_name.lower()] = self.origins.get(id(projection.unalias()))
        return outputs

    def source_of(self, node: exp.Expr, outer: list[list[_Source]] | None = None) -> _Source | None:
        if isinstance(node, exp.Subquery):
            return _Source(node.alias_or_name, outputs=self.query(node.this, outer or []))
        if not isinstance(node, exp.Table):
            return None
        alias = node.alias or node.name
        if not node.db and node.name in self.ctes:
            return _Source(alias, outputs=self.ctes[node.name])
        unknown = _Source(alias, outputs=None)  # its columns cannot be told: the table's problem is the one said
        if node.catalog:
            self.fail(
                node, f"{node.sql(DIALECT)}: write the table as declared, dataset.table; the tool applies the project"
            )
            return unknown
        key = f"{node.db}.{node.name}"
        self.named.add(key)
        if not node.db:
            self.fail(node, f"{node.name}: name its dataset, as the declaration does (dataset.table)")
            return unknown
        if node.db not in self.datasets:
            known = ", ".join(sorted(self.datasets))
            self.fail(
                node,
                f"no dataset {node.db} is declared ({known}); name it as stacks/<dataset>.yaml does, without the "
                "stack's suffix",
                key,
            )
            return unknown
        table = self.tables.get(key)
        if table is None:
            self.fail(node, f"no table {key} is declared; name a table of stacks/{node.db}.yaml, or declare it", key)
            return unknown
        return _Source(alias, table=table)

    def block(
        self,
        node: exp.Expr,
        sources: list[_Source],
        outer: list[list[_Source]],
        conditions: tuple[exp.Expr | None, ...],
        skip: set[int] | None = None,
        aliases: set[str] | None = None,
        filtered: list[_Source] | None = None,
    ) -> None:
        """Resolve the block's own columns (nested blocks on their own), check its comparisons and, for every
        declared table it reads that requires one, its partition filter."""
        self.resolve_all(node, sources, outer, skip or set(), aliases or set())
        for source in sources if filtered is None else filtered:
            if source.table is not None and source.table.require_partition_filter:
                self.partition_filter(node, source, conditions)

    def own_nodes(self, node: exp.Expr, skip: set[int]) -> Iterator[exp.Expr]:
        """The nodes of this block: not those of the blocks inside it, which are yielded once, unvisited."""
        stack = [node]
        while stack:
            current = stack.pop()
            yield current
            for child in reversed(list(current.iter_expressions())):
                if id(child) in skip:
                    continue
                if isinstance(child, (*_NESTED_QUERIES, exp.Table)):
                    yield child
                    continue
                stack.append(child)

    def resolve_all(
        self,
        node: exp.Expr,
        sources: list[_Source],
        outer: list[list[_Source]],
        skip: set[int] | None = None,
        aliases: set[str] | None = None,
    ) -> None:
        skip = skip or set()
        for item in self.own_nodes(node, skip):
            if item is not node and isinstance(item, _NESTED_QUERIES):
                self.query(item, [sources, *outer])
            elif isinstance(item, exp.Column) and id(item) not in self.types:
                self.types[id(item)] = self.resolve(item, sources, outer, aliases or set())
            elif isinstance(item, exp.Parameter):
                self.parameter(item)
        for item in self.own_nodes(node, skip):
            if isinstance(item, _COMPARISONS):
                self.compare(item, item.this, item.expression)
            elif isinstance(item, exp.In):
                for value in item.expressions:
                    self.compare(item, item.this, value)
            elif isinstance(item, exp.Between):
                for bound in (item.args.get("low"), item.args.get("high")):
                    if bound is not None:
                        self.compare(item, item.this, bound)

    def parameter(self, node: exp.Parameter) -> None:
        name = node.name
        self.used_parameters.add(name)
        if name not in self.parameters and name not in self.undeclared:
            self.undeclared.add(name)
            line, column = self.parameter_position(name)
            self.problems.append(
                ContractProblem(
                    self.contract, line, column, f"@{name} is not declared; add `-- @{name} TYPE` to the header"
                )
            )

    def parameter_position(self, name: str) -> tuple[int, int]:
        tokens = sqlglot.tokenize(self.contract.text, read=DIALECT)
        for at, token in enumerate(tokens[:-1]):
            if token.token_type == TokenType.PARAMETER and tokens[at + 1].text == name:
                start = token.start
                text = self.contract.text
                return text.count("\n", 0, start) + 1, start - text.rfind("\n", 0, start)
        return 1, 1

    def compare(self, node: exp.Expr, left: exp.Expr, right: exp.Expr) -> None:
        left_type, right_type = self.type_of(left), self.type_of(right)
        if not comparable(left_type, right_type):
            table = None
            column = left if isinstance(left, exp.Column) else right if isinstance(right, exp.Column) else None
            self.fail(
                column or node,
                f"compares {self.shown(left, left_type)} with {self.shown(right, right_type)}, which BigQuery does "
                "not coerce to one type; cast one side or change the column",
                table,
            )

    def partition_filter(self, node: exp.Expr, source: _Source, conditions: tuple[exp.Expr | None, ...]) -> None:
        assert source.table is not None
        partitioning = source.table.time_partitioning
        range_partitioning = source.table.range_partitioning
        column = (
            partitioning.field if partitioning else range_partitioning.field if range_partitioning else None
        ) or "_PARTITIONTIME"

        def filters(condition: exp.Expr) -> bool:
            """Whether every row the condition keeps is in partitions a filter on `column` picks: a side of
            an AND that does, or an OR whose every side does."""
            match condition:
                case exp.Where() | exp.Paren():
                    return filters(condition.this)
                case exp.And():
                    return filters(condition.this) or filters(condition.expression)
                case exp.Or():
                    return filters(condition.this) and filters(condition.expression)
            return any(
                reference.name.lower() == column.lower() and reference.table.lower() in ("", source.alias.lower())
                for reference in condition.find_all(exp.Column)
            )

        if any(condition is not None and filters(condition) for condition in conditions):
            return
        at = next((t for t in node.find_all(exp.Table) if (t.alias or t.name) == source.alias), node)
        self.fail(
            at,
            f"{source.table.key} requires a partition filter (require_partition_filter) and this query has none; "
            f"filter on {column} in WHERE, joined by AND",
            source.table.key,
        )

    # ------------------------------------------------------------ columns

    def resolve(self, node: exp.Column, sources: list[_Source], outer: list[list[_Source]], aliases: set[str]) -> Typed:
        parts = [p.name for p in node.parts]
        if node.is_star:
            return _UNKNOWN
        first = parts[0].lower()
        for level, scope in enumerate([sources, *outer]):
            if len(parts) > 1:
                named = [s for s in scope if s.alias.lower() == first]
                if named:
                    return self.in_source(named[0], parts[1:], node)
            having = [s for s in scope if s.has(first)]
            if len(having) > 1 and all(s.table is not None for s in having):
                names = " and ".join(s.alias for s in having)
                self.fail(node, f"{parts[0]} is in {names}; qualify it (alias.{parts[0]})")
                return _UNKNOWN
            if having:
                return self.in_source(having[0], parts, node)
            if level == 0 and len(parts) == 1 and first in aliases:
                return _UNKNOWN
            if any(s.outputs is None for s in scope):
                return _UNKNOWN
        tables = [s.table for s in sources if s.table is not None]
        if len(tables) == 1 and len(sources) == 1:
            self.unknown_column(node, tables[0], parts[0])
        else:
            known = ", ".join(s.table.key if s.table else s.alias for s in sources) or "no table"
            self.fail(node, f"no column {'.'.join(parts)} in {known}; name a declared column, or change the query")
        return _UNKNOWN

    def in_source(self, source: _Source, parts: list[str], node: exp.Expr) -> Typed:
        if source.table is None:
            if not parts or source.outputs is None:
                return _UNKNOWN
            if parts[0].lower() in source.outputs:
                origin = source.outputs[parts[0].lower()]
                return (
                    self.in_source(_Source(source.alias, origin[0]), [*origin[1], *parts[1:]], node)
                    if origin
                    else _UNKNOWN
                )
            self.fail(node, f"{source.alias} has no column {parts[0]}; name one of {', '.join(sorted(source.outputs))}")
            return _UNKNOWN
        if not parts:
            return Typed("STRUCT", nullable=False)
        column = self.path(source.table, parts, node)
        if column is None:
            return _UNKNOWN
        if isinstance(node, exp.Column):
            self.origins[id(node)] = (source.table, [p for p in parts])
        return Typed(column_type(column), nullable=column.mode != "REQUIRED")

    def path(self, table: Table, parts: list[str], node: exp.Expr) -> Column | None:
        """The column at `parts` (a nested field's path) in the table; None, with a problem, when there is none."""
        columns = table.schema
        found: Column | None = None
        walked: list[str] = []
        for part in parts:
            if found is not None:
                if found.type == "JSON":
                    return found  # JSON field access: any path
                if found.type != "RECORD" or found.mode == "REPEATED":
                    what = "a REPEATED field (UNNEST it)" if found.mode == "REPEATED" else f"a {found.type}"
                    self.fail(node, f"{table.key}.{'.'.join(walked)} is {what}; it has no field {part}", table.key)
                    return None
                columns = found.fields
            found = next((c for c in columns if c.name.lower() == part.lower()), None)
            if found is None:
                if walked:
                    self.fail(
                        node,
                        f"{table.key}.{'.'.join(walked)} has no field {part}; name a declared field "
                        f"({table.schema_file}), or change the query",
                        table.key,
                    )
                else:
                    self.unknown_column(node, table, part)
                return None
            walked.append(found.name)
            self.uses.add((table.key, ".".join(walked)))
        return found

    def unknown_column(self, node: exp.Expr, table: Table, name: str) -> None:
        self.fail(
            node,
            f"{table.key} has no column {name}; name a declared column ({table.schema_file}), or change the query",
            table.key,
        )

    # ------------------------------------------------------------ types

    def type_of(self, node: exp.Expr) -> Typed:
        match node:
            case exp.Paren():
                return self.type_of(node.this)
            case exp.Null():
                return Typed(None, null=True)
            case exp.Boolean():
                return Typed("BOOL", nullable=False, coercible=True)
            case exp.Literal():
                if node.is_string:
                    return Typed("STRING", nullable=False, coercible=True)
                return Typed("INT64" if node.this.lstrip("-").isdigit() else "FLOAT64", nullable=False, coercible=True)
            case exp.Parameter():
                declared: Parameter | None = self.parameters.get(node.name)
                if declared is None:
                    return _UNKNOWN
                return Typed(declared.type, nullable=declared.nullable, coercible=True)
            case exp.Column():
                return self.types.get(id(node), _UNKNOWN)
            case exp.Cast():
                return Typed(node.to.sql(DIALECT).upper())
            case exp.Array():
                items = [self.type_of(e) for e in node.expressions]
                if not items:
                    return Typed("ARRAY<?>", nullable=False)
                first = items[0].type
                return Typed(f"ARRAY<{first}>" if first and all(i.type == first for i in items) else None)
            case _ if type(node) in _FUNCTION_TYPES:
                return Typed(_FUNCTION_TYPES[type(node)], nullable=False)
        return _UNKNOWN


def check(contract: Contract, catalog: Catalog) -> Checked:
    """The contract against the catalog: its problems (each at file:line:column, with how to fix it) and the
    columns it uses."""
    checker = _Checker(contract, catalog)
    try:
        statements = [s for s in sqlglot.parse(contract.text, read=DIALECT) if s is not None]
    except (ParseError, TokenError) as error:
        details = getattr(error, "errors", None) or [{}]
        line, column = details[0].get("line") or 1, details[0].get("col") or 1
        message = details[0].get("description") or str(error).splitlines()[0]
        problem = ContractProblem(
            contract, line, column, f"BigQuery SQL that does not parse: {message}; fix the syntax"
        )
        return Checked(contract, (problem,), frozenset())
    if len(statements) != 1:
        problem = ContractProblem(contract, 1, 1, f"{len(statements)} statements; write one query per file")
        return Checked(contract, (problem,), frozenset())
    checker.statement(statements[0])
    for parameter in contract.parameters:
        if parameter.name not in checker.used_parameters:
            checker.problems.append(
                ContractProblem(
                    contract, parameter.line, 1, f"@{parameter.name} is declared but not used; remove the line"
                )
            )
    problems = sorted(set(checker.problems), key=lambda p: (p.line, p.column, p.message))
    return Checked(contract, tuple(problems), frozenset(checker.uses), frozenset(checker.named), checker.outputs)


def check_all(contracts: list[Contract], catalog: Catalog) -> list[Checked]:
    return [check(contract, catalog) for contract in contracts]


def broken_by_change(contracts: list[Contract], old: Catalog, new: Catalog) -> dict[str, tuple[ContractProblem, ...]]:
    """Per dataset.table, the contracts' problems against the new catalog that they did not have against the
    old one: what the change of that table breaks. The contracts are the new ones (a contract the change
    edits is checked in its new form)."""
    broken: dict[str, list[ContractProblem]] = {}
    for contract in contracts:
        before = {(p.line, p.column, p.message) for p in check(contract, old).problems}
        for problem in check(contract, new).problems:
            if (problem.line, problem.column, problem.message) not in before and problem.table is not None:
                broken.setdefault(problem.table, []).append(problem)
    return {table: tuple(problems) for table, problems in broken.items()}


# A value of each parameter type, to run or dry-run a contract (the local-server test, `verify`).
SAMPLES: dict[str, object] = {
    "STRING": "sample",
    "BYTES": bytes(32),
    "INT64": 1,
    "FLOAT64": 1.5,
    "NUMERIC": Decimal("1.5"),
    "BIGNUMERIC": Decimal("1.5"),
    "BOOL": True,
    "DATE": date(2026, 1, 1),
    "DATETIME": datetime(2026, 1, 1, 12),  # a DATETIME has no time zone
    "TIME": time(12),
    "TIMESTAMP": datetime(2026, 1, 1, 12, tzinfo=UTC),
    "JSON": {"sample": True},
}


def sample_parameters(contract: Contract) -> list[tuple[str, str, object]]:
    """(name, type, value) of every declared parameter: a sample of its type, an ARRAY<T> holding one."""
    samples: list[tuple[str, str, object]] = []
    for parameter in contract.parameters:
        element = parameter.type.removeprefix("ARRAY<").removesuffix(">")
        value = [SAMPLES[element]] if parameter.type.startswith("ARRAY<") else SAMPLES[parameter.type]
        samples.append((parameter.name, parameter.type, value))
    return samples


def for_stack(contract: Contract, datasets: dict[str, str], project: str) -> str:
    """The contract's text with each declared dataset written as the stack has it (`project`.dataset_suffix),
    everything else, lines included, as in the file: BigQuery's positions stay the file's lines."""
    text = contract.text
    edits = sorted(
        {
            (db.meta["start"], db.meta["end"] + 1, db.name)
            for statement in sqlglot.parse(text, read=DIALECT)
            if statement is not None
            for table in statement.find_all(exp.Table)
            if not table.catalog
            and isinstance(db := table.args.get("db"), exp.Identifier)
            and db.name in datasets
            and "start" in db.meta
        },
        reverse=True,
    )
    for start, end, name in edits:
        text = text[:start] + f"`{project}`.{datasets[name]}" + text[end:]
    return text


def stack_sql(contract: Contract, catalog: Catalog, settings: Settings) -> str:
    """The contract as the stack runs it: each declared dataset with the stack's suffix, in its project."""
    datasets = {d.dataset_id: settings.dataset_id(d.dataset_id) for d in catalog.datasets}
    return for_stack(contract, datasets, settings.project)
