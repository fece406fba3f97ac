"""Actions served by the framework consumer under test (``ACTIONS_PATH`` points here).

They are discovered from this folder by path, like any user's actions; the benchmark process
builds the same catalog from them so that the bare consumer can connect with it too.
"""
