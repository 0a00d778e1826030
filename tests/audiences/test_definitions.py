"""Audience definitions: the repo's files load, bad definitions fail clearly, injection never reaches SQL."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from loyalist.audiences.definitions import (
    FIELDS,
    OPERATORS,
    Audience,
    Condition,
    DefinitionError,
    load_all,
    parse_definition,
)
from loyalist.audiences.export import export_audience
from loyalist.audiences.query import build_query

from .builders import AS_OF, build_published, customer, write_definition

BASE = {"name": "test_aud", "description": "d", "owner": "o", "channel": "email", "filters": {"city": "Shanghai"}}


def _with(**changes):
    return {**BASE, **changes}


def test_repository_audiences_are_valid():
    audiences = load_all()
    assert len(audiences) >= 3
    for a in audiences.values():
        sql, params = build_query(a, AS_OF)
        assert sql.count("?") == len(params)


@pytest.mark.parametrize(("raw", "message"), [
    (_with(filters={"city; drop table marts.customers": "x"}), "unknown field"),
    (_with(filters={"email_normalized": "a@b.com"}), "unknown field"),  # a real column, but not filterable
    (_with(filters={"c.city": "x"}), "unknown field"),
    (_with(filters={"city": {"= 'x' or 1=1 --": "x"}}), "unknown operator"),
    (_with(filters={"city": {"like": "%"}}), "unknown operator"),
    (_with(filters={"city": {"gt": "a"}}), "does not apply"),
    (_with(filters={"lifecycle_stage": "vip"}), "unknown value 'vip'"),
    (_with(filters={"lifecycle_stage": ["active", "at_risk' or '1'='1"]}), "unknown value"),
    (_with(filters={"orders_count": {"gte": "1 or 1=1"}}), "orders_count is int"),
    (_with(filters={"orders_count": {"between": [1]}}), "between"),
    (_with(filters={"is_prospect": "false"}), "is_prospect is bool"),
    (_with(filters={}), "non-empty mapping"),
    (_with(channel="wechat"), "unknown channel"),
    (_with(channel="email; drop table x"), "unknown channel"),
    (_with(name="Robert'); DROP TABLE"), "name must be"),
    (_with(sql="select * from marts.customers"), "unknown keys"),
    (_with(auto_export=["google_ads"]), "sends to the ads channel"),
    (_with(auto_export=["pdf"]), "unknown format"),
    ({k: v for k, v in BASE.items() if k != "owner"}, "missing keys"),
])
def test_invalid_definitions_are_clear_errors(raw, message):
    with pytest.raises(DefinitionError, match="test.yml") as err:
        parse_definition(raw, "test.yml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_every_value_is_a_bound_parameter_and_every_identifier_comes_from_code():
    hostile = "x' or '1'='1'; drop table marts.customers; --"
    a = parse_definition(_with(filters={"city": {"in": [hostile, "Shanghai"]}, "preferred_category": hostile}))
    sql, params = build_query(a, AS_OF)
    assert hostile not in sql and params.count(hostile) == 2
    # The query only names fields and operators of the catalogue.
    assert all(c.field in FIELDS and c.op in OPERATORS for c in a.conditions)


def test_hand_built_audience_with_unknown_field_is_refused():
    a = Audience("x_aud", "d", "o", "email", (Condition("1=1) or (1", "eq", 1),))
    with pytest.raises(DefinitionError):
        build_query(a, AS_OF)


def test_injection_values_are_matched_as_plain_text(settings, tmp_path):
    """A hostile city value selects exactly the customer whose city is that string, and harms nothing."""
    hostile = "Shanghai' or '1'='1"
    build_published(settings, [customer(1, city="Shanghai"), customer(2, city=hostile), customer(3, city="Beijing")])
    d = tmp_path / "defs"
    write_definition(d, yaml.safe_dump(_with(name="hostile_city", filters={"city": hostile})))
    result = export_audience(settings, "hostile_city", "csv", audiences_dir=d, out_dir=tmp_path / "out",
                             triggered_by="test")
    assert result.row_count == 1
    assert f"C{2:016x}" in Path(result.file_path).read_text(encoding="utf-8")
    from loyalist.pipeline import published_path

    with duckdb.connect(str(published_path(settings)), read_only=True) as con:
        assert con.execute("select count(*) from marts.customers").fetchone()[0] == 3


def test_unknown_audience_and_wrong_date_are_one_line_errors(settings, tmp_path):
    build_published(settings, [customer(1)])
    d = tmp_path / "defs"
    write_definition(d, yaml.safe_dump(_with(name="all_email")))
    with pytest.raises(DefinitionError, match="no audience named 'nope'"):
        export_audience(settings, "nope", "csv", audiences_dir=d)
    from loyalist.audiences.export import ExportError

    with pytest.raises(ExportError, match="published marts are as of 2025-03-31, not 2025-04-05"):
        export_audience(settings, "all_email", "csv", as_of="2025-04-05", audiences_dir=d)
    with pytest.raises(DefinitionError, match="sends to the ads channel"):
        export_audience(settings, "all_email", "meta", audiences_dir=d)
    write_definition(d, yaml.safe_dump(_with(name="typo_city", filters={"city": ["Shanghai", "Shangai"]})))
    with pytest.raises(ExportError, match="no customer has city = 'Shangai' in the published marts"):
        export_audience(settings, "typo_city", "csv", audiences_dir=d)
