"""Deploy engine: releases on hosts, atomic switch, canary phases, lock, ledger.

Public names live in their modules (``ledger.Ledger``, ``phases.run_deploy``, ...); this package
imports nothing eagerly so that ``greenlight.deploy.ledger`` stays cheap for the incident engine.
"""
