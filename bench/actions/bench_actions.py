"""The two actions the benchmark calls: the example `Echo` and `Sleep`, served alone.

They are the classes of ``actions/examples.py``, subclassed here so that discovery (which
counts only classes defined in a module under the folder) serves just these two, and the
benchmark measures the framework's cost around the smallest possible action.
"""

from __future__ import annotations

from actions import examples


class Echo(examples.Echo):
    """The example `Echo`: answers with the message it was given."""


class Sleep(examples.Sleep):
    """The example `Sleep`: waits on the event loop, then answers."""
