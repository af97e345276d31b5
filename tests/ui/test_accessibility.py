"""Accessibility of the operator UI in a real Chromium: every /app/ page (the URL conf's, as the
phone test lists them) passes axe-core with no serious or critical violation, at a desktop and at
a phone size; the main flow (sign in, open the inbox, approve with a comment, open the run) works
with the keyboard alone, and the focused control is always visibly marked.

axe-core is the pinned npm package of package.json (``make install`` runs ``npm ci``); each page
gets it injected by Playwright. The results per page are written to
screenshots/axe-results.txt (kept out of git)."""

from __future__ import annotations

import os
import re

import pytest

from tests.browsers import require_chromium
from tests.processes import ROOT, manage, project_env, start_server, stop
from tests.ui import test_phone as phone

pytestmark = pytest.mark.browser

require_chromium()

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
if not AXE.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{AXE} is missing; `make install` installs it with npm ci")
    pytest.skip("axe-core is not installed (make install, with npm)", allow_module_level=True)

# The phone test's browser and pages (every page of the app's URL conf, with data in it).
browser, pages = phone.browser, phone.pages

#: Besides the phone test's operator (who sends the expenses, so four-eyes keeps them from
#: deciding): an approver in the managers group who may follow runs.
APPROVER = """
ada = User.objects.create_user("ada", "ada@example.com", "ada-pass", first_name="Ada")
ada.groups.add(managers)
ada.user_permissions.add(*Permission.objects.filter(codename="view_run"))
"""
#: A workflow whose input schema gives the Start run form one field per property.
INPUTS = """
from automation.commands import workflow_definition_save
workflow_definition_save(definition={
    "name": "a11y-inputs",
    "input_schema": {"type": "object", "required": ["email"], "properties": {
        "email": {"type": "string", "description": "Who to welcome."},
        "plan": {"enum": ["free", "pro"]}, "seats": {"type": "integer"},
        "trial": {"type": "boolean"}}},
    "trigger": {"event": "a11y.inputs"},
    "steps": [{"id": "hello", "action": "log", "input": {"message": "hi"}}],
})
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("a11y")
    env = project_env(DATA_DIR=str(data_dir), DATABASE_URL=None, EXAMPLES="true")
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    output = manage(env, "shell", "-c", phone.SETUP + APPROVER + INPUTS)
    token = output.split("TOKEN=")[1].split()[0]
    server = start_server(env, data_dir / "server.log")
    yield server, token
    stop(server.process)


#: The rules checked: WCAG 2.0, 2.1 and 2.2 at levels A and AA, and axe's best practices.
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
SERIOUS = {"serious", "critical"}
SIZES = {"desktop": phone.DESKTOP, "phone": phone.PHONE}


def axe(page) -> list[dict]:
    """axe-core's violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    return result["violations"]


def _summary(violations: list[dict]) -> str:
    if not violations:
        return "no violations"
    return "; ".join(
        f"{v['impact']} {v['id']} x{len(v['nodes'])} ({v['nodes'][0]['target']})"
        for v in violations
    )


@pytest.mark.parametrize("size", SIZES)
def test_every_app_page_passes_axe(server, browser, pages, size):
    server, _ = server
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone")
    page = context.new_page()
    results = {}
    page.goto(server.url + "/app/login/")
    results["login"] = axe(page)
    phone._sign_in(context, server.url)
    for name, path in pages.items():
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        results[name] = axe(page)
    context.close()
    report = "\n".join(f"{size} {name}: {_summary(v)}" for name, v in results.items())
    phone.SHOTS.mkdir(parents=True, exist_ok=True)
    with (phone.SHOTS / "axe-results.txt").open("a") as out:
        out.write(report + "\n")
    print(report)
    serious = {
        name: [f"{v['id']}: {v['help']} {[n['target'] for n in v['nodes']]}" for v in found]
        for name, violations in results.items()
        if (found := [v for v in violations if v["impact"] in SERIOUS])
    }
    assert serious == {}


@pytest.mark.parametrize("size", SIZES)
def test_pages_in_their_other_states_pass_axe(server, browser, pages, size):
    """A refused search, an empty list and a failed sign-in: the states with alerts in them."""
    server, _ = server
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone")
    page = context.new_page()
    page.goto(server.url + "/app/login/")
    page.fill("#id_username", "nobody")
    page.fill("#id_password", "wrong")
    page.keyboard.press("Enter")
    page.wait_for_selector(".alert-bad")
    results = {"login-refused": axe(page)}
    phone._sign_in(context, server.url)
    states = {
        "events-search-refused": "/app/events/?q=ab",
        "events-search": "/app/events/?q=erin",
        "events-none": "/app/events/?q=nothing-like-this",
        "runs-none": "/app/runs/?q=order-that-does-not-exist",
    }
    for name, path in states.items():
        page.goto(server.url + path)
        results[name] = axe(page)
    page.goto(server.url + "/app/workflows/a11y-inputs/")
    results["start-run-fields"] = axe(page)
    page.click("#start-form button[type=submit]")
    page.wait_for_selector("#start-form .field-error")
    results["start-run-refused"] = axe(page)
    context.close()
    print("\n".join(f"{size} {name}: {_summary(v)}" for name, v in results.items()))
    assert {
        n: [v["id"] for v in found if v["impact"] in SERIOUS] for n, found in results.items()
    } == {n: [] for n in results}


# --- The keyboard alone -----------------------------------------------------------------------

#: What the focused element is; whether its focus is drawn (an outline of 2 px or more, with a
#: contrast of 3:1 or more against the background around it, WCAG 1.4.11) and on screen.
FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const [R, G, B] = [r, g, b].map(v => { v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * R + 0.7152 * G + 0.0722 * B;
  };
  let around = el.parentElement, background = [255, 255, 255];
  while (around) {
    const c = rgb(getComputedStyle(around).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) { background = c.slice(0, 3); break; }
    around = around.parentElement;
  }
  const [a, b] = [luminance(rgb(style.outlineColor).slice(0, 3)), luminance(background)];
  return {
    tag: el.tagName.toLowerCase(), text: (el.innerText || el.value || "").trim().slice(0, 60),
    href: el.getAttribute("href") || "", name: el.getAttribute("name") || "",
    value: el.getAttribute("value") || "",
    drawn: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
    contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05),
    onScreen: box.width > 0 && box.height > 0 && box.right > 0 && box.bottom > 0
      && box.left < innerWidth && box.top < innerHeight,
  };
}"""


class Keyboard:
    """Tab through a page as a person would, checking that every stop is visibly focused."""

    def __init__(self, page) -> None:
        self.page = page
        self.stops: list[dict] = []

    def focused(self) -> dict:
        return self.page.evaluate(FOCUSED)

    def tab_to(self, wanted, *, limit: int = 80) -> dict:
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            now = self.focused()
            self.stops.append(now)
            if now["tag"] != "body":
                assert now["drawn"], f"the focus is not drawn on {now}"
                assert now["contrast"] >= 3, f"the focus ring is too faint on {now}"
                assert now["onScreen"], f"the focused element is off screen: {now}"
            if wanted(now):
                return now
        raise AssertionError(
            f"Tab never reached it; stops: {[s['text'] or s['href'] for s in self.stops[-20:]]}"
        )


APPROVAL_PAGE = re.compile(r"/app/approvals/[0-9a-f-]{36}/")
RUN_PAGE = re.compile(r"/app/runs/[0-9a-f-]{36}/")


@pytest.mark.parametrize("size", SIZES)
def test_the_main_flow_works_with_the_keyboard_alone(server, browser, pages, size):
    """Sign in, open the inbox, approve with a comment, open the run: Tab, typing and Enter."""
    server, _ = server
    context = browser.new_context(viewport=SIZES[size], is_mobile=size == "phone")
    page = context.new_page()
    keys = Keyboard(page)
    page.goto(server.url + "/app/login/")
    # The username field has the focus already (autofocus): type, Tab, type, Enter.
    assert page.evaluate("document.activeElement.id") == "id_username"
    page.keyboard.type("ada")
    keys.tab_to(lambda f: f["name"] == "password")
    page.keyboard.type("ada-pass")
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/app/")

    # The first stop is the skip link, shown when focused; then the navigation, to Approvals.
    assert keys.tab_to(lambda f: True, limit=1)["text"] == "Skip to content"
    keys.tab_to(lambda f: f["href"] == "/app/approvals/")
    page.keyboard.press("Enter")
    page.wait_for_url("**/app/approvals/")

    # Skip the navigation: Enter on the skip link moves the focus to the content, whose first
    # stop on the way is the first request in the inbox.
    assert keys.tab_to(lambda f: True, limit=1)["text"] == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    keys.tab_to(lambda f: bool(APPROVAL_PAGE.fullmatch(f["href"])))
    page.keyboard.press("Enter")
    page.wait_for_selector("#decide-form")
    approval_url = page.url

    # The comment, then Approve.
    keys.tab_to(lambda f: f["name"] == "comment")
    page.keyboard.type("Checked the receipt.")
    keys.tab_to(lambda f: f["name"] == "decision" and f["value"] == "approve")
    page.keyboard.press("Enter")
    page.wait_for_selector("#approval-status[data-status=approved]")
    assert page.url == approval_url
    assert "Checked the receipt." in page.inner_text("#approval-live")

    # The run the decision continued, linked from the request's details.
    keys.tab_to(lambda f: bool(RUN_PAGE.fullmatch(f["href"])))
    page.keyboard.press("Enter")
    page.wait_for_url("**/app/runs/*/")
    assert "Checked the receipt." in page.content()  # the approval step's recorded output
    context.close()
    print(f"{size}: {len(keys.stops)} Tab stops, every one visibly focused")
