"""``podline dashboard``: a web view of runs, live, for people who miss Drone's build page.

``views`` (pure: Pipeline objects → list rows, a run's timeline, filters) and ``ansi`` (pure: a step's
output → styled text segments) decide what is shown; ``kubeapi`` (the API as the user), ``watching`` (one
shared watch), ``logsources`` (where a step's log comes from) and ``server`` (aiohttp, server-sent events)
do the I/O. ``static/`` holds the page: HTML, CSS and a small script, no build step.
"""
