"""An Order's cron through the API server's handlers: defaults stored, every bad field in one 422."""

from __future__ import annotations

from tests.unit.apiserver.conftest import GV, Api, order

ORDERS = f"{GV}/namespaces/team-a/orders"


async def test_a_cron_is_stored_with_cronjobs_defaults(api: Api) -> None:
    body = order()
    body["spec"]["defaults"]["cron"] = {"schedules": ["@every 1h"], "timezone": "Europe/Berlin"}
    status, obj, _ = await api.call("POST", ORDERS, json=body)
    assert status == 201, obj
    assert obj["spec"]["defaults"]["cron"] == {
        "schedules": ["@every 1h"],
        "timezone": "Europe/Berlin",
        "concurrencyPolicy": "Allow",
        "suspend": False,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
    }


async def test_a_bad_cron_is_one_422_with_a_cause_per_field(api: Api) -> None:
    body = order()
    body["spec"]["artifacts"][0]["cron"] = {
        "schedules": ["*/5 * * * * *"],
        "timezone": "Local",
        "concurrencyPolicy": "Sometimes",
        "startingDeadlineSeconds": -5,
    }
    status, err, _ = await api.call("POST", ORDERS, json=body)
    assert status == 422, err
    assert err["reason"] == "Invalid"
    assert err["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "*/5 * * * * *": expected exactly 5 fields, found 6: */5 * * * * *',
            "field": "spec.artifacts[0].cron.schedules[0]",
        },
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "Local": unknown time zone Local',
            "field": "spec.artifacts[0].cron.timezone",
        },
        {
            "reason": "FieldValueNotSupported",
            "message": 'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
            "field": "spec.artifacts[0].cron.concurrencyPolicy",
        },
        {
            "reason": "FieldValueInvalid",
            "message": "Invalid value: -5: must be greater than or equal to 0",
            "field": "spec.artifacts[0].cron.startingDeadlineSeconds",
        },
    ]
