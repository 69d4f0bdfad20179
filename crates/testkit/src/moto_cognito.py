"""moto's server, with federated users (and pools seeded at start) for the reconcile tests.

moto 5.2.5 has no EXTERNAL_PROVIDER user status (its UserStatus enum lacks it)
and no API call that makes a user federated. Cognito names a federated user
after its provider (`Google_1093…`, `SAML_…`), so this launcher gives a user
created with AdminCreateUser under such a name the status EXTERNAL_PROVIDER,
as Cognito reports it in ListUsers. Everything else is moto as installed
(scripts/test-requirements.txt); tests/support/moto.rs starts this file the
way it starts `python -m moto.server`.

With CHIME_SYNC_MOTO_SEED naming a JSON file (`{"pools": [{"name", "users": [{"username",
"status", "enabled", "attributes"}]}]}`), the pools are created before the server starts,
through the same backend operations the API calls run (AdminCreateUser, SignUp,
AdminSetUserPassword, AdminResetUserPassword, AdminDisableUser): thousands of users in a
second instead of thousands of requests. The tests read them back through the API.
"""

import json
import os
import sys

from moto.cognitoidp import models

FEDERATED = ("Google_", "Facebook_", "SignInWithApple_", "LoginWithAmazon_", "SAML_", "OIDC_")

_admin_create_user = models.CognitoIdpBackend.admin_create_user


def admin_create_user(self, user_pool_id, username, *args, **kwargs):
    user = _admin_create_user(self, user_pool_id, username, *args, **kwargs)
    if username and username.startswith(FEDERATED):
        user.status = "EXTERNAL_PROVIDER"
    return user


models.CognitoIdpBackend.admin_create_user = admin_create_user

PASSWORD = "Passw0rd!Passw0rd"


def seed(path):
    with open(path) as f:
        spec = json.load(f)
    backend = models.cognitoidp_backends["123456789012"]["us-east-1"]
    for pool_spec in spec["pools"]:
        pool = backend.create_user_pool(pool_spec["name"], {})
        client = backend.create_user_pool_client(pool.id, False, {"ClientName": "app"})
        for user in pool_spec["users"]:
            name, status = user["username"], user["status"]
            if status == "UNCONFIRMED":
                backend.sign_up(client.id, name, PASSWORD, user["attributes"])
            else:
                backend.admin_create_user(pool.id, name, "SUPPRESS", None, user["attributes"])
            if status in ("CONFIRMED", "RESET_REQUIRED"):
                backend.admin_set_user_password(pool.id, name, PASSWORD, True)
            if status == "RESET_REQUIRED":
                backend.admin_reset_user_password(pool.id, name)
            if not user["enabled"]:
                backend.admin_disable_user(pool.id, name)


if os.environ.get("CHIME_SYNC_MOTO_SEED"):
    seed(os.environ["CHIME_SYNC_MOTO_SEED"])

from moto.server import main  # noqa: E402  (after the patch)

sys.exit(main(sys.argv[1:]))
