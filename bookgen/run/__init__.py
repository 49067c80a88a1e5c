"""Watching and steering a run: each job's log and progress lines, the live display, `bookgen
status` (and its --watch), and what changes when a cluster runs the jobs."""
