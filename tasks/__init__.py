"""SeqIO tasks of TIGER, registered on a run's folders when asked (`register_task`)."""

from tasks.tiger_tasks import (TASK_NAMES, feature_lengths, items_of_beams,  # noqa: F401
                               register_task, token_tables)
