"""A session never names the machines its work runs on (issue 22, item 1).

The attack: a session someone hands you stores ``backend=dask`` and the address of *their*
scheduler; a job opened on it would connect there, ship your data and unpickle what comes
back.  Here the "attacker" is a local dask scheduler whose preload writes a marker file as
soon as any client connects; the marker must not appear.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import parallel
from engine.parallel import CONFIG_SCOPE, ParallelConfig
from engine.session import Session
from tests.helpers.process import cli, free_port

pytest.importorskip("distributed")

PRELOAD = '''
from pathlib import Path
from distributed.diagnostics.plugin import SchedulerPlugin

class Marker(SchedulerPlugin):
    def add_client(self, scheduler, client):
        Path({marker!r}).write_text("a client connected: " + str(client))

def dask_setup(scheduler):
    scheduler.add_plugin(Marker())
'''


@pytest.fixture
def evil_scheduler(tmp_path):
    marker = tmp_path / "PWNED"
    preload = tmp_path / "evil_preload.py"
    preload.write_text(PRELOAD.format(marker=str(marker)))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--no-dashboard", "--preload", str(preload)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:  # pragma: no cover - a broken environment, not the code under test
        proc.kill()
        pytest.fail("the test scheduler did not start")
    yield f"tcp://127.0.0.1:{port}", marker
    proc.terminate()
    proc.wait(10)


def _gift(root: Path, address: str) -> Session:
    """A session as someone else wrote it: the pre-fix layout (backend + address) in its params."""
    s = Session.open("gift", root)
    s.set_params(CONFIG_SCOPE, {"backend": "dask", "address": address, "n_workers": None})
    return s


def test_a_session_naming_a_scheduler_never_connects_to_it(session_root, evil_scheduler):
    address, marker = evil_scheduler
    gift = _gift(session_root, address)
    assert parallel.load_config(gift) == ParallelConfig()  # loky: nothing from the session
    from engine.reporting import RecordingReporter

    rep = RecordingReporter()
    with parallel.session_backend(gift, rep) as handle:  # what the job runner enters around a step
        assert parallel.pmap(abs, [-1, -2, -3], n_jobs=2) == [1, 2, 3]
        assert handle.config.backend == "loky" and handle.client is None
    assert any("reset to loky" in e["message"] and "never taken from a session" in e["message"]
               for e in rep.of("log")), rep.events
    assert parallel.notice(gift) is not None and parallel.notice(gift) is None  # reset, said once
    # the CLI says so too, and shows no address
    gift2 = _gift(session_root, address)
    out = cli("--session", "gift", "parallel", check=True)
    assert "reset to loky" in out.stderr and "backend = loky" in out.stdout and address not in out.stdout
    gift.close(), gift2.close()
    time.sleep(0.5)
    assert not marker.exists(), marker.read_text()
    # the control: the scheduler does write the marker when a client connects
    from distributed import Client

    with Client(address, timeout=10):
        pass
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists()


def _pmap_step(ctx, p: dict) -> dict:
    return {"squares": parallel.pmap(_square, [1, 2, 3])}


def _square(x: int) -> int:
    return x * x


from engine.analyses.base import Analysis, Step  # noqa: E402

ANALYSIS = Analysis(name="sectest", title="parallel security test",
                    steps=(Step("squares", "tests.test_security_parallel:_pmap_step", "a parallel loop"),))


def test_a_job_on_a_gift_session_runs_locally(session_root, evil_scheduler):
    """What `workbench run mei --session gift` did: a job whose step runs a parallel loop."""
    from engine import analyses
    from engine.jobs import runner

    address, marker = evil_scheduler
    gift = _gift(session_root, address)
    analyses.register("sectest", "tests.test_security_parallel")
    job = runner.run_job(gift, runner.submit(gift, "sectest"))
    assert job.state == "finished" and job.result["squares"] == [1, 4, 9], job.error
    logs = [e.payload.get("message", "") for e in gift.events(job.id, kinds=("log",))]
    assert any("reset to loky" in m for m in logs), logs
    gift.close()
    time.sleep(0.5)
    assert not marker.exists()


def test_settings_are_signed_by_this_user_and_bound_to_the_session_folder(session_root, tmp_path):
    s = Session.open("mine", session_root)
    cfg = parallel.save_config(s, backend="dask", n_workers=2)
    assert cfg == ParallelConfig("dask", None, 2) == parallel.load_config(s) and parallel.notice(s) is None
    stored = s.params(CONFIG_SCOPE)
    assert "address" not in stored or stored["address"] is None  # the session keeps a name only
    # the address is the user's own: given once, kept in the user's settings, not the session
    parallel.save_config(s, address="tcp://10.1.2.3:8786")
    assert parallel.load_config(s).address == "tcp://10.1.2.3:8786"
    assert "10.1.2.3" not in str(s.params(CONFIG_SCOPE))
    assert "10.1.2.3" in parallel.user_settings_path().read_text()
    # the same rows in another folder (copied, or written by someone else) do not verify
    other = Session.open("copy", session_root)
    other.set_params(CONFIG_SCOPE, stored)
    assert parallel.load_config(other) == ParallelConfig() and "not set by you" in parallel.notice(other)
    # another user's key: the signature no longer verifies
    s2 = Session.open("mine", session_root)
    key = parallel.user_settings_path().with_name("parallel.key")
    key.write_bytes(b"k" * 32)
    assert parallel.load_config(s2).backend == "loky"
    for x in (s, other, s2):
        x.close()


def test_the_environment_overrides_the_settings_file(session_root, monkeypatch):
    s = Session.open("env", session_root)
    parallel.save_config(s, backend="dask")
    assert parallel.load_config(s).address is None
    monkeypatch.setenv("WORKBENCH_DASK_ADDRESS", "tcp://127.0.0.1:1")
    assert parallel.user_address("dask") == ("tcp://127.0.0.1:1", "$WORKBENCH_DASK_ADDRESS")
    assert parallel.load_config(s).address == "tcp://127.0.0.1:1"
    s.close()


def test_garbled_parallel_rows_run_locally_and_say_so(session_root):
    s = Session.open("garbled", session_root)
    with s._write() as c:
        c.execute("INSERT OR REPLACE INTO params VALUES (?, ?, ?)", (CONFIG_SCOPE, "backend", "not json"))
    assert parallel.load_config(s) == ParallelConfig() and "reset to loky" in parallel.notice(s)
    s.set_params(CONFIG_SCOPE, {"backend": ["dask"], "n_workers": {"a": 1}, "signature": "é"})
    assert parallel.load_config(s) == ParallelConfig() and parallel.notice(s)
    s.close()
