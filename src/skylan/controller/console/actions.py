"""What the console's forms and buttons do: each is one REST API call.

A form posts (via htmx) here; the handler turns the fields into the API's
JSON body and calls the API as the logged-in person. Success answers 204
with an ``HX-Trigger: changed`` header, which makes the page's live sections
reload; refusal answers with the API's status and out-of-band fragments that
put each message next to its field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import escape

from skylan.controller.console.access import CurrentViewer
from skylan.controller.console.apiclient import FORM, ApiFailure, segment
from skylan.controller.console.render import fragment

router = APIRouter(include_in_schema=False)

Call = Callable[[], Awaitable[Any]]


def _errors(
    form_id: str,
    fields: tuple[str, ...],
    failure: ApiFailure,
    aliases: dict[str, str] | None = None,
) -> str:
    by_target: dict[str, list[str]] = {}
    for api_field, message in failure.fields.items():
        field = (aliases or {}).get(api_field, api_field)
        target = field if field in fields else FORM
        by_target.setdefault(target, []).append(message)
    if form_id == "flash":
        text = "; ".join(m for ms in by_target.values() for m in ms)
        return (
            '<div id="flash" class="flash error" role="alert" hx-swap-oob="true">'
            f"{escape(text)}</div>"
        )
    return "".join(
        f'<p id="{form_id}-{target}-error" class="error" role="alert" hx-swap-oob="true">'
        f"{escape('; '.join(messages))}</p>"
        for target, messages in by_target.items()
    )


async def perform(
    call: Call,
    *,
    form_id: str = "flash",
    fields: tuple[str, ...] = (),
    redirect: str | Callable[[Any], str] | None = None,
    on_success: Callable[[Any], str] | None = None,
    aliases: dict[str, str] | None = None,
) -> Response:
    try:
        result = await call()
    except ApiFailure as failure:
        if failure.status == 401:
            return Response(status_code=204, headers={"HX-Redirect": "/login"})
        return HTMLResponse(_errors(form_id, fields, failure, aliases), status_code=failure.status)
    headers = {"HX-Trigger": "changed"}
    if redirect is not None:
        headers["HX-Redirect"] = redirect(result) if callable(redirect) else redirect
    if on_success is not None:
        return HTMLResponse(on_success(result), headers=headers)
    return Response(status_code=204, headers=headers)


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


def given(form: dict[str, str], *names: str) -> dict[str, str]:
    """The non-empty fields among ``names``: an empty box means 'not set'."""
    return {n: form[n] for n in names if form.get(n)}


def checked(form: dict[str, str], name: str) -> bool:
    return form.get(name) in ("on", "true", "1", "yes")


def ip_list(text: str) -> list[str]:
    return [p for p in text.replace(",", " ").split() if p]


# -- networks -----------------------------------------------------------------


@router.post("/networks")
async def create_network(request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    body: dict[str, Any] = given(f, "name", "cidr4", "cidr6", "description", "mtu", "storm_pps")
    body["name"] = f.get("name", "")
    body["cidr4"] = f.get("cidr4", "")
    body["encrypted"] = checked(f, "encrypted")
    body["cloaked"] = checked(f, "cloaked")
    return await perform(
        lambda: viewer.api.call("POST", "/networks", body),
        form_id="net-create",
        fields=("name", "cidr4", "cidr6", "description", "mtu", "storm_pps"),
        redirect=lambda net: f"/networks/{net['id']}",
    )


@router.post("/networks/{ident}/settings")
async def network_settings(ident: str, request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    body: dict[str, Any] = given(f, "mtu", "storm_pps")
    body["description"] = f.get("description", "")
    if "dns_domain" in f:
        body["dns_domain"] = f["dns_domain"].strip() or None  # empty: DNS off
    return await perform(
        lambda: viewer.api.call("PATCH", f"/networks/{segment(ident)}", body),
        form_id="net-settings",
        fields=("description", "mtu", "storm_pps", "dns_domain"),
    )


@router.post("/networks/{ident}/cloak")
async def network_cloak(ident: str, request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    return await perform(
        lambda: viewer.api.call(
            "PATCH", f"/networks/{segment(ident)}", {"cloaked": f.get("cloaked") == "true"}
        )
    )


@router.post("/networks/{ident}/delete")
async def delete_network(ident: str, viewer: CurrentViewer) -> Response:
    return await perform(
        lambda: viewer.api.call("DELETE", f"/networks/{segment(ident)}", params={"force": "true"}),
        redirect="/",
    )


# -- ports --------------------------------------------------------------------


@router.post("/networks/{ident}/ports")
async def attach(ident: str, request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    body: dict[str, Any] = {"node": f.get("node", ""), **given(f, "ipv4")}
    if f.get("extra_ips"):
        body["extra_ips"] = ip_list(f["extra_ips"])
    return await perform(
        lambda: viewer.api.call("POST", f"/networks/{segment(ident)}/ports", body),
        form_id="attach",
        fields=("node", "ipv4", "extra_ips"),
    )


@router.post("/networks/{ident}/ports/{port}/addresses")
async def set_addresses(ident: str, port: str, request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    body: dict[str, Any] = {"ipv4": f.get("ipv4", ""), "extra_ips": ip_list(f.get("extra_ips", ""))}
    if "ipv6" in f:
        body["ipv6"] = f["ipv6"].strip() or None  # empty: the derived address
    return await perform(
        lambda: viewer.api.call("PATCH", f"/networks/{segment(ident)}/ports/{segment(port)}", body),
        form_id=f"port-{port}",
        fields=("ipv4", "extra_ips", "ipv6"),
    )


@router.post("/networks/{ident}/ports/{port}/detach")
async def detach(ident: str, port: str, viewer: CurrentViewer) -> Response:
    return await perform(
        lambda: viewer.api.call("DELETE", f"/networks/{segment(ident)}/ports/{segment(port)}")
    )


# -- gateways -------------------------------------------------------------------


@router.post("/networks/{ident}/routes")
async def add_route(ident: str, request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    body: dict[str, Any] = {
        "prefix": f.get("prefix", ""),
        "via": f.get("via", ""),
        "masquerade": checked(f, "masquerade"),
        **given(f, "metric"),
    }
    return await perform(
        lambda: viewer.api.call("POST", f"/networks/{segment(ident)}/routes", body),
        form_id="route",
        fields=("prefix", "via", "metric"),
    )


@router.post("/networks/{ident}/routes/{route_id}/delete")
async def delete_route(ident: str, route_id: str, viewer: CurrentViewer) -> Response:
    return await perform(
        lambda: viewer.api.call("DELETE", f"/networks/{segment(ident)}/routes/{segment(route_id)}")
    )


# -- cloaking -------------------------------------------------------------------


@router.post("/networks/{ident}/cloak-rules")
async def add_rule(ident: str, request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    body: dict[str, Any] = {
        "protocol": f.get("protocol", ""),
        **given(f, "port_from", "port_to", "source_cidr", "node", "description"),
    }
    return await perform(
        lambda: viewer.api.call("POST", f"/networks/{segment(ident)}/cloak-rules", body),
        form_id="rule",
        fields=("protocol", "port_from", "port_to", "source_cidr", "node", "description"),
    )


@router.post("/networks/{ident}/cloak-rules/{rule_id}/delete")
async def delete_rule(ident: str, rule_id: str, viewer: CurrentViewer) -> Response:
    return await perform(
        lambda: viewer.api.call(
            "DELETE", f"/networks/{segment(ident)}/cloak-rules/{segment(rule_id)}"
        )
    )


# -- DNS names --------------------------------------------------------------------


@router.post("/networks/{ident}/dns-records")
async def add_dns_record(ident: str, request: Request, viewer: CurrentViewer) -> Response:
    body = given(await form_of(request), "name", "address")
    return await perform(
        lambda: viewer.api.call("POST", f"/networks/{segment(ident)}/dns-records", body),
        form_id="dnsname",
        fields=("name", "address"),
    )


@router.post("/networks/{ident}/dns-records/{record_id}/edit")
async def edit_dns_record(
    ident: str, record_id: str, request: Request, viewer: CurrentViewer
) -> Response:
    body = given(await form_of(request), "name", "address")
    return await perform(
        lambda: viewer.api.call(
            "PATCH", f"/networks/{segment(ident)}/dns-records/{segment(record_id)}", body
        ),
        form_id=f"dns-{record_id}",
        fields=("name", "address"),
    )


@router.post("/networks/{ident}/dns-records/{record_id}/delete")
async def delete_dns_record(ident: str, record_id: str, viewer: CurrentViewer) -> Response:
    return await perform(
        lambda: viewer.api.call(
            "DELETE", f"/networks/{segment(ident)}/dns-records/{segment(record_id)}"
        )
    )


# -- security groups ------------------------------------------------------------

SECURITY_FIELDS = ("protocol", "port_from", "port_to", "source", "target", "description")


@router.post("/networks/{ident}/policy")
async def network_policy(ident: str, request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    return await perform(
        lambda: viewer.api.call(
            "PATCH", f"/networks/{segment(ident)}", {"policy": f.get("policy", "")}
        )
    )


@router.post("/networks/{ident}/security-rules")
async def add_security_rule(ident: str, request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    body: dict[str, Any] = {"protocol": f.get("protocol", ""), **given(f, *SECURITY_FIELDS[1:])}
    return await perform(
        lambda: viewer.api.call("POST", f"/networks/{segment(ident)}/security-rules", body),
        form_id="srule",
        fields=SECURITY_FIELDS,
    )


@router.post("/networks/{ident}/security-rules/{rule_id}/delete")
async def delete_security_rule(ident: str, rule_id: str, viewer: CurrentViewer) -> Response:
    return await perform(
        lambda: viewer.api.call(
            "DELETE", f"/networks/{segment(ident)}/security-rules/{segment(rule_id)}"
        )
    )


@router.post("/networks/{ident}/security-check")
async def security_check(ident: str, request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    params = {"protocol": f.get("protocol", ""), **given(f, "source", "target", "port")}
    if params["protocol"] not in ("tcp", "udp"):
        params.pop("port", None)  # the form keeps a port typed before
    return await perform(
        lambda: viewer.api.call(
            "GET", f"/networks/{segment(ident)}/security-rules/check", params=params
        ),
        form_id="reach",
        fields=("source", "target", "protocol", "port"),
        on_success=_reachability,
    )


def _reachability(answer: Any) -> str:
    what = f"{answer['protocol']}/{answer['port']}" if answer.get("port") else answer["protocol"]
    verdict = "allowed" if answer["allowed"] else "denied"
    to = str(escape(answer["target"]))
    if answer.get("via"):
        to = f"{escape(answer['via'])} via gateway {to}"
    return (
        f'<p id="reach-result" role="status" class="{verdict}" hx-swap-oob="true">'
        f"{escape(answer['source'])} → {to} {escape(what)}: "
        f"<strong>{verdict}</strong> ({escape(answer['reason'])})</p>"
    )


# -- nodes ----------------------------------------------------------------------


@router.post("/nodes/{ident}/approve")
async def approve(ident: str, viewer: CurrentViewer) -> Response:
    return await perform(lambda: viewer.api.call("POST", f"/nodes/{segment(ident)}/approve"))


@router.post("/nodes/{ident}/deny")
async def deny(ident: str, viewer: CurrentViewer) -> Response:
    return await perform(lambda: viewer.api.call("POST", f"/nodes/{segment(ident)}/deny"))


@router.post("/nodes/{ident}/rename")
async def rename(ident: str, request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    return await perform(
        lambda: viewer.api.call("PATCH", f"/nodes/{segment(ident)}", {"name": f.get("name", "")}),
        form_id="rename",
        fields=("name",),
    )


@router.post("/nodes/{ident}/delete")
async def delete_node(ident: str, viewer: CurrentViewer) -> Response:
    return await perform(
        lambda: viewer.api.call("DELETE", f"/nodes/{segment(ident)}"), redirect="/nodes"
    )


# -- join tokens ------------------------------------------------------------------


@router.post("/tokens")
async def create_token(request: Request, viewer: CurrentViewer) -> Response:
    form = await request.form()
    f = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
    body: dict[str, Any] = {
        "description": f.get("description", ""),
        "networks": [v for v in form.getlist("networks") if isinstance(v, str)],
        "needs_approval": checked(f, "needs_approval"),
        "max_uses": f.get("max_uses") or None,
    }
    hours = f.get("expires_hours", "")
    if not hours:
        body["expires_in_s"] = None
    else:
        try:
            body["expires_in_s"] = round(float(hours) * 3600)
        except ValueError:
            failure = ApiFailure(422, "", {"expires_hours": "enter a number of hours"})
            return HTMLResponse(_errors("token", ("expires_hours",), failure), status_code=422)
    return await perform(
        lambda: viewer.api.call("POST", "/tokens", body),
        form_id="token",
        fields=("description", "networks", "needs_approval", "max_uses", "expires_hours"),
        on_success=lambda created: fragment("_token_created.html", token=created),
        aliases={"expires_in_s": "expires_hours"},
    )


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(token_id: str, viewer: CurrentViewer) -> Response:
    return await perform(lambda: viewer.api.call("DELETE", f"/tokens/{segment(token_id)}"))


# -- relays ---------------------------------------------------------------------------


@router.post("/relays")
async def create_relay(request: Request, viewer: CurrentViewer) -> Response:
    f = await form_of(request)
    return await perform(
        lambda: viewer.api.call("POST", "/relays", given(f, "name", "address")),
        form_id="relay",
        fields=("name", "address"),
        on_success=lambda created: fragment("_relay_created.html", relay=created),
    )


@router.post("/relays/{ident}/delete")
async def delete_relay(ident: str, viewer: CurrentViewer) -> Response:
    return await perform(lambda: viewer.api.call("DELETE", f"/relays/{segment(ident)}"))
