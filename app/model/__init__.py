"""The app's Qt-free model: sessions, projects, the journal, the frame cache and the measurements.

Nothing here imports Qt (pyproject.toml's import-linter contracts); the GUI and the CLI share it.
"""
