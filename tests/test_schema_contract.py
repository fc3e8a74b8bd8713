"""The exported contract: schema.graphql matches the code, and everything in it is described."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType

from schema import build_schema, export_sdl

ROOT = Path(__file__).resolve().parent.parent


def test_schema_graphql_is_in_sync_with_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == export_sdl(), "schema.graphql drifted: run `rujuk export-schema` and commit it"


def test_every_type_field_argument_and_enum_value_is_described() -> None:
    schema = build_schema()._schema
    missing: list[str] = []
    for name, t in schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not t.description:
            missing.append(name)
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for fname, f in t.fields.items():
                if not f.description:
                    missing.append(f"{name}.{fname}")
                for aname, a in getattr(f, "args", {}).items():
                    if not a.description:
                        missing.append(f"{name}.{fname}({aname})")
        if isinstance(t, GraphQLEnumType):
            missing += [f"{name}.{v}" for v, value in t.values.items() if not value.description]
    assert missing == []


def test_contract_names_exist() -> None:
    schema = build_schema()._schema
    query, mutation = schema.query_type, schema.mutation_type
    assert query is not None and mutation is not None
    assert {"me", "node", "households", "complaints", "referrals", "workload", "regions", "programs", "staff",
            "changes"} <= set(query.fields)
    assert {"login", "registerHousehold", "updateHousehold", "addMember", "fileComplaint", "verifyComplaint",
            "returnComplaint", "rejectComplaint", "resolveComplaint", "reopenComplaint", "reassignComplaint",
            "bulkReassignComplaints", "createReferral", "sendReferral", "acceptReferral", "rejectReferral",
            "revokeReferral", "completeReferral"} <= set(mutation.fields)
