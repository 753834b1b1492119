"""From ``git push`` to the Buildbot master: the server hook's engine and the client pre-push
checks.

``changes`` turns ref updates into change records (gitpython), ``spool`` keeps them safe on disk,
``deliver`` posts them to the master's change hook; ``post_receive`` ties the three together.
"""
