"""``ceso beat``: the scheduler. One leader fires due schedules, recorded in SQL; standbys wait."""
