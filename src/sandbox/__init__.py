"""The sandbox CRM: a local Salesforce and HubSpot stand-in for tests, the demo and benchmarks.

from sandbox import Sandbox, SandboxOptions, FaultRule
with Sandbox.start(SandboxOptions(deals=500, enforce_rate_limits=False)) as sb:
    sb.info["salesforce"]["instance_url"], sb.info["ca_bundle"], sb.info["hubspot"]["host"]
    reps = sb.people("hubspot"); reps.deals(); reps.bant_tasks(); reps.fix_bant(deal_id)
with SandboxFleet.start(accounts=20, options=SandboxOptions(deals=1000)) as fleet:
    fleet.write_config("/tmp/fleet.toml")   # sf-001 … sf-020, hs-001 … hs-020
"""

from sandbox.faults import FaultConfigError, FaultRule, load_fault_file
from sandbox.fleet import SandboxFleet
from sandbox.options import SandboxOptions
from sandbox.people import DealInfo, People, TaskInfo
from sandbox.sandbox import Sandbox
from sandbox.seeds import SeedError

__all__ = [
    "DealInfo",
    "FaultConfigError",
    "FaultRule",
    "People",
    "Sandbox",
    "SandboxFleet",
    "SandboxOptions",
    "SeedError",
    "TaskInfo",
    "load_fault_file",
]
