"""Unit tests of app.py with Flask's test client: `python3 -m unittest -v test_app`.

The image build runs them (its base has python3-flask); on a host without Flask
they are skipped, and hoist.yml's test step still compiles app.py.
"""

import importlib.util
import os
import unittest

HAVE_FLASK = importlib.util.find_spec("flask") is not None


@unittest.skipUnless(HAVE_FLASK, "Flask is not installed here (apt-get install python3-flask)")
class AppTest(unittest.TestCase):
    def setUp(self):
        import app  # pylint: disable=import-outside-toplevel

        self.app = app
        self.client = app.app.test_client()
        self._saved = os.environ.get("APP_VERSION")

    def tearDown(self):
        if self._saved is None:
            os.environ.pop("APP_VERSION", None)
        else:
            os.environ["APP_VERSION"] = self._saved

    def test_index_greets_with_the_version_of_the_environment(self):
        os.environ["APP_VERSION"] = "7.1"
        r = self.client.get("/")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.get_json(), {"message": self.app.GREETING, "version": "7.1"})

    def test_index_without_a_version_says_unknown(self):
        os.environ.pop("APP_VERSION", None)
        self.assertEqual(self.client.get("/").get_json()["version"], "unknown")

    def test_health_is_ok(self):
        r = self.client.get("/health")
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.get_data(as_text=True), "ok\n")

    def test_unknown_paths_are_404(self):
        self.assertEqual(self.client.get("/nope").status_code, 404)


if __name__ == "__main__":
    unittest.main()
