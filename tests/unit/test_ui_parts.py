"""The admin UI's pure parts: number formats, chart geometry, sessions, the tenant form,
cookies and the request checks. The pages themselves are tested in a browser (tests/ui)."""

from __future__ import annotations

import pytest
from llmgateway.v1 import admin_service_pb2 as pb
from llmgateway.v1 import budgets_pb2

from gateway.clientip import TrustedProxies
from gateway.facade.ui import fmt
from gateway.facade.ui.charts import HEIGHT, TOP, line_chart, nice_top
from gateway.facade.ui.forms import key_budget, model_budgets, tenant_spec, tenant_values
from gateway.facade.ui.guard import cookie_value, cross_site, over_tls, session_cookie
from gateway.facade.ui.sessions import MemorySessions, tokens_match
from gateway.facade.ui.site import _local
from gateway.facade.ui.usage import csv_cell, number


@pytest.mark.parametrize(("value", "shown"), [
    (0, "$0.00"), (1234.5, "$1,234.50"), (0.01, "$0.01"), (0.000123, "$0.00012"),
    (0.0049, "$0.0049"), (-2, "-$2.00"),
])
def test_money(value: float, shown: str) -> None:
    assert fmt.money(value) == shown


def test_numbers_and_times() -> None:
    assert fmt.count(1234567) == "1,234,567"
    assert fmt.ms(1234.6) == "1,235 ms" and fmt.ms(4.26) == "4.3 ms"
    assert fmt.ms(0) == "0 ms"
    assert fmt.rate(0.0002777) == "0.00028" and fmt.rate(2.5) == "2.50"
    assert fmt.percent(0.125) == "12.5%"
    assert fmt.when(0) == "1970-01-01 00:00:00 UTC" and fmt.clock(3660) == "01:01"


@pytest.mark.parametrize(("value", "whole", "top"), [
    (0, False, 1), (0.7, False, 1), (1.2, False, 2), (2.2, False, 2.5), (3, False, 5),
    (0.0167, False, 0.02), (99, False, 100), (0, True, 2), (1, True, 2), (3, True, 4),
    (7, True, 10), (11, True, 20),
])
def test_the_y_axis_tops_at_a_round_number(value: float, whole: bool, top: float) -> None:
    assert nice_top(value, whole) == pytest.approx(top)


def test_a_chart_places_values_and_breaks_its_line_at_gaps() -> None:
    times = [i * 60.0 for i in range(5)]
    chart = line_chart("Latency", times, [("p50", [10, None, 25, 50, None])], fmt.ms)
    (line,) = chart.lines
    assert len(line.segments) == 2 and len(line.points) == 3
    (x0, y0), (_, y1), (_, y2) = line.points
    assert x0 == chart.left and y2 == TOP and y1 == pytest.approx((TOP + chart.bottom) / 2)
    assert y0 > y1 > y2  # SVG's y grows downwards
    assert chart.y_ticks[0][1] == "0 ms" and chart.y_ticks[-1][1] == "50 ms"
    assert chart.x_ticks[0][2] == "start" and chart.x_ticks[-1][2] == "end"
    assert "peak 50 ms" in chart.summary and "latest 50 ms" in chart.summary


def test_a_chart_of_nothing_is_a_flat_line() -> None:
    chart = line_chart("Requests", [0.0, 60.0, 120.0], [("requests", [0.0, 0.0, 0.0])],
                       fmt.count, whole=True)
    assert {y for _, y in chart.lines[0].points} == {chart.bottom}
    assert chart.bottom < HEIGHT


def test_sessions_end_when_idle_and_the_oldest_go_first() -> None:
    now = [1000.0]
    sessions = MemorySessions(idle=60, limit=2, clock=lambda: now[0])
    a = sessions.create("key-a", how="admin key")
    assert sessions.get(a.id) is a and a.id != a.csrf and len(a.id) >= 43
    now[0] += 59
    assert sessions.get(a.id) is a  # seen: idle from here again
    now[0] += 59
    b = sessions.create("key-b", how="admin key")
    c = sessions.create("key-c", how="admin key")  # past the limit: a (least recent) goes
    assert sessions.get(a.id) is None and sessions.get(b.id) is b and len(sessions) == 2
    now[0] += 60
    assert sessions.get(c.id) is None
    sessions.drop(b.id)
    assert sessions.get(b.id) is None and sessions.get("") is None
    assert "key-" not in repr(c)  # the credential is never in a repr (logs)


def test_tokens_match_only_when_equal_and_set() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd") and not tokens_match("", "") and not tokens_match(
        "abc", "")


def test_the_tenant_form_makes_a_spec_and_names_each_problem() -> None:
    spec, problems = tenant_spec({"name": " acme ", "allowed_models": "a, b\nc",
                                  "requests_per_second": "2.5", "burst": "1,000",
                                  "monthly_budget_usd": "50", "tokens_per_minute": "",
                                  "disabled": "on", "default_provider": "mock"})
    assert problems == []
    assert spec.name == "acme" and list(spec.allowed_models) == ["a", "b", "c"]
    assert spec.limits.requests_per_second == 2.5 and spec.limits.burst == 1000
    assert not spec.limits.HasField("tokens_per_minute") and spec.monthly_budget_usd == 50
    assert spec.disabled and spec.default_provider == "mock"
    _, problems = tenant_spec({"name": "", "burst": "1.5", "requests_per_second": "-1",
                               "concurrent_requests": "99999999999",
                               "monthly_budget_usd": "nan"})
    assert problems == ["Name: required.", "Requests per second: must be 0 or more.",
                        "Burst: must be a whole number, got '1.5'.",
                        "Concurrent requests: too large.",
                        "Budget (USD): must be 0 or more."]


def test_the_tenant_form_is_filled_from_a_tenant() -> None:
    from llmgateway.v1 import admin_service_pb2 as pb

    tenant = pb.Tenant(name="acme", allowed_models=["m1", "m2"], monthly_budget_usd=12.5,
                       limits=pb.TenantLimits(burst=20, requests_per_second=1.5))
    values = tenant_values(tenant)
    assert values["burst"] == "20" and values["requests_per_second"] == "1.5"
    assert values["monthly_budget_usd"] == "12.5" and "daily_token_quota" not in values
    spec, problems = tenant_spec(values)
    assert not problems and spec.limits.burst == 20 and list(spec.allowed_models) == ["m1",
                                                                                     "m2"]


def test_model_budgets_are_read_one_a_line_and_each_wrong_line_is_named() -> None:
    assert model_budgets("gpt-4o = 50\n\n  o1=$1,200.5  \nm=x = 0\n") == (
        {"gpt-4o": 50, "o1": 1200.5, "m=x": 0}, [])
    assert model_budgets("") == ({}, []) and model_budgets(" \n\n") == ({}, [])
    budgets, problems = model_budgets("a = 1\nb = -2\na = 3\nc\n = 4\nd = ten\ne =\n"
                                      "f = nan\ng = inf")
    assert budgets == {"a": 1}
    assert problems == ["Model budgets, line 2 (b): must be 0 or more.",
                        "Model budgets, line 3: a is already on line 1.",
                        "Model budgets, line 4: write it as model = USD, got 'c'.",
                        "Model budgets, line 5: the model's name is missing.",
                        "Model budgets, line 6 (d): must be a number, got 'ten'.",
                        "Model budgets, line 7 (e): the amount is missing.",
                        "Model budgets, line 8 (f): must be 0 or more.",
                        "Model budgets, line 9 (g): must be 0 or more."]


def test_the_tenant_form_sets_the_budget_period_and_model_budgets() -> None:
    spec, problems = tenant_spec({"name": "acme", "budget_period": "daily",
                                  "model_budgets": "gpt-4o = 5"})
    assert not problems and spec.budget_period == budgets_pb2.BUDGET_PERIOD_DAILY
    assert dict(spec.model_budgets) == {"gpt-4o": 5}
    spec, problems = tenant_spec({"name": "acme", "budget_period": "weekly",
                                  "model_budgets": "x = -1"})
    assert problems == ["Budget period: must be Monthly or Daily.",
                        "Model budgets, line 1 (x): must be 0 or more."]


def test_saving_a_tenants_form_keeps_what_the_form_does_not_show() -> None:
    tenant = pb.Tenant(
        id="ten_1", name="acme", allowed_models=["m1"], monthly_budget_usd=50,
        limits=pb.TenantLimits(burst=20), default_provider="mock",
        fallback_providers=["other"], provider_credentials=["mock"], disabled=True,
        model_budgets={"m1": 12.5, "<b>": 0}, budget_period=budgets_pb2.BUDGET_PERIOD_DAILY)
    values = tenant_values(tenant)
    assert values["budget_period"] == "daily"
    assert values["model_budgets"] == "<b> = 0\nm1 = 12.5"
    spec, problems = tenant_spec(values, tenant)
    assert not problems
    assert spec == pb.TenantSpec(
        name="acme", allowed_models=["m1"], monthly_budget_usd=50,
        limits=pb.TenantLimits(burst=20), default_provider="mock",
        fallback_providers=["other"], disabled=True, model_budgets={"m1": 12.5, "<b>": 0},
        budget_period=budgets_pb2.BUDGET_PERIOD_DAILY)
    # A field the answer lacks is kept as it is; one it has empty is emptied.
    spec, _ = tenant_spec({"name": "acme"}, tenant)
    assert dict(spec.model_budgets) == {"m1": 12.5, "<b>": 0}
    assert spec.budget_period == budgets_pb2.BUDGET_PERIOD_DAILY
    spec, _ = tenant_spec({"name": "acme", "model_budgets": "", "budget_period": "monthly"},
                          tenant)
    assert not spec.model_budgets and spec.budget_period == budgets_pb2.BUDGET_PERIOD_MONTHLY
    # Every field of a spec is either on the form, or kept from the tenant above, or (the
    # credentials) kept by the admin API: a new field must be added to one of these.
    handled = {"name", "allowed_models", "limits", "monthly_budget_usd", "default_provider",
               "disabled", "model_budgets", "budget_period", "fallback_providers",
               "provider_credentials"}
    assert {f.name for f in pb.TenantSpec.DESCRIPTOR.fields} == handled


def test_the_tenant_form_shows_numbers_in_full_so_save_keeps_them() -> None:
    tenant = pb.Tenant(name="acme", monthly_budget_usd=1234567,
                       limits=pb.TenantLimits(requests_per_second=1234.5678901),
                       model_budgets={"m": 0.123456789})
    values = tenant_values(tenant)
    assert values["monthly_budget_usd"] == "1234567"
    assert values["requests_per_second"] == "1234.5678901"
    assert values["model_budgets"] == "m = 0.123456789"
    spec, problems = tenant_spec(values, tenant)
    assert not problems and spec.monthly_budget_usd == 1234567
    assert spec.limits.requests_per_second == 1234.5678901
    assert spec.model_budgets["m"] == 0.123456789


def test_the_key_form_reads_its_budget() -> None:
    assert key_budget({"monthly_budget_usd": " 5 ", "budget_period": "daily"}) == (
        5, budgets_pb2.BUDGET_PERIOD_DAILY, [])
    assert key_budget({}) == (None, budgets_pb2.BUDGET_PERIOD_MONTHLY, [])
    assert key_budget({"monthly_budget_usd": "-1", "budget_period": "hourly"})[2] == [
        "Budget (USD): must be 0 or more.", "Budget period: must be Monthly or Daily."]


def test_cookies() -> None:
    cookie = session_cookie("abc", secure=True, max_age=60)
    assert cookie == "gw_ui_session=abc; Path=/ui; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
    assert cookie_value("a=1; gw_ui_session=xyz; b=2", "gw_ui_session") == "xyz"
    assert cookie_value(None, "gw_ui_session") == "" and cookie_value("x", "x") == ""


@pytest.mark.parametrize(("headers", "refused"), [
    ({}, False),
    ({"sec-fetch-site": "same-origin"}, False),
    ({"sec-fetch-site": "none"}, False),
    ({"sec-fetch-site": "same-site"}, True),
    ({"sec-fetch-site": "cross-site"}, True),
    ({"origin": "http://gw:8080", "host": "gw:8080"}, False),
    ({"origin": "https://evil.example", "host": "gw:8080"}, True),
    ({"origin": "null", "host": "gw:8080"}, True),
])
def test_requests_from_another_site_are_told_apart(headers: dict[str, str],
                                                   refused: bool) -> None:
    assert cross_site(headers) is refused


def test_tls_is_the_connection_s_or_a_trusted_proxy_s_word() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    https = {"x-forwarded-proto": "https"}
    assert over_tls({"scheme": "https", "client": ("1.2.3.4", 1)}, {}, proxies)
    assert over_tls({"scheme": "http", "client": ("10.1.2.3", 1)}, https, proxies)
    assert not over_tls({"scheme": "http", "client": ("1.2.3.4", 1)}, https, proxies)
    assert not over_tls({"scheme": "http", "client": ("10.1.2.3", 1)}, {}, proxies)


@pytest.mark.parametrize(("path", "goes"), [
    ("/ui/tenants?x=1", "/ui/tenants?x=1"), ("/ui/", "/ui/"), ("", "/ui/"),
    ("https://evil.example/", "/ui/"), ("//evil.example/ui/", "/ui/"), ("/ui//evil", "/ui/"),
    ("/ui/\\evil", "/ui/"), ("/ui/sign-out", "/ui/"), ("/admin/tenants", "/ui/"),
])
def test_after_signing_in_only_a_page_of_the_ui_is_returned_to(path: str, goes: str) -> None:
    assert _local(path) == goes


@pytest.mark.parametrize(("text", "written"), [
    ("acme", "acme"), ("=1+2", "'=1+2"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=x", "'\t=x"), ("\r=x", "'\r=x"), ("a=b", "a=b"), ("", "")])
def test_csv_cells_are_never_formulas(text: str, written: str) -> None:
    assert csv_cell(text) == written


def test_csv_numbers_are_plain_decimals() -> None:
    assert [number(v) for v in (0.0, 2.0, 0.0000021, 1234567.5, 1e-12, 12.3456789012)] == [
        "0", "2", "0.0000021", "1234567.5", "0", "12.3456789012"]


def test_unit_prices_are_never_rounded_to_the_cent() -> None:
    assert [fmt.unit_price(v) for v in (0, 3, 2.5, 0.075, 0.15, 1234.5)] == [
        "$0.00", "$3.00", "$2.50", "$0.075", "$0.15", "$1,234.50"]

