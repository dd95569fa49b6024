"""What the distributed sync does when Redis or EnKash fail it: Redis down, flushed or
evicting, a wrong password, a password in a Redis URL (issue 19)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as sync_redis
from _dist import Workers, wire_row, write_rows

from enkash_async.sync.redis._server import RedisServer
from enkash_async.testing import FakeEnkashProcess

SYNC = [sys.executable, "-m", "enkash_async", "sync"]


def closed_redis_url() -> str:
    server = RedisServer()
    server.start()
    url = server.url
    server.close()
    return url


def test_submit_with_redis_down_says_so_in_one_line(tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(1)])
    env = {**os.environ, "ENKASH_BASE_URL": "http://127.0.0.1:1", "ENKASH_TOKEN": "t"}

    done = subprocess.run(
        [*SYNC, "submit", str(rows), "--redis", closed_redis_url()],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: Redis at redis://127.0.0.1:") and "failed while" in line


@pytest.mark.slow
def test_a_worker_waiting_for_redis_says_so_once(tmp_path: Path) -> None:
    env = {**os.environ, "ENKASH_BASE_URL": "http://127.0.0.1:1", "ENKASH_TOKEN": "t"}
    log = tmp_path / "worker.log"
    with log.open("wb") as stream:
        worker = subprocess.Popen(
            [*SYNC, "worker", "--redis", closed_redis_url()],
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
        )
        # Started on a loaded machine, a worker may take seconds to say anything: wait for
        # the line, then long enough for several more tries of the connection (0.5 s, 1 s, 2 s).
        deadline = time.monotonic() + 60
        while "waiting for Redis" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(5)
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)

    lines = log.read_text().splitlines()
    assert len(lines) <= 3, lines
    assert sum("waiting for Redis" in line for line in lines) == 1


@pytest.mark.slow
def test_submit_refuses_a_redis_that_evicts_any_key(redis_url: str, tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(1)])
    env = {**os.environ, "ENKASH_BASE_URL": "http://127.0.0.1:1", "ENKASH_TOKEN": "t"}
    with sync_redis.Redis.from_url(redis_url) as client:
        client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        submitted = subprocess.run(
            [*SYNC, "submit", str(rows), "--redis", redis_url],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        worker = subprocess.run(
            [*SYNC, "worker", "--redis", redis_url],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        with sync_redis.Redis.from_url(redis_url) as client:
            stored = client.dbsize()
    finally:
        with sync_redis.Redis.from_url(redis_url) as client:
            client.config_set("maxmemory-policy", "noeviction")

    for done in (submitted, worker):
        assert done.returncode == 1
        assert "maxmemory-policy allkeys-lru" in done.stderr and "noeviction" in done.stderr
        assert "Traceback" not in done.stderr
    assert stored == 0


@pytest.mark.slow
def test_workers_with_a_wrong_password_make_one_login_attempt_in_all(
    redis_url: str, tmp_path: Path
) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(200)])
    with FakeEnkashProcess() as fake:
        credentials = fake.credentials
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ENKASH_")},
            "ENKASH_BASE_URL": fake.url,
            "ENKASH_CLIENT_ID": credentials.client_id,
            "ENKASH_CLIENT_SECRET": credentials.client_secret,
            "ENKASH_USERNAME": credentials.username,
            "ENKASH_PASSWORD": "not-the-password",
        }
        done = subprocess.run(
            [*SYNC, str(rows), "--workers", "4", "--redis", redis_url, "--chunk-rows", "50"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        stats = fake.stats()

    assert stats["failed_logins"] == 1 and stats["requests"].get("create", 0) == 0
    assert done.returncode == 1
    assert "1 refusal(s) counted" in done.stderr and "is complete" not in done.stdout
    assert "not-the-password" not in done.stderr + done.stdout


@pytest.mark.slow
def test_status_wait_on_a_run_redis_lost_fails_and_points_to_lost_state(
    redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(3000)])
    with FakeEnkashProcess("--latency-create", "0.02") as fake:
        environ = fake.environ()
        submitted = subprocess.run(
            [*SYNC, "submit", str(rows), "--redis", redis_url, "--chunk-rows", "200"],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
            check=True,
        )
        run = submitted.stdout.strip().splitlines()[-1]
        workers.start(redis_url, environ, "--concurrency", "4")
        watching = subprocess.Popen(
            [*SYNC, "status", run, "--wait", "--redis", redis_url],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while fake.stats()["stored"] < 100:
            time.sleep(0.1)
        with sync_redis.Redis.from_url(redis_url) as client:
            client.flushall()
        out, errors = watching.communicate(timeout=60)
        stored = fake.stats()["stored"]

    assert watching.returncode == 1, out
    assert "is complete" not in out
    assert "vanished from Redis" in errors and "--lost-state" in errors
    assert stored < 3000


@pytest.mark.slow
def test_status_wait_rides_out_a_redis_restart_and_sees_the_run_complete(
    redis_server: RedisServer, redis_url: str, workers: Workers, tmp_path: Path
) -> None:
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(200)])
    with FakeEnkashProcess() as fake:
        environ = fake.environ()
        submitted = subprocess.run(
            [*SYNC, "submit", str(rows), "--redis", redis_url],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
            check=True,
        )
        run = submitted.stdout.strip().splitlines()[-1]
        redis_server.stop()  # AOF on: the restart keeps the run
        watching = subprocess.Popen(
            [*SYNC, "status", run, "--wait", "--redis", redis_url],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert watching.stderr is not None
        assert "waiting for Redis to answer again" in watching.stderr.readline()
        redis_server.start()
        workers.start(redis_url, environ)
        out, errors = watching.communicate(timeout=120)

    assert watching.returncode == 0, errors
    assert f"run {run} is complete" in out
    assert "waiting for Redis" not in errors and "Redis answers again" in errors


@pytest.mark.slow
def test_a_redis_password_is_never_on_a_workers_command_line(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    password = "s3cret-redis-pw"
    rows = write_rows(tmp_path / "rows.jsonl", [wire_row(i) for i in range(300)])
    with sync_redis.Redis.from_url(redis_url) as client:
        client.config_set("requirepass", password)
    url = redis_url.replace("redis://", f"redis://:{password}@")
    try:
        run = subprocess.Popen(
            [*SYNC, str(rows), "--workers", "2", "--fake", "--redis", url, "--chunk-rows", "50"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        command_lines = []
        while run.poll() is None:
            for proc in Path("/proc").iterdir():
                try:
                    line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if "enkash_async sync worker" in line:
                    command_lines.append(line)
            time.sleep(0.05)
        out, errors = run.communicate(timeout=120)
    finally:
        with sync_redis.Redis.from_url(url) as client:
            client.config_set("requirepass", "")

    assert run.returncode == 0, errors
    assert command_lines  # the workers were seen
    assert not [line for line in command_lines if password in line]
    assert password not in out + errors
