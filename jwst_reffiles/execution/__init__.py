"""Execution: the task graph of a run, its executors, and resuming from the run state."""

from .executors import EXECUTORS, default_jobs, jobqueue_cluster, run_graph
from .graph import GraphError, Task, TaskGraph
from .job import Job, execute, format_summary, prepare

__all__ = ["EXECUTORS", "default_jobs", "jobqueue_cluster", "run_graph", "GraphError", "Task",
           "TaskGraph", "Job", "execute", "format_summary", "prepare"]
