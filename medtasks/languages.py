"""Moved to medtasks.spec; this name stays until every import is updated."""
from medtasks.spec import LANGUAGES, SOURCE_LANGUAGE, Language, get_language, script_share  # noqa: F401
