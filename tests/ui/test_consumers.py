"""WebSockets: who may open which socket, and who hears what."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission

from automation.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = [(b"origin", b"http://localhost")]


@pytest.fixture(autouse=True)
def fresh_layer():
    channel_layers.backends.clear()  # the in-process layer's queues belong to one event loop
    yield
    channel_layers.backends.clear()


@sync_to_async
def session_cookie(client, user) -> list[tuple[bytes, bytes]]:
    client.force_login(user)
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


async def connect(path, headers):
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    return communicator, connected, code


async def test_anonymous_sockets_are_refused():
    for path in ["/ws/approvals/", "/ws/runs/", "/ws/dashboard/", "/ws/events/"]:
        communicator, connected, code = await connect(path, ORIGIN)
        assert not connected
        assert code == 4401
        await communicator.disconnect()


async def test_sockets_from_a_foreign_origin_are_refused(client, manager):
    headers = [(b"origin", b"https://evil.example.com"), *await session_cookie(client, manager)]
    communicator, connected, _ = await connect("/ws/approvals/", headers)
    assert not connected
    await communicator.disconnect()


async def test_pages_a_user_may_not_see_refuse_their_socket(client, users):
    headers = [*ORIGIN, *await session_cookie(client, users["outsider"])]
    for path in ["/ws/runs/", "/ws/dashboard/", "/ws/events/"]:
        communicator, connected, code = await connect(path, headers)
        assert not connected
        assert code == 4403
        await communicator.disconnect()
    inbox, connected, _ = await connect("/ws/approvals/", headers)
    assert connected  # everyone has an inbox
    await inbox.disconnect()


async def test_a_new_approval_reaches_its_assignees_and_nobody_else(
    client, workflow_harness, manager, users
):
    mine, ok, _ = await connect("/ws/approvals/", [*ORIGIN, *await session_cookie(client, manager)])
    assert ok
    theirs, ok, _ = await connect(
        "/ws/approvals/", [*ORIGIN, *await session_cookie(client, users["outsider"])]
    )
    assert ok
    await sync_to_async(workflow_harness.emit)(
        "example.expense.submitted", {"amount": 77, "employee": "erin@example.com"}
    )
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
    communicator, connected, code = await connect(f"/ws/runs/{run.id}/", headers)
    assert not connected
    assert code == 4403
    await communicator.disconnect()
    view_run = await Permission.objects.aget(codename="view_run")
    await users["operator"].user_permissions.aadd(view_run)
    communicator, connected, _ = await connect(f"/ws/runs/{run.id}/", headers)
    assert connected
    await communicator.disconnect()
