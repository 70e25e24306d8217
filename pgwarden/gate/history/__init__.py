"""Run history (``--history``): every scan recorded, compared with the runs before it."""
