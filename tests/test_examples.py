"""Each file of examples/ runs as a user would run it, against a fake EnKash."""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _fake_env import login_environment
from aiohttp.test_utils import TestClient, TestServer

from enkash_async import EnkashError
from enkash_async.testing import FakeEnkash, Fault

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str) -> ModuleType:
    """``examples/<name>.py`` imported as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeEnkash]:
    """A fake EnKash, with the ENKASH_* variables pointing at it."""
    async with FakeEnkash(customers=40, seed=5) as fake:
        monkeypatch.delenv("ENKASH_TOKEN", raising=False)
        for name, value in login_environment(fake).items():
            monkeypatch.setenv(name, value)
        yield fake


# --------------------------------------------------------------------------- web_service.py


@pytest.fixture
async def service() -> AsyncIterator[TestClient[Any, Any]]:
    app = load_example("web_service").make_app()
    async with TestClient(TestServer(app)) as http:
        yield http


def new_customer(ref: str) -> dict[str, Any]:
    return {
        "legalName": "Acme Traders Pvt Ltd",
        "uniqueRefNo": ref,
        "customerKeyContacts": [
            {"name": "Asha", "legalName": "Asha Rao", "mobile": "9876543210", "deleted": False}
        ],
    }


async def test_the_web_service_serves_many_requests_with_one_client_and_one_login(
    server: FakeEnkash, service: TestClient[Any, Any]
) -> None:
    for limit in (1, 5, 30):
        reply = await service.get("/customers", params={"limit": str(limit)})
        assert reply.status == 200
        assert len((await reply.json())["customers"]) == limit
    created = await service.post("/customers", json=new_customer("WEB-1"))
    assert created.status == 201
    assert (await created.json())["uniqueRefNo"] == "WEB-1"
    assert len(server.find_by_unique_ref("WEB-1")) == 1
    assert server.stats.logins == 1


async def test_the_web_service_posting_a_ref_twice_stores_it_once(
    server: FakeEnkash, service: TestClient[Any, Any]
) -> None:
    first = await service.post("/customers", json=new_customer("WEB-3"))
    again = await service.post("/customers", json=new_customer("WEB-3"))
    edited = await service.post("/customers", json={**new_customer("WEB-3"), "state": "Goa"})

    assert (first.status, again.status, edited.status) == (201, 200, 200)
    stored = server.find_by_unique_ref("WEB-3")
    assert len(stored) == 1
    assert stored[0]["state"] == "Goa"
    assert (await edited.json())["customerId"] == (await first.json())["customerId"]


async def test_the_web_service_traces_each_enkash_call_under_its_own_span(
    server: FakeEnkash,
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from enkash_async import OtelHooks

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    app = load_example("web_service").make_app(hooks=OtelHooks(tracer_provider=provider))
    async with TestClient(TestServer(app)) as http:
        assert (await http.get("/customers", params={"limit": "5"})).status == 200

    spans = exported.get_finished_spans()
    (page,) = [span for span in spans if span.name == "customers.search.page"]
    attempts = [
        span
        for span in spans
        if span.kind is SpanKind.CLIENT and span.parent.span_id == page.context.span_id
    ]
    assert [span.attributes["http.response.status_code"] for span in attempts] == [200]


async def test_the_web_service_closes_its_client_on_shutdown(server: FakeEnkash) -> None:
    module = load_example("web_service")
    app = module.make_app()
    async with TestClient(TestServer(app)) as http:
        assert (await http.get("/customers")).status == 200
        client = app[module.ENKASH]
    with pytest.raises(EnkashError, match="closed"):
        await client.customers.search(max_items=1).first()


async def test_the_web_service_answers_422_naming_the_bad_fields(
    server: FakeEnkash, service: TestClient[Any, Any]
) -> None:
    body = new_customer("WEB-2")
    body["customerKeyContacts"][0]["mobile"] = "12"
    reply = await service.post("/customers", json=body)
    assert reply.status == 422
    assert (await reply.json())["fields"] == ["customer_key_contacts[0].mobile"]
    assert server.find_by_unique_ref("WEB-2") == []


async def test_the_web_service_refuses_a_limit_out_of_range(
    server: FakeEnkash, service: TestClient[Any, Any]
) -> None:
    assert (await service.get("/customers", params={"limit": "0"})).status == 400
    assert server.stats.requests["search"] == 0


# --------------------------------------------------------------------------- bulk_import.py


async def run_script(*args: str) -> tuple[int, str, str]:
    """Run ``python args...`` with this environment; its exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def csv_refs(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as file:
        return [row["uniqueRefNo"] for row in csv.DictReader(file)]


@pytest.mark.slow
async def test_the_bulk_worker_creates_each_csv_row_exactly_once_when_replies_are_lost(
    server: FakeEnkash,
) -> None:
    sample = EXAMPLES / "customers.csv"
    server.inject(Fault.after_commit(status=502), route="create", times=5)
    status, out, err = await run_script(str(EXAMPLES / "bulk_import.py"), str(sample))
    refs = csv_refs(sample)
    summary = f"{len(refs)} created, 0 updated, 0 unchanged, 0 failed, 0 rejected"
    assert (status, out.strip()) == (0, summary), err
    assert [len(server.find_by_unique_ref(ref)) for ref in refs] == [1] * len(refs)
    assert server.stats.faults_injected["after_commit"] == 5


@pytest.mark.slow
async def test_the_bulk_worker_run_twice_stores_each_csv_row_once(server: FakeEnkash) -> None:
    sample = EXAMPLES / "customers.csv"
    refs = csv_refs(sample)
    before = server.stored_count

    first = await run_script(str(EXAMPLES / "bulk_import.py"), str(sample))
    second = await run_script(str(EXAMPLES / "bulk_import.py"), str(sample))

    assert first[0] == second[0] == 0, (first, second)
    assert second[1].strip() == f"0 created, 0 updated, {len(refs)} unchanged, 0 failed, 0 rejected"
    assert [len(server.find_by_unique_ref(ref)) for ref in refs] == [1] * len(refs)
    assert server.stored_count == before + len(refs)
    assert server.stats.requests["create"] == len(refs)


@pytest.mark.slow
async def test_the_bulk_worker_rerun_on_an_edited_row_updates_only_that_row(
    server: FakeEnkash, tmp_path: Path
) -> None:
    sample = (EXAMPLES / "customers.csv").read_text(encoding="utf-8").splitlines()
    source = tmp_path / "customers.csv"
    source.write_text("\n".join(sample) + "\n", encoding="utf-8")
    assert (await run_script(str(EXAMPLES / "bulk_import.py"), str(source)))[0] == 0
    sample[1] = sample[1].replace("Sample Customer 1 Pvt Ltd", "Sample Customer One Pvt Ltd")
    source.write_text("\n".join(sample) + "\n", encoding="utf-8")

    status, out, err = await run_script(str(EXAMPLES / "bulk_import.py"), str(source))

    unchanged = len(sample) - 2
    assert (status, out.strip()) == (
        0,
        f"0 created, 1 updated, {unchanged} unchanged, 0 failed, 0 rejected",
    ), err
    (stored,) = server.find_by_unique_ref("ERP-200001")
    assert stored["legalName"] == "Sample Customer One Pvt Ltd"
    assert server.stats.requests["update"] == 1


@pytest.mark.slow
async def test_the_bulk_worker_rejects_invalid_rows_unsent_and_exits_1(
    server: FakeEnkash, tmp_path: Path
) -> None:
    rows = (EXAMPLES / "customers.csv").read_text(encoding="utf-8").splitlines()[:4]
    rows[2] = rows[2].replace(",9700000002,", ",12,")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(rows) + "\n", encoding="utf-8")
    status, out, err = await run_script(str(EXAMPLES / "bulk_import.py"), str(bad))
    assert (status, out.strip()) == (1, "2 created, 0 updated, 0 unchanged, 0 failed, 1 rejected")
    assert "rejected line 3: customerKeyContacts.0.mobile" in err
    assert server.stats.created == 2


# --------------------------------------------------------------------------- customers.ipynb


def executed_notebook(path: Path, workdir: Path) -> Any:
    """The notebook at ``path`` after running every cell in a kernel of this Python."""
    import nbformat
    from ipykernel.kernelspec import write_kernel_spec
    from nbclient import NotebookClient

    write_kernel_spec(workdir / "kernels" / "enkash-test")  # this interpreter, not a global one
    notebook = nbformat.read(path, as_version=4)
    runner = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="enkash-test",
        resources={"metadata": {"path": str(workdir)}},
    )
    return runner, notebook


@pytest.fixture
def notebook_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def cell_text(cell: Any) -> str:
    return "".join(
        output.get("text", "") + output.get("data", {}).get("text/plain", "")
        for output in cell.get("outputs", [])
    )


def status_counts(notebook: Any) -> dict[str, int]:
    """The ``by_status`` table the notebook printed, as status -> count."""
    cell = next(c for c in notebook.cells if c.source.endswith("\nby_status"))
    return {k: int(n) for k, n in re.findall(r"^([A-Z]+)\s+(\d+)$", cell_text(cell), re.M)}


@pytest.mark.slow
async def test_the_notebook_counts_every_customer_by_status(
    server: FakeEnkash, notebook_environment: Path
) -> None:
    runner, notebook = executed_notebook(EXAMPLES / "customers.ipynb", notebook_environment)
    await runner.async_execute()
    active = sum(1 for c in server.customers if c.get("active") is True)
    expected = {"ACTIVE": active, "INACTIVE": server.stored_count - active}
    assert status_counts(notebook) == expected
    assert server.stats.logins == 1


@pytest.mark.slow
async def test_the_notebook_runs_on_an_embedded_fake_without_an_account(
    notebook_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ENKASH_BASE_URL", "ENKASH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    runner, notebook = executed_notebook(EXAMPLES / "customers.ipynb", notebook_environment)
    await runner.async_execute()
    assert sum(status_counts(notebook).values()) == 2_500
