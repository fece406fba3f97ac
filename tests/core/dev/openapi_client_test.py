"""A client generated from the OpenAPI document (openapi-python-client, pinned in
requirements-test.txt) calls actions on the local hub and reads their results typed."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

from core.dev.openapi import openapi_document
from core.testing import SyncTestClient
from tests.support import FIXTURE_ACTIONS

PACKAGE = "plugboard_generated_client"


class GeneratedClientTest(unittest.TestCase):
    def test_a_generated_client_reads_typed_results_and_errors(self) -> None:
        with SyncTestClient(FIXTURE_ACTIONS) as service, tempfile.TemporaryDirectory() as folder:
            hub = service.async_client.hub
            document = openapi_document(FIXTURE_ACTIONS, hub.service_id, hub.http_url)
            spec = Path(folder) / "openapi.json"
            spec.write_text(json.dumps(document))
            generated = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "openapi_python_client",
                    "generate",
                    "--path",
                    str(spec),
                    "--meta",
                    "none",
                    "--output-path",
                    str(Path(folder) / PACKAGE),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            self.assertEqual(generated.returncode, 0, generated.stdout + generated.stderr)
            sys.path.insert(0, folder)
            self.addCleanup(sys.path.remove, folder)
            self.addCleanup(self.forget_package)
            client_module = importlib.import_module(PACKAGE)
            call_action = importlib.import_module(f"{PACKAGE}.api.default.call_action")
            models = importlib.import_module(f"{PACKAGE}.models")
            client = client_module.Client(base_url=hub.http_url)

            greet = call_action.sync_detailed(
                client=client,
                body=models.GreetRequest(
                    service_id=hub.service_id, fields=models.Greet(name="Ada")
                ),
            )
            invalid = call_action.sync_detailed(
                client=client,
                body=models.GreetRequest(service_id=hub.service_id, fields=models.Greet(name="")),
            )
            address = models.FormatAddressRequest(
                service_id=hub.service_id,
                fields=models.FormatAddress(
                    recipient="Ada", address=models.Address(street="1 Main", city="X")
                ),
            )
            formatted = call_action.sync_detailed(client=client, body=address)

        self.assertEqual(greet.status_code, 200)
        answer: Any = greet.parsed
        self.assertIsInstance(answer, models.GreetAnswer)
        self.assertIsInstance(answer.message, models.Greeting)
        self.assertEqual(answer.message.greeting, "Hello, Ada!")
        # An answer read as the action's own answer type, whatever the union picked.
        lines = models.FormatAddressAnswer.from_dict(json.loads(formatted.content))
        self.assertEqual(lines.message, ["Ada", "1 Main", "X"])
        self.assertEqual(invalid.status_code, 400)
        error: Any = invalid.parsed
        self.assertIsInstance(error, models.ErrorAnswer)
        self.assertIsInstance(error.message, models.ErrorObject)
        self.assertEqual((error.message.code, error.message.retryable), ("INVALID_FIELDS", False))
        self.assertEqual(error.message.errors[0].field, "name")

    @staticmethod
    def forget_package() -> None:
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


if __name__ == "__main__":
    unittest.main()
