"""WebSockets: who may open which socket, from which page, and who hears what, for as long as
the socket stays open.

A refused socket is accepted and then closed with 4401 (no signed-in user) or 4403 (not
allowed), so the page can tell it from a network failure and stop reconnecting; a socket
opened from another origin (scheme, host and port) is refused at the handshake.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, Permission
from django.test import Client

from automation.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
HOST = [(b"host", b"localhost")]
ORIGIN = [(b"origin", b"http://localhost"), *HOST]
EXPENSE = {"amount": 77, "employee": "erin@example.com"}


@pytest.fixture(autouse=True)
def fresh_layer():
    channel_layers.backends.clear()  # the in-process layer's queues belong to one event loop
    yield
    channel_layers.backends.clear()


@pytest.fixture
def managers():
    return Group.objects.get_or_create(name="managers")[0]


@pytest.fixture
def manager(django_user_model, managers):
    """An operator in the managers group (the expense approvals' assignees), who may follow
    runs and events."""
    user = django_user_model.objects.create_user("maria", "maria@example.com", "pw")
    user.groups.add(managers)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_run", "view_event", "change_run"])
    )
    return user


@sync_to_async
def session_cookie(client, user) -> list[tuple[bytes, bytes]]:
    """Sign ``user`` in with ``client`` (one client per user: signing another user in on the
    same client ends the first one's session, and closes its sockets)."""
    client.force_login(user)
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


async def connect(path, headers):
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def close_code(communicator) -> int | None:
    """The code the server closed the socket with (None: it sent something else)."""
    output = await communicator.receive_output(timeout=5)
    return output.get("code") if output["type"] == "websocket.close" else None


async def refusal(path, headers) -> int | None:
    """Open ``path``: the close code of a socket that was accepted and then closed."""
    communicator, connected, _ = await connect(path, headers)
    assert connected, "refused at the handshake: the browser sees HTTP 403, not a close code"
    code = await close_code(communicator)
    await communicator.disconnect()
    return code


async def test_anonymous_sockets_are_accepted_then_closed_with_4401():
    for path in ["/ws/approvals/", "/ws/runs/", "/ws/dashboard/", "/ws/events/"]:
        assert await refusal(path, ORIGIN) == 4401


async def test_pages_a_user_may_not_see_close_their_socket_with_4403(client, users):
    headers = [*ORIGIN, *await session_cookie(client, users["outsider"])]
    for path in ["/ws/runs/", "/ws/dashboard/", "/ws/events/"]:
        assert await refusal(path, headers) == 4403
    inbox, connected, _ = await connect("/ws/approvals/", headers)
    assert connected  # everyone has an inbox
    assert await inbox.receive_nothing(timeout=0.2)
    await inbox.disconnect()


async def test_an_unknown_ws_path_is_closed_cleanly(client, manager):
    headers = [*ORIGIN, *await session_cookie(client, manager)]
    for path in ["/ws/nope/", "/ws/runs/not-a-uuid/", "/elsewhere/"]:
        assert await refusal(path, headers) == 4404


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "http://localhost:9999",  # another port of an allowed host: another site
        "https://localhost",  # another scheme
        "null",
        "",
    ],
)
async def test_sockets_from_another_origin_are_refused(client, manager, origin):
    headers = [*HOST, *await session_cookie(client, manager)]
    if origin:
        headers.append((b"origin", origin.encode()))
    communicator, connected, _ = await connect("/ws/approvals/", headers)
    assert not connected
    await communicator.disconnect()


async def test_the_origin_must_match_host_and_port(client, manager):
    cookie = await session_cookie(client, manager)
    same = [(b"host", b"127.0.0.1:8123"), (b"origin", b"http://127.0.0.1:8123"), *cookie]
    communicator, connected, _ = await connect("/ws/approvals/", same)
    assert connected
    await communicator.disconnect()
    other = [(b"host", b"127.0.0.1:8123"), (b"origin", b"http://127.0.0.1:8124"), *cookie]
    communicator, connected, _ = await connect("/ws/approvals/", other)
    assert not connected
    await communicator.disconnect()


async def test_a_trusted_origin_is_accepted_behind_a_proxy(client, manager, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://*.example.com"]
    headers = [
        (b"host", b"internal:8001"),
        (b"origin", b"https://ops.example.com"),
        *await session_cookie(client, manager),
    ]
    settings.ALLOWED_HOSTS = ["internal"]
    communicator, connected, _ = await connect("/ws/approvals/", headers)
    assert connected
    await communicator.disconnect()


async def test_a_user_removed_from_the_group_stops_hearing_its_approvals(
    client, workflow_harness, manager, managers
):
    inbox, ok, _ = await connect(
        "/ws/approvals/", [*ORIGIN, *await session_cookie(client, manager)]
    )
    assert ok
    await sync_to_async(manager.groups.remove)(managers)
    await sync_to_async(workflow_harness.emit)("example.expense.submitted", EXPENSE)
    assert await inbox.receive_nothing(timeout=0.5)
    await inbox.disconnect()


async def test_signing_out_closes_the_sessions_sockets_with_4401(client, workflow_harness, manager):
    inbox, ok, _ = await connect(
        "/ws/approvals/", [*ORIGIN, *await session_cookie(client, manager)]
    )
    assert ok
    await sync_to_async(client.logout)()
    assert await close_code(inbox) == 4401
    await inbox.disconnect()


async def test_deactivating_a_user_closes_their_sockets_with_4401(client, manager):
    inbox, ok, _ = await connect(
        "/ws/approvals/", [*ORIGIN, *await session_cookie(client, manager)]
    )
    assert ok
    manager.is_active = False
    await manager.asave()
    assert await close_code(inbox) == 4401
    await inbox.disconnect()


async def test_a_deactivated_user_hears_no_title_even_if_no_recheck_came(
    client, workflow_harness, manager, django_user_model
):
    """A queryset update sends no signal, like a recheck lost on the way: the approval notice
    itself is checked against the user as they are now."""
    inbox, ok, _ = await connect(
        "/ws/approvals/", [*ORIGIN, *await session_cookie(client, manager)]
    )
    assert ok
    await django_user_model.objects.filter(pk=manager.pk).aupdate(is_active=False)
    await sync_to_async(workflow_harness.emit)("example.expense.submitted", EXPENSE)
    assert await close_code(inbox) == 4401
    await inbox.disconnect()


async def test_losing_view_run_closes_the_runs_socket_with_4403(client, manager):
    runs, ok, _ = await connect("/ws/runs/", [*ORIGIN, *await session_cookie(client, manager)])
    assert ok
    view_run = await Permission.objects.aget(codename="view_run")
    await manager.user_permissions.aremove(view_run)
    assert await close_code(runs) == 4403
    await runs.disconnect()


async def test_a_new_approval_reaches_its_assignees_and_nobody_else(
    client, workflow_harness, manager, users
):
    mine, ok, _ = await connect("/ws/approvals/", [*ORIGIN, *await session_cookie(client, manager)])
    assert ok
    theirs, ok, _ = await connect(
        "/ws/approvals/", [*ORIGIN, *await session_cookie(Client(), users["outsider"])]
    )
    assert ok
    await sync_to_async(workflow_harness.emit)("example.expense.submitted", EXPENSE)
    notice = await mine.receive_json_from(timeout=5)
    assert notice["kind"] == "approval"
    assert notice["action"] == "created"
    assert notice["title"] == "Expense of 77 by erin@example.com"
    assert await theirs.receive_nothing(timeout=0.3)
    await mine.disconnect()
    await theirs.disconnect()


async def test_the_run_socket_hears_each_step_and_the_end(client, workflow_harness, manager):
    from approvals.models import Approval
    from approvals.services import approval_decide

    await sync_to_async(workflow_harness.emit)(
        "example.expense.submitted", {"amount": 5, "employee": "erin@example.com"}
    )
    approval = await Approval.objects.select_related("run").aget()
    headers = [*ORIGIN, *await session_cookie(client, manager)]
    run_socket, ok, _ = await connect(f"/ws/runs/{approval.run_id}/", headers)
    assert ok

    def decide():
        approval_decide(approval=approval, user=manager, decision="approve")
        workflow_harness.run_until_idle()

    await sync_to_async(decide)()
    heard = []
    while not heard or heard[-1] != ("run", "succeeded"):
        notice = await run_socket.receive_json_from(timeout=5)
        heard.append((notice["kind"], notice.get("step_id") or notice["status"]))
    assert ("step", "approve") in heard
    assert ("step", "tell") in heard
    await run_socket.disconnect()


async def test_an_operator_without_view_run_cannot_follow_a_run(client, workflow_harness, users):
    await sync_to_async(workflow_harness.start)("test-noop", {})
    from automation.models import Run

    run = await Run.objects.aget()
    headers = [*ORIGIN, *await session_cookie(client, users["operator"])]
    assert await refusal(f"/ws/runs/{run.id}/", headers) == 4403
    view_run = await Permission.objects.aget(codename="view_run")
    await users["operator"].user_permissions.aadd(view_run)
    communicator, connected, _ = await connect(f"/ws/runs/{run.id}/", headers)
    assert connected
    await communicator.disconnect()


async def test_an_open_socket_already_hears_its_groups(client, manager):
    """The page sees the socket open only once it has joined its groups: a notice sent the
    moment after (a sign-out, an approval) is never lost in between."""
    inbox, ok, _ = await connect(
        "/ws/approvals/", [*ORIGIN, *await session_cookie(client, manager)]
    )
    assert ok
    assert channel_layers["default"].groups.get(f"approvals.user.{manager.pk}")
    await inbox.disconnect()
