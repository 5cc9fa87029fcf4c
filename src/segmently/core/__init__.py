"""The application core the shells call: `Project` (core/project.py) holds every verb of
one project; `instants` reads the instants and periods people type."""

from segmently.core.project import Project, find_project_id

__all__ = ["Project", "find_project_id"]
