"""The Usage, Models and Playground pages in Chromium against a real in-process gateway: a
tenant's requests shown per tenant and per model, in charts, tables and a CSV download; names
with markup or a leading ``=`` shown as text and escaped in the CSV; the model table with its
targets, weights, hedge, fallbacks and prices, never an upstream's key; the playground's
answer seen in the page before its end (a fake upstream holds the stream half-way), then in
the request log as the admin's."""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.fakes.openai import FakeOpenAI, stream_events
from tests.fakes.server import Reply
from tests.inprocess import InProcessGateway, start_in_process
from tests.ui.conftest import (
    ADMIN,
    NARROW,
    Watched,
    admin_api,
    check_labelled_and_fitting,
    signed_in,
    ui_config,
)
from tests.ui.test_pages import chat, row

pytestmark = pytest.mark.serial

Watch = Callable[..., Watched]
Shots = Callable[[Page, str], None]

EVIL_TENANT = '=1+2<img src=x onerror="window.__pwned = 1">'
EVIL_MODEL = "@SUM(1)<script>window.__pwned = 2</script>"
MODELS = """
  - name: smart
    strategy: ordered
    hedge: {after: 2s}
    fallbacks: [mock-1]
    targets:
      - {provider: up, model: gpt-4o-mini, weight: 3}
      - {provider: mock, model: echo, weight: 1}
  - name: held
    targets: [{provider: up, model: gpt-4o-mini}]
pricing:
  echo: {input_per_mtok: 150, output_per_mtok: 600}
  up/gpt-4o-mini: {input_per_mtok: 2.5, output_per_mtok: 10, cached_input_per_mtok: 1.25}
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def ui_gateway(upstream: FakeOpenAI) -> Iterator[InProcessGateway]:
    """This module's gateway: the UI's usual one, with an OpenAI-compatible fake upstream
    behind ``smart`` and ``held``, and prices."""
    gw = start_in_process(ui_config(MODELS, providers=upstream.provider("up", "gpt-4o-mini")),
                          env={"GATEWAY_ADMIN_KEY": ADMIN})
    yield gw
    assert gw.stop() == 0, gw.logs()


def tenant_with_key(gw: InProcessGateway, name: str) -> tuple[str, str]:
    tenant = admin_api(gw, "POST", "/tenants", {"name": name}).json()["tenant"]
    secret = admin_api(gw, "POST", f"/tenants/{tenant['id']}/keys", {}).json()["secret"]
    return tenant["id"], secret


def session_cookies(watch: Watched) -> dict[str, str]:
    return {c["name"]: c["value"] for c in watch.context.cookies()}


def test_usage_per_tenant_and_model_in_charts_tables_and_csv(
        watched: Watch, ui_gateway: InProcessGateway, shots: Shots) -> None:
    plain_id, plain_key = tenant_with_key(ui_gateway, "usage-a")
    evil_id, evil_key = tenant_with_key(ui_gateway, EVIL_TENANT)
    chat(ui_gateway, plain_key, "mock-1")
    chat(ui_gateway, plain_key, "mock-1")
    chat(ui_gateway, plain_key, "mock-2")
    chat(ui_gateway, evil_key, "mock-2")
    r = httpx.post(ui_gateway.http_url + "/v1/chat/completions", timeout=10,
                   headers={"Authorization": f"Bearer {evil_key}"},
                   json={"model": EVIL_MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404  # refused, and logged under the name asked for

    watch = watched()
    page = signed_in(watch)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Usage")
    tenants = page.get_by_role("region", name="Usage by tenant")
    expect(row(tenants, "usage-a")).to_contain_text(re.compile(r"usage-a\s+3\s+0"))
    expect(tenants.get_by_role("row").filter(has_text=EVIL_TENANT)).to_contain_text(
        re.compile(r"2\s+1"))  # two requests, one refused
    models = page.get_by_role("region", name="Usage by model")
    expect(models.get_by_role("row").filter(has_text=EVIL_MODEL)).to_contain_text("1")
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    # A line per tenant and per model, a point a minute; the busiest named in the legend.
    charts = page.locator("figure.chart")
    expect(charts).to_have_count(4)
    by_tenant = charts.filter(has_text="Requests by tenant")
    expect(by_tenant.locator(".legend")).to_contain_text("usage-a")
    assert by_tenant.locator("g[data-series='usage-a'] circle.dot").count() >= 3
    baseline = float(by_tenant.locator("text.tick").first.get_attribute("y") or 0) - 4
    heights = [float(d.get_attribute("cy") or 0)
               for d in by_tenant.locator("g[data-series='usage-a'] circle.dot").all()]
    assert min(heights) < baseline  # the minute of the requests stands above zero
    expect(charts.filter(has_text="Spend by model").locator(".legend")).to_contain_text("mock-1")
    hidden = page.get_by_role("table").filter(has_text="Chart values by tenant")
    expect(hidden).to_contain_text("usage-a")
    # Spend: echo costs $150 in / $600 out per 1M tokens.
    expect(row(tenants, "usage-a")).to_contain_text(re.compile(r"\$0\.\d\d"))
    shots(page, "usage")

    # Filtered to one tenant, the models are that tenant's.
    page.get_by_label("Tenant", exact=True).select_option(label="usage-a")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_label("Tenant", exact=True)).to_have_value(plain_id)
    expect(row(models, "mock-1")).to_contain_text(re.compile(r"mock-1\s+2\s+0"))
    expect(row(models, "mock-2")).to_contain_text(re.compile(r"mock-2\s+1\s+0"))
    expect(models.get_by_role("row").filter(has_text=EVIL_MODEL)).to_have_count(0)
    page.get_by_label("Model", exact=True).select_option("mock-2")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".totals")).to_contain_text(re.compile(r"Requests\s*1\b"))
    # The periods keep the filters.
    page.get_by_role("link", name="The last week").click()
    expect(page.get_by_label("Model", exact=True)).to_have_value("mock-2")
    expect(row(page.get_by_role("region", name="Usage by tenant"), "usage-a")).to_be_visible()
    page.get_by_role("link", name="Clear filters").click()

    # The CSV: a header, a row per step and tenant, then per step and model.
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert re.fullmatch(r"usage-week-\d{8}T\d{4}Z\.csv", download.value.suggested_filename)
    with open(download.value.path(), encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert set(rows[0]) >= {"step_start_utc", "group", "id", "name", "requests", "errors",
                            "prompt_tokens", "completion_tokens", "cost_usd"}
    mine = [r for r in rows if r["group"] == "tenant" and r["id"] == plain_id]
    assert sum(int(r["requests"]) for r in mine) == 3 and mine[0]["name"] == "usage-a"
    assert all(float(r["cost_usd"]) > 0 and "e" not in r["cost_usd"] for r in mine)
    evil = [r for r in rows if r["group"] == "tenant" and r["id"] == evil_id]
    assert evil and all(r["name"] == "'" + EVIL_TENANT for r in evil)
    evil_model = [r for r in rows if r["group"] == "model" and r["name"].endswith("</script>")]
    assert evil_model and all(r["id"] == r["name"] == "'" + EVIL_MODEL for r in evil_model)
    assert not [r for r in rows for cell in r.values() if cell[:1] in ("=", "+", "-", "@")]

    # The download's headers, and the filters applied to it.
    r = httpx.get(ui_gateway.http_url + "/ui/usage.csv", timeout=10,
                  params={"period": "day", "tenant_id": plain_id, "model": "mock-1"},
                  cookies=session_cookies(watch))
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="usage-day-\d{8}T\d{4}Z\.csv"',
                        r.headers["content-disposition"])
    filtered = list(csv.DictReader(io.StringIO(r.text)))
    assert {(x["group"], x["id"]) for x in filtered} == {("tenant", plain_id), ("model", "mock-1")}
    assert sum(int(x["requests"]) for x in filtered if x["group"] == "model") == 2
    signed_out = httpx.get(ui_gateway.http_url + "/ui/usage.csv", timeout=10)
    assert "text/csv" not in signed_out.headers["content-type"]
    assert "usage-a" not in signed_out.text and "Admin key" in signed_out.text


def test_an_empty_usage_page_says_what_to_do(watched: Watch, ui_gateway: InProcessGateway
                                             ) -> None:
    page = signed_in(watched(), path="/ui/usage?model=no-such-model")
    expect(page.get_by_text("No request matches these filters")).to_be_visible()
    expect(page.locator("figure.chart")).to_have_count(4)
    page.get_by_role("link", name="Clear filters").first.click()
    expect(page.get_by_label("Model", exact=True)).to_have_value("")


def test_the_models_page_shows_aliases_targets_and_prices(
        watched: Watch, ui_gateway: InProcessGateway, upstream: FakeOpenAI,
        shots: Shots) -> None:
    page = signed_in(watched())
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    aliases = page.get_by_role("region", name="Aliases")
    smart = row(aliases, "smart")
    expect(smart).to_contain_text("up / gpt-4o-mini")
    expect(smart).to_contain_text("weight 3")
    expect(smart).to_contain_text("mock / echo")
    expect(smart).to_contain_text("$2.50 in / $10.00 out")
    expect(smart).to_contain_text("($1.25 cached)")
    expect(smart).to_contain_text("$150.00 in / $600.00 out")
    expect(smart).to_contain_text("ordered")
    expect(smart).to_contain_text("after 2,000 ms")
    expect(smart).to_contain_text("mock-1")
    mock_1 = aliases.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name="mock-1", exact=True))
    expect(mock_1).to_contain_text("weighted")
    expect(mock_1).to_contain_text("weight 1")
    direct = page.get_by_role("region", name="Provider models")
    expect(row(direct, "up/gpt-4o-mini")).to_contain_text("$2.50 in / $10.00 out")
    expect(row(direct, "down/gone")).to_contain_text("no price")
    expect(page.get_by_text("Prices are in US dollars per 1M tokens")).to_be_visible()
    content = page.content()
    assert upstream.api_key not in content and upstream.base_url not in content
    shots(page, "models")


def test_the_playground_streams_the_answer_into_the_page(
        watched: Watch, ui_gateway: InProcessGateway, upstream: FakeOpenAI,
        shots: Shots) -> None:
    release = threading.Event()
    upstream.enqueue(Reply(events=stream_events("gpt-4o-mini", ["Hello", " there", " world"],
                                                True), hold=release, hold_at=2))
    page = signed_in(watched())
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Playground").click()
    page.get_by_label("Model", exact=True).select_option("held")
    page.get_by_label("Message").fill("Say hello <b>to</b> me")
    page.get_by_role("button", name="Send").click()
    answer = page.locator("#pg-answer")
    status = page.get_by_role("status")
    # The first word is in the page while the upstream still holds the rest.
    expect(answer).to_have_text("Hello")
    expect(status).to_have_text("Answering…")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    release.set()
    expect(answer).to_have_text("Hello there world")
    expect(status).to_contain_text("Done: 11 tokens in, 7 out. Request ID req_")
    request_id = re.search(r"req_\w+", status.inner_text())
    assert request_id is not None
    sent = upstream.requests[-1].json
    assert sent["stream"] is True and sent["messages"][-1]["content"] == "Say hello <b>to</b> me"
    shots(page, "playground")

    # A refusal is shown in the page; then Ctrl+Enter in the box sends the next.
    page.get_by_label("Model", exact=True).select_option("down-1")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert not page.get_by_role("alert").inner_text().lstrip().startswith("{")
    expect(answer).to_be_empty()
    page.get_by_label("Model", exact=True).select_option("mock-1")
    page.get_by_label("Message").fill("typed then sent")
    page.get_by_label("Message").press("Control+Enter")
    expect(answer).to_have_text("Echo: typed then sent")
    expect(page.get_by_role("alert")).to_be_hidden()

    # Its requests are the admin's, in the request log.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Request log").click()
    entry = row(page, request_id.group(0))
    expect(entry).to_contain_text("held")
    expect(entry).to_contain_text("admin")
    expect(entry).to_contain_text("OK")


def test_the_stream_route_answers_in_pieces_and_only_with_the_csrf_token(
        ui_gateway: InProcessGateway, upstream: FakeOpenAI) -> None:
    with httpx.Client(base_url=ui_gateway.http_url, timeout=10) as client:
        form = client.get("/ui/playground").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        signed = client.post("/ui/sign-in", data={"csrf_token": token.group(1),
                                                  "admin_key": ADMIN, "next": "/ui/"})
        assert signed.status_code == 303
        page = client.get("/ui/playground").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf is not None
        refused = client.post("/ui/playground/stream",
                              data={"model": "mock-1", "message": "hi"})
        assert refused.status_code == 403 and "CSRF" in refused.text

        release = threading.Event()
        upstream.enqueue(Reply(events=stream_events("gpt-4o-mini", ["One", " two"], True),
                               hold=release, hold_at=2))
        with client.stream("POST", "/ui/playground/stream", data={
                "csrf_token": csrf.group(1), "model": "held", "message": "count"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["x-request-id"].startswith("req_")
            lines = r.iter_lines()
            assert next(lines) == 'data: {"text":"One"}'  # before the upstream goes on
            release.set()
            rest = [line for line in lines if line]
        assert rest == ['data: {"text":" two"}',
                        'data: {"done":true,"usage":{"prompt_tokens":11,"completion_tokens":7}}']

        # A browser that leaves mid-answer: the core's call is cancelled, and logged so.
        left = threading.Event()
        upstream.enqueue(Reply(events=stream_events("gpt-4o-mini", ["Never", " all"], True),
                               hold=left, hold_at=2))
        with client.stream("POST", "/ui/playground/stream", data={
                "csrf_token": csrf.group(1), "model": "held", "message": "leave"}) as r:
            request_id = r.headers["x-request-id"]
            assert next(r.iter_lines()) == 'data: {"text":"Never"}'
        try:
            for _ in range(100):
                found = admin_api(ui_gateway, "GET", f"/requests?request_id={request_id}")
                if found.json()["requests"]:
                    break
                time.sleep(0.1)
            assert [e["status"] for e in found.json()["requests"]] == ["CANCELLED"]
        finally:
            left.set()

        for data, message in (({"model": "mock-1", "message": " "}, "Type a message"),
                              ({"model": "", "message": "hi"}, "Pick a model"),
                              ({"model": "mock-1", "message": "x" * 32_001}, "longer than")):
            bad = client.post("/ui/playground/stream",
                              data={"csrf_token": csrf.group(1), **data})
            assert bad.status_code == 200 and bad.text.startswith('data: {"error":"')
            assert message in bad.text

        # Without script, the form's own POST answers the page with the whole reply.
        whole = client.post("/ui/playground", data={"csrf_token": csrf.group(1),
                                                    "model": "mock-1", "message": "<i>hi</i>"})
        assert whole.status_code == 200
        assert "Echo: &lt;i&gt;hi&lt;/i&gt;" in whole.text and "<i>hi</i>" not in whole.text


def test_the_new_pages_label_their_controls_and_fit_400_px(
        watched: Watch, ui_gateway: InProcessGateway, shots: Shots) -> None:
    _, key = tenant_with_key(ui_gateway, "a-tenant-with-a-rather-long-name-" + "x" * 40)
    chat(ui_gateway, key, "mock-2")
    paths = ("/ui/usage", "/ui/usage?period=day", "/ui/usage?period=week", "/ui/models",
             "/ui/playground")
    for viewport in (None, NARROW):
        page = signed_in(watched(viewport=viewport) if viewport else watched())
        check_labelled_and_fitting(page, paths, viewport)
        if viewport:
            page.goto("/ui/usage")
            shots(page, "usage-narrow")
            page.goto("/ui/playground")
            shots(page, "playground-narrow")
