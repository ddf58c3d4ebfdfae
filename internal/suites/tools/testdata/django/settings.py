# Django settings of a project that reads its connection from DATABASE_URL;
# SCENARIO picks the migrations of the test's scenario (shop/scenarios/<name>).
import os
from urllib.parse import urlparse

_url = urlparse(os.environ["DATABASE_URL"])
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _url.path[1:],
        "USER": _url.username,
        "PASSWORD": _url.password,
        "HOST": _url.hostname,
        "PORT": _url.port,
    }
}
INSTALLED_APPS = ["shop"]
# MIGRATION_MODULE, when set, names the migrations' module outright (the
# rule cases of rules_test.go, written to a temporary directory on PYTHONPATH).
MIGRATION_MODULES = {"shop": os.environ.get("MIGRATION_MODULE") or "shop.scenarios." + os.environ["SCENARIO"].replace("-", "_")}
SECRET_KEY = "pgguard-tools-test"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
