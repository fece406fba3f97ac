"""Actions: every `ActionRunner` subclass defined in a module here is served to the hub."""
