import pytest

from flows.core import storage
from flows.core.errors import ObjectNotFoundError, UnsafePathError


def test_objects_round_trip_and_list_under_a_prefix(any_lake):
    location = storage.write_bytes("models/m/1/model.bin", b"\x00model")
    storage.write_bytes("models/m/1/report.md", b"# report")
    storage.write_bytes("models/other/1/model.bin", b"x")
    assert location == f"{any_lake}/models/m/1/model.bin"
    assert storage.read_bytes("models/m/1/model.bin") == b"\x00model"
    assert storage.object_exists("models/m/1/report.md")
    assert not storage.object_exists("models/m/2/report.md")
    assert storage.list_objects("models/m") == ["models/m/1/model.bin", "models/m/1/report.md"]
    assert storage.list_objects("models/none") == []


def test_write_replaces_an_existing_object(local_lake):
    storage.write_bytes("a/b.txt", b"one")
    storage.write_bytes("a/b.txt", b"two")
    assert storage.read_bytes("a/b.txt") == b"two"


def test_missing_object_raises_a_lake_error_naming_it(any_lake):
    with pytest.raises(ObjectNotFoundError, match=r"models/x/1/model\.bin does not exist"):
        storage.read_bytes("models/x/1/model.bin")


@pytest.mark.parametrize("path", ["../escape", "/abs/path", "s3://other/bucket"])
def test_paths_outside_the_lake_are_refused(local_lake, path):
    with pytest.raises(UnsafePathError):
        storage.write_bytes(path, b"")
