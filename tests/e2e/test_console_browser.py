"""The web console in a real browser: Debian's Chromium, driven by Playwright,
against a controller and real agents in a namespace lab.

The browser runs on its own lab host (an administrator's laptop) and reaches
the controller over the lab underlay, as a person would. Screenshots of the
main pages land in ``artifacts/screenshots/`` (not committed).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from skylan.lab import Host, Lab
from skylan.lab.product import Deployment
from skylan.lab.waiting import wait_for

playwright = pytest.importorskip("playwright.sync_api")
from playwright.sync_api import Browser, Page, expect  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(
    os.environ.get("SKYLAN_SCREENSHOTS", Path(__file__).parents[2] / "artifacts" / "screenshots")
)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def chromium_on(host: Host, tmp_path: Path) -> Path:
    """A launcher that starts Chromium inside ``host``'s namespace; Playwright
    talks to it over inherited pipes, which ``ip netns exec`` keeps."""
    script = tmp_path / f"chromium-{host.name}"
    script.write_text(f'#!/bin/sh\nexec ip netns exec {host.netns} {CHROMIUM} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def browser(lab: Lab, tmp_path: Path) -> Iterator[tuple[Browser, Host]]:
    laptop = lab.add_host("laptop")
    with playwright.sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=str(chromium_on(laptop, tmp_path)),
            args=["--no-sandbox", "--disable-dev-shm-usage"],
            timeout=60_000,
        )
        try:
            yield launched, laptop
        finally:
            launched.close()


UNLABELLED = """() => Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button'))
  .filter(e => e.tagName === 'BUTTON' ? !e.textContent.trim() && !e.getAttribute('aria-label')
                                      : e.labels.length === 0)
  .map(e => e.outerHTML.slice(0, 80))"""


def shot(page: Page, name: str) -> None:
    """A screenshot for people, and a check for everyone: every control is named."""
    assert page.evaluate(UNLABELLED) == [], f"unlabelled controls on {name}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_console_manages_a_live_network(
    lab: Lab, tmp_path: Path, browser: tuple[Browser, Host]
) -> None:
    chromium, _laptop = browser
    sky = Deployment(tmp_path)
    sky.start_controller(lab.add_host("ctl"))
    a, b = lab.add_host("a"), lab.add_host("b")

    ctx = chromium.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(30_000)
    page.on("dialog", lambda dialog: dialog.accept())  # confirm() before deletions

    # -- log in, keyboard only; a wrong token is refused on the page ----------------
    page.goto(sky.url + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.keyboard.type("skyadm_not-a-token")  # the token field has focus
    page.keyboard.press("Enter")
    expect(page.locator("#login-error")).to_contain_text("not valid")
    page.get_by_label("API token").fill(sky.admin_token)
    page.get_by_label("API token").press("Enter")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    # -- create a network; a bad CIDR is shown next to its field -------------------
    form = page.locator("#net-create")
    form.get_by_label("Name").fill("prod")
    form.get_by_label("IPv4 network").fill("172.16.1.0/33")
    form.get_by_role("button", name="Create network").click()
    expect(page.locator("#net-create-cidr4-error")).to_contain_text("172.16.1.0/33")
    form.get_by_label("IPv4 network").fill("172.16.1.0/24")
    form.get_by_role("button", name="Create network").click()
    expect(page).to_have_url(re.compile(r"/networks/[0-9a-f-]{36}$"))
    network_url = page.url
    expect(page.get_by_role("heading", name="prod")).to_be_visible()

    # -- a join token with a copyable command; two real agents use it ---------------
    page.get_by_role("link", name="Join tokens").click()
    tokens = page.locator("#token")
    tokens.get_by_label("Description").fill("lab nodes")
    tokens.get_by_label("Uses (empty: unlimited)").fill("2")
    tokens.get_by_role("button", name="Create token").click()
    command = page.locator("#join-command")
    expect(command).to_contain_text(f"skylan agent join {sky.url} sky1.")
    page.get_by_role("button", name="Copy").click()
    found = re.search(r"sky1\.\S+", command.inner_text())
    assert found is not None
    shot(page, "tokens")
    for host in (a, b):
        sky.join(host, found.group(0))

    # the nodes page turns them online by itself (no reload)
    page.get_by_role("link", name="Nodes").click()
    expect(page.locator("#node-a")).to_contain_text("online", timeout=60_000)
    expect(page.locator("#node-b")).to_contain_text("online", timeout=60_000)

    # -- attach both; a taken static address is refused next to the field ----------
    page.goto(network_url)
    attach = page.locator("#attach")
    attach.get_by_label("Node").select_option(label="a")
    attach.get_by_label("Static IPv4 (optional)").fill("172.16.1.10")
    attach.get_by_role("button", name="Attach").click()
    expect(page.locator("#member-a .ipv4")).to_have_text("172.16.1.10")
    page.locator("#attach").get_by_label("Node").select_option(label="b")
    page.locator("#attach").get_by_role("button", name="Attach").click()
    expect(page.locator("#member-b")).to_be_visible()

    row_b = page.locator("#member-b")
    row_b.get_by_text("Edit addresses").click()
    row_b.get_by_label("Static IPv4 for b").fill("172.16.1.10")
    row_b.get_by_role("button", name="Save addresses").click()
    expect(row_b.locator(".error").first).to_contain_text("172.16.1.10 is already taken")
    row_b.get_by_label("Static IPv4 for b").fill("172.16.1.20")
    row_b.get_by_role("button", name="Save addresses").click()
    expect(page.locator("#member-b .ipv4")).to_have_text("172.16.1.20")

    # -- cloaking and an exception rule (a bad one first) --------------------------
    page.get_by_role("button", name="Cloak this network").click()
    expect(page.locator("#cloak-state")).to_have_text("cloaked")
    rule = page.locator("#rule")
    rule.get_by_label("Protocol").select_option("tcp")
    rule.get_by_role("button", name="Add exception").click()
    expect(page.locator("#rule-_form-error")).to_contain_text("port_from")
    rule.get_by_label("Port (or first port)").fill("22")
    rule.get_by_label("Description").fill("ssh from anywhere")
    rule.get_by_role("button", name="Add exception").click()
    expect(page.locator("#rules")).to_contain_text("ssh from anywhere")

    # -- a floating address announced by ARP shows up on the members table ---------
    wait_for("the overlay between a and b", lambda: a.ping("172.16.1.20"), timeout=60)
    a.run(["ip", "address", "add", "172.16.1.100/24", "dev", "sky0"], check=True)
    # as keepalived would announce a VIP it takes over
    a.run(
        ["arping", "-U", "-S", "172.16.1.100", "-c", "2", "-I", "sky0", "172.16.1.100"], timeout=15
    )
    # reported at once, not at a's next heartbeat (every 15 s)
    expect(page.locator("#member-a .floating")).to_have_text("172.16.1.100", timeout=10_000)
    shot(page, "network")

    # -- traffic: the node's chart moves while iperf3 runs --------------------------
    b.spawn(["iperf3", "-s", "-1", "-p", "5201"])
    wait_for(
        "iperf3 to listen", lambda: b.run(["ss", "-ltn", "sport = :5201"]).stdout.count("LISTEN")
    )
    a.spawn(["iperf3", "-c", "172.16.1.20", "-p", "5201", "-t", "40", "-b", "200M"])
    page.locator("#member-a").get_by_role("link", name="a").click()
    expect(page.get_by_role("heading", name="a", exact=True)).to_be_visible()
    page.wait_for_function(
        "() => parseFloat(document.querySelector('.chart[data-kind=bytes]').dataset.latest || 0)"
        " > 20e6",
        timeout=60_000,
    )
    expect(page.locator(".chart[data-kind=bytes] canvas")).to_be_visible()
    peers = page.locator("#peers")
    expect(peers).to_contain_text("b", timeout=30_000)
    expect(peers.locator("tbody tr").first).to_contain_text("up")
    expect(peers.locator(".rtt").first).to_contain_text("ms")
    shot(page, "node")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("#stat-online")).to_have_text("2")
    shot(page, "dashboard")
    page.get_by_role("link", name="Approvals").click()
    shot(page, "approvals")

    # -- readable on a phone: nothing wider than the screen ------------------------
    phone = chromium.new_context(
        ignore_https_errors=True, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    phone.add_cookies(ctx.cookies())
    mobile = phone.new_page()
    mobile.goto(network_url)
    expect(mobile.get_by_role("heading", name="prod")).to_be_visible()
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the network page is {width}px wide on a 390px phone"
    shot(mobile, "network-phone")
    phone.close()

    # -- security groups: a rule (a bad one first), deny by default, a dry run ---------
    page.goto(network_url)
    srule = page.locator("#srule")
    srule.get_by_label("Protocol").select_option("tcp")
    srule.get_by_label("Port (or first port)").fill("5201")
    srule.get_by_label("From (any, tag:NAME, node:NAME or a CIDR)").fill("tag:")
    srule.get_by_role("button", name="Add security rule").click()
    expect(page.locator("#srule-source-error")).to_contain_text("is not a source")
    srule.get_by_label("From (any, tag:NAME, node:NAME or a CIDR)").fill("node:a")
    srule.get_by_label("To (all, tag:NAME or node:NAME)").fill("node:b")
    srule.get_by_label("Description").fill("iperf from a")
    srule.get_by_role("button", name="Add security rule").click()
    expect(page.locator("#security-rules")).to_contain_text("iperf from a")
    expect(page.locator("#security-rules")).to_contain_text("node:a")
    page.get_by_role("button", name="Deny by default").click()
    expect(page.locator("#policy-state")).to_contain_text("deny")
    reach = page.locator("#reach")
    reach.get_by_label("From (a member or an address)").fill("a")
    reach.get_by_label("To (a member, or an address behind a gateway)").fill("b")
    reach.get_by_label("Protocol").select_option("tcp")
    reach.get_by_label("Port (tcp and udp)").fill("5201")
    reach.get_by_role("button", name="Check").click()
    expect(page.locator("#reach-result")).to_contain_text("allowed")
    reach.get_by_label("Port (tcp and udp)").fill("22")
    reach.get_by_role("button", name="Check").click()
    expect(page.locator("#reach-result")).to_contain_text("denied")
    # b enforces it: a new ping from a is dropped, the rule is in b's table
    wait_for("b to guard sky0", lambda: "guard-sky0" in b.run(["nft", "list", "ruleset"]).stdout)
    assert not a.ping("172.16.1.20")
    page.get_by_role("button", name="Delete security rule").click()
    expect(page.locator("#security")).to_contain_text("No rules")
    page.get_by_role("button", name="Allow everything").click()
    expect(page.locator("#policy-state")).to_contain_text("allow")

    # -- a DNS name for the floating address, which b resolves ------------------------
    dnsname = page.locator("#dnsname")
    dnsname.get_by_label("Name (e.g. vip)").fill("vip")
    dnsname.get_by_label("Address").fill("10.0.0.1")
    dnsname.get_by_role("button", name="Add name").click()
    expect(page.locator("#dnsname-address-error")).to_contain_text("is not in")
    dnsname.get_by_label("Address").fill("172.16.1.100")
    dnsname.get_by_role("button", name="Add name").click()
    expect(page.locator("#dns-records")).to_contain_text("vip.prod.skylan.internal")
    wait_for(
        "b to resolve vip",
        lambda: "172.16.1.100" in b.run(["getent", "hosts", "vip.prod.skylan.internal"]).stdout,
    )
    page.get_by_role("button", name="Remove name vip").click()
    expect(page.locator("#dns")).to_contain_text("No names besides")

    # -- delete things --------------------------------------------------------------
    page.goto(network_url)
    page.get_by_role("button", name="Delete rule").click()
    expect(page.locator("#rules")).to_contain_text("No exceptions")
    page.get_by_role("button", name="Detach b").click()
    expect(page.locator("#member-b")).to_have_count(0)
    page.goto(sky.url + "/nodes")
    page.get_by_role("link", name="b", exact=True).click()
    page.get_by_role("button", name="Delete node b").click()
    expect(page).to_have_url(re.compile(r"/nodes$"))
    expect(page.locator("#node-b")).to_have_count(0)
    page.goto(network_url)
    page.get_by_role("button", name="Delete network prod").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("#networks")).not_to_contain_text("prod")
    assert sky.admin("net", "list", "--json") == []
    ctx.close()
