"""The Py-Service framework: actions, the Plugboard client, the local hub and the database."""
