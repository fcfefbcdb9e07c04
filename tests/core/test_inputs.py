"""The one rule for sample data: which missing input may be filled, and what a run does if not."""

import itertools

import pytest
from pydantic import ValidationError

from flows.catalog import EVENTS, ORDER_FEATURES, ORDERS
from flows.core.inputs import allowed_here, fills_with_samples, missing_message
from flows.core.settings import LakeSettings

LAKES = {"local": False, "s3": True}
SETTINGS = ("on", "off", "auto")


def expected(lake: str, setting: str, exists: bool) -> bool:
    """The rule, spelled out: never into a table that exists; `auto` is on only for a folder."""
    if exists:
        return False
    return setting == "on" or (setting == "auto" and lake == "local")


@pytest.mark.parametrize(
    ("lake", "setting", "exists"), list(itertools.product(LAKES, SETTINGS, (True, False)))
)
def test_decision_table_lake_by_setting_by_table_existing(lake, setting, exists):
    decided = fills_with_samples(exists, None, setting=setting, is_s3=LAKES[lake])
    assert decided is expected(lake, setting, exists)


@pytest.mark.parametrize(("lake", "setting"), list(itertools.product(LAKES, SETTINGS)))
def test_the_flow_parameter_overrides_the_setting_but_never_fills_an_existing_table(lake, setting):
    is_s3 = LAKES[lake]
    assert fills_with_samples(False, True, setting=setting, is_s3=is_s3) is True
    assert fills_with_samples(False, False, setting=setting, is_s3=is_s3) is False
    assert fills_with_samples(True, True, setting=setting, is_s3=is_s3) is False


def test_auto_is_off_in_a_deployment_run_even_on_a_local_lake():
    assert fills_with_samples(False, None, setting="auto", is_s3=False, deployed=True) is False
    assert fills_with_samples(False, None, setting="on", is_s3=False, deployed=True) is True


@pytest.mark.parametrize(
    ("uri", "value", "allowed"),
    [
        ("/tmp/lake", None, True),
        ("s3://bucket/lake", None, False),
        ("s3://bucket/lake", "on", True),
        ("/tmp/lake", "off", False),
        ("/tmp/lake", "AUTO", None),  # not a value: rejected, never guessed
    ],
)
def test_the_setting_is_read_from_lake_sample_data(monkeypatch, uri, value, allowed):
    monkeypatch.setenv("LAKE_URI", uri)
    if value is None:
        monkeypatch.delenv("LAKE_SAMPLE_DATA", raising=False)
    else:
        monkeypatch.setenv("LAKE_SAMPLE_DATA", value)
    if allowed is None:
        with pytest.raises(ValidationError, match="sample_data"):
            LakeSettings()
        return
    assert allowed_here(None) is allowed


def test_a_scheduled_run_is_recognised_from_the_runtime_deployment(monkeypatch):
    monkeypatch.setenv("LAKE_URI", "/tmp/lake")
    monkeypatch.delenv("LAKE_SAMPLE_DATA", raising=False)
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", "a-deployment")
    assert allowed_here(None) is False
    assert allowed_here(True) is True


def test_the_message_names_the_landing_folders_and_the_pipeline(monkeypatch):
    monkeypatch.setenv("LAKE_URI", "s3://bucket/lake")
    monkeypatch.setenv("LAKE_SAMPLE_DATA", "off")
    one = missing_message([ORDERS])
    assert one.startswith("silver/orders does not exist yet")
    assert "landing/orders/" in one
    assert "flows/etl/s3_data_pipeline.py" in one
    assert "LAKE_SAMPLE_DATA=off" in one
    assert "--sample-data" in one
    both = missing_message([ORDERS, EVENTS])
    assert both.startswith("silver/orders, silver/events do not exist yet")
    assert "landing/orders/, landing/events/ and run" in both
    assert "see flows/README.md" in missing_message([ORDER_FEATURES])
