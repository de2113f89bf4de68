"""The sandbox CRM: a local Salesforce and HubSpot stand-in for tests, the demo and benchmarks.

from sandbox import Sandbox, SandboxOptions, FaultRule
with Sandbox.start(SandboxOptions(deals=500, enforce_rate_limits=False)) as sb:
    sb.info["salesforce"]["instance_url"], sb.info["ca_bundle"], sb.info["hubspot"]["host"]
    reps = sb.people("hubspot"); reps.deals(); reps.bant_tasks(); reps.fix_bant(deal_id)
"""

from sandbox.faults import FaultConfigError, FaultRule, load_fault_file
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
    "SandboxOptions",
    "SeedError",
    "TaskInfo",
    "load_fault_file",
]
