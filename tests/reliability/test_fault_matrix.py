"""The fault matrix of issue 12 (Show): every kind of CRM trouble the probe found, on both CRMs, each
through a whole run of the worker against the sandbox, each followed by a clean full rerun that settles.

A case seeds a few dozen deals, may make a first clean full run (so the faulted run has tasks to update or
complete) and rep edits, then makes the faulted run and checks its outcome: `succeeded`, `failed` or
`quota_stopped` as it should, the fault really met by the run, and a failure told in one line (no
traceback). Then the faults are cleared (and, where the fault took the credentials away, an operator
issues new ones) and a full run succeeds, after which `assert_settled` holds: one open task per open
unqualified deal, none elsewhere, no sync key twice, and a further full sweep writes nothing.

No case waits for real: retries and `Retry-After` waits go through the env's FakeTime sleep (429 storms
ask for 30 s a time, which the fake clock records), and one sandbox serves every case but the session
expiries (reset before each). Hangs cost a real read timeout each, so they are in bench/fault_matrix.py,
which runs this matrix too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from sandbox import FaultRule, Sandbox, SandboxOptions
from tests.integration.conftest import CrmView, Env
from tests.integration.invariants import UNQUALIFIED, assert_settled, task_problems
from tests.timing import FakeTime
from worker.config.loader import load_settings
from worker.service import Worker
from worker.sync.run_model import RunSummary

CRMS = ("salesforce", "hubspot")
DEALS = 30
OPTIONS = SandboxOptions(deals=DEALS, seed_value=7, enforce_rate_limits=False)
RETRY_AFTER = 30
"""Seconds each 429 of a storm asks for (waited on the fake clock)."""
REQUEST_SETTINGS = "max_attempts = 4\nretry_base_delay = 0.01\nretry_max_delay = 0.05\n"
"""Short retries: three faults in a row on one call still end in a success on the fourth attempt."""

READS = {"salesforce": r"/query", "hubspot": r"/objects/deals(/search)?$"}
"""The deal pull: SOQL query pages; HubSpot's list endpoint (full sweeps) and search."""
STATUS = {"salesforce": r"/composite/sobjects$", "hubspot": r"/deals/batch/update$"}
"""Status writes (on Salesforce also every task update and complete: the same collection PATCH)."""
TASK_CREATE = {"salesforce": r"/composite/sobjects/Task/", "hubspot": r"/tasks/batch/create$"}
TASK_UPDATE = {"salesforce": r"/composite/sobjects$", "hubspot": r"/tasks/batch/update$"}
"""Task updates and completes (a run whose only writes are to tasks, so Salesforce's PATCH is theirs)."""
WRITE_METHOD = {"salesforce": "PATCH", "hubspot": "POST"}
HTML = "<html><body><h1>502 Bad Gateway</h1>upstream went away</body></html>"
"""What a proxy answers; the sandbox sends it JSON-encoded: a 200 whose JSON is a string, not the shape."""
HUBSPOT_DAILY = {
    "status": "error",
    "message": "You have reached your daily limit.",
    "errorType": "RATE_LIMIT",
    "policyName": "DAILY",
}
AUTH_MODES = {
    "salesforce": ("token", "jwt", "password", "client_credentials"),
    "hubspot": ("private_app", "oauth"),
}
STATIC = frozenset({"token", "private_app"})
"""Auth modes that cannot log in again: a session expiry fails the run until an operator rotates the token."""


# ----- the environment --------------------------------------------------------------------------------------
@dataclass
class Matrix:
    """One case's world: the env (sandbox, worker, view) and the environment its worker reads secrets from."""

    env: Env
    tmp: Path
    environ: dict[str, str] = field(default_factory=dict)

    @property
    def crm(self) -> str:
        return self.env.crm

    def restart(self) -> None:
        """A new bant-sync process on the (edited) config and the current environment."""
        self.env.restart(environ=self.environ)

    def edit_connection(self, lines: str) -> None:
        """Add `lines` to the case's connection table in the config file."""
        marker = f'crm = "{self.crm}"\n'
        text = self.env.config.read_text(encoding="utf-8")
        assert marker in text
        self.env.config.write_text(text.replace(marker, marker + lines, 1), encoding="utf-8")


def _open_env(sb: Sandbox, crm: str, tmp: Path) -> Matrix:
    config = sb.write_config(tmp / "sandbox.toml")
    matrix = Matrix(Env(sb, None, CrmView(sb, crm), crm, config, FakeTime()), tmp)  # type: ignore[arg-type]
    matrix.edit_connection(REQUEST_SETTINGS)
    matrix.env.worker = Worker(
        load_settings(str(config), environ={}), clock=matrix.env.time.now, sleep=matrix.env.time.sleep
    )
    return matrix


@contextmanager
def matrix_env(crm: str, tmp: Path, shared: Sandbox | None = None) -> Iterator[Matrix]:
    """A case's env on `shared` (reset first: reseeded, log and faults cleared) or on a fresh sandbox."""
    with ExitStack() as stack:
        if shared is None:
            sb = stack.enter_context(Sandbox.start(OPTIONS))
        else:
            sb = shared
            sb.reset()
        matrix = _open_env(sb, crm, tmp)
        try:
            yield matrix
        finally:
            matrix.env.worker.close()
            sb.clear_faults()


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    """One sandbox for every case that leaves its credentials alone (reset before each case)."""
    with Sandbox.start(OPTIONS) as sb:
        yield sb


# ----- what reps do before a faulted run --------------------------------------------------------------------
def _deals_with_open_tasks(m: Matrix, count: int) -> list[str]:
    deals = m.env.view.deals()
    with_task = sorted(
        {t["deal_id"] for t in m.env.view.tasks() if t["open"]}
        & {d for d, deal in deals.items() if deal["open"] and deal["status"] in UNQUALIFIED}
    )
    assert len(with_task) >= count, f"only {len(with_task)} unqualified deals have a task"
    return with_task[:count]


def complete_some_tasks(m: Matrix) -> None:
    """Reps mark three tasks done while their deals stay unqualified: the next run reopens them (updates)."""
    for deal_id in _deals_with_open_tasks(m, 3):
        (task,) = m.env.view.open_tasks_of(deal_id)
        m.env.view.complete_task(task["id"])


def close_some_deals(m: Matrix) -> None:
    """Reps close three deals that have a task: the next run completes those tasks."""
    for deal_id in _deals_with_open_tasks(m, 3):
        m.env.view.close_deal(deal_id)


# ----- the cases --------------------------------------------------------------------------------------------
Faults = Callable[[Matrix], list[FaultRule]]


@dataclass(frozen=True)
class Case:
    name: str
    faults: Faults
    kinds: tuple[str, ...]
    """Fault kinds of which the faulted run must meet at least one (in the sandbox's request log)."""
    outcome: str = "succeeded"
    before: Callable[[Matrix], None] | None = None
    """Rep edits after a first clean full run; None: the faulted run is the first run."""
    rejected: frozenset[str] = frozenset()
    """CRMs on which the faulted run reports rows the CRM refused (elsewhere it must report none)."""
    check: Callable[[Matrix, RunSummary], None] | None = None
    """More to check after the faulted run."""
    min_slept: float = 0.0
    """Fake seconds the faulted run must have waited (Retry-After honoured)."""
    xfail: Mapping[str, str] = field(default_factory=dict)
    """CRM -> the bug that makes this case fail there (strict xfail)."""


def _on(kind: str, paths: Mapping[str, str], method: bool = False, **kw: object) -> Faults:
    """One rule of `kind` on the case CRM's path (and write method when `method`)."""

    def build(m: Matrix) -> list[FaultRule]:
        extra: dict[str, object] = {"method": WRITE_METHOD[m.crm]} if method else {}
        return [FaultRule(kind=kind, crm=m.crm, path=paths[m.crm], **extra, **kw)]  # type: ignore[arg-type]

    return build


def _both(*parts: Faults) -> Faults:
    return lambda m: [rule for part in parts for rule in part(m)]


def _storm(paths: Mapping[str, str], method: bool = False) -> Faults:
    return _on("status", paths, method, status=429, times=3, headers={"Retry-After": str(RETRY_AFTER)})


def _server_errors(paths: Mapping[str, str], method: bool = False) -> Faults:
    """500, 502 and 503 on the first three matching calls."""
    return _both(*(_on("status", paths, method, status=s, nth=n) for n, s in ((1, 500), (2, 502), (3, 503))))


def _quota(m: Matrix) -> list[FaultRule]:
    """The daily allocation runs out at the task creates (the status writes have landed)."""
    if m.crm == "salesforce":
        rule = FaultRule(
            kind="error_code",
            crm=m.crm,
            path=TASK_CREATE[m.crm],
            times=1_000_000,
            error_code="REQUEST_LIMIT_EXCEEDED",
            message="TotalRequests Limit exceeded.",
        )
    else:
        rule = FaultRule(
            kind="status", crm=m.crm, path=TASK_CREATE[m.crm], times=1_000_000, status=429, body=HUBSPOT_DAILY
        )
    return [rule]


def nothing_sent_after_the_quota(m: Matrix) -> None:
    """Once the CRM said the quota is spent, no further write reached it."""
    writes = [
        r for r in m.env.sb.requests() if r["method"] in {"POST", "PATCH"} and "/search" not in r["path"]
    ]
    refused = [i for i, r in enumerate(writes) if r.get("faults")]
    assert refused, "the quota was never met"
    later = [f"{r['method']} {r['path']}" for r in writes[refused[0] + 1 :]]
    assert later == [], f"sent after the quota stop: {later}"


def _locked(m: Matrix) -> list[FaultRule]:
    """Three deals locked (UNABLE_TO_LOCK_ROW / HubSpot's 409) for two write attempts each."""
    ids = tuple(sorted(m.env.view.deals())[:3])
    return [FaultRule(kind="locked_rows", crm=m.crm, ids=ids, attempts=2)]


VALIDATION = {
    "error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "message": "Close Date must be in the future",
}

CASES = (
    Case(
        "429-storm",
        _both(_storm(READS), _storm(STATUS, method=True)),
        ("status",),
        min_slept=3 * RETRY_AFTER,
    ),
    Case("5xx", _both(_server_errors(READS), _server_errors(STATUS, method=True)), ("status",)),
    Case("drop-status-write", _on("commit_then_drop", STATUS, True, times=1), ("commit_then_drop",)),
    Case("drop-task-create", _on("commit_then_drop", TASK_CREATE, True, times=1), ("commit_then_drop",)),
    Case(
        "drop-task-update",
        _on("commit_then_drop", TASK_UPDATE, True, times=1),
        ("commit_then_drop",),
        before=complete_some_tasks,
    ),
    Case(
        "drop-task-complete",
        _on("commit_then_drop", TASK_UPDATE, True, times=1),
        ("commit_then_drop",),
        before=close_some_deals,
    ),
    Case("non-json-200-read", _on("status", READS, status=200, body=HTML), ("status",), outcome="failed"),
    Case("non-json-200-write", _on("status", STATUS, True, status=200, body=HTML, times=2), ("status",)),
    Case(
        "quota-stop",
        _quota,
        ("status", "error_code"),
        outcome="quota_stopped",
        check=lambda m, summary: nothing_sent_after_the_quota(m),
    ),
    Case("locked-rows", _locked, ("locked_rows",), rejected=frozenset({"hubspot"})),
    Case(
        "partial-status-batch",
        _on("partial_batch", STATUS, rows=(0, 2), times=1, **VALIDATION),
        ("partial_batch",),
        rejected=frozenset(CRMS),
    ),
    Case(
        "partial-task-batch",
        _on("partial_batch", TASK_CREATE, rows=(1,), times=1, **VALIDATION),
        ("partial_batch",),
        rejected=frozenset(CRMS),
    ),
)


# ----- running a case ---------------------------------------------------------------------------------------
def met_kinds(sb: Sandbox) -> set[str]:
    return {str(kind) for r in sb.requests() for kind in r.get("faults", [])}  # type: ignore[attr-defined]


def check_outcome(summary: RunSummary, outcome: str) -> None:
    """The run ended as it should; a run that did not succeed says why in one line, with no traceback."""
    assert summary.status == outcome, f"{summary.status}: {summary.error}"
    if outcome == "succeeded":
        assert summary.error is None, summary.error
        return
    error = summary.error or ""
    assert error.strip(), "a run that did not succeed gives no reason"
    assert "\n" not in error.strip() and "Traceback" not in error, f"not one message: {error!r}"


def settle(m: Matrix) -> RunSummary:
    """Faults cleared: a full run succeeds and the CRM settles (no duplicate, nothing more to write)."""
    m.env.sb.clear_faults()
    rerun = m.env.run("full")
    check_outcome(rerun, "succeeded")
    if m.crm == "hubspot" and "oauth" in m.env.config.read_text(encoding="utf-8"):
        # Env.write_requests leaves out Salesforce's logins (/oauth2/) but not HubSpot's token refresh,
        # which an OAuth connection makes once a run: the same check, logins left out.
        problems = task_problems(m.env.view)
        assert problems == [], f"{len(problems)} problem(s): {problems[:10]}"
        m.env.sb.reset_requests()
        check_outcome(m.env.run("full"), "succeeded")
        writes = [w for w in m.env.write_requests() if "/oauth/" not in w]
        assert writes == [], f"a further full sweep wrote {len(writes)} time(s): {writes[:5]}"
    else:
        assert_settled(m.env)
    return rerun


def run_case(m: Matrix, case: Case) -> tuple[RunSummary, RunSummary]:
    """The case on `m`: the faulted run (checked) and the clean rerun (checked, settled)."""
    env = m.env
    if case.before is not None:
        check_outcome(env.run("full"), "succeeded")
        case.before(m)
    env.sb.reset_requests()
    env.sb.add_faults(case.faults(m))
    slept = env.time.slept
    faulted = env.run("full")
    met = met_kinds(env.sb)
    assert met & set(case.kinds), f"the run met {sorted(met)}, none of {list(case.kinds)}"
    check_outcome(faulted, case.outcome)
    assert env.time.slept - slept >= case.min_slept
    if m.crm in case.rejected:
        assert faulted.rejections, "the refused rows are not reported"
    else:
        assert faulted.rejections == [], faulted.rejections
    if case.check is not None:
        case.check(m, faulted)
    return faulted, settle(m)


def _params() -> list[object]:
    params: list[object] = []
    for case in CASES:
        for crm in CRMS:
            marks = [pytest.mark.xfail(strict=True, reason=case.xfail[crm])] if crm in case.xfail else []
            params.append(pytest.param(case, crm, id=f"{case.name}-{crm}", marks=marks))
    return params


@pytest.mark.parametrize(("case", "crm"), _params())
def test_a_faulted_run_then_a_clean_full_run_settles(
    case: Case, crm: str, shared_sandbox: Sandbox, tmp_path: Path
) -> None:
    with matrix_env(crm, tmp_path, shared_sandbox) as m:
        run_case(m, case)


# ----- session expiry, for every auth mode ------------------------------------------------------------------
def _secret(crm: str, name: str) -> str:
    return f"BANT_SYNC_CONNECTIONS__{crm.upper()}__{name.upper()}"


def use_auth(m: Matrix, mode: str) -> None:
    """Switch the connection to auth `mode` (secrets from the environment) and restart bant-sync."""
    info = m.env.sb.info[m.crm]
    assert isinstance(info, dict)
    if mode in STATIC:
        return
    if m.crm == "salesforce":
        text = m.env.config.read_text(encoding="utf-8")
        lines = f'auth = "{mode}"\nclient_id = "{info["client_id"]}"\n'
        if mode in ("jwt", "password"):
            lines += f'username = "{info["username"]}"\n'
        m.env.config.write_text(text.replace('auth = "token"\n', lines, 1), encoding="utf-8")
        if mode == "jwt":
            m.environ[_secret(m.crm, "private_key")] = Path(info["jwt_private_key_path"]).read_text()
        else:
            m.environ[_secret(m.crm, "client_secret")] = info["client_secret"]
        if mode == "password":
            m.environ[_secret(m.crm, "password")] = info["password"]
    else:
        m.edit_connection(f'auth = "oauth"\nclient_id = "{info["client_id"]}"\n')
        m.environ[_secret(m.crm, "client_secret")] = info["client_secret"]
        m.environ[_secret(m.crm, "refresh_token")] = info["refresh_token"]
    m.restart()


def rotate_token(m: Matrix) -> None:
    """What an operator does when a static token expired: get a new one and give it to bant-sync."""
    info = m.env.sb.info[m.crm]
    assert isinstance(info, dict)
    if m.crm == "salesforce":
        response = requests.post(
            f"{info['login_url']}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
            },
            verify=str(m.env.sb.info["ca_bundle"]),
            timeout=10,
        )
    else:
        response = requests.post(
            f"{info['host']}/oauth/v1/token",
            data={
                "grant_type": "refresh_token",
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
                "refresh_token": info["refresh_token"],
            },
            timeout=10,
        )
    assert response.status_code == 200, response.text
    m.environ[_secret(m.crm, "access_token")] = response.json()["access_token"]
    m.restart()


SESSION_XFAIL: dict[tuple[str, str, str], str] = {}
"""(CRM, auth mode, where) -> the bug that makes its session expiry case fail."""


SESSION_AT = ("read", "task-create")
"""Where the session expires: after four calls (a login, preflight or the pull), or at the first task
create (a create the worker sends once on HubSpot, upserts by key on Salesforce)."""


def run_session_case(m: Matrix, mode: str, where: str = "read") -> tuple[RunSummary, RunSummary]:
    use_auth(m, mode)
    m.env.sb.reset_requests()
    if where == "read":
        rule = FaultRule(kind="session_expiry", crm=m.crm, after_calls=4)
    else:
        rule = FaultRule(kind="session_expiry", crm=m.crm, path=TASK_CREATE[m.crm], after_calls=0)
    m.env.sb.add_fault(rule)
    faulted = m.env.run("full")
    assert "session_expiry" in met_kinds(m.env.sb)
    check_outcome(faulted, "failed" if mode in STATIC else "succeeded")
    if mode in STATIC:
        assert "token" in (faulted.error or "").lower(), faulted.error
    m.env.sb.clear_faults()
    if mode in STATIC:
        rotate_token(m)
    return faulted, settle(m)


def _session_params() -> list[object]:
    params: list[object] = []
    for crm in CRMS:
        for mode in AUTH_MODES[crm]:
            for where in SESSION_AT:
                reason = SESSION_XFAIL.get((crm, mode, where))
                marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
                name = f"session-expiry-{where}-{crm}-{mode}"
                params.append(pytest.param(crm, mode, where, id=name, marks=marks))
    return params


@pytest.mark.parametrize(("crm", "mode", "where"), _session_params())
def test_a_session_expiry_then_a_clean_full_run_settles(
    crm: str, mode: str, where: str, tmp_path: Path
) -> None:
    """A session expiry mid-run: modes that can log in again do and succeed; a static token fails the run
    with one message naming the token, and after the operator rotates it a full run settles."""
    with matrix_env(crm, tmp_path) as m:
        run_session_case(m, mode, where)
