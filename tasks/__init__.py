"""SeqIO task registrations: importing this package registers the TIGER tasks."""

from tasks import tiger_tasks  # noqa: F401
from tasks.tiger_tasks import TASK_NAMES, register_task  # noqa: F401
