from harness.workload.driver import DriverStats, WorkloadDriver
from harness.workload.generator import Operation, WorkloadGenerator, WorkloadSpec

__all__ = ["DriverStats", "Operation", "WorkloadDriver", "WorkloadGenerator", "WorkloadSpec"]
