"""The pytest plugin in a pytest run of its own (pytester): it works in pytest-asyncio's
strict and auto modes, and says what to install when pytest-asyncio is not there."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest

@pytest.mark.enkash_server(customers=5)
async def test_search_reads_every_customer(enkash_client) -> None:
    assert len(await enkash_client.customers.search().collect()) == 5

async def test_the_server_starts_empty(enkash_server) -> None:
    assert enkash_server.stored_count == 0
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_the_documented_example_runs_in_each_asyncio_mode(
    pytester: pytest.Pytester, mode: str
) -> None:
    pytester.makepyfile(test_user=USER_TESTS)

    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-o",
        f"asyncio_mode={mode}",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )

    result.assert_outcomes(passed=2)


@pytest.mark.slow
def test_without_pytest_asyncio_the_fixtures_say_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_user=USER_TESTS)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:asyncio")

    assert result.ret != 0
    result.stdout.fnmatch_lines(["*needs pytest-asyncio*enkash-async[[]testing[]]*"])
