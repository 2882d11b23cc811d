from harness.faults.base import Evidence, Fault
from harness.faults.process import CrashMidBatch, KillProcess, PauseProcess, StopProcess

__all__ = ["CrashMidBatch", "Evidence", "Fault", "KillProcess", "PauseProcess", "StopProcess"]
