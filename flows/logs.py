"""What reaches the console during ``recause run``: Prefect's log lines, without tracebacks.

When a task raises, Prefect's engine logs the exception with its traceback (``exc_info``) on the
``prefect.task_runs`` and ``prefect.flow_runs`` loggers, and its console handler prints it before
the command can say in one line what went wrong (a file it cannot read, a setting it cannot use).
:func:`quiet_tracebacks` puts a filter on the console handlers that drops the exception info and
keeps the line. Handlers attached to the run's own loggers (Prefect's API handler, which keeps the
traceback for the UI) see the record first, whole. ``recause --debug`` installs nothing.
"""

from __future__ import annotations

import logging


class NoTraceback(logging.Filter):
    """Lets every record through, stripped of its exception info and stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


NO_TRACEBACK = NoTraceback()


def console_handlers() -> list[logging.Handler]:
    """Handlers that print to a terminal stream (not files), on the root logger and every named logger."""
    loggers = [logging.getLogger(), *(v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger))]
    found: dict[int, logging.Handler] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                found[id(handler)] = handler
    return list(found.values())


def quiet_tracebacks() -> list[logging.Handler]:
    """Install :data:`NO_TRACEBACK` on every console handler configured so far (call it after
    importing Prefect, which configures its handlers on import); returns those handlers."""
    handlers = console_handlers()
    for handler in handlers:
        if NO_TRACEBACK not in handler.filters:
            handler.addFilter(NO_TRACEBACK)
    return handlers
