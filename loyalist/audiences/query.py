"""Audience definition -> one parameterised SELECT over the published marts and model outputs.

Safe by construction: every identifier and SQL fragment comes from ``definitions.FIELDS``,
``definitions.OPERATORS`` and ``definitions.CHANNELS`` (code, not the YAML); every value from a
definition is a bound ``?`` parameter. A definition can therefore choose *which* whitelisted filter
applies with *which* value, never what SQL runs.
"""

from __future__ import annotations

from datetime import date

from loyalist.audiences.definitions import CHANNELS, FIELDS, OPERATORS, Audience, DefinitionError

# Channel -> condition on the contact the channel needs (an ads platform matches on email or phone).
CONTACT_SQL = {
    "email": "c.email_normalized is not null",
    "sms": "c.phone_e164 is not null",
    "ads": "(c.email_normalized is not null or c.phone_e164 is not null)",
}

OUTPUT_COLUMNS = ["customer_id", "full_name", "email", "phone", "city", "channel_consent"]


def _expr(sql: str, as_of: date) -> tuple[str, list]:
    """A field expression with its as-of placeholder bound (some fields are relative to the as-of date)."""
    n = sql.count("{as_of}")
    return sql.replace("{as_of}", "?"), [as_of] * n


def _join(table: str) -> tuple[str, list]:
    if table == "marts.customer_segments":
        return "left join marts.customer_segments s on s.customer_id = c.customer_id", []
    if table in ("ml.churn_scores", "ml.clv_predictions"):
        alias = "ch" if table == "ml.churn_scores" else "cl"
        # The latest scoring on or before the as-of date (scores are kept one slice per date).
        return (f"left join (select * from {table} where as_of_date = "
                f"(select max(as_of_date) from {table} where as_of_date <= ?)) {alias} "
                f"on {alias}.customer_id = c.customer_id"), ["as_of"]
    if table == "ml.reward_eligibility":
        # The control group is held out on purpose: it is never contacted, so never exported.
        return ("left join ml.reward_eligibility rw on rw.customer_id = c.customer_id "
                "and rw.as_of_date = ? and not rw.is_control"), ["as_of"]
    raise AssertionError(f"no join for {table}")


def build_query(audience: Audience, as_of: date) -> tuple[str, list]:
    """SQL and its parameters selecting the audience's members (consent and contact already required)."""
    if audience.channel not in CHANNELS:
        raise DefinitionError(f"unknown channel {audience.channel!r}")
    params: list = []
    joins = []
    for table in sorted(audience.tables - {"marts.customers"}):
        sql, p = _join(table)
        joins.append(sql)
        params += [as_of for _ in p]
    where = [f"c.consent_{audience.channel} = true", CONTACT_SQL[audience.channel]]
    for cond in audience.conditions:
        if cond.field not in FIELDS or cond.op not in OPERATORS:  # a hand-built Audience must not slip by
            raise DefinitionError(f"unknown field or operator: {cond.field!r} {cond.op!r}")
        expr, p = _expr(FIELDS[cond.field].sql, as_of)
        template, shape = OPERATORS[cond.op]
        values = cond.value if shape in ("list", "pair") else [cond.value]
        where.append("(" + template.format(x=expr, params=", ".join("?" for _ in values)) + ")")
        params += p + list(values)
    sql = (
        "select c.customer_id, c.full_name, c.email_normalized as email, c.phone_e164 as phone, c.city, "
        f"c.consent_{audience.channel} as channel_consent\n"
        "from marts.customers c\n" + "\n".join(joins) + "\nwhere " + "\n  and ".join(where) +
        "\norder by c.customer_id"
    )
    return sql, params
