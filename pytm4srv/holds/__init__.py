"""Machine holds and hold schedules."""
