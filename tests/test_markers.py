"""The `integration` marker follows from the fixtures a test uses (tests/conftest.py)."""

import re
from pathlib import Path

import pytest

from tests.conftest import SERVICE_FIXTURES

TESTS = Path(__file__).resolve().parent

# The real fixtures, imported into a throwaway project: collecting never starts a service.
CONFTEST = """
from tests.conftest import (
    any_lake, local_lake, moto_endpoint, postgres_dsn, prefect_api,
    pytest_collection_modifyitems, s3_bucket, s3_env, s3_lake,
)
"""
TESTS_OF_EVERY_KIND = """
import pytest

def test_pure():
    pass

def test_local_folder(local_lake):
    pass

@pytest.mark.parametrize("name", ["a/b", "s3_lake"])
def test_a_parameter(local_lake, name):
    pass

def test_prefect(prefect_api):
    pass

def test_postgres(postgres_dsn):
    pass

def test_s3_through_other_fixtures(s3_lake):
    pass

def test_both_lakes(any_lake):
    pass
"""


@pytest.fixture
def project(pytester):
    pytester.makeini("[pytest]\nmarkers = integration: starts real services")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_kinds=TESTS_OF_EVERY_KIND)
    return pytester


@pytest.fixture
def integration_items(project):
    items, _ = project.inline_genitems()
    return {item.name: item.get_closest_marker("integration") is not None for item in items}


def test_tests_using_a_service_fixture_are_integration_and_the_rest_are_not(integration_items):
    assert integration_items == {
        "test_pure": False,
        "test_local_folder": False,
        "test_a_parameter[a/b]": False,
        "test_a_parameter[s3_lake]": False,
        "test_prefect": True,
        "test_postgres": True,
        "test_s3_through_other_fixtures": True,
        "test_both_lakes[local]": False,
        "test_both_lakes[s3]": True,
    }


def test_selecting_by_marker_sees_the_derived_marks(project):
    result = project.runpytest("--collect-only", "-q", "-m", "not integration")
    result.stdout.fnmatch_lines(["*5/9 tests collected (4 deselected)*"])


@pytest.mark.parametrize("name", sorted(SERVICE_FIXTURES))
def test_every_service_fixture_exists(name):
    definition = re.compile(rf"@pytest\.fixture[^\n]*\ndef {name}\(")
    assert any(definition.search(path.read_text()) for path in TESTS.rglob("*.py")), name
