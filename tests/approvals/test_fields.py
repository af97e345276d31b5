"""Form fields on an approval: declared by the workflow, checked when the approval is created,
filled in with the decision (API and page form alike), and returned to the workflow."""

from __future__ import annotations

import pytest

from approvals.forms import decision_form, validate_field_specs
from approvals.models import Approval
from automation.engine.errors import WorkflowError

pytestmark = pytest.mark.django_db

FIELDS = [
    {"name": "amount", "label": "Approved amount", "type": "number", "required": True},
    {"name": "note", "type": "textarea", "help": "Shown to the requester"},
    {"name": "checked", "label": "I checked the receipt", "type": "boolean", "required": True},
    {"name": "centre", "type": "choice", "choices": ["sales", {"value": "ops", "label": "Ops"}]},
    {"name": "pay_on", "type": "date"},
]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("amount", "fields must be a list"),
        ([{"type": "number"}], r"fields\[0\].name must be letters"),
        ([{"name": "1st"}], r"fields\[0\].name must be letters"),
        ([{"name": "comment"}], r"not one of comment, decision, values"),
        ([{"name": "a"}, {"name": "a"}], r"fields\[1\].name 'a' is used twice"),
        ([{"name": "a", "type": "money"}], r"fields\[0\].type must be one of text, textarea"),
        ([{"name": "a", "type": "choice"}], r"fields\[0\].choices must be a non-empty list"),
        ([{"name": "a", "choices": ["x"]}], r"choices only apply to type 'choice'"),
        ([{"name": "a", "type": "choice", "choices": ["x", "x"]}], "same value twice"),
        ([{"name": "a", "type": "choice", "choices": [1]}], r"choices\[0\] must be"),
        ([{"name": "a", "required": "yes"}], r"fields\[0\].required must be true or false"),
        ([{"name": "a", "label": 5}], r"fields\[0\].label must be text"),
        ([{"name": "a", "min": 5}], r"fields\[0\] has unknown key\(s\) min"),
    ],
)
def test_a_bad_field_spec_is_refused_naming_the_entry(fields, message):
    with pytest.raises(WorkflowError, match=message):
        validate_field_specs(fields, step_id="ok")


def test_specs_are_completed_with_labels_and_defaults():
    [spec] = validate_field_specs([{"name": "cost_centre"}], step_id="ok")
    assert spec == {
        "name": "cost_centre",
        "label": "Cost centre",
        "type": "text",
        "required": False,
        "help": "",
        "choices": [],
    }


def test_a_workflow_with_bad_fields_fails_at_the_approval_step(workflow_harness, team):
    run = workflow_harness.start(
        "test-approval-options", {"options": {"fields": [{"name": "x", "type": "money"}]}}
    )
    run = workflow_harness.refresh(run)
    assert run.status == "failed"
    assert "approval 'ok': fields[0].type must be one of" in run.error["message"]
    assert not Approval.objects.exists()


@pytest.fixture
def approval(workflow_harness, team):
    workflow_harness.start("test-approval-options", {"options": {"fields": FIELDS}})
    return Approval.objects.get()


def decide(client, approval, user, body):
    client.force_login(user)
    return client.post(
        f"/api/approvals/{approval.id}/decide/", body, content_type="application/json"
    )


def test_values_are_converted_by_type_and_returned_to_the_workflow(
    client, workflow_harness, approval, team
):
    values = {"amount": "1150.50", "checked": True, "centre": "ops", "pay_on": "2030-01-31"}
    response = workflow_harness._committed(
        decide, client, approval, team["ann"], {"decision": "approve", "values": values}
    )
    assert response.status_code == 200, response.json()
    expected = {
        "amount": 1150.5,
        "note": "",
        "checked": True,
        "centre": "ops",
        "pay_on": "2030-01-31",
    }
    assert response.json()["values"] == expected
    workflow_harness.drain()
    output = workflow_harness.result(approval.run)
    assert output["approved"] is True
    assert output["values"] == expected
    assert output["votes"][0]["values"] == expected


def test_whole_numbers_stay_whole(client, workflow_harness, approval, team):
    body = {"decision": "approve", "values": {"amount": 90, "checked": True}}
    workflow_harness._committed(decide, client, approval, team["ann"], body)
    workflow_harness.drain()
    assert workflow_harness.result(approval.run)["values"]["amount"] == 90


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"amount": "lots", "checked": True}, "amount", "Enter a number."),
        ({"amount": True, "checked": True}, "amount", "Enter a number."),
        ({"amount": 5, "checked": "yes"}, "checked", "Must be true or false."),
        ({"amount": 5, "checked": True, "centre": "hr"}, "centre", "Select a valid choice."),
        ({"amount": 5, "checked": True, "pay_on": "31/01/2030"}, "pay_on", "Enter a valid date."),
        ({"amount": 5, "checked": True, "note": ["a"]}, "note", "Must be a single value"),
        ({"amount": 5, "checked": True, "tip": 1}, "tip", "Unknown field; this approval asks"),
        ({"checked": True}, "amount", "This field is required to approve."),
        ({"amount": 5, "checked": False}, "checked", "Tick this box to approve."),
    ],
)
def test_a_value_that_does_not_fit_is_400_naming_the_field(
    client, approval, team, values, field, message
):
    response = decide(client, approval, team["ann"], {"decision": "approve", "values": values})
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid_values"
    assert field in body["message"]
    assert any(message in text for text in body["fields"][field])
    assert Approval.objects.get(pk=approval.pk).status == "pending"
    assert not approval.votes.exists()


def test_values_must_be_an_object(client, approval, team):
    response = decide(client, approval, team["ann"], {"decision": "approve", "values": [1]})
    assert response.status_code == 400


def test_a_rejection_needs_no_required_field_but_checks_the_ones_given(
    client, workflow_harness, approval, team
):
    bad = decide(client, approval, team["ann"], {"decision": "reject", "values": {"amount": "x"}})
    assert bad.status_code == 400
    response = workflow_harness._committed(
        decide, client, approval, team["ann"], {"decision": "reject", "comment": "no receipt"}
    )
    assert response.status_code == 200
    workflow_harness.drain()
    output = workflow_harness.result(approval.run)
    assert (output["approved"], output["values"]["amount"]) == (False, None)


def test_the_page_form_accepts_and_refuses_the_same_values(approval):
    form = decision_form(approval, {"decision": "approve", "amount": "12", "checked": "on"})
    assert form.is_valid(), form.errors
    assert form.values()["amount"] == 12
    assert form.values()["checked"] is True

    refused = decision_form(approval, {"decision": "approve", "amount": "12"})
    assert not refused.is_valid()
    assert refused.errors["checked"] == ["Tick this box to approve."]

    rejected = decision_form(approval, {"decision": "reject", "comment": "no"})
    assert rejected.is_valid(), rejected.errors


def test_the_page_form_renders_the_declared_fields(approval):
    form = decision_form(approval)
    declared = [spec["name"] for spec in FIELDS]
    assert list(form.fields) == ["decision", "comment", *declared]
    assert form.fields["amount"].label == "Approved amount"
    assert form.fields["amount"].required_to_approve is True
    assert form.fields["note"].required_to_approve is False
    html = form.as_div()
    assert 'type="date"' in html
    assert "Shown to the requester" in html
    assert '<option value="ops">Ops</option>' in html


def test_the_approval_page_asks_for_the_fields_and_refuses_an_incomplete_approval(
    client, workflow_harness, approval, team
):
    client.force_login(team["ann"])
    page = client.get(f"/app/approvals/{approval.id}/").content.decode()
    assert "Approved amount" in page
    assert "I checked the receipt" in page
    assert "required to approve" in page
    url = f"/app/approvals/{approval.id}/decide/"
    refused = client.post(url, {"decision": "approve", "amount": "12.50"})
    assert refused.status_code == 400
    assert "Tick this box to approve." in refused.content.decode()
    assert Approval.objects.get(pk=approval.pk).status == "pending"
    client.post(url, {"decision": "approve", "amount": "12.50", "checked": "on", "centre": "ops"})
    workflow_harness.run_until_idle()
    decided = Approval.objects.get(pk=approval.pk)
    assert decided.status == "approved"
    assert decided.values["amount"] == 12.5
    assert decided.values["centre"] == "ops"
    assert "Values given" in client.get(f"/app/approvals/{approval.id}/").content.decode()


def test_a_rejection_from_the_page_needs_no_required_field(client, approval, team):
    client.force_login(team["bob"])
    client.post(f"/app/approvals/{approval.id}/decide/", {"decision": "reject"})
    assert Approval.objects.get(pk=approval.pk).status == "rejected"
