"""The S3 endpoint goes away in the middle of a flow: the moto server process is stopped and
started again on the same port.

moto keeps its state in memory, so it runs with its request recorder on and the restarted process
replays the recording (the same objects, the same Delta log). While it replays, a gate in front of
it refuses connections, as a real endpoint would until it is back with all of its data.
"""

import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import boto3
import httpx
import pytest

from flows.catalog import LANDING_FILES, ORDERS
from flows.core import lake
from flows.etl.s3_data_pipeline import s3_data_pipeline
from tests.conftest import MOTO_CREDENTIALS, free_port, stop, wait_for_http

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
HEADER = "order_id,customer_id,product_id,quantity,amount,status,order_date,updated_at\n"


class RecordedMoto:
    """A moto server on a fixed port that can be stopped and started again with its state."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "MOTO_ENABLE_RECORDING": "true",
                    "MOTO_RECORDER_FILEPATH": str(folder / "moto-recording.jsonl")}  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, replay: bool = False) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_http(f"{self.url}/moto-api/", self.process)
        if replay:
            httpx.post(f"{self.url}/moto-api/recorder/replay-recording", timeout=120)

    def stop(self) -> None:
        assert self.process is not None
        stop(self.process)
        self.process = None


GATE = textwrap.dedent(
    """
    import asyncio, sys

    listen, target = int(sys.argv[1]), int(sys.argv[2])

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def forward(client_reader, client_writer):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))

    async def main():
        server = await asyncio.start_server(forward, "127.0.0.1", listen, reuse_address=True)
        print("ready", flush=True)
        await server.serve_forever()

    asyncio.run(main())
    """
)


class Gate:
    """The endpoint the flow sees: a proxy process in front of moto. Shut, the port refuses
    connections. (A process of its own: delta-rs may hold the GIL while it waits on I/O.)"""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.process: subprocess.Popen[str] | None = None

    def open(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", GATE, str(self.port), str(self.target_port)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def shut(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.communicate()
        self.process = None


PAUSE_BEFORE_SILVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import flows.etl.s3_pipeline.flow as pipeline

    marker, go = Path(sys.argv[1]), Path(sys.argv[2])
    original = pipeline.conform_source

    class PauseBeforeSilver:
        def submit(self, *args, **kwargs):
            marker.touch()
            while not go.exists():
                time.sleep(0.05)
            return original.submit(*args, **kwargs)

    pipeline.conform_source = PauseBeforeSilver()
    pipeline.s3_data_pipeline(sample_data=False)
    """
)


class Output:
    """A process's output lines, collected by a thread while the test goes on."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self.stream = process.stdout
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._collect, daemon=True)
        self.reader.start()

    def _collect(self) -> None:
        for line in self.stream:
            self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def close(self) -> str:
        """All of the output, once the process has ended."""
        self.reader.join(timeout=30)
        self.stream.close()
        return "".join(self.lines)


@pytest.fixture
def interruptible_s3(tmp_path, monkeypatch):
    """moto behind a proxy process (Gate): either can be stopped and started again."""
    moto = RecordedMoto(tmp_path)
    moto.start()
    gate = Gate(moto.port)
    gate.open()
    env = {**MOTO_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{gate.port}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    monkeypatch.setenv("LAKE_URI", f"s3://{bucket}/lake")
    try:
        yield moto, gate, bucket
    finally:
        if gate.process is not None:
            gate.shut()
        if moto.process is not None:
            moto.stop()


def expected_tables_after_recovery():
    assert lake.read(ORDERS.bronze).height == 40
    assert sorted(lake.read(ORDERS)["order_id"].to_list()) == list(range(1, 41))
    assert set(lake.read(LANDING_FILES)["status"]) == {"done"}


@pytest.mark.parametrize("outage", ["shorter than the retries", "longer than the retries"])
def test_s3_outage_mid_flow_then_exact_rows(interruptible_s3, prefect_api, tmp_path, outage):
    moto, gate, bucket = interruptible_s3
    client = boto3.client("s3")
    for part in range(2):
        rows = "".join(
            f"{i},{i % 7 + 1},1,1,{i}.5,placed,2024-01-0{part + 1},2024-01-01T00:00:00+00:00\n"
            for i in range(part * 20 + 1, part * 20 + 21)
        )
        client.put_object(Bucket=bucket, Key=f"lake/landing/orders/p{part}.csv", Body=HEADER + rows)
    marker, go = tmp_path / "at-silver", tmp_path / "go"
    flow = subprocess.Popen(
        [sys.executable, "-c", PAUSE_BEFORE_SILVER, str(marker), str(go)],
        env={**os.environ, "PREFECT_API_URL": prefect_api}, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert flow.poll() is None, flow.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the flow never reached the silver stage"
        time.sleep(0.1)

    gate.shut()  # the endpoint goes away ...
    moto.stop()  # ... and so does the server behind it
    go.touch()  # the silver stage now starts against a dead endpoint
    if outage == "shorter than the retries":
        # Back only once the I/O task has met the outage: the clients' own retries
        # (boto3, object_store) may otherwise ride out a short one unseen.
        output = Output(flow)
        deadline = time.monotonic() + 120
        while not output.has("Retry 1/3"):
            assert flow.poll() is None, output.close()[-4000:]
            assert time.monotonic() < deadline, "the I/O task never met the outage"
            time.sleep(0.1)
        moto.start(replay=True)
        gate.open()
        flow.wait(timeout=240)
        assert flow.returncode == 0, output.close()[-4000:]
        output.close()
        expected_tables_after_recovery()
        return

    output = flow.communicate(timeout=240)[0]  # down for good: the retries run out
    assert flow.returncode != 0
    assert "Conforming bronze to silver failed after 3 retries" in output, output[-4000:]
    assert "re-run to finish" in output
    moto.start(replay=True)
    gate.open()
    assert lake.read(ORDERS.bronze).height == 40
    assert not lake.exists(ORDERS)  # no partial commit of the failed stage
    s3_data_pipeline(sample_data=False)
    expected_tables_after_recovery()
