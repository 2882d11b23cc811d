from harness.history.recorder import History, read_history

__all__ = ["History", "read_history"]
