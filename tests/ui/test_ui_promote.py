"""The Promote button: off by default (no button, the POST a 404); when on, a POST counts
only with the form's CSRF token from the page (double submit, signed), and it hands the
finished sweep to the promoter and shows what it did."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from support.ui_pages import MakeClient
from tunix_rt.ui import PromoteOutcome, PromoteRequest, UiConfig
from tunix_rt.ui.csrf import COOKIE, FIELD, sign

MIXED = "/sweeps/team-a/mixed"
ON = UiConfig(promote_enabled=True, git_repo="git@example.com:ml/runs.git")


class FakePromoter:
    """Records what it is asked; answers as told."""

    def __init__(self, outcome: PromoteOutcome | None = None, error: Exception | None = None):
        self.asked: list[PromoteRequest] = []
        self.outcome = outcome or PromoteOutcome(
            ok=True,
            message="committed the Rehearsal manifest",
            details={"branch": "promote/mixed", "merge request": "https://example.com/mr/7"},
        )
        self.error = error

    def __call__(self, request: PromoteRequest) -> PromoteOutcome:
        self.asked.append(request)
        if self.error is not None:
            raise self.error
        return self.outcome


async def token_of(client: TestClient[Any, Any], path: str = MIXED) -> str:
    """The form's token from the page (the cookie lands in the client's jar)."""
    html = await (await client.get(path)).text()
    found = re.search(rf'name="{FIELD}" value="([0-9a-f]+)"', html)
    assert found, "no promote form on the page"
    return found.group(1)


async def test_off_by_default_no_button_and_a_404(client: TestClient[Any, Any]) -> None:
    html = await (await client.get(MIXED)).text()
    assert 'id="promote"' not in html
    resp = await client.post(f"{MIXED}/promote", data={FIELD: "x"})
    assert resp.status == 404


async def test_enabled_without_a_promoter_is_still_off(make_client: MakeClient) -> None:
    client = await make_client(ON)
    assert 'id="promote"' not in await (await client.get(MIXED)).text()
    assert (await client.post(f"{MIXED}/promote")).status == 404


async def test_without_the_token_a_403_and_nothing_promoted(make_client: MakeClient) -> None:
    promoter = FakePromoter()
    client = await make_client(ON, promoter=promoter)
    await token_of(client)  # the cookie is set, the form's field is not sent
    assert (await client.post(f"{MIXED}/promote", data={})).status == 403
    assert (await client.post(f"{MIXED}/promote", data={FIELD: "0" * 64})).status == 403
    assert promoter.asked == []


async def test_a_token_without_its_cookie_is_refused(make_client: MakeClient) -> None:
    promoter = FakePromoter()
    client = await make_client(ON, promoter=promoter)
    token = await token_of(client)
    client.session.cookie_jar.clear()
    assert (await client.post(f"{MIXED}/promote", data={FIELD: token})).status == 403
    assert promoter.asked == []


async def test_the_token_is_the_cookies_nonce_signed_with_the_secret(
    make_client: MakeClient,
) -> None:
    promoter = FakePromoter()
    config = ON.model_copy(update={"csrf_secret": SecretStr("s3cret")})
    client = await make_client(config, promoter=promoter)
    await token_of(client)
    nonce = next(c.value for c in client.session.cookie_jar if c.key == COOKIE)
    forged = await client.post(f"{MIXED}/promote", data={FIELD: sign("another", nonce)})
    assert forged.status == 403 and promoter.asked == []
    signed = await client.post(f"{MIXED}/promote", data={FIELD: sign("s3cret", nonce)})
    assert signed.status == 200 and len(promoter.asked) == 1


async def test_from_another_origin_is_refused(make_client: MakeClient) -> None:
    promoter = FakePromoter()
    client = await make_client(ON, promoter=promoter)
    token = await token_of(client)
    resp = await client.post(
        f"{MIXED}/promote", data={FIELD: token}, headers={"Origin": "https://evil.example"}
    )
    assert resp.status == 403 and promoter.asked == []


async def test_with_the_token_the_promoter_is_called_and_its_outcome_shown(
    make_client: MakeClient, store: Any
) -> None:
    promoter = FakePromoter()
    client = await make_client(ON, promoter=promoter)
    page = await client.get(MIXED)
    assert COOKIE in page.cookies and "HttpOnly" in page.headers["Set-Cookie"]
    assert "SameSite=Strict" in page.headers["Set-Cookie"]
    html = await page.text()
    assert "Promote the best trial to git@example.com:ml/runs.git" in html
    token = re.search(rf'name="{FIELD}" value="([0-9a-f]+)"', html).group(1)  # type: ignore[union-attr]
    resp = await client.post(f"{MIXED}/promote", data={FIELD: token})
    assert resp.status == 200
    assert promoter.asked == [
        PromoteRequest(
            namespace="team-a",
            sweep="mixed",
            summary_uri=store.uri_for("team-a/mixed/summary.json"),
            repo="git@example.com:ml/runs.git",
        )
    ]
    shown = await resp.text()
    assert "✓ committed the Rehearsal manifest" in shown
    assert "<dt>branch</dt><dd>promote/mixed</dd>" in shown
    assert '<a href="https://example.com/mr/7">' in shown


async def test_a_failing_promoter_is_shown_not_raised(make_client: MakeClient) -> None:
    promoter = FakePromoter(error=RuntimeError("push refused: <protected branch>"))
    client = await make_client(ON, promoter=promoter)
    resp = await client.post(f"{MIXED}/promote", data={FIELD: await token_of(client)})
    assert resp.status == 502
    assert "RuntimeError: push refused: &lt;protected branch&gt;" in await resp.text()


async def test_an_async_promoter_is_awaited(make_client: MakeClient) -> None:
    asked: list[str] = []

    async def promoter(request: PromoteRequest) -> PromoteOutcome:
        asked.append(request.sweep)
        return PromoteOutcome(ok=True, message="done")

    client = await make_client(ON, promoter=promoter)
    resp = await client.post(f"{MIXED}/promote", data={FIELD: await token_of(client)})
    assert resp.status == 200 and asked == ["mixed"]


async def test_only_a_finished_sweep_offers_or_takes_a_promotion(make_client: MakeClient) -> None:
    promoter = FakePromoter()
    client = await make_client(ON, promoter=promoter)
    running = await (await client.get("/sweeps/team-b/growing")).text()
    assert 'id="promote"' not in running
    token = await token_of(client)  # a valid token, from the finished sweep's page
    resp = await client.post("/sweeps/team-b/growing/promote", data={FIELD: token})
    assert resp.status == 409 and promoter.asked == []
