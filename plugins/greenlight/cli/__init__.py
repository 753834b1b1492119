"""The ``greenlight`` command: ``main.py`` dispatches, one module per verb."""
