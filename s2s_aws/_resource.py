"""The one shape of every SageMaker handle: a name in a session, described, with a status and a wait.

:class:`~s2s_aws.training.TrainingJob`, :class:`~s2s_aws.transform.TransformJob` and
:class:`~s2s_aws.hosting.Endpoint` differ only in their API names, the status field, the terminal
states and their messages, so those are class attributes here and the behaviour is written once:
``describe`` (a missing resource is an :class:`~s2s_aws.errors.InputError` naming the region),
``status``, ``console_url`` and the polling loop with its progress line.

Handles never import each other: a handle that leads to another kind (a training job's model
hosted on an endpoint, or transformed) asks its :class:`~s2s_aws.session.Session`, which owns
those operations.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, ClassVar

from ._aws import aws_error, console_url, is_not_found, wait_for
from .errors import InputError, WaitTimeout

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Resource"]


class Resource:
    """A named SageMaker resource in a :class:`~s2s_aws.session.Session` (subclasses set the class attributes)."""

    #: words used in messages: "training job", "transform job", "endpoint"
    kind: ClassVar[str]
    #: the SageMaker client's describe method and its name parameter
    describe_method: ClassVar[str]
    name_parameter: ClassVar[str]
    #: the description's status field and the states a wait ends on
    status_field: ClassVar[str]
    terminal_statuses: ClassVar[tuple[str, ...]]
    #: the console path segment (``jobs``, ``transform-jobs``, ``endpoints``)
    console_kind: ClassVar[str]
    #: appended to the not-found message (starts with "; " when set)
    not_found_hint: ClassVar[str] = ""

    def __init__(self, session: Session, name: str):
        self.session = session
        self.name = name
        self._desc: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    # ------------------------------------------------------------ state
    def describe(self) -> dict[str, Any]:
        """The SageMaker description (kept as :attr:`last_description`)."""
        try:
            call = getattr(self.session.sagemaker, self.describe_method)
            self._desc = call(**{self.name_parameter: self.name})
        except Exception as e:
            if is_not_found(e):
                raise InputError(f"{self.kind} {self.name!r} not found in {self.session.region}"
                                 f"{self.not_found_hint}") from e
            raise aws_error(f"describing {self.kind} {self.name}", e) from e
        return self._desc

    @property
    def last_description(self) -> dict[str, Any]:
        """The last description fetched (fetched now if there is none yet)."""
        return self._desc if self._desc is not None else self.describe()

    @property
    def status(self) -> str:
        return self.describe()[self.status_field]

    @property
    def console_url(self) -> str:
        return console_url(self.session.region, self.console_kind, self.name)

    # ------------------------------------------------------------ waiting
    def _progress_text(self, desc: dict[str, Any]) -> str:
        """What the progress line shows for a description."""
        return str(desc[self.status_field])

    def _timeout_error(self, desc: dict[str, Any], elapsed: float) -> WaitTimeout:
        raise NotImplementedError

    def _poll_until_terminal(self, timeout: float | None, *, progress: bool | None = None,
                             show_line: bool = True, on_poll: Callable[[dict[str, Any]], None] | None = None,
                             on_interrupt: Callable[[], None] | None = None) -> dict[str, Any]:
        """Poll ``describe`` with the session's backoff until a terminal status; return that description.

        A progress line (when the session or ``progress`` asks for one and ``show_line``) shows
        :meth:`_progress_text`; ``on_poll`` sees every description; after ``timeout`` seconds
        :meth:`_timeout_error` is raised; on Ctrl-C the line is cut, ``on_interrupt`` runs and
        the KeyboardInterrupt goes on.
        """
        from .progress import StatusLine

        show = self.session.progress if progress is None else progress
        line = StatusLine(f"{self.kind} {self.name}", enabled=bool(show) and show_line)

        def poll(desc: dict[str, Any]) -> None:
            line.update(self._progress_text(desc))
            if on_poll is not None:
                on_poll(desc)

        try:
            desc = wait_for(self.describe, lambda d: d[self.status_field], self.terminal_statuses,
                            timeout=timeout, backoff=self.session.backoff, clock=self.session.clock,
                            on_poll=poll, on_timeout=self._timeout_error)
        except KeyboardInterrupt:
            line.interrupt()
            if on_interrupt is not None:
                on_interrupt()
            raise
        line.close(desc[self.status_field])
        return desc
