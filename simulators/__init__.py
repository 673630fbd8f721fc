"""Equipment simulators: OPC UA servers and MQTT devices that stand in for plant equipment.

Driven by a register (what exists) and a scenario (how each machine behaves). In-process::

    from simulators import Ledger, Simulator, load_scenario

    async with Simulator(load_scenario("examples/demo/scenario.yaml"), ledger=Ledger(keep=True)):
        ...

From a shell: ``plantkpi-sim run --scenario examples/demo/scenario.yaml``.
"""

from simulators.ledger import Ledger, LedgerRecord, read_ledger
from simulators.machine import Behaviour, BehaviourPlan, Machine, Sample, SignalSpec
from simulators.runner import Simulator, SimulatorError
from simulators.scenario import LoadedScenario, ScenarioError, load_scenario

__all__ = [
    "Behaviour",
    "BehaviourPlan",
    "Ledger",
    "LedgerRecord",
    "LoadedScenario",
    "Machine",
    "Sample",
    "ScenarioError",
    "SignalSpec",
    "Simulator",
    "SimulatorError",
    "load_scenario",
    "read_ledger",
]
