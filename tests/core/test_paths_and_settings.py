import pytest

from flows.core.errors import UnsafePathError
from flows.core.paths import lake_location, safe_name, safe_relative
from flows.core.settings import DEFAULT_LAKE_DIR, LakeSettings, s3_storage_options


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("silver/orders", "silver/orders"),
        ("a//b/./c/", "a/b/c"),
        ("landing/x=1/f.csv", "landing/x=1/f.csv"),
    ],
)
def test_safe_relative_normalises(path, expected):
    assert safe_relative(path) == expected


@pytest.mark.parametrize(
    "path", ["..", "a/../b", "/abs", "~/x", "s3://bucket/x", "c:\\x", "a/b c", ".", ""]
)
def test_safe_relative_refuses_escapes(path):
    with pytest.raises(UnsafePathError):
        safe_relative(path)


def test_default_lake_is_a_folder_in_the_repository(monkeypatch):
    monkeypatch.delenv("LAKE_URI", raising=False)
    settings = LakeSettings()
    assert settings.root == str(DEFAULT_LAKE_DIR)
    assert not settings.is_s3
    assert s3_storage_options(settings) == {}


def test_one_variable_moves_the_lake_to_s3(monkeypatch):
    monkeypatch.setenv("LAKE_URI", "s3://my-bucket/lake/")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    settings = LakeSettings()
    assert lake_location("silver/orders", settings) == "s3://my-bucket/lake/silver/orders"
    options = s3_storage_options(settings)
    assert options["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9"
    assert options["AWS_ALLOW_HTTP"] == "true"
    assert options["AWS_ACCESS_KEY_ID"] == "AKIDEXAMPLE"


def test_lake_specific_endpoint_wins_over_the_aws_default(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("LAKE_S3_ENDPOINT_URL", "https://s3.example.internal")
    assert LakeSettings().endpoint_url == "https://s3.example.internal"


@pytest.mark.parametrize("name", ["a/b", "/etc", "", "..", "x y"])
def test_safe_name_is_a_single_segment(name):
    with pytest.raises(UnsafePathError):
        safe_name(name)
