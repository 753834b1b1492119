"""The one place Greenlight reads git (through gitpython): what a push carries, history, blame.

Every engine that needs git (push hooks, coverage, schema review, incidents, deploy) imports from
here; nothing else runs git.
"""
