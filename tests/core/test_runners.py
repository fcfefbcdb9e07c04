import pytest
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask.task_runners import DaskTaskRunner

from flows.core.errors import ConfigurationError
from flows.core.runners import data_parallel_runner
from flows.core.settings import LakeSettings


def test_threads_when_no_cluster_is_configured(monkeypatch):
    for name in ("LAKE_DASK_ADDRESS", "LAKE_DASK_CLUSTER_CLASS", "LAKE_DASK_CLUSTER_KWARGS"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(data_parallel_runner(), ThreadPoolTaskRunner)


def test_an_address_names_a_running_cluster_and_wins_over_a_class(monkeypatch):
    monkeypatch.setenv("LAKE_DASK_ADDRESS", "tcp://10.0.0.5:8786")
    monkeypatch.setenv("LAKE_DASK_CLUSTER_CLASS", "distributed.LocalCluster")
    runner = data_parallel_runner()
    assert isinstance(runner, DaskTaskRunner)
    assert (runner.address, runner.cluster_class) == ("tcp://10.0.0.5:8786", None)


def test_a_cluster_class_and_its_json_arguments_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("LAKE_DASK_ADDRESS", raising=False)
    monkeypatch.setenv("LAKE_DASK_CLUSTER_CLASS", "distributed.LocalCluster")
    monkeypatch.setenv("LAKE_DASK_CLUSTER_KWARGS", '{"n_workers": 2, "processes": true}')
    runner = data_parallel_runner()
    assert isinstance(runner, DaskTaskRunner)
    assert (runner.address, runner.cluster_class) == (None, "distributed.LocalCluster")
    assert runner.cluster_kwargs == {"n_workers": 2, "processes": True}


def test_the_documented_fargate_example_parses_and_names_its_package_when_missing(monkeypatch):
    """README's cloud example as a flow run reads it; dask-cloudprovider is not a dependency
    here, so the runner says what to install instead of a bare ImportError."""
    monkeypatch.delenv("LAKE_DASK_ADDRESS", raising=False)
    monkeypatch.setenv("LAKE_DASK_CLUSTER_CLASS", "dask_cloudprovider.aws.FargateCluster")
    monkeypatch.setenv(
        "LAKE_DASK_CLUSTER_KWARGS",
        '{"n_workers": 4, "image": "registry.example/lake:abc123",'
        ' "environment": {"LAKE_URI": "s3://bucket/lake"}}',
    )
    settings = LakeSettings()
    assert settings.dask_cluster_kwargs["environment"] == {"LAKE_URI": "s3://bucket/lake"}
    with pytest.raises(ConfigurationError, match=r"dask-cloudprovider\[aws\]"):
        data_parallel_runner(settings)


def test_settings_passed_in_are_used_as_given():
    settings = LakeSettings(dask_cluster_class="distributed.LocalCluster",
                            dask_cluster_kwargs={"n_workers": 2})  # fmt: skip
    runner = data_parallel_runner(settings)
    assert isinstance(runner, DaskTaskRunner)
    assert runner.cluster_kwargs == {"n_workers": 2}
