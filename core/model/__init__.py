"""The action model: what an action is, how it describes itself and how it is discovered."""
