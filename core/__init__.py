"""Py-Service: the framework behind the actions in ``actions/``.

What an action module imports comes from here::

    from core import ActionError, ActionResponse, ActionRunner, ActionSchema, Context, lifespan

The rest of the framework is grouped by the product's parts: `core.hub` (the link to the
Plugboard hub), `core.execution` (running requests), `core.model` (what an action is and how
it is found), `core.db` (the database), `core.ops` (health and metrics) and `core.dev`
(developer tools and the local hub); `core.testing` is the test client. docs/architecture.md maps
them.
"""

from core.execution.context import Context, State
from core.execution.lifespan import lifespan
from core.model.errors import ActionError
from core.model.response import ActionResponse
from core.model.runner import ActionRunner
from core.model.schema import ActionSchema

__all__ = [
    "ActionError",
    "ActionResponse",
    "ActionRunner",
    "ActionSchema",
    "Context",
    "State",
    "lifespan",
]
