"""SeqIO tasks of TIGER, registered on a run's folders when asked (`register_task`)."""

from tasks.tiger_tasks import (TASK_NAMES, feature_lengths, register_task,  # noqa: F401
                               token_tables)
