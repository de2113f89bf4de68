"""Tasks say what to ask the buyer: each missing criterion's label, the framework's hint, why the current
value does not count, and the CRM field to update — through whole runs on both CRMs."""

from __future__ import annotations

from tests.integration.conftest import Env

BUDGET_FIELD = {"salesforce": "BANT_Budget__c", "hubspot": "bant_budget"}
BUDGET_HINT = "What budget is set aside for this, roughly how much, and who approves spending it?"


def test_a_task_asks_the_frameworks_question_and_names_the_field(env: Env) -> None:
    """A rep types "TBC" as the budget of a qualified deal: its new task names Budget in the subject, asks
    bant.toml's budget hint, quotes "TBC" in the reason and says which CRM field to update."""
    assert env.run("full").status == "succeeded"
    deal_id = next(i for i, d in sorted(env.view.deals().items()) if d["open"] and d["status"] == "qualified")
    env.view.set_deal_field(deal_id, "budget", "TBC")
    assert env.run().status == "succeeded"
    (task,) = env.view.open_tasks_of(deal_id)
    assert "Budget" in task["subject"]
    body = str(task["body"])
    assert BUDGET_HINT in body
    assert "'TBC'" in body
    assert f"Update: {BUDGET_FIELD[env.crm]}" in body
