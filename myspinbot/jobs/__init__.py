"""Jobs: the two queues, their records, and the workers that run them.

`huey_consumer myspinbot.jobs.train_queue` imports this package, which registers the
tasks on both queues.
"""

from .queues import generate_queue, train_queue
from .worker import tasks

__all__ = ["generate_queue", "tasks", "train_queue"]
